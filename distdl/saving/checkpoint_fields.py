"""What each object and field of a checkpoint may be, checked before anything uses it.

`checkpoint` reads a file through `Fields`: the set of groups, datasets and attributes must be
exactly the format's, every attribute and dataset has its type and shape checked as it is read,
and `data_problem` then checks what the JSON texts hold (types, ranges, the variable layout
against the arrays). `model_spec` checks what a rebuild of the model needs from the model config.
Every failure is one CheckpointError sentence naming the file and the field, so no edited or
damaged file reaches the model code as an AttributeError, KeyError, TypeError or ValueError.
"""
from __future__ import annotations

import json
import math

import h5py
import numpy as np

from distdl.errors import CheckpointError

__all__ = ["texts_of", "Fields", "data_problem", "model_spec"]

MAX_POSITION = 2**62  # epochs, steps, iterations: beyond any run, and within int64
MAX_SEED = 2**63 - 1
MAX_WORLD = 2**31 - 1

GROUPS = {"model", "optimizer", "optimizer/slots", "training"}
TEXTS = ("model/config", "model/variables", "optimizer/config", "training/compile_config",
         "training/history", "training/totals", "training/rng_state", "training/extra")
ARRAYS = ("model/params", "model/state")
ATTRS = {"/": {"format", "format_version", "distdl_version", "checksum", "checksum_algorithm"},
         "optimizer": {"iterations"}, "training": {"epoch", "step", "seed", "world_size"}}


def texts_of(version: int) -> tuple[str, ...]:
    """The JSON text datasets of a format version (version 1 has no `training/totals`).

    Args:
        version: the checkpoint format version.
    """
    return tuple(t for t in TEXTS if version >= 2 or t != "training/totals")


class Fields:
    """Typed reads from an open checkpoint: each checks the object's type and shape first.

    Args:
        f: the open checkpoint.
        who: the file in messages ("Checkpoint 'a.h5'"), which begins every message.
    """

    def __init__(self, f: h5py.File, who: str):
        self.f, self.who = f, who
        self.version = 0  # set once the format version is read; strings are fixed-length from 3 on

    def fail(self, text: str) -> CheckpointError:
        """The CheckpointError "<who> <text>." (returned, for the caller to raise).

        Args:
            text: what is wrong, e.g. "has no 'model/params'".
        """
        return CheckpointError(f"{self.who} {text}.")

    def check_objects(self) -> None:
        """The file holds exactly the groups, datasets and attributes of its format version."""
        version = self.version
        want = GROUPS | set(texts_of(version)) | set(ARRAYS)
        have: list[str] = []
        self.f.visit(have.append)
        missing = [key for key in sorted(want, key=len) if key not in self.f]
        if missing:
            raise self.fail(f"has no group or dataset {missing[0]!r}")
        slots = {k for k in have if k.startswith("optimizer/slots/") and k.count("/") == 2}
        extra = sorted(set(have) - want - slots)
        if extra:
            raise self.fail(f"holds {extra[0]!r}, which a format version {version} checkpoint does not have")
        for key in sorted(set(have) | {"/"}):
            node = self.f[key]
            if key in GROUPS and not isinstance(node, h5py.Group):
                raise self.fail(f"has a dataset where the group {key!r} belongs")
            allowed = ATTRS.get(key, set())
            for name in node.attrs:
                if name not in allowed:
                    raise self.fail(f"holds the attribute {name!r} on {_where(key)}, which a format "
                                    f"version {version} checkpoint does not have")
            missing = sorted(allowed - set(node.attrs))
            if missing:
                raise self.fail(f"lacks the attribute {missing[0]!r} on {_where(key)}")

    def int_attr(self, key: str, name: str) -> int:
        """An integer attribute (not a bool, not an array); its range is `data_problem`'s to check.

        Args:
            key: the path of the group or dataset holding it ("/" for the file).
            name: the attribute's name.
        """
        value = self.f[key].attrs[name]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise self.fail(f"has {_where(key)} attribute {name!r} of type {type(value).__name__}, "
                            f"not an integer")
        return int(value)

    def str_attr(self, key: str, name: str) -> str:
        """A scalar string attribute (fixed-length from format version 3 on), decoded as UTF-8.

        Args:
            key: the path of the group or dataset holding it ("/" for the file).
            name: the attribute's name.
        """
        attrs = self.f[key].attrs
        aid = attrs.get_id(name)
        if not self._string_type(aid.dtype) or aid.shape != ():
            raise self.fail(f"has {_where(key)} attribute {name!r} of type {aid.dtype} and shape {aid.shape}, "
                            f"not {self._string_kind()}")
        return self._decode(attrs[name], f"{_where(key)} attribute {name!r}")

    def _string_type(self, dtype) -> bool:
        info = h5py.check_string_dtype(dtype)
        if info is None or not self.version:  # before the version is known: either kind
            return info is not None
        return (info.length is None) == (self.version in (1, 2))

    def _string_kind(self) -> str:
        return "a variable-length string" if self.version in (1, 2) else "a fixed-length string"

    def _decode(self, value, what: str) -> str:
        try:
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            raise self.fail(f"has {what} that is not UTF-8 text") from None

    def text(self, key: str):
        """(stored bytes, parsed JSON) of a scalar variable-length string dataset.

        Args:
            key: the dataset's path, e.g. "model/config".
        """
        ds = self.f[key]
        if not isinstance(ds, h5py.Dataset) or ds.shape != () or not self._string_type(ds.dtype):
            raise self.fail(f"has {key!r} that is not a scalar text dataset ({self._string_kind()})")
        raw = ds[()]
        raw = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        try:
            return raw, json.loads(self._decode(raw, repr(key)))
        except (ValueError, RecursionError) as e:
            raise self.fail(f"has unreadable JSON in {key!r} ({_short(e)})") from None

    def array(self, key: str) -> np.ndarray:
        """A 1-D float16/32/64 dataset, read whole (its size was bounded by `h5_safety.check_tree`).

        Args:
            key: the dataset's path, e.g. "model/params".
        """
        ds = self.f[key]
        if not isinstance(ds, h5py.Dataset):
            raise self.fail(f"has a group where the dataset {key!r} belongs")
        if ds.ndim != 1 or ds.dtype.kind != "f" or ds.dtype.itemsize not in (2, 4, 8):
            raise self.fail(f"has {key!r} of shape {ds.shape} and type {ds.dtype}; it must be a "
                            f"1-D float16, float32 or float64 array")
        return ds[()]


