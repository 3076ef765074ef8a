"""TOML run configs: model, data, compile and training settings, validated.

Every mistake is a ConfigError naming the file, the key and the allowed values, and for a
misspelt key or layer argument the names it was probably meant to be.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import ConfigError, DistdlError, did_you_mean, finite_number

__all__ = ["RunConfig", "load_config", "build_model", "load_data", "SECTIONS", "TRAINING_KEYS",
           "CHECKPOINT_KEYS"]

SECTIONS = {"data", "model", "compile", "training", "checkpoint"}
TRAINING_KEYS = {"epochs": int, "batch_size": int, "seed": int, "validation_split": float, "shuffle": bool,
                 "verbose": int, "steps_per_update": int}
CHECKPOINT_KEYS = {"dir": str, "save_freq": (str, int), "keep": int}
# the allowed values of the numeric keys above: (lowest, highest or None, highest excluded);
# a float must also be finite (TOML writes nan and inf)
RANGES = {"epochs": (0, None, False), "batch_size": (1, None, False), "seed": (0, None, False),
          "validation_split": (0, 1, True), "verbose": (0, 2, False), "steps_per_update": (1, None, False),
          "keep": (1, None, False)}


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
        """The config's folder: relative data and checkpoint paths start here."""
        return os.path.dirname(os.path.abspath(self.path))


@contextlib.contextmanager
def _named(path: str, where: str):
    """Errors raised inside (a DistdlError, or the `TypeError` of a bad argument) become one
    ConfigError naming the config file and `where`, the key at fault."""
    try:
        yield
    except ConfigError as e:
        if str(e).startswith(path):
            raise
        raise _fail(path, f"{where}: {e}") from None
    except DistdlError as e:
        raise _fail(path, f"{where}: {e}") from None
    except TypeError as e:
        raise _fail(path, f"{where}: {e}.") from None


