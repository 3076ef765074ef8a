"""Order-based ops of keras.ops: `sort`, `argsort`, `argpartition`, `top_k`, `in_top_k`,
`searchsorted`, `digitize`, `median` and `quantile`.

Sorting moves values, so `sort`, the values of `top_k`, `median` and `quantile` are
differentiated through the permutation: each output sends its gradient back to the element it
came from (ties are ordered stably, lower index first, so each tied element gets the gradient of
exactly one output position, as JAX's sort does). Indices and booleans are not differentiated
and come as int32 (Keras's dtype).
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result, value_of
from ..errors import ConfigError, ShapeError
from ..special import _as_float
from .reductions import _axes
from .shape import axis_of

__all__ = ["sort", "argsort", "argpartition", "top_k", "in_top_k", "searchsorted", "digitize", "median",
           "quantile"]


def _scatter_along(g: np.ndarray, idx: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    """The gradient of take_along_axis(x, idx, axis) for x of `shape` (idx has no repeats)."""
    out = np.zeros(shape, dtype=g.dtype)
    np.put_along_axis(out, idx, g, axis=axis)
    return out


def argsort(x, axis=-1) -> Tensor:
    """The indices that sort x along `axis` (None: of the flattened x), ties by index (int32)."""
    xv = np.asarray(value_of(as_tensor(x)))
    if axis is None:
        return Tensor(np.argsort(xv.ravel(), kind="stable").astype(np.int32))
    return Tensor(np.argsort(xv, axis=axis_of(axis, xv.ndim, "argsort"), kind="stable").astype(np.int32))


def sort(x, axis=-1) -> Tensor:
    """x sorted ascending along `axis` (None: the flattened x); the gradient goes back through
    the (stable) permutation."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    src, ax = (xv.ravel(), 0) if axis is None else (xv, axis_of(axis, xv.ndim, "sort"))
    idx = np.argsort(src, axis=ax, kind="stable")
    y = np.take_along_axis(src, idx, axis=ax)
    return result(y, (x,), lambda g: (_scatter_along(g, idx, src.shape, ax).reshape(xv.shape),))


def argpartition(x, kth, axis=-1) -> Tensor:
    """Indices that put the kth element of x (along `axis`) in its sorted place, smaller ones
    before it and larger after, in no particular order (NumPy's argpartition; int32)."""
    xv = np.asarray(value_of(as_tensor(x)))
    return Tensor(np.argpartition(xv, kth, axis=axis_of(axis, xv.ndim, "argpartition")).astype(np.int32))


def _descending(xv: np.ndarray) -> np.ndarray:
    """Indices sorting the last axis in descending order, ties by increasing index (stable)."""
    n = xv.shape[-1]
    return n - 1 - np.argsort(np.flip(xv, -1), axis=-1, kind="stable")[..., ::-1]


