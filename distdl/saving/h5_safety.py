"""HDF5 files from elsewhere: nothing outside the file is read, nothing the file cannot hold is allocated.

A checkpoint or a Keras weights file may come from anyone, and HDF5 lets a file point outside
itself: an external link names an object in another file, external raw storage keeps a dataset's
bytes in another file, a virtual dataset maps other files' datasets, and soft links alias paths.
Reading any of them would read a file the user never named (and a checksum would then cover the
other file's bytes). A file's metadata also declares sizes freely: a 30 KB file may declare a
dataset of 2^29 floats, chunked and never written, that reading would allocate in full.

`open_h5` opens a file named by the user; `check_tree` walks every link, object and attribute of
an open file once, from its metadata alone, before any data is read, and refuses all of the above
with one sentence naming the file and the object. Neither distdl nor Keras writes any of them.
"""
from __future__ import annotations

import os
import stat

import h5py

from distdl.errors import CheckpointError

__all__ = ["open_h5", "check_tree"]

# A checkpoint has ~15 objects and a Keras file a few per layer; far more is not a model file.
MAX_OBJECTS = 200_000


def open_h5(path: str, kind: str) -> h5py.File:
    """Open the HDF5 file the user named at `path` for reading, after `check_tree` accepts it.

    Only a regular file is opened (a FIFO or a device would block or never end).

    Args:
        path: the file.
        kind: what the file is, which begins every message ("Checkpoint", "Weights file").
    """
    who = f"{kind} {path!r}"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{who} does not exist.") from None
    except OSError as e:
        raise CheckpointError(f"{who} cannot be read: {e.strerror or e}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{who} is a folder, not a file.")
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{who} is not a regular file.")
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as e:
        raise CheckpointError(f"{who} cannot be read: {_cause(e)}.") from e
    if not is_h5:
        raise CheckpointError(f"{who} is not an HDF5 file.")
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        raise CheckpointError(f"{who} is truncated or damaged (HDF5: {_cause(e)}).") from e
    try:
        check_tree(f, who, st.st_size)
    except BaseException:
        f.close()
        raise
    return f


def check_tree(f: h5py.File, who: str, size: int) -> None:
    """Refuse anything in `f` that reads outside it or declares more bytes than it holds.

    Refused: external and soft links, objects linked from two places (which also rules out
    cycles), named datatypes, types other than numbers and strings, virtual datasets, external
    raw storage, filtered (compressed) datasets, datasets storing fewer bytes than their shape
    declares, and any dataset or attribute declaring more bytes than the whole file. HDF5
    errors while walking a damaged file become "truncated or damaged".

    Args:
        f: the open file.
        who: the file in messages ("Checkpoint 'a.h5'").
        size: its real size in bytes.
    """
    try:
        _walk(f, who, int(size))
    except CheckpointError:
        raise
    except Exception as e:  # damaged metadata met while walking
        raise CheckpointError(f"{who} is truncated or damaged (HDF5: {_cause(e)}).") from e


def _walk(f: h5py.File, who: str, size: int) -> None:
    seen = 0
    _check_attrs(f, "/", who, size)
    todo = [f]
    while todo:
        group = todo.pop()
        for name in group:
            path = f"{group.name.rstrip('/')}/{name}"
            seen += 1
            if seen > MAX_OBJECTS:
                raise CheckpointError(f"{who} holds more than {MAX_OBJECTS:,} objects; it is not a model file.")
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise CheckpointError(
                    f"{who} holds an external link {path!r} to {link.path!r} in {link.filename!r}; "
                    f"distdl reads nothing outside the file it is given.")
            if isinstance(link, h5py.SoftLink):
                raise CheckpointError(f"{who} holds a soft link {path!r} -> {link.path!r}; "
                                      f"distdl reads only objects stored under their own name.")
            if not isinstance(link, h5py.HardLink):
                raise CheckpointError(f"{who} holds a link {path!r} of an unknown kind.")
            obj = group[name]
            if h5py.h5o.get_info(obj.id).rc != 1:
                raise CheckpointError(f"{who} links the object at {path!r} from more than one place.")
            if isinstance(obj, h5py.Group):
                todo.append(obj)
            elif isinstance(obj, h5py.Dataset):
                _check_dataset(obj, path, who, size)
            else:
                raise CheckpointError(f"{who} holds {path!r}, which is neither a group nor a dataset.")
            _check_attrs(obj, path, who, size)