def _fail(path: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {msg}")


def _unknown(path: str, what: str, name: str, allowed: Iterable[str], noun: str = "keys") -> ConfigError:
    """`unknown key [training].epochz; allowed keys are ... Did you mean 'epochs'?`"""
    allowed = sorted(allowed)
    return _fail(path, f"unknown {what}; allowed {noun} are {', '.join(allowed)}.{did_you_mean(name, allowed)}")


def _typed(path, section, table, spec):
    out = {}
    for key, value in table.items():
        if key not in spec:
            raise _unknown(path, f"key [{section}].{key}", key, spec)
        want = spec[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            names = "/".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise _fail(path, f"[{section}].{key} must be {names}, got {value!r}.")
        if key in RANGES:
            low, high, open_high = RANGES[key]
            try:
                finite_number(f"[{section}].{key}", value, low, high, open_high)
            except ConfigError as e:
                if want is int:  # the type is right: say the range
                    span = f">= {low}" if high is None else f"in {low}..{high}"
                    e = ConfigError(f"[{section}].{key} must be an integer {span}, got {value!r}.")
                raise _fail(path, str(e)) from None
        if key == "save_freq" and value != "epoch" and not (isinstance(value, int) and value > 0):
            raise _fail(path, f"[{section}].save_freq must be \"epoch\" or a positive number of steps, "
                              f"got {value!r}.")
        out[key] = value
    return out


def _loss_weights(path: str, value) -> None:
    """[compile].loss_weights: a number, or a list or table of numbers (one per output)."""
    items = (value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list)
             else [(None, value)])
    for key, weight in items:
        try:
            finite_number("[compile].loss_weights" + ("" if key is None else f"[{key!r}]"), weight)
        except ConfigError as e:
            raise _fail(path, str(e)) from None


def load_config(path: str) -> RunConfig:
    """Read and validate a TOML run config.

    Args:
        path: the TOML file, or the bare name of a shipped config (`digits_mlp`; see
            `distdl configs`).
    """
    from .. import configs
    found = configs.resolve(path)
    if found is None:
        shipped = [n for n in configs.names() if not n.endswith(".sbatch")]
        raise ConfigError(f"Config file {path} does not exist, and no shipped config has that name "
                          f"(shipped: {', '.join(shipped)}; `distdl configs` lists them)."
                          f"{did_you_mean(os.path.basename(path).removesuffix('.toml'), shipped)}")
    path = found
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise _fail(path, f"not valid TOML ({e}).") from None
    except UnicodeDecodeError as e:
        raise _fail(path, f"not a TOML text file: byte 0x{e.object[e.start]:02x} at offset {e.start} "
                          f"is not UTF-8 text.") from None
    except OSError as e:
        raise _fail(path, f"cannot be read ({e.strerror or e}).") from None
    for section in sorted(set(raw) - SECTIONS):
        raise _unknown(path, f"section [{section}]", section, SECTIONS, "sections")
    for section in ("data", "model", "compile"):
        if not isinstance(raw.get(section), dict):
            raise _fail(path, f"missing [{section}] section.")
    layers = raw["model"].get("layers")
    if not isinstance(layers, list) or not layers:
        raise _fail(path, "[model].layers must be a non-empty list of tables like {type = \"Dense\", units = 10}.")
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or "type" not in spec:
            raise _fail(path, f"[model].layers[{i}] needs a 'type' key (a layer class name such as \"Dense\").")
    for key in sorted(set(raw["model"]) - {"layers", "name"}):
        raise _unknown(path, f"key [model].{key}", key, {"layers", "name"})
    if not isinstance(raw["model"].get("name", ""), str):
        raise _fail(path, f"[model].name must be a string, got {raw['model']['name']!r}.")
    comp = raw["compile"]
    for key in sorted(set(comp) - {"optimizer", "loss", "metrics", "loss_weights"}):
        raise _unknown(path, f"key [compile].{key}", key, {"optimizer", "loss", "metrics", "loss_weights"})
    if "loss" not in comp:
        raise _fail(path, "[compile].loss is required, e.g. loss = \"sparse_categorical_crossentropy\".")
    if "loss_weights" in comp:
        _loss_weights(path, comp["loss_weights"])
    for section in ("training", "checkpoint"):
        if not isinstance(raw.get(section, {}), dict):
            raise _fail(path, f"[{section}] must be a table of keys, got {raw[section]!r}.")
    training = _typed(path, "training", raw.get("training", {}), TRAINING_KEYS)
    checkpoint = _typed(path, "checkpoint", raw.get("checkpoint", {}), CHECKPOINT_KEYS)
    return RunConfig(path, dict(raw["data"]), layers, dict(comp), training, checkpoint)


def accepted_arguments(cls: type, root: type) -> set[str] | None:
    """The keyword arguments `cls(...)` takes: the named parameters of each `__init__` from `cls`
    up to `root` (whose `**kwargs` refuse unknown names, as `Layer`'s and `Optimizer`'s do);
    None when an `__init__` on the way hands `**kwargs` to something outside that chain.

    Args:
        cls: a layer or optimizer class.
        root: its base class that checks the leftover keyword arguments.
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            params = inspect.signature(init).parameters.values()
            names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
            if klass is root:
                return names - {"self"}
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                return names - {"self"}
    return None


def _check_arguments(path: str, where: str, cls: type, root: type, given: Iterable[str],
                     also: Iterable[str] = ()) -> None:
    """Refuse an argument `cls` does not take, naming the closest ones it does."""
    accepted = accepted_arguments(cls, root)
    if accepted is None:
        return
    accepted |= set(also)
    for key in sorted(set(given) - accepted):
        raise _unknown(path, f"argument {where}.{key} for {cls.__name__}", key, accepted, "arguments")


def _component(key: str):
    """The module that resolves a layer argument named `key` (`kernel_initializer` ->
    initializers), or None when it takes no initializer, regularizer or constraint."""
    from .. import constraints, initializers, regularizers
    modules = {"initializer": initializers, "regularizer": regularizers, "constraint": constraints}
    return modules.get(key.rsplit("_", 1)[-1])


def _check_names(path: str, comp: dict) -> None:
    """Each loss and metric name in [compile] is known, else a ConfigError naming its key
    (`[compile].metrics[1]: Unknown metric 'acuracy'; ... Did you mean 'accuracy'?`)."""
    from .. import losses, metrics
    for key, lookup in (("loss", losses.get), ("metrics", metrics.get)):
        value = comp.get(key)
        items = (value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list)
                 else [(None, value)])
        for i, name in items:
            if name is not None and not isinstance(name, (list, dict)):  # nested: one per output
                with _named(path, f"[compile].{key}" + ("" if i is None else f"[{i!r}]")):
                    lookup(name)


def build_model(cfg: RunConfig, input_shape: Iterable[int]) -> Any:
    """A compiled Sequential model from the config.

    Args:
        cfg: the validated config (`load_config`).
        input_shape: the shape of one sample, without the batch axis.
    """
    from .. import layers as layers_mod  # noqa: F401  (registers every layer class)
    from .. import optimizers
    from ..layers.base import Layer, deserialize, layer_class
    from ..models import Sequential
    model_layers = []
    for i, spec in enumerate(cfg.layers):
        spec = dict(spec)
        kind = spec.pop("type")
        with _named(cfg.path, f"[model].layers[{i}] ({kind})"):
            _check_arguments(cfg.path, f"[model].layers[{i}]", layer_class(kind), Layer, spec)
        for key, value in sorted(spec.items()):  # names a layer resolves only when it is built
            module = _component(key)
            if module is not None and value is not None:
                with _named(cfg.path, f"[model].layers[{i}].{key}"):
                    module.get(value)
        with _named(cfg.path, f"[model].layers[{i}] ({kind})"):
            model_layers.append(deserialize({"class_name": kind, "config": spec}))
    model = Sequential(model_layers)
    model.build(tuple(input_shape))
    comp = cfg.compile
    _check_names(cfg.path, comp)
    with _named(cfg.path, "[compile].optimizer"):
        opt = comp.get("optimizer", "rmsprop")
        if not isinstance(opt, dict):
            opt = optimizers.get(opt)
        if isinstance(opt, dict):
            opt = dict(opt)
            name = opt.pop("name", None)
            if name is None:
                raise ConfigError("the table needs a 'name' key, e.g. name = \"adam\".")
            from ..optimizers import base as optimizer_base
            cls = optimizers.get(name).__class__
            # the base also takes (and ignores) Keras's arguments that change nothing here
            _check_arguments(cfg.path, "[compile].optimizer", cls, optimizer_base.Optimizer, opt,
                             getattr(optimizer_base, "_NOOP_DEFAULTS", ()))
            opt = cls(**opt)
    with _named(cfg.path, "[compile]"):
        model.compile(optimizer=opt, loss=comp["loss"], metrics=comp.get("metrics"),
                      loss_weights=comp.get("loss_weights"))
    return model


def load_data(cfg: RunConfig) -> tuple:
    """(x_train, y_train), (x_test, y_test) as the [data] section describes.

    Args:
        cfg: the validated config; relative paths start at its folder.
    """
    from .. import datasets
    from ..errors import DistdlError
    try:
        return datasets.load(cfg.data, base_dir=cfg.base_dir)
    except DistdlError as e:
        raise type(e)(f"{cfg.path}: [data]: {e}") from None
