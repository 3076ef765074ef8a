"""Reshaping, joining, splitting and indexing ops of keras.ops, each with its gradient.

All of them move values without changing them, so every gradient is the same move run
backwards: a reshape back, a slice of the output gradient, or a scatter-add where one input
value reached several outputs (tile, repeat, take, pad's reflections). Axes may be negative;
a bad axis or shape raises ShapeError naming the op and the shapes.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tape import unbroadcast
from ..autodiff.tensor import Tensor, as_tensor, is_tracked, result, transpose, value_of
from ..errors import ConfigError, ShapeError

__all__ = ["reshape", "transpose", "expand_dims", "squeeze", "ravel", "broadcast_to", "concatenate",
           "stack", "split", "tile", "repeat", "pad", "take", "take_along_axis", "flip", "roll",
           "moveaxis", "swapaxes", "tril", "triu", "size", "ndim"]


def axis_of(axis, ndim: int, op: str) -> int:
    """`axis` (negative allowed) as an index into `ndim` axes; out of range names the op."""
    a = int(axis)
    if not -ndim <= a < ndim:
        raise ShapeError(f"ops.{op}: axis {a} is out of range for an input of rank {ndim}.")
    return a % ndim


def _axes_of(axis, ndim: int, op: str) -> tuple:
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(axis_of(a, ndim, op) for a in axes)


def _array(x):
    x = as_tensor(x)
    return x, np.asarray(x.value)


def _same_size(shape: tuple):
    """A vjp that reshapes the output gradient back to `shape` (reshape, squeeze, ravel, ...)."""
    return lambda g: (np.reshape(g, shape),)


def reshape(x, newshape) -> Tensor:
    """x with shape `newshape` (one entry may be -1), values in the same C order."""
    x, xv = _array(x)
    newshape = (int(newshape),) if np.isscalar(newshape) else tuple(int(d) for d in newshape)
    try:
        y = np.reshape(xv, newshape)
    except ValueError:
        raise ShapeError(f"ops.reshape: cannot reshape an input of shape {xv.shape} ({xv.size} values) "
                         f"to {newshape}.") from None
    return result(y, (x,), _same_size(xv.shape))


def expand_dims(x, axis) -> Tensor:
    """x with new axes of length 1 at `axis` (an int or a tuple, positions in the output)."""
    x, xv = _array(x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    _axes_of(axes, xv.ndim + len(axes), "expand_dims")
    return result(np.expand_dims(xv, tuple(int(a) for a in axes)), (x,), _same_size(xv.shape))


def squeeze(x, axis=None) -> Tensor:
    """x without its length-1 axes (only those in `axis` when given; each must have length 1)."""
    x, xv = _array(x)
    if axis is not None:
        axes = _axes_of(axis, xv.ndim, "squeeze")
        bad = [a for a in axes if xv.shape[a] != 1]
        if bad:
            raise ShapeError(f"ops.squeeze: axis {bad[0]} of an input of shape {xv.shape} has length "
                             f"{xv.shape[bad[0]]}, not 1.")
        axis = axes
    return result(np.squeeze(xv, axis=axis), (x,), _same_size(xv.shape))


def ravel(x) -> Tensor:
    """x as a 1-D tensor (C order)."""
    x, xv = _array(x)
    return result(np.ravel(xv), (x,), _same_size(xv.shape))


def broadcast_to(x, shape) -> Tensor:
    """x broadcast to `shape`; the gradient sums over the broadcast axes."""
    x, xv = _array(x)
    shape = tuple(int(d) for d in shape)
    try:
        y = np.broadcast_to(xv, shape)
    except ValueError:
        raise ShapeError(f"ops.broadcast_to: an input of shape {xv.shape} cannot be broadcast to {shape}.") from None
    return result(y, (x,), lambda g: (unbroadcast(g, xv.shape),))


def concatenate(xs, axis=0) -> Tensor:
    """The tensors `xs` joined along the existing `axis`."""
    ts = [as_tensor(t) for t in xs]
    vals = [np.asarray(t.value) for t in ts]
    if not vals:
        raise ShapeError("ops.concatenate: needs at least one tensor, got none.")
    ax = axis_of(axis, vals[0].ndim, "concatenate")
    try:
        y = np.concatenate(vals, axis=ax)
    except ValueError:
        raise ShapeError(f"ops.concatenate: shapes {[v.shape for v in vals]} do not fit together along "
                         f"axis {axis} (all other axes must match).") from None
    cuts = np.cumsum([v.shape[ax] for v in vals])[:-1]
    return result(y, tuple(ts), lambda g: tuple(np.split(g, cuts, axis=ax)))


def stack(x, axis=0) -> Tensor:
    """The same-shape tensors `x` joined along a new `axis`."""
    ts = [as_tensor(t) for t in x]
    vals = [np.asarray(t.value) for t in ts]
    if not vals:
        raise ShapeError("ops.stack: needs at least one tensor, got none.")
    ax = axis_of(axis, vals[0].ndim + 1, "stack")
    if len({v.shape for v in vals}) > 1:
        raise ShapeError(f"ops.stack: all tensors must have the same shape, got {[v.shape for v in vals]}.")
    y = np.stack(vals, axis=ax)
    return result(y, tuple(ts), lambda g: tuple(np.moveaxis(g, ax, 0)))


def split(x, indices_or_sections, axis=0) -> list:
    """x cut along `axis` into equal sections (an int) or at the given indices: a list of
    tensors, each recorded on its own (the gradient of one piece is zero outside it)."""
    x, xv = _array(x)
    ax = axis_of(axis, xv.ndim, "split")
    try:
        pieces = np.split(xv, indices_or_sections, axis=ax)
    except ValueError:
        raise ShapeError(f"ops.split: axis {axis} of length {xv.shape[ax]} (input shape {xv.shape}) "
                         f"does not divide into {indices_or_sections} equal sections.") from None
    out, start = [], 0
    for p in pieces:
        where = (slice(None),) * ax + (slice(start, start + p.shape[ax]),)
        start += p.shape[ax]

        def vjp(g, where=where):
            full = np.zeros(xv.shape, dtype=g.dtype)
            full[where] = g
            return (full,)
        out.append(result(p, (x,), vjp))
    return out


def tile(x, repeats) -> Tensor:
    """x repeated `repeats` times along each axis (NumPy's rules when the lengths differ)."""
    x, xv = _array(x)
    reps = (int(repeats),) if np.isscalar(repeats) else tuple(int(r) for r in repeats)
    y = np.tile(xv, reps)
    d = max(len(reps), xv.ndim)
    reps = (1,) * (d - len(reps)) + reps
    shape = (1,) * (d - xv.ndim) + xv.shape

    def vjp(g):  # axis i of g is reps[i] blocks of shape[i]: sum the blocks
        split_shape = tuple(v for pair in zip(reps, shape) for v in pair)
        return (np.sum(np.reshape(g, split_shape), axis=tuple(range(0, 2 * d, 2))).reshape(xv.shape),)
    return result(y, (x,), vjp)


def repeat(x, repeats, axis=None) -> Tensor:
    """Each element of x repeated `repeats` times (an int, or one count per element) along
    `axis` (None: of the flattened x)."""
    x, xv = _array(x)
    src = xv.ravel() if axis is None else xv
    ax = 0 if axis is None else axis_of(axis, xv.ndim, "repeat")
    reps = np.asarray(value_of(repeats))
    try:
        y = np.repeat(src, reps, axis=ax)
    except ValueError:
        raise ShapeError(f"ops.repeat: repeats of shape {reps.shape} do not fit axis {axis} of length "
                         f"{src.shape[ax]} (input shape {xv.shape}).") from None

    def vjp(g):
        n = src.shape[ax]
        owner = np.repeat(np.arange(n), np.broadcast_to(reps, (n,)))  # output position -> source index
        out = np.zeros((n,) + src.shape[:ax] + src.shape[ax + 1:], dtype=g.dtype)
        np.add.at(out, owner, np.moveaxis(g, ax, 0))
        return (np.moveaxis(out, 0, ax).reshape(xv.shape),)
    return result(y, (x,), vjp)


_GATHER_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")
_PAD_MODES = _GATHER_MODES + ("linear_ramp", "maximum", "mean", "median", "minimum", "empty")


def pad(x, pad_width, mode="constant", constant_values=None) -> Tensor:
    """x padded by `pad_width` ((before, after) per axis, NumPy's forms). "constant" fills
    with `constant_values` (default 0); "edge", "reflect", "symmetric" and "wrap" copy values of
    x, so their gradient adds each copy's gradient back to its source."""
    x, xv = _array(x)
    if mode not in _PAD_MODES:
        raise ConfigError(f"ops.pad: mode must be one of {list(_PAD_MODES)}, got {mode!r}.")
    if constant_values is not None and mode != "constant":
        raise ConfigError(f"ops.pad: constant_values applies only to mode 'constant', got mode {mode!r}.")
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (xv.ndim, 2))
    except ValueError:
        raise ShapeError(f"ops.pad: pad_width {pad_width!r} does not fit an input of rank {xv.ndim} "
                         f"(shape {xv.shape}).") from None
    kw = {"constant_values": 0 if constant_values is None else value_of(constant_values)} \
        if mode == "constant" else {}
    y = np.pad(xv, widths, mode=mode, **kw)
    if mode not in _GATHER_MODES:
        if is_tracked(x):
            raise ConfigError(f"ops.pad: mode {mode!r} is not differentiated; use one of "
                              f"{list(_GATHER_MODES)} inside a recorded computation.")
        return Tensor(y)

    def vjp(g):
        if mode == "constant":
            return (g[tuple(slice(b, b + n) for (b, _), n in zip(widths, xv.shape))],)
        source = np.pad(np.arange(xv.size).reshape(xv.shape), widths, mode=mode)
        return (np.bincount(source.ravel(), weights=g.ravel(), minlength=xv.size)
                .astype(g.dtype, copy=False).reshape(xv.shape),)
    return result(y, (x,), vjp)


