"""Edits to a checkpoint file as a user or another program would make them, for the integrity tests.

`resign` gives an edited file the checksum of what it now holds, as a writer with other code
would: what `load_checkpoint` then refuses, it refuses for the value, not for the checksum.
"""
import json

import h5py
import numpy as np

from distdl.saving import checkpoint as ck
from distdl.saving.checksum import file_checksum


def put_str_attr(node, name, text):
    """A string attribute stored as format version 3 writes it (fixed-length UTF-8)."""
    raw = text.encode("utf-8")
    node.attrs.create(name, raw, dtype=h5py.string_dtype("utf-8", max(1, len(raw))))


def put_text(f, key, value):
    """Replace JSON dataset `key` by `value`, stored as format version 3 writes it."""
    raw = json.dumps(value).encode("utf-8")
    del f[key]
    f.create_dataset(key, data=raw, dtype=h5py.string_dtype("utf-8", max(1, len(raw))))


def edit_text(path, key, change):
    """Apply `change(value) -> new value` to the JSON text `key` of the checkpoint at `path`."""
    with h5py.File(path, "r+") as f:
        put_text(f, key, change(json.loads(f[key][()])))


def resign(path):
    """Store the version-3 checksum of what the file now holds (read here, not by distdl's reader)."""
    with h5py.File(path, "r+") as f:
        entries = {}
        for key in ("/", "optimizer", "training"):
            for name, value in f[key].attrs.items():
                if name != "checksum":
                    value = value.decode() if isinstance(value, bytes) else value
                    entries[f"{key}@{name}"] = int(value) if isinstance(value, np.integer) else value
        for key in ck.ARRAYS + tuple(f"optimizer/slots/{k}" for k in f["optimizer/slots"]):
            entries[key] = f[key][()]
        for key in ck.texts_of(ck.FORMAT_VERSION):
            entries[key] = bytes(f[key][()])
        put_str_attr(f, "checksum", file_checksum(entries))