def _where(key: str) -> str:
    return "the root" if key == "/" else key


def _short(e: BaseException) -> str:
    text = str(e).replace("\n", " ")
    return text if len(text) < 120 else text[:117] + "..."


# ---------------------------------------------------------------- what the JSON texts hold

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(value) -> bool:
    """A dict of str -> list of numbers (history, totals)."""
    return isinstance(value, dict) and all(
        isinstance(v, list) and all(_is_number(x) for x in v) for v in value.values())


def _finite_numbers(value) -> bool:
    """Every number anywhere inside `value` is finite (no NaN or inf hyperparameter)."""
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_numbers(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def _layout_problem(data) -> str | None:
    """Say what is inconsistent between `data.variables` and its arrays, or None when all fits."""
    if not isinstance(data.variables, list):
        return f"the variable list is a {type(data.variables).__name__}, not a list"
    need = {True: data.params.size, False: data.state.size}
    sums = {True: 0, False: 0}
    names = set()
    for v in data.variables:
        if not isinstance(v, dict) or set(v) != {"name", "shape", "trainable"}:
            return f"variable entry {_clip(v)} is not {{name, shape, trainable}}"
        if not isinstance(v["name"], str) or v["name"] in names:
            return f"variable name {_clip(v['name'])} is not a new string"
        names.add(v["name"])
        if not isinstance(v["trainable"], bool):
            return f"variable {v['name']!r} has trainable = {_clip(v['trainable'])}, not true or false"
        shape = v["shape"]
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            return f"variable {v['name']!r} has shape {_clip(shape)}, not a list of sizes >= 0"
        size = 1
        for d in shape:  # Python ints: no overflow, and stop once past what the arrays hold
            size *= d
            if size > need[v["trainable"]]:
                break
        sums[v["trainable"]] += size
    for label, a, trainable in (("params", data.params, True), ("state", data.state, False)):
        if a.ndim != 1 or a.size != sums[trainable]:
            return f"{label} has shape {a.shape} but the variables need ({sums[trainable]},)"
    for k, s in data.optimizer_state.items():
        if not isinstance(k, str) or not k or "/" in k or k == ".":
            return f"optimizer slot name {k!r} is not a plain name"
        if s.shape != data.params.shape:
            return f"optimizer slot {k!r} has shape {s.shape} but params has {data.params.shape}"
    return None


# (attribute, field of CheckpointData, lowest, highest)
RANGES = (("optimizer attribute 'iterations'", "optimizer_iterations", 0, MAX_POSITION),
          ("training attribute 'epoch'", "epoch", 0, MAX_POSITION),
          ("training attribute 'step'", "step", 0, MAX_POSITION),
          ("training attribute 'seed'", "seed", 0, MAX_SEED),
          ("training attribute 'world_size'", "world_size", 1, MAX_WORLD))


def data_problem(data) -> str | None:
    """Say which field of a read checkpoint holds what no checkpoint may, or None.

    Args:
        data: the CheckpointData read.
    """
    for label, name, lo, hi in RANGES:
        if not lo <= getattr(data, name) <= hi:
            return f"{label} is {getattr(data, name)}, outside [{lo}, {hi}]"
    problem = _layout_problem(data)
    if problem:
        return problem
    if not isinstance(data.model_config, dict):
        return f"the model config is {_clip(data.model_config)}, not a dict"
    if data.compile_config is not None and not isinstance(data.compile_config, dict):
        return f"the compile config is {_clip(data.compile_config)}, not a dict or null"
    opt = data.optimizer_config
    if opt is not None:
        if not (isinstance(opt, dict) and isinstance(opt.get("class_name"), str)
                and isinstance(opt.get("config"), dict)):
            return f"the optimizer config is {_clip(opt)}, not {{class_name, config}} or null"
        if not _finite_numbers(opt):
            return f"the optimizer config {_clip(opt)} holds a NaN or infinite number"
    for label, value in (("history", data.history), ("totals", data.totals)):
        if not _numbers(value):
            return f"the {label} is {_clip(value)}, not a dict of lists of numbers"
    if not (isinstance(data.rng_state, dict) and all(isinstance(v, dict) for v in data.rng_state.values())):
        return f"the RNG state is {_clip(data.rng_state)}, not a dict of generator states"
    if not isinstance(data.extra, dict):
        return f"the extra field is {_clip(data.extra)}, not a dict"
    v1_totals = data.extra.get("totals")
    if v1_totals is not None and not (isinstance(v1_totals, list) and all(_is_number(x) for x in v1_totals)):
        return f"extra's totals are {_clip(v1_totals)}, not a list of numbers"
    return None


def _clip(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- what a rebuild needs

def _dims_ok(shape) -> bool:
    return isinstance(shape, list) and all(d is None or (_is_int(d) and d >= 1) for d in shape)


def model_spec(config, who: str) -> tuple[str, dict]:
    """(class_name, config) of a checkpoint's model config, checked as far as a rebuild reads it
    before the layers see their own arguments: the layer list, names, input shapes and calls.

    Args:
        config: the checkpoint's model config, as read.
        who: the file in messages ("Checkpoint 'a.h5'").
    """
    def fail(text):
        return CheckpointError(f"{who} cannot be rebuilt: its model config {text}.")
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise fail(f"is {_clip(config)}, not {{class_name, config}}")
    cfg = config.get("config")
    if not isinstance(cfg, dict):
        raise fail(f"has config {_clip(cfg)}, not a dict")
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise fail(f"has layers {_clip(layers)}, not a list")
    names = []
    for i, spec in enumerate(layers):
        if not (isinstance(spec, dict) and isinstance(spec.get("class_name"), str)
                and isinstance(spec.get("config", {}), dict)):
            raise fail(f"has layer {i} = {_clip(spec)}, not {{class_name, config}}")
        lc = spec.get("config", {})
        if spec["class_name"] == "InputLayer" and not _dims_ok(lc.get("shape", [])):
            raise fail(f"has input layer {i} of shape {_clip(lc.get('shape'))}; sizes must be >= 1 or null")
        names.append(lc.get("name"))
    if not isinstance(cfg.get("name"), (str, type(None))):
        raise fail(f"has name {_clip(cfg.get('name'))}, not a string")
    if "calls" not in cfg:
        if cfg.get("input_shape") is not None and not _dims_ok(cfg["input_shape"]):
            raise fail(f"has input shape {_clip(cfg['input_shape'])}; sizes must be >= 1 or null")
        return config["class_name"], cfg
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise fail(f"has layer names {_clip(names)}, not distinct strings")
    calls = cfg["calls"]
    if not isinstance(calls, list):
        raise fail(f"has calls {_clip(calls)}, not a list")
    for i, call in enumerate(calls):
        if not (isinstance(call, dict) and call.get("layer") in names and isinstance(call.get("inputs"), list)
                and isinstance(call.get("list_input"), bool) and _refs_ok(call["inputs"], i)):
            raise fail(f"has call {i} = {_clip(call)}, which names no layer or a later call")
    for key in ("inputs", "outputs"):
        if not _refs_ok(cfg.get(key), len(calls)) or not cfg[key]:
            raise fail(f"has {key} {_clip(cfg.get(key))}, not a list of [call, output] before {len(calls)}")
    return config["class_name"], cfg


def _refs_ok(refs, before: int) -> bool:
    """[[call index, output index], ...] with every call index before `before`."""
    return isinstance(refs, list) and all(
        isinstance(r, list) and len(r) == 2 and all(_is_int(x) and x >= 0 for x in r) and r[0] < before
        for r in refs)
