"""Scatters, segment reductions, framing and saturating casts of keras.ops, differentiated.

Index conventions are Keras's: `scatter`/`scatter_update` take `indices` of shape (..., k), each
row naming an element (or a slice, when k is less than the rank) of the output; segment ops
reduce `data` along its first axis by `segment_ids` (ids below 0 or from `num_segments` on are
dropped); `extract_sequences` frames the last axis.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, getitem, is_tracked, result, value_of
from ..errors import ConfigError, ShapeError
from .core import cast

__all__ = ["scatter", "scatter_update", "segment_sum", "segment_max", "extract_sequences", "saturate_cast"]


def _rows(op: str, indices, shape: tuple) -> tuple:
    """`indices` (..., k) as k index arrays over the first k axes of `shape`, range-checked."""
    idx = np.asarray(value_of(indices)).astype(np.int64)
    if idx.ndim == 0 or idx.shape[-1] > len(shape):
        raise ShapeError(f"ops.{op}: indices of shape {idx.shape} do not index an array of shape {shape} "
                         f"(the last axis holds up to {len(shape)} coordinates).")
    idx = idx.reshape(-1, idx.shape[-1])
    bad = (idx < 0) | (idx >= np.asarray(shape[:idx.shape[1]]))
    if bad.any():
        raise ShapeError(f"ops.{op}: index {idx[bad.any(1)][0].tolist()} is out of range for shape {shape}.")
    return tuple(idx.T)


def scatter(indices, values, shape) -> Tensor:
    """Zeros of `shape` with `values` added at `indices` (repeated indices add up)."""
    v = as_tensor(values)
    shape = tuple(int(s) for s in shape)
    idx = _rows("scatter", indices, shape)
    vv = np.asarray(v.value)
    rows = vv.reshape((len(idx[0]),) + shape[len(idx):])
    out = np.zeros(shape, dtype=vv.dtype)
    np.add.at(out, idx, rows)
    return result(out, (v,), lambda g: (g[idx].reshape(vv.shape),))


def scatter_update(inputs, indices, updates, reduction=None) -> Tensor:
    """A copy of `inputs` with `updates` written at `indices` (reduction None), or combined there
    by "add", "mul", "max" or "min". Gradients: None and "add" are differentiated."""
    x, u = as_tensor(inputs), as_tensor(updates)
    xv, uv = np.asarray(x.value), np.asarray(u.value)
    idx = _rows("scatter_update", indices, xv.shape)
    rows = uv.reshape((len(idx[0]),) + xv.shape[len(idx):])
    y = xv.astype(np.result_type(xv, uv), copy=True)
    fns = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}
    if reduction is None:
        y[idx] = rows
    elif reduction in fns:
        fns[reduction].at(y, idx, rows)
        if reduction != "add":
            return Tensor(y)
    else:
        raise ConfigError(f"ops.scatter_update: reduction must be None, 'add', 'mul', 'max' or 'min', "
                          f"got {reduction!r}.")
    need_x = is_tracked(x)

    def vjp(g):
        gx = None
        if need_x:
            gx = g.copy()
            if reduction is None:
                gx[idx] = 0
        return gx, g[idx].reshape(uv.shape)
    return result(y, (x, u), vjp)


def _segments(op: str, data, segment_ids, num_segments):
    d = as_tensor(data)
    dv = np.asarray(d.value)
    ids = np.asarray(value_of(segment_ids)).astype(np.int64).reshape(-1)
    if dv.ndim == 0 or ids.shape[0] != dv.shape[0]:
        raise ShapeError(f"ops.{op}: {ids.shape[0]} segment ids for data of shape {dv.shape} (one id per "
                         f"entry of the first axis).")
    n = int(ids.max()) + 1 if num_segments is None else int(num_segments)
    keep = (ids >= 0) & (ids < n)
    return d, dv, ids, n, keep


def segment_sum(data, segment_ids, num_segments=None, sorted=False) -> Tensor:
    """out[s] = sum of data[i] with segment_ids[i] == s (shape (num_segments,) + data.shape[1:])."""
    d, dv, ids, n, keep = _segments("segment_sum", data, segment_ids, num_segments)
    out = np.zeros((n,) + dv.shape[1:], dtype=dv.dtype)
    np.add.at(out, ids[keep], dv[keep])

    def vjp(g):
        gd = np.zeros(dv.shape, dtype=g.dtype)
        gd[keep] = g[ids[keep]]
        return (gd,)
    return result(out, (d,), vjp)


def segment_max(data, segment_ids, num_segments=None, sorted=False) -> Tensor:
    """out[s] = max of data[i] with segment_ids[i] == s (-inf for an empty segment, as Keras's
    NumPy and JAX backends); the gradient is shared evenly among a segment's tied maxima."""
    d, dv, ids, n, keep = _segments("segment_max", data, segment_ids, num_segments)
    out = np.full((n,) + dv.shape[1:], -np.inf, dtype=dv.dtype if dv.dtype.kind == "f" else np.float64)
    np.maximum.at(out, ids[keep], dv[keep])
    out = out.astype(dv.dtype) if dv.dtype.kind != "f" else out

    def vjp(g):
        hit = np.zeros(dv.shape, dtype=g.dtype)
        hit[keep] = dv[keep] == out[ids[keep]]
        count = np.zeros(out.shape, dtype=g.dtype)
        np.add.at(count, ids[keep], hit[keep])
        gd = np.zeros(dv.shape, dtype=g.dtype)
        gd[keep] = hit[keep] * g[ids[keep]] / np.maximum(count[ids[keep]], 1)
        return (gd,)
    return result(out, (d,), vjp)


def extract_sequences(x, sequence_length, sequence_stride) -> Tensor:
    """Frames of the last axis: (..., T) -> (..., frames, sequence_length), frame i starting at
    i * sequence_stride, frames = (T - sequence_length) // sequence_stride + 1."""
    x = as_tensor(x)
    t = np.shape(x.value)[-1]
    frames = (t - (sequence_length - sequence_stride)) // sequence_stride
    if sequence_length > t or frames < 1:
        raise ShapeError(f"ops.extract_sequences: sequence_length {sequence_length} does not fit a last axis "
                         f"of length {t}.")
    cols = np.arange(frames)[:, None] * sequence_stride + np.arange(sequence_length)
    return getitem(x, (Ellipsis, cols))


def saturate_cast(x, dtype) -> Tensor:
    """`x` clipped to the range of `dtype`, then cast (no integer wrap-around); the gradient is
    that of the clip (zero where a float value was clipped)."""
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype) if dtype.kind == "f" else None
    if info is None:
        return cast(x, dtype)
    xv = np.asarray(x.value)
    lo, hi = info.min, info.max
    if xv.dtype.kind == "f" and dtype.kind in "iu":   # the float nearest each bound inside the range
        lo = np.nextafter(xv.dtype.type(lo), 0) if xv.dtype.type(lo) < lo else lo
        hi = np.nextafter(xv.dtype.type(hi), 0) if xv.dtype.type(hi) > hi else hi
    clipped = np.clip(xv, lo, hi) if xv.dtype.kind in "fiu" and xv.dtype != dtype else xv
    if dtype.kind != "f":
        return Tensor(clipped.astype(dtype))
    inside = (xv >= lo) & (xv <= hi)
    return result(clipped.astype(dtype), (x,), lambda g: (np.where(inside, g, 0).astype(xv.dtype),))