def take(x, indices, axis=None) -> Tensor:
    """Elements of x at `indices` along `axis` (None: of the flattened x); negative indices
    count from the end. Repeated indices add their gradients."""
    x, xv = _array(x)
    idx = np.asarray(value_of(indices))
    src = xv.ravel() if axis is None else xv
    ax = 0 if axis is None else axis_of(axis, xv.ndim, "take")
    try:
        y = np.take(src, idx, axis=ax)
    except IndexError:
        raise ShapeError(f"ops.take: an index in {idx.min()}..{idx.max()} is out of range for axis {axis} "
                         f"of length {src.shape[ax]} (input shape {xv.shape}).") from None

    def vjp(g):
        out = np.zeros((src.shape[ax],) + src.shape[:ax] + src.shape[ax + 1:], dtype=g.dtype)
        gm = np.moveaxis(g, tuple(range(ax, ax + idx.ndim)), tuple(range(idx.ndim)))
        np.add.at(out, idx % src.shape[ax], gm)
        return (np.moveaxis(out, 0, ax).reshape(xv.shape),)
    return result(y, (x,), vjp)


def take_along_axis(x, indices, axis=None) -> Tensor:
    """x[..., indices[...], ...] along `axis` (None: of the flattened x), as NumPy's
    take_along_axis; repeated indices add their gradients."""
    x, xv = _array(x)
    idx = np.asarray(value_of(indices))
    src = xv.ravel() if axis is None else xv
    ax = 0 if axis is None else axis_of(axis, xv.ndim, "take_along_axis")
    if idx.ndim != src.ndim:
        raise ShapeError(f"ops.take_along_axis: indices of shape {idx.shape} must have the rank of the "
                         f"input, shape {src.shape}.")
    try:
        y = np.take_along_axis(src, idx, axis=ax)
    except (IndexError, ValueError):
        raise ShapeError(f"ops.take_along_axis: indices of shape {idx.shape} do not fit an input of shape "
                         f"{src.shape} along axis {axis}.") from None

    def vjp(g):
        out = np.zeros(src.shape, dtype=g.dtype)
        where = tuple(idx % src.shape[ax] if i == ax else
                      np.arange(n).reshape((1,) * i + (n,) + (1,) * (src.ndim - i - 1))
                      for i, n in enumerate(src.shape))
        np.add.at(out, where, g)
        return (out.reshape(xv.shape),)
    return result(y, (x,), vjp)


