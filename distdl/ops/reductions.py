"""Reductions of keras.ops (`axis` None, an int or a tuple, negative allowed; `keepdims`).

`max`/`min` split the gradient evenly among the elements that tie for the extreme (as both
TensorFlow and JAX do); `std` gives 0 gradient where the deviation is 0 (its derivative is
undefined there), and so does `norm` where it is 0. argmax/argmin, all/any and count_nonzero
are not differentiated.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result
from ..errors import ConfigError
from ..special import _as_float

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "prod", "logsumexp", "var", "std",
           "argmax", "argmin", "all", "any", "count_nonzero", "cumsum", "cumprod", "norm",
           "moments"]


def _axes(axis, ndim: int) -> tuple:
    """`axis` as a tuple of non-negative axes (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(int(a) % ndim if ndim else 0 for a in axes)


def _keep(g, axes: tuple, keepdims: bool):
    """A reduction's output (or gradient) with the reduced axes back as size 1."""
    return np.expand_dims(g, axes) if axes and not keepdims else g


def _expand(g, shape: tuple, axes: tuple, keepdims: bool):
    """A reduction's output gradient broadcast back over the reduced axes of `shape`."""
    return np.broadcast_to(_keep(g, axes, keepdims), shape)


def _count(shape: tuple, axes: tuple) -> int:
    """How many elements each output of a reduction over `axes` of `shape` sums."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64)) if axes else 1


def sum(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001 (Keras's name)
    """Sum over `axis`."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    axes = _axes(axis, xv.ndim)
    y = np.sum(xv, axis=axes, keepdims=keepdims)
    return result(y, (x,), lambda g: (_expand(g, xv.shape, axes, keepdims),))


def mean(x, axis=None, keepdims=False) -> Tensor:
    """Arithmetic mean over `axis` (of integers: in floatx, as Keras)."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    axes = _axes(axis, xv.ndim)
    n = _count(xv.shape, axes)
    y = np.mean(xv, axis=axes, keepdims=keepdims)
    return result(y, (x,), lambda g: (_expand(g / n, xv.shape, axes, keepdims),))


def _extreme(fn, x, axis, keepdims, initial) -> Tensor:
    """max or min over `axis`; the gradient is shared evenly among the tied extremes."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    axes = _axes(axis, xv.ndim)
    kwargs = {} if initial is None else {"initial": initial}
    y = fn(xv, axis=axes, keepdims=keepdims, **kwargs)

    def vjp(g):
        hit = xv == _keep(y, axes, keepdims)
        ties = np.maximum(np.sum(hit, axis=axes, keepdims=True, dtype=np.result_type(g)), 1)
        return (np.where(hit, _keep(g, axes, keepdims) / ties, 0),)
    return result(y, (x,), vjp)


def max(x, axis=None, keepdims=False, initial=None) -> Tensor:  # noqa: A001 (Keras's name)
    """Largest element over `axis` (at least `initial` if given); ties share the gradient."""
    return _extreme(np.max, x, axis, keepdims, initial)


def min(x, axis=None, keepdims=False, initial=None) -> Tensor:  # noqa: A001 (Keras's name)
    """Smallest element over `axis` (at most `initial` if given); ties share the gradient."""
    return _extreme(np.min, x, axis, keepdims, initial)


def amax(x, axis=None, keepdims=False) -> Tensor:
    """Largest element over `axis` (keras.ops.amax, as max)."""
    return _extreme(np.max, x, axis, keepdims, None)


def amin(x, axis=None, keepdims=False) -> Tensor:
    """Smallest element over `axis` (keras.ops.amin, as min)."""
    return _extreme(np.min, x, axis, keepdims, None)


def _others_product(xv: np.ndarray, axes: tuple) -> np.ndarray:
    """For each element, the product of the other elements of its reduction group over `axes`
    (exclusive prefix times exclusive suffix products, so zeros are handled exactly)."""
    k = len(axes)
    moved = np.moveaxis(xv, axes, tuple(range(xv.ndim - k, xv.ndim)))
    flat = moved.reshape(moved.shape[:xv.ndim - k] + (-1,))
    left = np.ones_like(flat)
    right = np.ones_like(flat)
    left[..., 1:] = np.cumprod(flat[..., :-1], axis=-1)
    right[..., :-1] = np.cumprod(flat[..., :0:-1], axis=-1)[..., ::-1]
    return np.moveaxis((left * right).reshape(moved.shape), tuple(range(xv.ndim - k, xv.ndim)), axes)


def prod(x, axis=None, keepdims=False, dtype=None) -> Tensor:
    """Product over `axis` (computed in `dtype` if given); the gradient is exact at zeros."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    axes = _axes(axis, xv.ndim)
    y = np.prod(xv, axis=axes, keepdims=keepdims, dtype=dtype)
    if np.result_type(y).kind != "f":
        return Tensor(y)
    return result(y, (x,), lambda g: (_keep(g, axes, keepdims) * _others_product(xv, axes),))


def logsumexp(x, axis=None, keepdims=False) -> Tensor:
    """log(sum(exp(x))) over `axis`, shifted by the maximum so that it never overflows;
    the gradient is softmax(x) over the reduced axes."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    axes = _axes(axis, xv.ndim)
    m = np.max(xv, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    lse = np.log(np.sum(np.exp(xv - m), axis=axes, keepdims=True)) + m
    y = lse if keepdims or not axes else np.squeeze(lse, axes)
    return result(y, (x,), lambda g: (_keep(g, axes, keepdims) * np.exp(xv - lse),))


def _moments(x, axis):
    """The pieces var and std share: tensor, float values, axes, deviation from the mean, count."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    axes = _axes(axis, xv.ndim)
    dev = xv - np.mean(xv, axis=axes, keepdims=True)
    return x, axes, dev, _count(xv.shape, axes)


def var(x, axis=None, keepdims=False) -> Tensor:
    """Population variance (divisor n) over `axis`."""
    x, axes, dev, n = _moments(x, axis)
    y = np.mean(dev * dev, axis=axes, keepdims=keepdims)
    return result(y, (x,), lambda g: (_keep(g, axes, keepdims) * (2 / n) * dev,))


def std(x, axis=None, keepdims=False) -> Tensor:
    """Population standard deviation (divisor n) over `axis`; gradient 0 where it is 0."""
    x, axes, dev, n = _moments(x, axis)
    y = np.sqrt(np.mean(dev * dev, axis=axes, keepdims=keepdims))

    def vjp(g):
        s = _keep(y, axes, keepdims)
        safe = np.where(s > 0, s, 1)
        return (np.where(s > 0, _keep(g, axes, keepdims) / (n * safe), 0) * dev,)
    return result(y, (x,), vjp)


def moments(x, axes, keepdims=False, synchronized=False) -> tuple:
    """(mean, variance) of x over `axes` (keras.ops.moments), both differentiated. The
    statistics are of the rows this rank holds; `synchronized=True` (statistics of the global
    batch across ranks) is refused: BatchNormalization computes those."""
    if synchronized:
        raise ConfigError("ops.moments: synchronized=True is not supported (a custom layer sees only this rank's "
                          "rows); use the BatchNormalization layer for statistics of the global batch.")
    return mean(x, axis=axes, keepdims=keepdims), var(x, axis=axes, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False) -> Tensor:
    """Index of the largest element (the first on ties) over one axis or all (int32)."""
    xv = np.asarray(as_tensor(x).value)
    return Tensor(np.argmax(xv, axis=axis, keepdims=keepdims).astype(np.int32))


def argmin(x, axis=None, keepdims=False) -> Tensor:
    """Index of the smallest element (the first on ties) over one axis or all (int32)."""
    xv = np.asarray(as_tensor(x).value)
    return Tensor(np.argmin(xv, axis=axis, keepdims=keepdims).astype(np.int32))


def all(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001 (Keras's name)
    """Whether every element over `axis` is nonzero (bool)."""
    xv = np.asarray(as_tensor(x).value)
    return Tensor(np.all(xv, axis=_axes(axis, xv.ndim), keepdims=keepdims))


def any(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001 (Keras's name)
    """Whether some element over `axis` is nonzero (bool)."""
    xv = np.asarray(as_tensor(x).value)
    return Tensor(np.any(xv, axis=_axes(axis, xv.ndim), keepdims=keepdims))


def count_nonzero(x, axis=None) -> Tensor:
    """How many elements over `axis` are nonzero (int32)."""
    xv = np.asarray(as_tensor(x).value)
    return Tensor(np.asarray(np.count_nonzero(xv, axis=_axes(axis, xv.ndim)), dtype=np.int32))


def _scan_input(x, axis):
    """The tensor, its values (flattened when axis is None, as Keras) and the scan axis."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    if axis is None:
        return x, xv.reshape(-1), 0
    return x, xv, int(axis) % xv.ndim


def cumsum(x, axis=None, dtype=None) -> Tensor:
    """Running sum along `axis` (of the flattened x when None)."""
    x, xv, ax = _scan_input(x, axis)
    y = np.cumsum(xv, axis=ax, dtype=dtype)
    if y.dtype.kind != "f":
        return Tensor(y)
    shape = np.shape(x.value)
    return result(y, (x,), lambda g: (np.flip(np.cumsum(np.flip(g, ax), axis=ax), ax).reshape(shape),))


def cumprod(x, axis=None, dtype=None) -> Tensor:
    """Running product along `axis` (of the flattened x when None); the gradient is exact at zeros."""
    x, xv, ax = _scan_input(x, axis)
    y = np.cumprod(xv, axis=ax, dtype=dtype)
    if y.dtype.kind != "f":
        return Tensor(y)
    shape = np.shape(x.value)

    def vjp(g):
        if np.all(xv != 0):   # dx_i = sum_{j >= i} g_j y_j / x_i
            return ((np.flip(np.cumsum(np.flip(g * y, ax), axis=ax), ax) / xv).reshape(shape),)
        # With zeros: dx_i = y_{i-1} * r_i, where r_i = g_i + x_{i+1} r_{i+1} (a reverse recurrence).
        gm, xm, ym = (np.moveaxis(a, ax, 0) for a in np.broadcast_arrays(g, xv, y))
        out = np.empty(gm.shape, dtype=np.result_type(gm, xm))
        r = np.zeros(gm.shape[1:], dtype=out.dtype)
        for i in range(gm.shape[0] - 1, -1, -1):
            r = gm[i] + (xm[i + 1] * r if i + 1 < gm.shape[0] else 0)
            out[i] = r * (ym[i - 1] if i else 1)
        return (np.moveaxis(out, 0, ax).reshape(shape),)
    return result(y, (x,), vjp)


def _vector_norm(xv, axes, ord, keepdims):
    """The vector p-norm over one axis (or all, flattened) and its gradient function."""
    a = np.abs(xv)
    if ord in (None, 2, 2.0):
        y = np.sqrt(np.sum(a * a, axis=axes, keepdims=True))
        return y, lambda g: g * xv / np.where(y > 0, y, 1) * (y > 0)
    if ord == 1:
        return np.sum(a, axis=axes, keepdims=True), lambda g: g * np.sign(xv)
    if ord in (np.inf, -np.inf):
        y = (np.max if ord > 0 else np.min)(a, axis=axes, keepdims=True)

        def extreme(g):   # shared evenly among the tied extremes, as max/min
            hit = a == y
            return g * np.sign(xv) * hit / np.sum(hit, axis=axes, keepdims=True, dtype=xv.dtype)
        return y, extreme
    if ord == 0:   # the count of nonzeros: piecewise constant
        return np.sum(a != 0, axis=axes, keepdims=True).astype(xv.dtype), lambda g: None
    p = float(ord)
    y = np.sum(a ** p, axis=axes, keepdims=True) ** (1 / p)
    return y, lambda g: g * np.sign(xv) * a ** (p - 1) / np.where(y > 0, y, 1) ** (p - 1) * (y > 0)


def norm(x, ord=None, axis=None, keepdims=False) -> Tensor:
    """Vector or Frobenius norm (keras.ops.norm): with `axis` None, the 2-norm of all elements
    (ord None), a vector norm of 1-D x or the Frobenius norm ('fro') of 2-D x; an int axis gives
    vector norms (ord None/2, 1, inf, -inf, 0 or any p); a pair of axes gives Frobenius norms.
    Other matrix norms (nuc, 1, 2, inf over two axes) are refused. Gradient 0 where the norm is 0."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    matrix = (axis is None and ord is not None and xv.ndim == 2) or (isinstance(axis, (tuple, list))
                                                                      and len(axis) == 2)
    if axis is None and ord is not None and xv.ndim not in (1, 2):
        raise ConfigError(f"ops.norm: ord={ord!r} with axis=None needs a 1-D or 2-D x, not shape {xv.shape}; "
                          f"pass axis.")
    axes = _axes(axis, xv.ndim)
    if matrix:
        if ord not in (None, "fro"):
            raise ConfigError(f"ops.norm: the matrix norm ord={ord!r} is not supported; use ord='fro' or a "
                              f"vector norm over one axis.")
        ord = None
    elif len(axes) > 1 and axis is not None:
        raise ConfigError(f"ops.norm: axis={axis!r} must be None, an int or a pair of axes.")
    elif isinstance(ord, str):
        raise ConfigError(f"ops.norm: ord={ord!r} is a matrix norm; give two axes (or a 2-D x).")
    yk, grad = _vector_norm(xv, axes, ord, keepdims)
    y = yk if keepdims or not axes else np.squeeze(yk, axes)
    if ord == 0:
        return Tensor(y)
    return result(y, (x,), lambda g: (grad(_keep(g, axes, keepdims)),))
