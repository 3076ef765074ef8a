"""Elementwise math of keras.ops, each with its derivative."""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result

__all__ = ["exp", "log", "sqrt", "square", "tanh"]


def exp(x) -> Tensor:
    """e ** x."""
    x = as_tensor(x)
    y = np.exp(x.value)
    return result(y, (x,), lambda g: (g * y,))


def log(x) -> Tensor:
    """Natural logarithm."""
    x = as_tensor(x)
    xv = x.value
    return result(np.log(xv), (x,), lambda g: (g / xv,))


def sqrt(x) -> Tensor:
    """Square root."""
    x = as_tensor(x)
    y = np.sqrt(x.value)
    return result(y, (x,), lambda g: (g * 0.5 / y,))


def square(x) -> Tensor:
    """x * x."""
    x = as_tensor(x)
    xv = x.value
    return result(np.square(xv), (x,), lambda g: (g * 2 * xv,))


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    x = as_tensor(x)
    y = np.tanh(x.value)
    return result(y, (x,), lambda g: (g * (1 - y * y),))