def top_k(x, k, sorted=True, is_stable=True) -> tuple:  # noqa: A002 (Keras's name)
    """(values, indices) of the k largest entries along the last axis, largest first, equal
    values by increasing index. The values are differentiated (each sends its gradient to its
    source), the indices (int32) are not. `sorted=False` allows any order; distdl's is sorted."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    k = int(k)
    if xv.ndim == 0 or not 0 <= k <= xv.shape[-1]:
        raise ShapeError(f"ops.top_k: k={k} must be between 0 and the length of the last axis of an input "
                         f"of shape {xv.shape}.")
    idx = _descending(xv)[..., :k]
    y = np.take_along_axis(xv, idx, axis=-1)
    return result(y, (x,), lambda g: (_scatter_along(g, idx, xv.shape, -1),)), Tensor(idx.astype(np.int32))


def in_top_k(targets, predictions, k) -> Tensor:
    """Whether each target class is among the k largest `predictions` of its row (bool, of the
    targets' shape; predictions have one more, last, axis of classes). A target tied with the
    k-th largest counts as in (TensorFlow's rule); a NaN prediction of the target is never in."""
    t = np.asarray(value_of(as_tensor(targets))).astype(np.int64)
    p = np.asarray(value_of(as_tensor(predictions)))
    if p.ndim < 1 or t.shape != p.shape[:-1]:
        raise ShapeError(f"ops.in_top_k: predictions must have the targets' shape plus an axis of classes, got "
                         f"shapes {p.shape} and {t.shape}.")
    k = min(int(k), p.shape[-1])
    if k <= 0:
        return Tensor(np.zeros(t.shape, dtype=bool))
    kth = np.take_along_axis(p, _descending(p)[..., k - 1:k], axis=-1)[..., 0]
    return Tensor(np.take_along_axis(p, t[..., None], axis=-1)[..., 0] >= kth)


def searchsorted(sorted_sequence, values, side="left") -> Tensor:
    """Where each value would be inserted into the 1-D `sorted_sequence` to keep it sorted
    (`side` "left": before equal entries, "right": after them); int32."""
    s = np.asarray(value_of(as_tensor(sorted_sequence)))
    if s.ndim != 1:
        raise ShapeError(f"ops.searchsorted: sorted_sequence must be 1-D, got shape {s.shape}.")
    if side not in ("left", "right"):
        raise ConfigError(f"ops.searchsorted: side must be 'left' or 'right', got {side!r}.")
    return Tensor(np.searchsorted(s, value_of(as_tensor(values)), side=side).astype(np.int32))


def digitize(x, bins) -> Tensor:
    """The index of the bin of each element of x (NumPy's digitize: bins increasing or
    decreasing, right edge excluded); int32."""
    b = np.asarray(value_of(as_tensor(bins)))
    if b.ndim != 1:
        raise ShapeError(f"ops.digitize: bins must be 1-D, got shape {b.shape}.")
    return Tensor(np.digitize(value_of(as_tensor(x)), b).astype(np.int32))


_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(x, q, axis=None, method="linear", keepdims=False) -> Tensor:
    """The q-th quantiles (q in [0, 1], a number or 1-D) of x over `axis` (None: all), as
    NumPy's quantile with `method` linear, lower, higher, midpoint or nearest; q's axis comes
    first in the output when q is 1-D. The gradient goes to the (one or two) sorted elements each
    quantile interpolates, with the interpolation weights (q is not differentiated)."""
    if method not in _METHODS:
        raise ConfigError(f"ops.quantile: method must be one of {list(_METHODS)}, got {method!r}.")
    x = as_tensor(x)
    xv = np.asarray(x.value)
    xf = _as_float(xv.astype(np.float32) if xv.dtype == bool else xv)
    qv = np.asarray(value_of(as_tensor(q)), dtype=np.float64)
    if qv.ndim > 1 or np.any((qv < 0) | (qv > 1)):
        raise ConfigError(f"ops.quantile: q must be a number or a 1-D list in [0, 1], got {qv.tolist()}.")
    axes = _axes(axis, xf.ndim)
    rest = tuple(a for a in range(xf.ndim) if a not in axes)
    moved = np.transpose(xf, rest + axes)
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    n = flat.shape[-1]
    order = np.argsort(flat, axis=-1, kind="stable")
    srt = np.take_along_axis(flat, order, axis=-1)
    pos = qv * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    if method == "lower":
        frac = np.zeros_like(frac)
    elif method == "higher":
        lo, frac = np.ceil(pos).astype(np.int64), np.zeros_like(frac)
    elif method == "midpoint":
        frac = np.where(pos > lo, 0.5, 0.0)
    elif method == "nearest":   # NumPy rounds half to even
        lo, frac = np.round(pos).astype(np.int64), np.zeros_like(frac)
    lo, hi, w = np.atleast_1d(lo), np.atleast_1d(hi), np.atleast_1d(frac).astype(xf.dtype)
    picked = srt[..., lo] * (1 - w) + srt[..., hi] * w
    out = np.moveaxis(picked, -1, 0)   # (nq, *rest)
    if keepdims:
        out = out.reshape(out.shape[:1] + tuple(1 if a in axes else xf.shape[a] for a in range(xf.ndim)))
    y = out if qv.ndim else out[0]

    def vjp(g):
        gq = np.moveaxis(np.reshape(g, (np.size(qv),) + moved.shape[:len(rest)]), 0, -1)
        gs = np.zeros(flat.shape, dtype=gq.dtype)
        for j, (a, b, c) in enumerate(zip(lo, hi, w)):
            gs[..., a] += gq[..., j] * (1 - c)
            gs[..., b] += gq[..., j] * c
        gx = _scatter_along(gs, order, flat.shape, -1).reshape(moved.shape)
        return (np.transpose(gx, np.argsort(rest + axes)),)
    return result(y.astype(xf.dtype, copy=False), (x,), vjp)


def median(x, axis=None, keepdims=False) -> Tensor:
    """The median of x over `axis` (None: all): the middle sorted element, or the mean of the
    two middle ones; the gradient goes to them (half each)."""
    return quantile(x, 0.5, axis=axis, keepdims=keepdims)
