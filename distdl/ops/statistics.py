"""Statistics of keras.ops: `average` (with weights), the NaN-ignoring reductions (`nansum`,
`nanmean`, `nanmax`, `nanmin`, `nanprod`), `ptp`, `corrcoef`, `bincount` and `trapezoid`.

The nan-reductions treat NaN entries as absent: they receive no gradient, and an all-NaN group
gives NumPy's answer (0 for nansum, 1 for nanprod, NaN for nanmean/nanmax/nanmin). Ties of
nanmax/nanmin share the gradient evenly, as max/min. `average`, `corrcoef` and `trapezoid` are
written with recorded ops, so both their inputs are differentiated; `bincount` is differentiated
in its weights (a scatter-add), not in the (integer) positions.
"""
from __future__ import annotations

import builtins
import warnings

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result, value_of
from ..autodiff.tensor import divide, getitem, matmul, multiply, subtract, transpose
from .. import backend
from ..errors import ConfigError, ShapeError
from ..special import _as_float
from .math import _floats
from .reductions import _axes, _keep, _others_product, mean, sum
from .reductions import max as _max, min as _min
from .shape import axis_of, broadcast_to, reshape

__all__ = ["average", "nansum", "nanmean", "nanmax", "nanmin", "nanprod", "ptp", "corrcoef", "bincount",
           "trapezoid", "histogram"]


def average(x, axis=None, weights=None) -> Tensor:
    """The weighted mean sum(x * w) / sum(w) over `axis` (None: all); `weights` has x's shape,
    or is 1-D with the length of `axis`. Without weights: the mean. Both are differentiated."""
    if weights is None:
        return mean(x, axis=axis)
    x, w = as_tensor(x), as_tensor(weights)
    xv, wv = np.asarray(x.value), np.asarray(w.value)
    if wv.shape != xv.shape:
        if axis is None or isinstance(axis, (tuple, list)) or wv.ndim != 1 or \
                wv.shape[0] != xv.shape[axis_of(axis, xv.ndim, "average")]:
            raise ShapeError(f"ops.average: weights of shape {wv.shape} must have the shape of x {xv.shape}, or "
                             f"be 1-D with the length of axis {axis}.")
        ax = axis_of(axis, xv.ndim, "average")
        w = reshape(w, tuple(len(wv) if i == ax else 1 for i in range(xv.ndim)))
    if np.result_type(xv).kind != "f" and np.result_type(wv).kind != "f":
        x = Tensor(_as_float(xv))
    return divide(sum(multiply(x, w), axis=axis), sum(broadcast_to(w, xv.shape), axis=axis))


def _nan_input(x):
    x = as_tensor(x)
    return x, np.asarray(x.value)


def _nan(xv: np.ndarray) -> np.ndarray:
    """Where xv is NaN (the vjps compute it: only the backward needs it)."""
    return np.isnan(xv) if xv.dtype.kind in "fc" else np.zeros(xv.shape, dtype=bool)


def nansum(x, axis=None, keepdims=False) -> Tensor:
    """Sum over `axis` with NaNs counted as 0; they get no gradient."""
    x, xv = _nan_input(x)
    axes = _axes(axis, xv.ndim)
    y = np.nansum(xv, axis=axes, keepdims=keepdims)
    return result(y, (x,), lambda g: (np.where(_nan(xv), 0, _keep(g, axes, keepdims)),))