def _check_dataset(ds: h5py.Dataset, path: str, who: str, size: int) -> None:
    plist = ds.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise CheckpointError(f"{who} holds a virtual dataset {path!r}, which maps other files; "
                              f"distdl reads nothing outside the file it is given.")
    if plist.get_external_count():
        name = plist.get_external(0)[0].decode(errors="replace")
        raise CheckpointError(f"{who} stores the bytes of dataset {path!r} in another file ({name!r}); "
                              f"distdl reads nothing outside the file it is given.")
    if plist.get_nfilters():
        raise CheckpointError(f"{who} holds a filtered (compressed) dataset {path!r}; distdl reads "
                              f"plain datasets only.")
    tid = ds.id.get_type()
    _check_type(tid, f"dataset {path!r}", who)
    declared = _declared_bytes(ds.id.shape, tid.get_size())
    if declared > size:
        raise CheckpointError(f"{who} declares dataset {path!r} with shape {ds.id.shape} ({declared:,} bytes), "
                              f"more than the whole file holds ({size:,} bytes).")
    stored = ds.id.get_storage_size()
    if stored < declared:
        raise CheckpointError(f"{who} declares dataset {path!r} with shape {ds.id.shape} ({declared:,} bytes) "
                              f"but stores only {stored:,} bytes of it.")


def _check_attrs(obj, path: str, who: str, size: int) -> None:
    n = h5py.h5o.get_info(obj.id).num_attrs
    if n > MAX_OBJECTS:
        raise CheckpointError(f"{who} holds {n:,} attributes on {path!r}; it is not a model file.")
    for name in obj.attrs:
        aid = obj.attrs.get_id(name)
        tid = aid.get_type()
        _check_type(tid, f"attribute {name!r} of {path!r}", who)
        declared = _declared_bytes(aid.shape, tid.get_size())
        if declared > size:
            raise CheckpointError(f"{who} declares attribute {name!r} of {path!r} with shape {aid.shape} "
                                  f"({declared:,} bytes), more than the whole file holds ({size:,} bytes).")


# Numbers and strings: all a model file holds (h5py stores bools as an integer enum). Variable-
# length sequences, compounds, references, arrays and opaque types are refused unread: a damaged
# type byte can turn a string into a sequence that HDF5 then reads out of bounds.
_TYPE_CLASSES = {h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.STRING, h5py.h5t.ENUM}
_CLASS_NAMES = {h5py.h5t.VLEN: "a variable-length sequence", h5py.h5t.COMPOUND: "a compound type",
                h5py.h5t.REFERENCE: "a reference", h5py.h5t.OPAQUE: "an opaque type",
                h5py.h5t.ARRAY: "an array type", h5py.h5t.BITFIELD: "a bitfield", h5py.h5t.ENUM: "an enum"}


def _check_type(tid, what: str, who: str) -> None:
    cls = tid.get_class()
    if cls not in _TYPE_CLASSES or (cls == h5py.h5t.ENUM and tid.get_super().get_class() != h5py.h5t.INTEGER):
        kind = _CLASS_NAMES.get(cls, f"HDF5 type class {cls}")
        raise CheckpointError(f"{who} holds {what} of {kind}, which distdl does not read.")


def _declared_bytes(shape, itemsize: int) -> int:
    """Bytes an array of `shape` of `itemsize`-byte elements takes, in Python ints (no overflow)."""
    n = int(itemsize)
    for d in shape or ():
        n *= int(d)
    return n


def _cause(e: BaseException) -> str:
    text = str(e).strip().rstrip(".") or type(e).__name__
    return text.replace("\n", " ")
