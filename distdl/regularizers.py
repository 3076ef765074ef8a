"""Weight penalties by Keras name: `L1`, `L2`, `L1L2` (and `l1`, `l2`, `l1_l2`).

A regularizer gives the penalty `l1 * sum|w| + l2 * sum w^2` added to the loss and
its gradient `l1 * sign(w) + 2 * l2 * w`, which the training loop adds into the
weight's gradient buffer. Weight constraints live in `distdl.constraints`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from . import registry
from .errors import ConfigError

__all__ = ["Regularizer", "L1L2", "L1", "L2", "l1", "l2", "l1_l2", "serialize", "deserialize", "get"]


def _check_factor(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Regularization factor {name} must be a number, got {value!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"Regularization factor {name} must be finite and >= 0, got {value!r}.")
    return value


class Regularizer:
    """Base: `__call__(w) -> float` penalty, `gradient(w, out=None)` its derivative."""

    def __call__(self, w: np.ndarray) -> float:
        return 0.0

    def gradient(self, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The penalty's derivative with respect to `w` (zero for the base class).

        Args:
            w: the weight.
            out: array of w's shape to write the result into, or None for a new one.
        """
        if out is None:
            return np.zeros_like(w)
        out[...] = 0
        return out

    def add_gradient(self, w: np.ndarray, grad: np.ndarray, scratch: np.ndarray | None = None) -> None:
        """Add the penalty's gradient into `grad` in place; `scratch` (shape of w) avoids a temporary.

        Args:
            w: the weight.
            grad: the weight's gradient buffer, updated in place.
            scratch: array of w's shape to compute in, or None.
        """
        grad += self.gradient(w, out=scratch)

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able, as Keras saves them."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Regularizer":
        """A new regularizer from `get_config`'s output.

        Args:
            config: the constructor arguments.
        """
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class L1L2(Regularizer):
    """Penalty `l1 * sum|w| + l2 * sum w^2` (Keras defaults l1=0, l2=0).

    Args:
        l1: L1 factor (finite, >= 0).
        l2: L2 factor (finite, >= 0).
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _check_factor("l1", l1)
        self.l2 = _check_factor("l2", l2)

    def __call__(self, w: np.ndarray) -> float:
        w = np.asarray(w)
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.sum(np.abs(w)))
        if self.l2:
            total += self.l2 * float(np.sum(np.square(w)))
        return total

    def gradient(self, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """`l1 * sign(w) + 2 * l2 * w`, written into `out` when given (same shape as w).

        Args:
            w: the weight.
            out: array of w's shape to write the result into, or None for a new one.
        """
        w = np.asarray(w)
        if out is None:
            out = np.empty_like(w)
        if self.l1 and self.l2:  # (l1 / (2 l2) sign(w) + w) 2 l2, with no temporary
            np.sign(w, out=out)
            out *= self.l1 / (2.0 * self.l2)
            out += w
            out *= 2.0 * self.l2
        elif self.l1:
            np.sign(w, out=out)
            out *= self.l1
        else:
            np.multiply(w, 2.0 * self.l2, out=out)
        return out

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """Penalty `l1 * sum|w|` (Keras default l1=0.01).

    Args:
        l1: L1 factor (finite, >= 0).
    """

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1, l2=0.0)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """Penalty `l2 * sum w^2` (Keras default l2=0.01).

    Args:
        l2: L2 factor (finite, >= 0).
    """

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l1=0.0, l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


# Keras 3 aliases: `regularizers.l2(0.001)` builds an L2; `l1_l2` is `L1L2` (defaults 0.0).
l1, l2, l1_l2 = L1, L2, L1L2


_ALL: dict[str, Callable] = {"Regularizer": Regularizer, "L1": L1, "L2": L2, "L1L2": L1L2,
                             "l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def serialize(regularizer) -> dict | None:
    """{'class_name': ..., 'config': ...} as Keras writes it (None stays None).

    Args:
        regularizer: a Regularizer, or None.
    """
    return registry.serialize(regularizer)


def deserialize(config: dict) -> Regularizer:
    """Inverse of `serialize`; accepts class names and snake_case aliases.

    Args:
        config: a dict from `serialize`, or a class name or alias.
    """
    return registry.deserialize("regularizer", _ALL, config)


def get(identifier: Any) -> Regularizer | None:
    """A regularizer from None, a name, a config dict, an instance, a class or a callable.

    Args:
        identifier: any of those; None gives None.
    """
    return registry.get("regularizer", _ALL, Regularizer, identifier)
