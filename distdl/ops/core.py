"""Conversion, casting, shape and gradient-stopping ops, comparisons (not differentiated), and
Keras's `slice` / `slice_update` (a box of a tensor read or replaced at start indices)."""
from __future__ import annotations

import builtins

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, is_tracked, result, value_of
from ..errors import ShapeError

__all__ = ["convert_to_tensor", "convert_to_numpy", "cast", "shape", "stop_gradient", "is_tensor",
           "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
           "logical_and", "logical_or", "logical_not", "slice", "slice_update"]


def convert_to_tensor(x, dtype=None, sparse=None) -> Tensor:
    """`x` (array, list, number, tensor or weight) as a Tensor, cast to `dtype` if given."""
    t = as_tensor(x)
    return t if dtype is None else cast(t, dtype)


def convert_to_numpy(x) -> np.ndarray:
    """The value of `x` as an ndarray (not differentiated)."""
    return np.array(value_of(x))


def is_tensor(x) -> bool:
    """Whether `x` is a distdl Tensor."""
    return isinstance(x, Tensor)


def cast(x, dtype) -> Tensor:
    """`x` converted to `dtype`; the gradient flows between float types and stops at integers."""
    x = as_tensor(x)
    src = np.result_type(x.value)
    y = np.asarray(x.value).astype(dtype)
    if not np.issubdtype(y.dtype, np.floating):
        return Tensor(y)
    return result(y, (x,), lambda g: (g.astype(src) if np.issubdtype(src, np.floating) else None,))


def shape(x) -> tuple:
    """The static shape of `x`, a tuple of ints (keras.ops.shape)."""
    return tuple(np.shape(value_of(x)))


def stop_gradient(x) -> Tensor:
    """`x` as a constant: no gradient flows back through it."""
    return Tensor(value_of(as_tensor(x)))


def _compare(fn):
    def op(x1, x2):
        return Tensor(fn(value_of(as_tensor(x1)), value_of(as_tensor(x2))))
    op.__name__ = fn.__name__
    op.__doc__ = f"Elementwise {fn.__name__} (a bool tensor, not differentiated)."
    return op


equal, not_equal = _compare(np.equal), _compare(np.not_equal)
less, less_equal = _compare(np.less), _compare(np.less_equal)
greater, greater_equal = _compare(np.greater), _compare(np.greater_equal)
logical_and, logical_or = _compare(np.logical_and), _compare(np.logical_or)


def logical_not(x) -> Tensor:
    """Elementwise not (a bool tensor, not differentiated)."""
    return Tensor(np.logical_not(value_of(as_tensor(x))))


def _box(op: str, shape: tuple, start_indices, size) -> tuple:
    """The slices of the box of `size` at `start_indices` in an array of `shape`, checked."""
    start = [int(i) for i in np.ravel(value_of(start_indices))]
    size = [int(d) for d in np.ravel(value_of(size))]
    if len(start) != len(shape) or len(size) != len(shape) or any(
            b < 0 or d < 0 or b + d > n for b, d, n in zip(start, size, shape)):
        raise ShapeError(f"ops.{op}: a box of shape {tuple(size)} at start indices {tuple(start)} does not "
                         f"fit inside an input of shape {shape}.")
    return tuple(builtins.slice(b, b + d) for b, d in zip(start, size))


def slice(inputs, start_indices, shape) -> Tensor:  # noqa: A001 (Keras's name)
    """The box inputs[start:start + shape] (one start and one length per axis)."""
    x = as_tensor(inputs)
    xv = np.asarray(x.value)
    box = _box("slice", xv.shape, start_indices, shape)

    def vjp(g):
        out = np.zeros(xv.shape, dtype=g.dtype)
        out[box] = g
        return (out,)
    return result(xv[box], (x,), vjp)


def slice_update(inputs, start_indices, updates) -> Tensor:
    """A copy of `inputs` with the box at `start_indices` replaced by `updates` (same rank);
    the gradient of `inputs` is zero inside the box, that of `updates` is the box's."""
    x, u = as_tensor(inputs), as_tensor(updates)
    xv, uv = np.asarray(x.value), np.asarray(u.value)
    if uv.ndim != xv.ndim:
        raise ShapeError(f"ops.slice_update: updates of shape {uv.shape} must have the rank of the "
                         f"inputs, shape {xv.shape}.")
    box = _box("slice_update", xv.shape, start_indices, uv.shape)
    y = xv.copy()
    y[box] = uv
    need_x = is_tracked(x)

    def vjp(g):
        gx = None
        if need_x:
            gx = g.copy()
            gx[box] = 0
        return gx, g[box]
    return result(y, (x, u), vjp)
