"""Weight constraints by Keras name: `MaxNorm`, `NonNeg`, `UnitNorm`, `MinMaxNorm`.

A constraint maps a weight to its projected value, `c(w) -> w'`; the training
loop applies it after each optimizer step with `var.value[...] = c(var.value)`.
Norms are taken along `axis` (Keras default 0: per output unit of a Dense kernel)
with Keras's epsilon 1e-7 in the denominator.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import registry

__all__ = ["EPSILON", "Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm", "non_neg",
           "unit_norm", "min_max_norm", "serialize", "deserialize", "get"]

EPSILON = 1e-7


def _norms(w: np.ndarray, axis) -> np.ndarray:
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base: the identity projection."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able, as Keras saves them."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Constraint":
        """A new constraint from `get_config`'s output.

        Args:
            config: the constructor arguments.
        """
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class MaxNorm(Constraint):
    """Rescale slices whose norm along `axis` exceeds `max_value` down to it.

    Args:
        max_value: the largest norm a slice may keep.
        axis: axis or axes the norm is taken over (0: per output unit of a Dense kernel).
    """

    def __init__(self, max_value: float = 2.0, axis: int | list[int] = 0) -> None:
        self.max_value, self.axis = max_value, axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Zero out negative entries."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Scale slices along `axis` to unit norm.

    Args:
        axis: axis or axes the norm is taken over.
    """

    def __init__(self, axis: int | list[int] = 0) -> None:
        self.axis = axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        return (w / (EPSILON + _norms(w, self.axis))).astype(w.dtype, copy=False)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move slice norms into [min_value, max_value]; `rate` < 1 moves only part of the way.

    Args:
        min_value: the smallest norm a slice may keep.
        max_value: the largest norm a slice may keep.
        rate: fraction of the way to move each norm into range (1: all the way).
        axis: axis or axes the norm is taken over.
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: int | list[int] = 0) -> None:
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w)
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value,
                "rate": self.rate, "axis": self.axis}


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm

_ALL: dict[str, type] = {"Constraint": Constraint, "MaxNorm": MaxNorm, "NonNeg": NonNeg,
                         "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm, "max_norm": MaxNorm,
                         "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}


def serialize(constraint) -> dict | None:
    """{'class_name': ..., 'config': ...} as Keras writes it (None stays None).

    Args:
        constraint: a Constraint, or None.
    """
    return registry.serialize(constraint)


def deserialize(config: dict) -> Constraint:
    """Inverse of `serialize`; accepts class names and snake_case aliases.

    Args:
        config: a dict from `serialize`, or a class name or alias.
    """
    return registry.deserialize("constraint", _ALL, config)


def get(identifier: Any) -> Constraint | None:
    """A constraint from None, a name, a config dict, an instance, a class or a callable.

    Args:
        identifier: any of those; None gives None.
    """
    return registry.get("constraint", _ALL, Constraint, identifier)