def flip(x, axis=None) -> Tensor:
    """x reversed along `axis` (an int, a tuple, or None: all axes)."""
    x, xv = _array(x)
    axes = None if axis is None else _axes_of(axis, xv.ndim, "flip")
    return result(np.flip(xv, axes), (x,), lambda g: (np.flip(g, axes),))


def roll(x, shift, axis=None) -> Tensor:
    """x shifted cyclically by `shift` along `axis` (None: of the flattened x)."""
    x, xv = _array(x)
    axes = None if axis is None else _axes_of(axis, xv.ndim, "roll")
    shift = int(shift) if np.isscalar(shift) else tuple(int(s) for s in shift)
    back = -shift if np.isscalar(shift) else tuple(-s for s in shift)
    return result(np.roll(xv, shift, axes), (x,), lambda g: (np.roll(g, back, axes),))


def moveaxis(x, source, destination) -> Tensor:
    """x with axes `source` moved to `destination` (ints or tuples), the others in order."""
    x, xv = _array(x)
    src, dst = _axes_of(source, xv.ndim, "moveaxis"), _axes_of(destination, xv.ndim, "moveaxis")
    if len(src) != len(dst):
        raise ShapeError(f"ops.moveaxis: source {source} and destination {destination} must have the "
                         f"same number of axes.")
    return result(np.moveaxis(xv, src, dst), (x,), lambda g: (np.moveaxis(g, dst, src),))


def swapaxes(x, axis1, axis2) -> Tensor:
    """x with axes `axis1` and `axis2` exchanged."""
    x, xv = _array(x)
    a, b = axis_of(axis1, xv.ndim, "swapaxes"), axis_of(axis2, xv.ndim, "swapaxes")
    return result(np.swapaxes(xv, a, b), (x,), lambda g: (np.swapaxes(g, a, b),))


def _triangle(op: str, fn, x, k):
    x, xv = _array(x)
    if xv.ndim < 2:
        raise ShapeError(f"ops.{op}: needs an input of rank 2 or more, got shape {xv.shape}.")
    return result(fn(xv, int(k)), (x,), lambda g: (fn(g, int(k)),))


def tril(x, k=0) -> Tensor:
    """x with the entries above the k-th diagonal of its last two axes set to 0."""
    return _triangle("tril", np.tril, x, k)


def triu(x, k=0) -> Tensor:
    """x with the entries below the k-th diagonal of its last two axes set to 0."""
    return _triangle("triu", np.triu, x, k)


def size(x) -> int:
    """The number of elements of x."""
    return int(np.size(value_of(as_tensor(x))))


def ndim(x) -> int:
    """The number of axes of x."""
    return int(np.ndim(value_of(as_tensor(x))))
