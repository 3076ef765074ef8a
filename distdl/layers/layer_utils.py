"""Helpers for layers: initializers, regularizers and constraints as JSON-able config values,
gradients summed over chunks of a batch, the sizes of variable (None) axes, and Keras's type
rules for constructor arguments (a positive int `units`, a finite `rate` in [0, 1), a known
argument name), each refusal one sentence naming the layer and the argument."""
from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError, did_you_mean

__all__ = ["serialize_component", "matmul_sum", "fixed_size", "sized", "positive_int", "optional_seed",
           "unit_rate", "constructor_arguments", "unknown_arguments"]


def serialize_component(module: ModuleType, obj: Any) -> Any:
    """Keras's {class_name, config} for a name, dict or object of `module`; a user callable is kept as is.

    Args:
        module: the component module (distdl.initializers, regularizers or constraints).
        obj: the component, or None.
    """
    if obj is None:
        return None
    resolved = module.get(obj) if isinstance(obj, (str, dict)) else obj
    if hasattr(resolved, "get_config"):
        return module.serialize(resolved)
    return obj


def matmul_sum(a, b, total: np.ndarray, part: np.ndarray | None, first: bool) -> None:
    """total = a @ b for a batch's first chunk, total += a @ b for the others (`part`, shaped
    like total, takes the product): a weight gradient summed chunk by chunk.

    Args:
        a: the left factor.
        b: the right factor.
        total: the running sum, written in place.
        part: scratch shaped like total for the later chunks' products (unused when first).
        first: whether this is the batch's first chunk.
    """
    np.matmul(a, b, out=total if first else part)
    if not first:
        total += part


def fixed_size(layer, input_shape, axis: int, what: str) -> int:
    """`input_shape[axis]` as an int, for a weight of `layer` sized by it. A None (variable) axis
    cannot size a weight, so it is refused with one sentence naming the layer and the shape, as
    Keras refuses e.g. Dense on inputs whose last axis is None.

    Args:
        layer: the layer being built.
        input_shape: its input shape, batch axis excluded.
        axis: the axis that sizes the weight.
        what: the axis's name in the message, e.g. "last axis".
    """
    size = tuple(input_shape)[axis]
    if size is None:
        shown = ", ".join(str(d) for d in (None,) + tuple(input_shape))
        raise ShapeError(f"{type(layer).__name__} layer {layer.name!r} cannot be built on input shape "
                         f"({shown}): its weights are sized by the {what}, which must be fixed, not None.")
    return int(size)


def sized(length, size):
    """`size(length)` for a known axis length; a None (variable) axis stays None.

    Args:
        length: an axis length, or None.
        size: the function of the length (e.g. the output length of a window).
    """
    return None if length is None else size(length)


def _who(layer) -> str:
    """`Dense layer 'dense_1'` for messages (the class alone before the layer has a name)."""
    name = getattr(layer, "name", None)
    return f"{type(layer).__name__} layer {name!r}" if name else type(layer).__name__


def positive_int(layer, arg: str, value) -> int:
    """`value` as an int when it is a positive integer, else a ConfigError naming `layer` and `arg`.

    Keras 3 refuses what is not an `int` (`Dense(units="16")`, `Dense(units=16.5)`, and also
    `16.0`) and what is not positive; NumPy integers pass here too. A bool is not a count.

    Args:
        layer: the layer whose argument it is (named in the error).
        arg: the argument's name.
        value: the value given.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"{_who(layer)}: {arg} must be a positive integer, got {value!r}.")
    return int(value)


def optional_seed(layer, value):
    """A layer's `seed`: None, or an int >= 0 (else a ConfigError naming `layer`).

    Args:
        layer: the layer whose argument it is (named in the error).
        value: the seed given.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{_who(layer)}: seed must be None or an integer >= 0, got {value!r}.")
    return int(value)


def unit_rate(layer, arg: str, value) -> float:
    """`value` as a float when it is a finite number in [0, 1), else a ConfigError naming `layer`
    and `arg` (a dropout rate: `Dropout(rate="0.5")` and NaN are refused).

    Args:
        layer: the layer whose argument it is (named in the error).
        arg: the argument's name.
        value: the value given.
    """
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))
            or not 0 <= value < 1):
        raise ConfigError(f"{_who(layer)}: {arg} must be a number in [0, 1), got {value!r}.")
    return float(value)


def constructor_arguments(cls: type) -> list[str]:
    """The keyword arguments a layer class's constructors name, from `cls` up to `Layer`."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and klass is not object:
            params = inspect.signature(init).parameters.values()
            names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return sorted(names - {"self"})


def unknown_arguments(cls: type, kwargs: dict) -> ConfigError:
    """`Dense got unknown argument 'activaton'. Did you mean 'activation'?`: the refusal of keyword
    arguments no constructor of `cls` takes, with the closest names it does take.

    Args:
        cls: the layer class.
        kwargs: the unknown keyword arguments.
    """
    names = sorted(kwargs)
    valid = constructor_arguments(cls)
    hint = did_you_mean(names[0], valid) if len(names) == 1 else ""
    plural = "s" if len(names) > 1 else ""
    return ConfigError(f"{cls.__name__} got unknown argument{plural} {', '.join(map(repr, names))}.{hint}")

