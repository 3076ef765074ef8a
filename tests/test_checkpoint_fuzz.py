"""Seeded damage to a checkpoint: 200 ways (truncations, flipped bytes in data and in metadata,
deleted and retyped objects and attributes), each refused with a CheckpointError or loaded
identical to the original; and 50 declarations of huge shapes, each refused before allocation."""
import dataclasses
import random
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from ckpt_edit import put_str_attr
from test_checkpoint import make_data

from distdl.errors import CheckpointError
from distdl.saving import checkpoint as ck

SEED = 20


def same(a: ck.CheckpointData, b: ck.CheckpointData) -> bool:
    """Every field equal, arrays bit for bit with their dtype."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            if x.dtype != y.dtype or x.tobytes() != y.tobytes():
                return False
        elif f.name == "optimizer_state":
            if x.keys() != y.keys() or not all(same_array(x[k], y[k]) for k in x):
                return False
        elif x != y:
            return False
    return True


def same_array(x, y):
    return x.dtype == y.dtype and x.tobytes() == y.tobytes()


def regions(path):
    """[(offset, size)] of the bytes of every contiguous dataset: the file's data, not its metadata."""
    found = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.id.get_offset() is not None:
                found.append((obj.id.get_offset(), obj.id.get_storage_size()))
        f.visititems(visit)
    return [r for r in found if r[1]]


def objects(path):
    names = []
    with h5py.File(path, "r") as f:
        f.visit(names.append)
    return sorted(names)


def attributes(path):
    with h5py.File(path, "r") as f:
        return sorted((key, name) for key in ("/", "optimizer", "training") for name in f[key].attrs)


def _flip(raw, offsets, rng):
    out = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        i = rng.choice(offsets)
        out[i] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
    return bytes(out)


def _retype_dataset(f, key, rng):
    old = f[key][()]
    del f[key]
    choice = rng.randrange(5)
    if choice == 0:
        f.create_dataset(key, data=np.zeros((2, 3), "float32"))
    elif choice == 1:
        f.create_dataset(key, data=np.asarray(old).astype("int32") if np.asarray(old).dtype.kind == "f"
                         else np.zeros(3, "int64"))
    elif choice == 2:
        f.create_dataset(key, data="[]", dtype=h5py.string_dtype("utf-8"))  # text as format 2 stored it
    elif choice == 3:
        f.create_group(key)
    else:
        f.create_dataset(key, data=np.asarray(old).astype("float16") if np.asarray(old).dtype.kind == "f"
                         else np.frombuffer(bytes(old), "uint8"))


def _retype_attr(node, name, rng):
    value = node.attrs[name]
    del node.attrs[name]
    choice = rng.randrange(5)
    if choice == 0:
        node.attrs[name] = 3.0
    elif choice == 1:
        put_str_attr(node, name, "3")
    elif choice == 2:
        node.attrs[name] = np.array([1, 2])
    elif choice == 3:
        node.attrs[name] = True
    else:
        node.attrs[name] = value.decode() if isinstance(value, bytes) else int(value) + 1


def damage(base: bytes, path, rng, meta):
    """Write one damaged copy of `base` to `path`; returns what was done, for the failure message."""
    kind = rng.choice(["truncate", "flip data", "flip metadata", "delete object", "delete attribute",
                       "retype object", "retype attribute"])
    if kind == "truncate":
        cut = rng.randrange(len(base))
        path.write_bytes(base[:cut])
        return f"{kind} at {cut}"
    if kind.startswith("flip"):
        path.write_bytes(_flip(base, meta["data"] if kind == "flip data" else meta["metadata"], rng))
        return kind
    path.write_bytes(base)
    with h5py.File(path, "r+") as f:
        if kind == "delete object":
            key = rng.choice(meta["objects"])
            del f[key]
        elif kind == "delete attribute":
            key, name = rng.choice(meta["attributes"])
            del f[key].attrs[name]
            key = f"{key}@{name}"
        elif kind == "retype object":
            key = rng.choice([k for k in meta["objects"] if isinstance(f[k], h5py.Dataset)])
            _retype_dataset(f, key, rng)
        else:
            key, name = rng.choice(meta["attributes"])
            _retype_attr(f[key], name, rng)
            key = f"{key}@{name}"
    return f"{kind} {key}"


def test_200_damaged_copies_are_refused_or_load_identical(tmp_path):
    base_path = tmp_path / "base.h5"
    original = make_data()
    original.totals = {"rows": [24.0], "loss": [1.5]}
    ck.save_checkpoint(base_path, original)
    base = base_path.read_bytes()
    original = ck.load_checkpoint(base_path)
    data = {i for off, n in regions(base_path) for i in range(off, off + n)}
    meta = {"data": sorted(data), "metadata": sorted(set(range(len(base))) - data),
            "objects": objects(base_path), "attributes": attributes(base_path)}
    assert len(meta["data"]) > 500 and len(meta["metadata"]) > 2000 and len(meta["objects"]) == 16
    rng = random.Random(SEED)
    start = time.monotonic()
    outcomes = {"refused": 0, "identical": 0}
    for case in range(200):
        path = tmp_path / f"d{case}.h5"
        what = damage(base, path, rng, meta)
        try:
            got = ck.load_checkpoint(path)
        except CheckpointError as e:
            assert repr(str(path)) in str(e), (case, what, str(e))
            outcomes["refused"] += 1
        else:
            assert same(got, original), (case, what)
            outcomes["identical"] += 1
        path.unlink()
    elapsed = time.monotonic() - start
    assert elapsed < 60, elapsed
    assert outcomes["refused"] >= 150, outcomes  # most damage is seen, none slips through changed


def _huge(f, key, rng):
    """Replace dataset `key` by one declaring far more bytes than the file holds, never written."""
    del f[key]
    choice = rng.randrange(4)
    n = 2 ** rng.randint(27, 40)
    if choice == 0:
        f.create_dataset(key, shape=(n,), dtype=rng.choice(["float32", "float64"]), chunks=(2**16,))
    elif choice == 1:
        f.create_dataset(key, shape=(2**20, n // 2**20), dtype="float32", chunks=(64, 64))
    elif choice == 2:
        f.create_dataset(key, shape=(n,), dtype="float64")  # contiguous, allocated late: no bytes
    else:
        tid = h5py.h5t.C_S1.copy()
        tid.set_size(min(n, 2**31))
        group, _, name = key.rpartition("/")
        h5py.h5d.create(f[group].id, name.encode(), tid, h5py.h5s.create(h5py.h5s.SCALAR))
    return choice


def test_50_declared_huge_shapes_are_refused_before_allocation(tmp_path):
    base_path = tmp_path / "base.h5"
    ck.save_checkpoint(base_path, make_data())
    base = base_path.read_bytes()
    keys = [k for k in objects(base_path) if k not in ("model", "optimizer", "optimizer/slots", "training")]
    rng = random.Random(SEED)
    tracemalloc.start()
    try:
        for case in range(50):
            path = tmp_path / f"h{case}.h5"
            path.write_bytes(base)
            key = rng.choice(keys)
            with h5py.File(path, "r+") as f:
                choice = _huge(f, key, rng)
            tracemalloc.reset_peak()
            with pytest.raises(CheckpointError, match="declares dataset") as info:
                ck.load_checkpoint(path)
            peak = tracemalloc.get_traced_memory()[1]
            assert peak < 10e6, (case, key, choice, peak)
            assert repr(str(path)) in str(info.value)
            path.unlink()
    finally:
        tracemalloc.stop()
