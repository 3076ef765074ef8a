"""The HDF5 checkpoint: everything needed to resume training, written atomically, read back verified.

Layout (see docs/checkpoint.md): root attributes for the format and checksum, `model/` for the
architecture and the flat parameter / state arrays, `optimizer/` for its config, iteration count
and slots, `training/` for the loop position, history and RNG states. Dicts are JSON strings,
arrays are plain uncompressed numeric datasets; nothing is pickled.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import h5py
import numpy as np

from distdl import __version__
from distdl.errors import CheckpointError
# The folder helpers live in checkpoint_files; re-exported here, where callers have always found them.
from distdl.saving.checkpoint_files import (CHECKPOINT_PATTERN, _remove_quietly,  # noqa: F401
                                            checkpoint_name, checkpoint_paths, clean_temp_files,
                                            prune_checkpoints)

# 2: the epoch's running totals of a mid-epoch backup are named (`training/totals`); version 1
# kept them as the step's raw vector in `extra["totals"]` (read by SumLayout.named_v1)
FORMAT_VERSION = 2
FORMAT_NAME = "distdl-checkpoint"


@dataclass
class CheckpointData:
    """Everything a checkpoint holds; `params`/`state` are flat 1-D arrays in `variables` order."""

    model_config: dict
    variables: list[dict]
    params: np.ndarray
    state: np.ndarray
    compile_config: dict | None = None
    optimizer_config: dict | None = None
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    optimizer_iterations: int = 0
    epoch: int = 0
    step: int = 0
    seed: int = 0
    world_size: int = 1
    history: dict[str, list[float]] = field(default_factory=dict)
    totals: dict[str, list[float]] = field(default_factory=dict)  # the epoch's sums by name (mid-epoch)
    rng_state: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    distdl_version: str = __version__


# ---------------------------------------------------------------- atomic file writing

def atomic_h5_write(path: str | os.PathLike, write: Callable[[h5py.File], None], what: str) -> None:
    """Run `write(h5file)` on a temp file beside `path`, fsync it, then rename it over `path`.

    A crash at any point leaves either the old file or the new one under `path`, never a partial
    one. On failure the temp file is removed and CheckpointError names `path` and the cause.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with h5py.File(tmp, "w") as f:
            write(f)
            f.flush()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except CheckpointError:
        _remove_quietly(tmp)
        raise
    except Exception as e:  # OSError, h5py's errors, TypeError from odd dtypes: all mean "not saved"
        _remove_quietly(tmp)
        raise CheckpointError(f"Could not write {what} {path!r}: {_cause(e)}.") from e
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable; some filesystems refuse fsync on folders, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise CheckpointError(f"Could not sync folder {folder!r}: {_cause(e)}.") from e
    finally:
        os.close(fd)


def _cause(e: BaseException) -> str:
    text = str(e).strip().rstrip(".") or type(e).__name__
    return text.replace("\n", " ")


# ---------------------------------------------------------------- checksum and JSON

