"""Whole-tensor utilities of keras.ops: `array`, `copy`, `dtype`, `view`, `nonzero`,
`unravel_index` and `vectorize`.

`array` and `copy` are differentiated (the identity, cast as `cast` does); `view`
reinterprets bytes and `nonzero`/`unravel_index` give indices, so none of those is; `dtype` is
a string.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result, value_of
from ..errors import ShapeError
from .core import cast

__all__ = ["array", "copy", "dtype", "view", "nonzero", "unravel_index", "vectorize"]


def array(x, dtype=None) -> Tensor:
    """`x` (list, array, number or tensor) as a tensor, cast to `dtype` if given; lists of
    Python floats become floatx, of Python ints int32. Differentiated like cast."""
    t = as_tensor(x)
    if dtype is None and isinstance(x, (list, tuple)) and np.result_type(t.value) == np.int64:
        dtype = "int32"   # Python ints become int32, as in Keras
    return result(t.value, (t,), lambda g: (g,)) if dtype is None else cast(t, dtype)


def copy(x) -> Tensor:
    """A copy of x (its own array); the gradient passes unchanged."""
    t = as_tensor(x)
    return result(np.array(t.value, copy=True), (t,), lambda g: (g,))


def dtype(x) -> str:
    """The dtype of x as Keras's standard name, e.g. "float32", "int32", "bool"."""
    kind = getattr(x, "dtype", None)
    return str(np.dtype(kind if kind is not None else np.result_type(value_of(as_tensor(x)))))


def view(x, dtype=None) -> Tensor:
    """x's bytes read as `dtype` (the last axis rescaled by the size ratio); not differentiated."""
    xv = np.asarray(value_of(as_tensor(x)))
    if dtype is None:
        return Tensor(xv.view())
    try:
        return Tensor(xv.view(np.dtype(dtype)))
    except ValueError:
        raise ShapeError(f"ops.view: an input of shape {xv.shape} and dtype {xv.dtype} cannot be viewed as "
                         f"{np.dtype(dtype)} (the last axis's bytes must divide evenly).") from None


def nonzero(x) -> tuple:
    """The indices of the nonzero elements of x: one int32 tensor per axis."""
    return tuple(Tensor(i.astype(np.int32)) for i in np.nonzero(np.asarray(value_of(as_tensor(x)))))


def unravel_index(indices, shape) -> tuple:
    """Flat indices into an array of `shape` as one index tensor per axis (C order), in the
    indices' dtype."""
    idx = np.asarray(value_of(as_tensor(indices)))
    shape = tuple(int(d) for d in (value_of(shape) if not isinstance(shape, (tuple, list)) else shape))
    if idx.size and (idx.min() < 0 or idx.max() >= int(np.prod(shape))):
        raise ShapeError(f"ops.unravel_index: indices must lie in 0..{int(np.prod(shape)) - 1} for shape {shape}, "
                         f"got {idx.min()}..{idx.max()}.")
    return tuple(Tensor(i.astype(idx.dtype)) for i in np.unravel_index(idx, shape))


def vectorize(pyfunc, *, excluded=None, signature=None):
    """`pyfunc` applied element by element (or per core, with a NumPy gufunc `signature`) on
    the values of its tensor arguments, returning a Tensor. It calls Python per element, so it
    is slow, and it is NOT differentiated: nothing it computes is recorded."""
    vec = np.vectorize(pyfunc, excluded=excluded or set(), signature=signature)

    def apply(*args, **kwargs):
        out = vec(*[value_of(a) for a in args], **{k: value_of(v) for k, v in kwargs.items()})
        return tuple(Tensor(o) for o in out) if isinstance(out, tuple) else Tensor(out)
    apply.__name__ = getattr(pyfunc, "__name__", "vectorized")
    apply.__doc__ = pyfunc.__doc__
    return apply
