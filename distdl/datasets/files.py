"""Loaders for user data files: NumPy `.npz`, HDF5 (lazily, row by row) and MNIST-format IDX,
and `load`, which reads the data section of a TOML run config.

Persistence layer: arrays and files only, no model classes. Every problem with a file is a
`DataError` whose one sentence names the file; a bad loader spec is a `ConfigError`.
The HDF5 loader lives in `hdf5.py` and the shared checks in `common.py`; both are re-exported here.
"""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import floatx
from ..errors import ConfigError, DataError, unknown_name
from ..utils import to_categorical
from .common import Pair, _check_lengths, _existing_file, _pairs, _pick_keys
from .hdf5 import H5Array, load_hdf5  # noqa: F401  (re-exported)
from .shipped import load_breast_cancer, load_digits

__all__ = ["SHIPPED_NAMES", "H5Array", "load", "load_hdf5", "load_idx", "load_npz", "read_idx"]


# ------------------------------------------------------------------------------------ npz

def load_npz(path: str | Path, x_key: str = "x", y_key: str = "y") -> Pair:
    """Load arrays from an `.npz` archive (never unpickling anything).

    If the archive holds `x_key` and `y_key` (default "x"/"y"), returns one set `(x, y)`.
    Otherwise, if it holds `{x_key}_train`, `{y_key}_train`, `{x_key}_test`, `{y_key}_test`
    (Keras's `mnist.npz` layout), returns `(x_train, y_train), (x_test, y_test)`.

    Args:
        path: the `.npz` file.
        x_key: name (or name stem) of the inputs.
        y_key: name (or name stem) of the targets.
    """
    p = _existing_file(path, "npz")
    if not zipfile.is_zipfile(p):
        raise DataError(f"{p} is not an .npz archive (not a zip file).")
    try:
        with np.load(p, allow_pickle=False) as f:
            keys = _pick_keys(p, list(f.files), x_key, y_key, "keys")
            arrays = [f[k] for k in keys]
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{p} could not be read as an .npz archive of plain arrays ({e}).") from None
    for k, a in zip(keys, arrays):
        if not isinstance(a, np.ndarray):
            raise DataError(f"In {p}, {k!r} is not a NumPy array (not an .npy member).")
        if a.ndim == 0:
            raise DataError(f"In {p}, {k!r} is a scalar; expected an array with one row per sample.")
    return _pairs(p, keys, arrays)


# ------------------------------------------------------------------------------------ IDX

