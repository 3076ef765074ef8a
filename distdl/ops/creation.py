"""Tensors made from a shape or a range (keras.ops.zeros, arange, eye, ...): constants, never
recorded, so no gradient flows through them (the `*_like` ops read only x's shape and dtype).
Default dtypes follow Keras: floatx for filled arrays, int32 for an all-integer arange."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autodiff.tensor import Tensor, value_of

__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace",
           "eye", "identity"]


def _shape(shape) -> tuple:
    return (int(shape),) if np.isscalar(shape) else tuple(int(d) for d in shape)


def zeros(shape, dtype=None) -> Tensor:
    """A tensor of `shape` filled with 0 (dtype: floatx)."""
    return Tensor(np.zeros(_shape(shape), dtype=dtype or backend.floatx()))


def ones(shape, dtype=None) -> Tensor:
    """A tensor of `shape` filled with 1 (dtype: floatx)."""
    return Tensor(np.ones(_shape(shape), dtype=dtype or backend.floatx()))


def full(shape, fill_value, dtype=None) -> Tensor:
    """A tensor of `shape` filled with `fill_value` (dtype: floatx)."""
    return Tensor(np.full(_shape(shape), value_of(fill_value), dtype=dtype or backend.floatx()))


def zeros_like(x, dtype=None) -> Tensor:
    """Zeros of x's shape (and x's dtype unless `dtype`)."""
    return Tensor(np.zeros_like(np.asarray(value_of(x)), dtype=dtype))


def ones_like(x, dtype=None) -> Tensor:
    """Ones of x's shape (and x's dtype unless `dtype`)."""
    return Tensor(np.ones_like(np.asarray(value_of(x)), dtype=dtype))


def full_like(x, fill_value, dtype=None) -> Tensor:
    """`fill_value` in x's shape (and x's dtype unless `dtype`)."""
    return Tensor(np.full_like(np.asarray(value_of(x)), value_of(fill_value), dtype=dtype))


def arange(start, stop=None, step=None, dtype=None) -> Tensor:
    """start, start + step, ... below stop (`arange(n)`: 0..n-1). dtype: int32 when every bound
    is an integer, else floatx (Keras's rule, not NumPy's int64/float64)."""
    bounds = [value_of(v) for v in (start, stop, step) if v is not None]
    if dtype is None:
        dtype = "int32" if all(np.issubdtype(np.result_type(b), np.integer) for b in bounds) else backend.floatx()
    if stop is None:
        start, stop = 0, start
    return Tensor(np.arange(value_of(start), value_of(stop), 1 if step is None else value_of(step), dtype=dtype))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """`num` evenly spaced values from start to stop (NumPy's linspace; dtype floatx);
    with `retstep`, the pair (values, step)."""
    out = np.linspace(value_of(start), value_of(stop), num=int(num), endpoint=endpoint, retstep=retstep,
                      dtype=dtype or backend.floatx(), axis=axis)
    return (Tensor(out[0]), out[1]) if retstep else Tensor(out)


def eye(N, M=None, k=0, dtype=None) -> Tensor:  # noqa: N803 (Keras's names)
    """An N x M matrix with ones on the k-th diagonal (dtype: floatx)."""
    return Tensor(np.eye(int(N), None if M is None else int(M), int(k), dtype=dtype or backend.floatx()))


def identity(n, dtype=None) -> Tensor:
    """The n x n identity matrix (dtype: floatx)."""
    return Tensor(np.identity(int(n), dtype=dtype or backend.floatx()))