def nanmean(x, axis=None, keepdims=False) -> Tensor:
    """Mean over `axis` of the entries that are not NaN (integers to floatx)."""
    x, xv = _nan_input(x)
    xf = _as_float(xv)
    axes = _axes(axis, xv.ndim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN group is NaN, as NumPy
        y = np.nanmean(xf, axis=axes, keepdims=keepdims)

    def vjp(g):
        nan = _nan(xv)
        count = np.sum(~nan, axis=axes, keepdims=True)
        return (np.where(nan, 0, _keep(g, axes, keepdims) / np.maximum(count, 1)),)
    return result(y, (x,), vjp)


def _nan_extreme(fn, x, axis, keepdims) -> Tensor:
    x, xv = _nan_input(x)
    axes = _axes(axis, xv.ndim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = fn(xv, axis=axes, keepdims=keepdims)

    def vjp(g):
        hit = xv == _keep(y, axes, keepdims)   # never at a NaN
        ties = np.maximum(np.sum(hit, axis=axes, keepdims=True, dtype=np.result_type(g)), 1)
        return (np.where(hit, _keep(g, axes, keepdims) / ties, 0),)
    return result(y, (x,), vjp)


def nanmax(x, axis=None, keepdims=False) -> Tensor:
    """Largest non-NaN element over `axis` (NaN if all are NaN); ties share the gradient."""
    return _nan_extreme(np.nanmax, x, axis, keepdims)


def nanmin(x, axis=None, keepdims=False) -> Tensor:
    """Smallest non-NaN element over `axis` (NaN if all are NaN); ties share the gradient."""
    return _nan_extreme(np.nanmin, x, axis, keepdims)


def nanprod(x, axis=None, keepdims=False) -> Tensor:
    """Product over `axis` with NaNs counted as 1; they get no gradient (exact at zeros)."""
    x, xv = _nan_input(x)
    axes = _axes(axis, xv.ndim)
    y = np.nanprod(xv, axis=axes, keepdims=keepdims)
    if np.result_type(y).kind != "f":
        return Tensor(y)

    def vjp(g):
        nan = _nan(xv)
        return (np.where(nan, 0, _keep(g, axes, keepdims) * _others_product(np.where(nan, 1, xv), axes)),)
    return result(y, (x,), vjp)


def ptp(x, axis=None, keepdims=False) -> Tensor:
    """max - min over `axis` (the range); ties of either extreme share its gradient."""
    return subtract(_max(x, axis=axis, keepdims=keepdims), _min(x, axis=axis, keepdims=keepdims))


def corrcoef(x) -> Tensor:
    """Pearson correlation coefficients of the rows of x (variables; columns are observations):
    a (rows, rows) matrix, differentiated (1-D x: the 1 x 1 matrix [[1.]])."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    if xv.ndim not in (1, 2):
        raise ShapeError(f"ops.corrcoef: x must be 1-D or 2-D (variables by observations), got shape {xv.shape}.")
    if xv.dtype.kind != "f":
        x = Tensor(xv.astype(np.float64 if xv.dtype == np.int64 else _as_float(xv).dtype))
    if xv.ndim == 1:
        x = reshape(x, (1, -1))
    centred = subtract(x, mean(x, axis=1, keepdims=True))
    cov = matmul(centred, transpose(centred))
    scale = sum(multiply(centred, centred), axis=1) ** 0.5
    return divide(divide(cov, reshape(scale, (-1, 1))), reshape(scale, (1, -1)))


def bincount(x, weights=None, minlength=0, sparse=False) -> Tensor:
    """How often each value 0..max(x) occurs in the non-negative integer tensor x (at least
    `minlength` bins); with `weights`, the sum of the weights of each value (differentiated in
    the weights). A 2-D x counts each row on its own: (rows, bins)."""
    if sparse:
        raise ConfigError("ops.bincount: sparse=True is not supported; distdl tensors are dense.")
    xv = np.asarray(value_of(as_tensor(x)))
    if xv.dtype.kind not in "iu" or xv.ndim not in (1, 2) or (xv.size and xv.min() < 0):
        raise ShapeError(f"ops.bincount: x must be a 1-D or 2-D tensor of non-negative integers, got shape "
                         f"{xv.shape} and dtype {xv.dtype}.")
    bins = int(builtins.max(minlength, (xv.max() + 1) if xv.size else 0))
    rows = xv.reshape(-1, xv.shape[-1]) if xv.ndim == 2 else xv.reshape(1, -1)
    flat = (rows + bins * np.arange(rows.shape[0])[:, None]).ravel()
    if weights is None:
        counts = np.bincount(flat, minlength=bins * rows.shape[0]).astype(np.int32)
        return Tensor(counts.reshape((-1, bins) if xv.ndim == 2 else (bins,)))
    w = as_tensor(weights)
    wv = np.asarray(w.value)
    if wv.shape != xv.shape:
        raise ShapeError(f"ops.bincount: weights of shape {wv.shape} must have the shape of x {xv.shape}.")
    y = np.bincount(flat, weights=wv.ravel(), minlength=bins * rows.shape[0]).astype(wv.dtype)
    y = y.reshape((-1, bins) if xv.ndim == 2 else (bins,))
    if wv.dtype.kind != "f":
        return Tensor(y)
    return result(y, (w,), lambda g: (np.reshape(g, (-1,))[flat].reshape(xv.shape),))


def trapezoid(y, x=None, dx=1.0, axis=-1) -> Tensor:
    """The integral of y along `axis` by the trapezoidal rule, at sample points `x` (y's shape,
    or 1-D with the axis's length) or spaced by `dx`; differentiated in y and x."""
    y = as_tensor(y)
    yv = np.asarray(y.value)
    if yv.dtype.kind != "f":
        y = Tensor(_floats(yv))
    ax = axis_of(axis, yv.ndim, "trapezoid")
    n = yv.shape[ax]
    head = tuple(slice(None) if i != ax else slice(1, None) for i in range(yv.ndim))
    tail = tuple(slice(None) if i != ax else slice(None, n - 1) for i in range(yv.ndim))
    pairs = multiply(getitem(y, head) + getitem(y, tail), 0.5)
    if x is None:
        return multiply(sum(pairs, axis=ax), value_of(dx))
    x = as_tensor(x)
    xv = np.asarray(x.value)
    if xv.ndim == 1:
        if len(xv) != n:
            raise ShapeError(f"ops.trapezoid: x of shape {xv.shape} must have the length {n} of axis {axis} "
                             f"of y (shape {yv.shape}).")
        x = reshape(x, tuple(n if i == ax else 1 for i in range(yv.ndim)))
    elif xv.shape != yv.shape:
        raise ShapeError(f"ops.trapezoid: x of shape {xv.shape} must be 1-D or have y's shape {yv.shape}.")
    return sum(multiply(pairs, getitem(x, head) - getitem(x, tail)), axis=ax)


def histogram(x, bins=10, range=None):  # noqa: A002 (Keras's argument name)
    """(counts, bin_edges) of the values of `x` in `bins` equal bins over `range` (default: the
    values' min and max), as keras.ops.histogram; not differentiated.

    Args:
        x: the values (any shape; flattened).
        bins: the number of bins.
        range: (low, high) of the bins, or None.
    """
    counts, edges = np.histogram(np.asarray(value_of(as_tensor(x))).ravel(), bins=int(bins), range=range)
    return Tensor(counts.astype(np.int32)), Tensor(edges.astype(backend.floatx()))