# IDX type codes (third magic byte) -> big-endian element type.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped): magic 0x0000, type code, ndim, big-endian dims.

    Args:
        path: the IDX file (a `.gz` name is decompressed).
    """
    p = _existing_file(path, "IDX")
    try:
        raw = p.read_bytes()
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw  # gzip magic
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{p} could not be decompressed as gzip ({e}).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise DataError(f"{p} has a bad IDX magic number {raw[:4].hex() or 'empty'}; "
                        "expected 00 00 <type 08/09/0b/0c/0d/0e> <ndim>.")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p} is truncated inside its IDX header ({len(raw)} bytes).")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    count = int(np.prod(dims))
    if len(raw) != header + count * dtype.itemsize:
        raise DataError(f"{p} holds {len(raw) - header} data bytes but its IDX header {dims} "
                        f"needs {count * dtype.itemsize}.")
    data = np.frombuffer(raw, dtype, count=count, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, name: str) -> Path:
    dotted = name.replace("-idx", ".idx")  # some mirrors write 'train-images.idx3-ubyte'
    for cand in (name, name + ".gz", dotted, dotted + ".gz"):
        if (folder / cand).is_file():
            return folder / cand
    raise DataError(f"{folder} has no IDX file {name} (or {name}.gz).")


def load_idx(folder: str | Path) -> Pair:
    """Load MNIST-format IDX files from a folder: `(x_train, y_train), (x_test, y_test)`.

    Images become floatx in [0, 1] (uint8 pixels / 255; other types are cast unscaled);
    labels become int64.

    Args:
        folder: directory holding the four MNIST files (`train-images-idx3-ubyte` ...; each may be gzipped).
    """
    d = Path(folder).expanduser()
    if not d.is_dir():
        raise DataError(f"IDX folder {d} does not exist or is not a folder.")
    out = []
    for split in ("train", "test"):
        xp, yp = (_find_idx(d, n) for n in _IDX_NAMES[split])
        x, y = read_idx(xp), read_idx(yp)
        if y.ndim != 1:
            raise DataError(f"{yp} should hold 1-D labels but has shape {y.shape}.")
        _check_lengths(d, xp.name, x, yp.name, y)
        dt = floatx()
        x = x.astype(dt) / np.asarray(255, dt) if x.dtype == np.uint8 else x.astype(dt)
        out.append((x, y.astype(np.int64)))
    return out[0], out[1]


# --------------------------------------------------------------------- spec (TOML configs)

_SHIPPED = {"digits": load_digits, "breast_cancer": load_breast_cancer}
SHIPPED_NAMES = tuple(_SHIPPED)  # the datasets that ship inside the package
_FORMATS = ("npz", "hdf5", "idx")
_OPTIONS = {"name", "format", "path", "x", "y", "flatten", "one_hot", "num_classes", "test_split"}


def _cut(a: Any, start: int, stop: int) -> Any:
    return a.row_range(start, stop) if isinstance(a, H5Array) else a[start:stop]


def _flat(x: Any) -> Any:
    if isinstance(x, H5Array):
        return x.with_flat_rows()
    return np.reshape(x, (len(x), -1))


def _by_format(spec: dict, base_dir: str | Path) -> Pair:
    fmt = spec["format"]
    if fmt not in _FORMATS:
        raise unknown_name("data format", fmt, _FORMATS)
    if "path" not in spec:
        raise ConfigError(f"Data spec with format {fmt!r} needs a 'path'.")
    path = Path(str(spec["path"])).expanduser()
    path = path if path.is_absolute() else Path(base_dir) / path
    if fmt == "idx":
        return load_idx(path)
    x, y = str(spec.get("x", "x")), str(spec.get("y", "y"))
    got = load_npz(path, x, y) if fmt == "npz" else load_hdf5(path, x, y)
    if isinstance(got[0], tuple):
        if "test_split" in spec:
            raise ConfigError(f"{path} already holds a train/test split; remove 'test_split'.")
        return got
    # One set in the file: hold out the last `test_split` fraction (as Keras's validation_split).
    frac = spec.get("test_split", 0.0)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
        raise ConfigError(f"Data option 'test_split' must be a number in [0, 1), not {frac!r}.")
    n = len(got[0])
    cut = n - int(round(n * frac))
    return ((_cut(got[0], 0, cut), _cut(got[1], 0, cut)),
            (_cut(got[0], cut, n), _cut(got[1], cut, n)))


def load(spec: dict, base_dir: str | Path = ".") -> Pair:
    """Load the data a TOML config names: `(x_train, y_train), (x_test, y_test)`.

    `spec` is `{"name": "digits" | "breast_cancer"}` or `{"format": "npz" | "hdf5" | "idx",
    "path": ..., "x": key, "y": key}` (paths relative to `base_dir`), plus optional
    `"flatten": true` (x to (n, -1)), `"one_hot": true` (y to one-hot, `"num_classes"` or
    max label + 1), and, for a file holding one x/y set, `"test_split"`: the last fraction of
    rows becomes the test set (default 0: an empty test set).

    Args:
        spec: the config's data table, as above.
        base_dir: directory that relative paths in `spec` are read from (the config's folder).
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"Data spec must be a table (dict), not {type(spec).__name__}.")
    for key in spec:
        if key not in _OPTIONS:
            raise unknown_name("data option", key, _OPTIONS)
    for key in ("flatten", "one_hot"):
        if not isinstance(spec.get(key, False), bool):
            raise ConfigError(f"Data option {key!r} must be true or false, not {spec[key]!r}.")
    if ("name" in spec) == ("format" in spec):
        raise ConfigError("Data spec needs exactly one of 'name' (a shipped dataset) or 'format' "
                          f"(one of {', '.join(_FORMATS)}).")
    if "test_split" in spec and spec.get("format") not in ("npz", "hdf5"):
        raise ConfigError("Data option 'test_split' applies only to npz/hdf5 files holding one x/y set.")
    if "name" in spec:
        if spec["name"] not in _SHIPPED:
            raise unknown_name("dataset", spec["name"], _SHIPPED)
        (x, y), (xt, yt) = _SHIPPED[spec["name"]]()
    else:
        (x, y), (xt, yt) = _by_format(spec, base_dir)
    if spec.get("flatten", False):
        x, xt = _flat(x), _flat(xt)
    if spec.get("one_hot", False):
        y, yt = np.asarray(y), np.asarray(yt)
        k = spec.get("num_classes")
        if k is None:
            k = int(max(y.max(initial=-1), yt.max(initial=-1))) + 1
        elif isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"Data option 'num_classes' must be a positive integer, not {k!r}.")
        y, yt = to_categorical(y, k, floatx()), to_categorical(yt, k, floatx())
    return (x, y), (xt, yt)
