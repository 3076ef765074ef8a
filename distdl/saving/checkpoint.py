"""The HDF5 checkpoint: everything needed to resume training, written atomically, read back verified.

Layout (the README's checkpoint section): root attributes for the format and checksum, `model/`
for the architecture and the flat parameter / state arrays, `optimizer/` for its config, iteration
count and slots, `training/` for the loop position, history and RNG states. Dicts are JSON strings,
arrays are plain uncompressed numeric datasets; nothing is pickled. A file is opened through
`h5_safety` (nothing outside it is read), its fields are read and checked through
`checkpoint_fields`, and its checksum (`checksum`) covers the whole file from format version 3.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace

import h5py
import numpy as np

from distdl import __version__
from distdl.errors import CheckpointError
from distdl.saving.atomic import atomic_h5_write
# The folder helpers live in checkpoint_files; re-exported here, where callers have always found them.
from distdl.saving.checkpoint_fields import ARRAYS, Fields, data_problem, model_spec, texts_of
from distdl.saving.checkpoint_files import (CHECKPOINT_PATTERN,  # noqa: F401
                                            checkpoint_name, checkpoint_paths, clean_temp_files,
                                            prune_checkpoints)
from distdl.saving.checksum import array_checksum, file_checksum
from distdl.saving.h5_safety import _cause, open_h5

__all__ = ["CheckpointData", "save_checkpoint", "load_checkpoint", "verify_checkpoint",
           "inspect_checkpoint", "latest_valid_checkpoint", "latest_valid_checkpoint_data"]

compute_checksum = array_checksum  # the name versions 1-2 documented

# 2: the epoch's running totals of a mid-epoch backup are named (`training/totals`); version 1
# kept them as the step's raw vector in `extra["totals"]` (read by SumLayout.named_v1).
# 3: the checksum covers every dataset and attribute (`checksum.file_checksum`); versions 1 and 2
# are still read, and their checksum covers the arrays and the iteration count only.
FORMAT_VERSION = 3
FORMAT_NAME = "distdl-checkpoint"


@dataclass
class CheckpointData:
    """Everything a checkpoint holds; `params`/`state` are flat 1-D arrays in `variables` order.

    Args:
        model_config: the model's `get_config()`, with its class name.
        variables: per variable, its name, shape and trainable flag, in the arenas' order.
        params: the trainable arena, flat.
        state: the state arena (frozen weights, moving statistics), flat.
        compile_config: `compile`'s arguments by name (`objectives.compile_config`), or None.
        optimizer_config: the optimizer's serialized config, or None.
        optimizer_state: the optimizer's slot arrays by name, each the size of `params`.
        optimizer_iterations: the optimizer's update count.
        epoch: epochs done.
        step: steps done in the next epoch (0: at an epoch's end).
        seed: the fit's seed (the data order and dropout follow it).
        world_size: the ranks that trained.
        history: the History logs by name, one value per epoch.
        totals: the epoch's running sums by name (a mid-epoch checkpoint).
        rng_state: the random generator's state.
        extra: other JSON-able data (callbacks' state).
        format_version: the file format version.
        distdl_version: the distdl version that wrote it.
    """

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


# ---------------------------------------------------------------- JSON

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


# ---------------------------------------------------------------- save / load

def save_checkpoint(path: str | os.PathLike, data: CheckpointData) -> None:
    """Write `data` to `path` atomically (temp file, fsync, rename) in the current format version
    (whatever `data.format_version` says); see the README's checkpoint section.

    Args:
        path: the file to write.
        data: what to write.
    """
    spath = os.fspath(path)
    data = replace(data, params=np.asarray(data.params), state=np.asarray(data.state),
                   optimizer_state={k: np.asarray(v) for k, v in data.optimizer_state.items()})
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
    # what a load will check, checked on what it will read back: no file written that cannot be read
    back = replace(data, **{name: json.loads(texts[key]) for name, key in _TEXT_FIELDS.items()})
    problem = data_problem(back)
    if problem:
        raise CheckpointError(f"Cannot save checkpoint {spath!r}: {problem}.")
    attrs = {"/": dict(format=FORMAT_NAME, format_version=FORMAT_VERSION,
                       distdl_version=str(data.distdl_version), checksum_algorithm="sha256"),
             "optimizer": dict(iterations=int(data.optimizer_iterations)),
             "training": dict(epoch=int(data.epoch), step=int(data.step), seed=int(data.seed),
                              world_size=int(data.world_size))}
    arrays = {"model/params": data.params, "model/state": data.state}
    arrays.update({f"optimizer/slots/{k}": v for k, v in data.optimizer_state.items()})
    checksum = _file_checksum(attrs, {k: t.encode("utf-8") for k, t in texts.items()}, arrays)

    def write(f: h5py.File) -> None:
        f.create_group("optimizer/slots")
        for key, a in arrays.items():
            f.create_dataset(key, data=a)
        for key, text in texts.items():
            raw = text.encode("utf-8")
            f.create_dataset(key, data=raw, dtype=_fixed_string(raw))
        for key, values in dict(attrs, **{"/": dict(attrs["/"], checksum=checksum)}).items():
            for name, value in values.items():
                if isinstance(value, str):
                    raw = value.encode("utf-8")
                    f[key].attrs.create(name, raw, dtype=_fixed_string(raw))
                else:
                    f[key].attrs[name] = value

    # HDF5 1.10's formats checksum the file's metadata (superblock, object headers, attributes),
    # so HDF5 itself refuses damaged metadata; strings are fixed-length, so no global heap
    # (whose damage HDF5 2.0 does not detect: it can hang or crash reading it)
    atomic_h5_write(spath, write, "checkpoint", libver=("v110", "latest"))


_TEXT_FIELDS = {"model_config": "model/config", "variables": "model/variables",
                "optimizer_config": "optimizer/config", "compile_config": "training/compile_config",
                "history": "training/history", "totals": "training/totals", "rng_state": "training/rng_state",
                "extra": "training/extra"}


def _fixed_string(raw: bytes):
    """A fixed-length UTF-8 string type for `raw`, stored in place (HDF5 needs a length >= 1)."""
    return h5py.string_dtype("utf-8", max(1, len(raw)))


def _file_checksum(attrs: dict[str, dict], texts: dict[str, bytes], arrays: dict[str, np.ndarray]) -> str:
    """The version-3 checksum of these attributes (by object), JSON texts and arrays."""
    entries: dict = {f"{key}@{name}": value for key, values in attrs.items() for name, value in values.items()}
    entries.update(texts)
    entries.update(arrays)
    return file_checksum(entries)


def _read(path: str | os.PathLike) -> tuple[CheckpointData, str, str]:
    """Read every field, checked; return (data, stored checksum, recomputed checksum)."""
    spath = os.fspath(path)
    who = f"Checkpoint {spath!r}"
    with open_h5(spath, "Checkpoint") as f:
        try:
            return _read_open(f, who)
        except CheckpointError:
            raise
        except Exception as e:  # a read past the end of a cut file surfaces here
            raise CheckpointError(f"{who} is truncated or damaged (HDF5: {_cause(e)}).") from e


def _read_open(f: h5py.File, who: str) -> tuple[CheckpointData, str, str]:
    fields = Fields(f, who)
    if "format" not in f.attrs or fields.str_attr("/", "format") != FORMAT_NAME:
        raise CheckpointError(f"{who} is an HDF5 file but not a distdl checkpoint.")
    if "format_version" not in f.attrs:
        raise CheckpointError(f"{who} lacks the attribute 'format_version' on the root.")
    version = fields.int_attr("/", "format_version")
    if version < 1:
        raise CheckpointError(f"{who} has format version {version}; versions start at 1.")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{who} has format version {version}, but this distdl ({__version__}) "
            f"reads format versions up to {FORMAT_VERSION}; upgrade distdl to load it.")
    fields.version = version
    fields.check_objects()
    fmt = fields.str_attr("/", "format")  # again, now as this version stores strings
    raw, parsed = {}, {}
    for key in texts_of(version):
        raw[key], parsed[key] = fields.text(key)
    arrays = {key: fields.array(key) for key in ARRAYS}
    arrays.update({f"optimizer/slots/{k}": fields.array(f"optimizer/slots/{k}") for k in f["optimizer/slots"]})
    attrs = {"/": {"format": fmt, "format_version": version,
                   "distdl_version": fields.str_attr("/", "distdl_version"),
                   "checksum_algorithm": fields.str_attr("/", "checksum_algorithm")},
             "optimizer": {"iterations": fields.int_attr("optimizer", "iterations")},
             "training": {"epoch": fields.int_attr("training", "epoch"),
                          "step": fields.int_attr("training", "step"),
                          "seed": fields.int_attr("training", "seed"),
                          "world_size": fields.int_attr("training", "world_size")}}
    stored = fields.str_attr("/", "checksum")
    if attrs["/"]["checksum_algorithm"] != "sha256":
        raise CheckpointError(f"{who} has checksum algorithm {attrs['/']['checksum_algorithm']!r}, not 'sha256'.")
    data = CheckpointData(
        model_config=parsed["model/config"], variables=parsed["model/variables"],
        params=arrays["model/params"], state=arrays["model/state"],
        compile_config=parsed["training/compile_config"], optimizer_config=parsed["optimizer/config"],
        optimizer_state={k[len("optimizer/slots/"):]: a for k, a in arrays.items() if k.startswith("optimizer/")},
        optimizer_iterations=attrs["optimizer"]["iterations"],
        history=parsed["training/history"], totals=parsed.get("training/totals", {}),
        rng_state=parsed["training/rng_state"], extra=parsed["training/extra"],
        format_version=version, distdl_version=attrs["/"]["distdl_version"], **attrs["training"])
    if version >= 3:
        actual = _file_checksum(attrs, raw, arrays)
    else:  # versions 1 and 2 cover the arrays and the iteration count only
        actual = array_checksum(data.params, data.state, data.optimizer_state, data.optimizer_iterations)
    return data, stored, actual


def _checked(path, data: CheckpointData) -> CheckpointData:
    problem = data_problem(data)
    if problem:
        raise CheckpointError(f"Checkpoint {os.fspath(path)!r} is inconsistent: {problem}.")
    return data


def load_checkpoint(path: str | os.PathLike) -> CheckpointData:
    """Read and verify a checkpoint; CheckpointError names the file and what is wrong.

    The checksum is compared first (any edit or damage: "fails its checksum"), then every
    field is checked for what it may hold (a file written with a valid checksum by other code).

    Args:
        path: the checkpoint file.
    """
    data, stored, actual = _read(path)
    if stored != actual:
        what = ("the file was damaged or edited after it was written" if data.format_version >= 3
                else "weights or optimizer state are corrupted")
        raise CheckpointError(f"Checkpoint {os.fspath(path)!r} fails its checksum: {what}.")
    return _checked(path, data)


def verify_checkpoint(path: str | os.PathLike) -> tuple[bool, str]:
    """(True, "ok") when `path` loads and verifies, else (False, the reason); never raises.

    Args:
        path: the checkpoint file.
    """
    try:
        load_checkpoint(path)
    except Exception as e:
        return False, str(e)
    return True, "ok"


def inspect_checkpoint(path: str | os.PathLike) -> dict:
    """A JSON-able summary for `distdl inspect`; reports a checksum mismatch instead of raising
    (a field that no checkpoint may hold still raises CheckpointError).

    Args:
        path: the checkpoint file.
    """
    data, stored, actual = _read(path)
    data = _checked(path, data)
    variables = [{"name": v["name"], "shape": list(v["shape"]), "trainable": v["trainable"],
                  "params": math.prod(v["shape"])} for v in data.variables]
    opt = data.optimizer_config or {}
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
        "layers": _layer_table(data.model_config, variables, os.fspath(path)),
        "trainable_params": int(data.params.size),
        "non_trainable_params": int(data.state.size),
        "total_params": int(data.params.size + data.state.size),
        "optimizer": opt.get("class_name"),
        "optimizer_iterations": data.optimizer_iterations,
        "optimizer_slots": sorted(data.optimizer_state),
        "history_metrics": sorted(data.history),
        "checksum": "ok" if stored == actual else "mismatch",
        "checksum_covers": "the whole file" if data.format_version >= 3 else "the arrays only",
    }


def _layer_table(model_config: dict, variables: list[dict], path: str) -> list[dict]:
    """[{name, class_name, params}] per layer of the embedded model config, in model order
    ([] when the config is not a model's)."""
    try:
        _, config = model_spec(model_config, f"Checkpoint {path!r}")
    except CheckpointError:
        return []
    table = []
    for spec in config["layers"]:
        name = spec.get("config", {}).get("name", "?")
        params = sum(v["params"] for v in variables if v["name"].split("/")[0] == name)
        table.append({"name": name, "class_name": spec["class_name"], "params": params})
    return table


# ---------------------------------------------------------------- folders of checkpoints
# (names, listing, pruning and temp-file cleanup are in checkpoint_files)

def latest_valid_checkpoint(directory: str | os.PathLike,
                            pattern: str = CHECKPOINT_PATTERN) -> tuple[str | None, list[tuple[str, str]]]:
    """(newest checkpoint that verifies or None, [(path, reason)] for newer ones that did not).

    Args:
        directory: the folder of checkpoints.
        pattern: a regex with groups `epoch` and `step` that checkpoint names match.
    """
    path, _, skipped = latest_valid_checkpoint_data(directory, pattern)
    return path, skipped


def latest_valid_checkpoint_data(directory: str | os.PathLike, pattern: str = CHECKPOINT_PATTERN
                                 ) -> tuple[str | None, CheckpointData | None, list[tuple[str, str]]]:
    """As `latest_valid_checkpoint`, plus the data it verified, so a resume reads the file once.

    Args:
        directory: the folder of checkpoints.
        pattern: a regex with groups `epoch` and `step` that checkpoint names match.
    """
    skipped: list[tuple[str, str]] = []
    for p in checkpoint_paths(directory, pattern):
        try:
            return p, load_checkpoint(p), skipped
        except Exception as e:  # what verify_checkpoint reports
            skipped.append((p, str(e)))
    return None, None, skipped
