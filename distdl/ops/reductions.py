"""Reductions of keras.ops (`axis` None, an int or a tuple, negative allowed; `keepdims`)."""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result

__all__ = ["sum", "mean"]


def _axes(axis, ndim: int) -> tuple:
    """`axis` as a tuple of non-negative axes (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(int(a) % ndim if ndim else 0 for a in axes)


def _expand(g, shape: tuple, axes: tuple, keepdims: bool):
    """A reduction's output gradient broadcast back over the reduced axes of `shape`."""
    if not keepdims:
        g = np.expand_dims(g, axes) if axes else g
    return np.broadcast_to(g, shape)


def sum(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001 (Keras's name)
    """Sum over `axis`."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    axes = _axes(axis, xv.ndim)
    y = np.sum(xv, axis=axes, keepdims=keepdims)
    return result(y, (x,), lambda g: (_expand(g, xv.shape, axes, keepdims),))


def mean(x, axis=None, keepdims=False) -> Tensor:
    """Arithmetic mean over `axis`."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    axes = _axes(axis, xv.ndim)
    n = int(np.prod([xv.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    y = np.mean(xv, axis=axes, keepdims=keepdims)
    return result(y, (x,), lambda g: (_expand(g / n, xv.shape, axes, keepdims),))