def _little(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a if a.dtype.byteorder in "<|=" else a.astype(a.dtype.newbyteorder("<"))


def compute_checksum(params: np.ndarray, state: np.ndarray, optimizer_state: dict[str, np.ndarray],
                     iterations: int) -> str:
    """sha256 hex over params, state, each optimizer slot in sorted name order, then the iteration count.

    Each array contributes its dtype string, shape and little-endian bytes, so a reinterpreted or
    reshaped array is caught as well as a flipped byte.
    """
    h = hashlib.sha256()
    arrays = [("params", params), ("state", state)]
    arrays += [(f"slot:{k}", optimizer_state[k]) for k in sorted(optimizer_state)]
    for label, a in arrays:
        a = _little(np.asarray(a))
        h.update(f"{label}|{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    h.update(f"iterations|{int(iterations)}".encode())
    return h.hexdigest()


def _json_default(obj):
    """Let NumPy scalars and small arrays (e.g. Philox counters in RNG states) become JSON."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _to_json(value, label: str, path: str) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as e:
        raise CheckpointError(
            f"Cannot save checkpoint {path!r}: field {label} is not JSON-able ({e}).") from e


# ---------------------------------------------------------------- layout checks

def _layout_problem(data: CheckpointData) -> str | None:
    """Say what is inconsistent between `variables` and the arrays, or None when all fits."""
    n_train = n_state = 0
    for v in data.variables:
        if not isinstance(v, dict) or not {"name", "shape", "trainable"} <= set(v):
            return f"variable entry {v!r} lacks name, shape or trainable"
        size = int(np.prod(v["shape"], dtype=np.int64))
        if v["trainable"]:
            n_train += size
        else:
            n_state += size
    for label, a, n in (("params", data.params, n_train), ("state", data.state, n_state)):
        if a.ndim != 1 or a.size != n:
            return f"{label} has shape {a.shape} but the variables need ({n},)"
    for k, s in data.optimizer_state.items():
        if s.shape != data.params.shape:
            return f"optimizer slot {k!r} has shape {s.shape} but params has {data.params.shape}"
    return None


# ---------------------------------------------------------------- save / load

def save_checkpoint(path: str | os.PathLike, data: CheckpointData) -> None:
    """Write `data` to `path` atomically (temp file, fsync, rename); see docs/checkpoint.md."""
    spath = os.fspath(path)
    data = replace(data, params=np.asarray(data.params), state=np.asarray(data.state),
                   optimizer_state={k: np.asarray(v) for k, v in data.optimizer_state.items()})
    problem = _layout_problem(data)
    if problem:
        raise CheckpointError(f"Cannot save checkpoint {spath!r}: {problem}.")
    texts = {
        "model/config": _to_json(data.model_config, "model_config", spath),
        "model/variables": _to_json(data.variables, "variables", spath),
        "optimizer/config": _to_json(data.optimizer_config, "optimizer_config", spath),
        "training/compile_config": _to_json(data.compile_config, "compile_config", spath),
        "training/history": _to_json(data.history, "history", spath),
        "training/totals": _to_json(data.totals, "totals", spath),
        "training/rng_state": _to_json(data.rng_state, "rng_state", spath),
        "training/extra": _to_json(data.extra, "extra", spath),
    }
    checksum = compute_checksum(data.params, data.state, data.optimizer_state, data.optimizer_iterations)

    def write(f: h5py.File) -> None:
        f.attrs.update(format=FORMAT_NAME, format_version=int(data.format_version),
                       distdl_version=str(data.distdl_version), checksum=checksum,
                       checksum_algorithm="sha256")
        f.create_dataset("model/params", data=data.params)
        f.create_dataset("model/state", data=data.state)
        slots = f.create_group("optimizer/slots")
        for k, v in data.optimizer_state.items():
            slots.create_dataset(k, data=v)
        f["optimizer"].attrs["iterations"] = int(data.optimizer_iterations)
        for key, text in texts.items():
            f.create_dataset(key, data=text, dtype=h5py.string_dtype("utf-8"))
        f["training"].attrs.update(epoch=int(data.epoch), step=int(data.step), seed=int(data.seed),
                                   world_size=int(data.world_size))

    atomic_h5_write(spath, write, "checkpoint")


def _open(path: str) -> h5py.File:
    if not os.path.exists(path):
        raise CheckpointError(f"Checkpoint {path!r} does not exist.")
    if os.path.isdir(path):
        raise CheckpointError(f"Checkpoint {path!r} is a folder, not a file.")
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as e:
        raise CheckpointError(f"Checkpoint {path!r} cannot be read: {_cause(e)}.") from e
    if not is_h5:
        raise CheckpointError(f"Checkpoint {path!r} is not an HDF5 file.")
    try:
        return h5py.File(path, "r")
    except Exception as e:
        raise CheckpointError(f"Checkpoint {path!r} is truncated or damaged (HDF5: {_cause(e)}).") from e


def _node(f: h5py.File, path: str, key: str):
    try:
        return f[key]
    except KeyError:
        raise CheckpointError(f"Checkpoint {path!r} has no group or dataset {key!r}.") from None


def _attr(node, path: str, key: str, where: str):
    if key not in node.attrs:
        raise CheckpointError(f"Checkpoint {path!r} lacks the attribute {key!r} on {where}.")
    return node.attrs[key]


def _text(f: h5py.File, path: str, key: str):
    raw = _node(f, path, key)[()]
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"Checkpoint {path!r} has unreadable JSON in {key!r} ({e}).") from e


def _read(path: str | os.PathLike) -> tuple[CheckpointData, str, str]:
    """Read every field; return (data, stored checksum, recomputed checksum)."""
    spath = os.fspath(path)
    with _open(spath) as f:
        try:
            if f.attrs.get("format") != FORMAT_NAME:
                raise CheckpointError(f"Checkpoint {spath!r} is an HDF5 file but not a distdl checkpoint.")
            version = int(_attr(f, spath, "format_version", "the root"))
            if version > FORMAT_VERSION:
                raise CheckpointError(
                    f"Checkpoint {spath!r} has format version {version}, but this distdl ({__version__}) "
                    f"reads format versions up to {FORMAT_VERSION}; upgrade distdl to load it.")
            slots_group = _node(f, spath, "optimizer/slots")
            opt, train = f["optimizer"], _node(f, spath, "training")
            data = CheckpointData(
                model_config=_text(f, spath, "model/config"),
                variables=_text(f, spath, "model/variables"),
                params=_node(f, spath, "model/params")[()],
                state=_node(f, spath, "model/state")[()],
                compile_config=_text(f, spath, "training/compile_config"),
                optimizer_config=_text(f, spath, "optimizer/config"),
                optimizer_state={k: slots_group[k][()] for k in slots_group},
                optimizer_iterations=int(_attr(opt, spath, "iterations", "optimizer")),
                epoch=int(_attr(train, spath, "epoch", "training")),
                step=int(_attr(train, spath, "step", "training")),
                seed=int(_attr(train, spath, "seed", "training")),
                world_size=int(_attr(train, spath, "world_size", "training")),
                history=_text(f, spath, "training/history"),
                totals=_text(f, spath, "training/totals") if version >= 2 else {},
                rng_state=_text(f, spath, "training/rng_state"),
                extra=_text(f, spath, "training/extra"),
                format_version=version,
                distdl_version=str(_attr(f, spath, "distdl_version", "the root")),
            )
            stored = str(_attr(f, spath, "checksum", "the root"))
        except CheckpointError:
            raise
        except Exception as e:  # a read past the end of a cut file surfaces here
            raise CheckpointError(f"Checkpoint {spath!r} is truncated or damaged (HDF5: {_cause(e)}).") from e
    problem = _layout_problem(data)
    if problem:
        raise CheckpointError(f"Checkpoint {spath!r} is inconsistent: {problem}.")
    actual = compute_checksum(data.params, data.state, data.optimizer_state, data.optimizer_iterations)
    return data, stored, actual


def load_checkpoint(path: str | os.PathLike) -> CheckpointData:
    """Read and verify a checkpoint; CheckpointError names the file and what is wrong."""
    data, stored, actual = _read(path)
    if stored != actual:
        raise CheckpointError(
            f"Checkpoint {os.fspath(path)!r} fails its checksum: weights or optimizer state are corrupted.")
    return data


def verify_checkpoint(path: str | os.PathLike) -> tuple[bool, str]:
    """(True, "ok") when `path` loads and verifies, else (False, the reason); never raises."""
    try:
        load_checkpoint(path)
    except Exception as e:
        return False, str(e)
    return True, "ok"


def inspect_checkpoint(path: str | os.PathLike) -> dict:
    """A JSON-able summary for `distdl inspect`; reports a checksum mismatch instead of raising."""
    data, stored, actual = _read(path)
    variables = [{"name": v["name"], "shape": list(v["shape"]), "trainable": bool(v["trainable"]),
                  "params": int(np.prod(v["shape"], dtype=np.int64))} for v in data.variables]
    opt = data.optimizer_config or {}
    opt_name = opt.get("class_name") or opt.get("name") or opt.get("config", {}).get("name")
    return {
        "path": os.fspath(path),
        "format_version": data.format_version,
        "distdl_version": data.distdl_version,
        "epoch": data.epoch,
        "step": data.step,
        "seed": data.seed,
        "world_size": data.world_size,
        "dtype": str(data.params.dtype),
        "variables": variables,
        "layers": _layer_table(data.model_config, variables),
        "trainable_params": int(data.params.size),
        "non_trainable_params": int(data.state.size),
        "total_params": int(data.params.size + data.state.size),
        "optimizer": opt_name,
        "optimizer_iterations": data.optimizer_iterations,
        "optimizer_slots": sorted(data.optimizer_state),
        "history_metrics": sorted(data.history),
        "checksum": "ok" if stored == actual else "mismatch",
    }


def _layer_table(model_config: dict, variables: list[dict]) -> list[dict]:
    """[{name, class_name, params}] per layer of the embedded model config, in model order."""
    specs = (model_config or {}).get("config", {}).get("layers", [])
    table = []
    for spec in specs:
        name = spec.get("config", {}).get("name", "?")
        params = sum(v["params"] for v in variables if v["name"].split("/")[0] == name)
        table.append({"name": name, "class_name": spec.get("class_name", "?"), "params": params})
    return table


# ---------------------------------------------------------------- folders of checkpoints
# (names, listing, pruning and temp-file cleanup are in checkpoint_files)

def latest_valid_checkpoint(directory: str | os.PathLike,
                            pattern: str = CHECKPOINT_PATTERN) -> tuple[str | None, list[tuple[str, str]]]:
    """(newest checkpoint that verifies or None, [(path, reason)] for newer ones that did not)."""
    path, _, skipped = latest_valid_checkpoint_data(directory, pattern)
    return path, skipped


def latest_valid_checkpoint_data(directory: str | os.PathLike, pattern: str = CHECKPOINT_PATTERN
                                 ) -> tuple[str | None, CheckpointData | None, list[tuple[str, str]]]:
    """As `latest_valid_checkpoint`, plus the data it verified, so a resume reads the file once."""
    skipped: list[tuple[str, str]] = []
    for p in checkpoint_paths(directory, pattern):
        try:
            return p, load_checkpoint(p), skipped
        except Exception as e:  # what verify_checkpoint reports
            skipped.append((p, str(e)))
    return None, None, skipped
