"""The activations under keras.ops (and keras.ops.nn), each with its derivative."""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result

__all__ = ["relu", "sigmoid"]


def relu(x) -> Tensor:
    """max(x, 0); gradient 0 at 0 (as Keras)."""
    x = as_tensor(x)
    y = np.maximum(x.value, 0)
    return result(y, (x,), lambda g: (g * (y > 0),))


def sigmoid(x) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    e = np.exp(-np.abs(xv))
    y = np.where(xv >= 0, 1 / (1 + e), e / (1 + e)).astype(xv.dtype, copy=False)
    return result(y, (x,), lambda g: (g * y * (1 - y),))
