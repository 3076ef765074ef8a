"""Conversion, casting, shape and gradient-stopping ops, and comparisons (not differentiated)."""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result, value_of

__all__ = ["convert_to_tensor", "convert_to_numpy", "cast", "shape", "stop_gradient", "is_tensor",
           "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
           "logical_and", "logical_or", "logical_not"]


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
