"""TOML run configs: model, data, compile and training settings, validated.

Every mistake is a ConfigError naming the file, the key and the allowed values.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

from ..errors import ConfigError

SECTIONS = {"data", "model", "compile", "training", "checkpoint"}
TRAINING_KEYS = {"epochs": int, "batch_size": int, "seed": int, "validation_split": float, "shuffle": bool,
                 "verbose": int, "steps_per_update": int}
CHECKPOINT_KEYS = {"dir": str, "save_freq": (str, int), "keep": int}


@dataclass
class RunConfig:
    """A validated run config; `path` is kept for messages and relative data paths."""
    path: str
    data: dict
    layers: list
    compile: dict
    training: dict = field(default_factory=dict)
    checkpoint: dict = field(default_factory=dict)

    @property
    def base_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))


def _fail(path, msg):
    return ConfigError(f"{path}: {msg}")


def _typed(path, section, table, spec):
    out = {}
    for key, value in table.items():
        if key not in spec:
            raise _fail(path, f"unknown key [{section}].{key}; allowed keys are {', '.join(sorted(spec))}.")
        want = spec[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            names = "/".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise _fail(path, f"[{section}].{key} must be {names}, got {value!r}.")
        out[key] = value
    return out


def load_config(path: str) -> RunConfig:
    """Read and validate a TOML run config."""
    if not os.path.isfile(path):
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise _fail(path, f"not valid TOML ({e}).") from None
    unknown = set(raw) - SECTIONS
    if unknown:
        raise _fail(path, f"unknown section(s) {sorted(unknown)}; allowed sections are {sorted(SECTIONS)}.")
    for section in ("data", "model", "compile"):
        if not isinstance(raw.get(section), dict):
            raise _fail(path, f"missing [{section}] section.")
    layers = raw["model"].get("layers")
    if not isinstance(layers, list) or not layers:
        raise _fail(path, "[model].layers must be a non-empty list of tables like {type = \"Dense\", units = 10}.")
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or "type" not in spec:
            raise _fail(path, f"[model].layers[{i}] needs a 'type' key (a layer class name such as \"Dense\").")
    extra = set(raw["model"]) - {"layers", "name"}
    if extra:
        raise _fail(path, f"unknown key(s) in [model]: {sorted(extra)}; allowed are layers, name.")
    comp = raw["compile"]
    bad = set(comp) - {"optimizer", "loss", "metrics", "loss_weights"}
    if bad:
        raise _fail(path, f"unknown key(s) in [compile]: {sorted(bad)}; allowed are optimizer, loss, metrics, loss_weights.")
    if "loss" not in comp:
        raise _fail(path, "[compile].loss is required, e.g. loss = \"sparse_categorical_crossentropy\".")
    training = _typed(path, "training", raw.get("training", {}), TRAINING_KEYS)
    checkpoint = _typed(path, "checkpoint", raw.get("checkpoint", {}), CHECKPOINT_KEYS)
    return RunConfig(path, dict(raw["data"]), layers, dict(comp), training, checkpoint)


def build_model(cfg: RunConfig, input_shape):
    """A compiled Sequential model from the config, for samples of `input_shape`."""
    from .. import layers as layers_mod  # noqa: F401  (registers every layer class)
    from ..errors import DistdlError
    from ..layers.base import deserialize
    from ..models import Sequential
    model_layers = []
    for i, spec in enumerate(cfg.layers):
        spec = dict(spec)
        kind = spec.pop("type")
        try:
            model_layers.append(deserialize({"class_name": kind, "config": spec}))
        except DistdlError as e:
            raise _fail(cfg.path, f"[model].layers[{i}] ({kind}): {e}") from None
        except TypeError as e:
            raise _fail(cfg.path, f"[model].layers[{i}] ({kind}): {e}.") from None
    model = Sequential(model_layers)
    model.build(tuple(input_shape))
    comp = cfg.compile
    try:
        opt = comp.get("optimizer", "rmsprop")
        if isinstance(opt, dict):
            opt = dict(opt)
            name = opt.pop("name", None)
            if name is None:
                raise ConfigError("[compile].optimizer table needs a 'name'.")
            from .. import optimizers
            opt = optimizers.get(name).__class__(**opt)
        model.compile(optimizer=opt, loss=comp["loss"], metrics=comp.get("metrics"),
                      loss_weights=comp.get("loss_weights"))
    except DistdlError as e:
        raise _fail(cfg.path, f"[compile]: {e}") from None
    except TypeError as e:
        raise _fail(cfg.path, f"[compile].optimizer: {e}.") from None
    return model


def load_data(cfg: RunConfig):
    """(x_train, y_train), (x_test, y_test) as the [data] section describes."""
    from .. import datasets
    from ..errors import DistdlError
    try:
        return datasets.load(cfg.data, base_dir=cfg.base_dir)
    except DistdlError as e:
        raise type(e)(f"{cfg.path}: [data]: {e}") from None
