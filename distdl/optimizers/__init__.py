"""Optimizers with Keras 3 names, defaults and formulas: SGD, Adam, AdamW, Nadam, Adamax, Lion,
RMSprop, Adagrad, Adadelta, Ftrl, Lamb, Adafactor.

Each optimizer has ONE update rule, `_step(w, g, slots, s, lr, t)`, over arrays of
one shape, used by two entry points:
- the arena path (the training loop's update strategy, distdl.comm.strategies):
  `build(size, dtype, segments)` then `update(params, grads[, slots])`, a few vectorised
  calls over the arrays it is handed: the whole flat arena, or one slice of it and of the
  slots (the sharded step);
- Keras's custom-loop path: `apply_gradients(zip(grads, variables))`, per variable.
Both clip gradients (clipnorm per variable, global_clipnorm over all, clipvalue
elementwise), then apply decoupled weight decay `w -= w * wd * lr`, then step, so
they agree bitwise on the same data. `g` and `s` are scratch buffers the rule may
overwrite (in the arena path `g` is the gradient buffer the loop refills).

This package re-exports the optimizers and holds the name registry (`get`, `serialize`,
`deserialize`; names are the class names, any case): `base` (Optimizer), `sgd`, `adam` (Adam,
AdamW), `adam_variants` (Nadam, Adamax, Lion), `adaptive` (RMSprop, Adagrad, Adadelta), `ftrl`;
these are elementwise, so the sharded step may cut them anywhere. `layerwise` (Lamb, Adafactor)
needs whole variables: those never shard (see its docstring).
"""
from __future__ import annotations

import sys
from typing import Any

from ..errors import ConfigError, unknown_name
from . import schedules
from .adam import Adam, AdamW
from .adam_variants import Adamax, Lion, Nadam
from .adaptive import Adadelta, Adagrad, RMSprop
from .base import Optimizer
from .ftrl import Ftrl
from .layerwise import Adafactor, Lamb
from .schedules import LearningRateSchedule
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Nadam", "Adamax", "Lion", "RMSprop", "Adagrad", "Adadelta",
           "Ftrl", "Lamb", "Adafactor", "LearningRateSchedule", "schedules", "get", "serialize", "deserialize"]

# `from distdl.optimizers.schedules import ExponentialDecay` works as in Keras.
sys.modules[__name__ + ".schedules"] = schedules

_ALL = {cls.__name__.lower(): cls for cls in (SGD, Adam, AdamW, Nadam, Adamax, Lion, RMSprop, Adagrad, Adadelta,
                                              Ftrl, Lamb, Adafactor)}


def serialize(optimizer: Optimizer) -> dict:
    """{'class_name': ..., 'config': ...} (JSON-able, schedules included).

    Args:
        optimizer: the optimizer.
    """
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict) -> Optimizer:
    """A new optimizer from `serialize`'s output (class names are case-insensitive).

    Args:
        config: a dict from `serialize`.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ConfigError(f"An optimizer config must be a dict with 'class_name', got {config!r}.")
    name = str(config["class_name"])
    if name.lower() not in _ALL:
        raise unknown_name("optimizer", name, _ALL)
    try:
        return _ALL[name.lower()].from_config(dict(config.get("config") or {}))
    except TypeError as exc:
        raise ConfigError(f"Bad config for optimizer {name!r}: {exc}.") from None


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name ('adam', 'SGD', ...; Keras defaults), a config dict or an instance.

    Args:
        identifier: any of those.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": {}})
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ConfigError(f"Could not interpret optimizer identifier {identifier!r}.")
