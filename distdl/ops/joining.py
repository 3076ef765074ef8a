"""More joining, splitting and rearranging ops of keras.ops: `unstack`, `hstack`, `vstack`,
`dstack`, `append`, `vsplit`, `array_split`, `rot90`, `diag`, `diagflat`, `meshgrid`, `diff`,
`select` and `get_item`.

They move values without changing them (diff subtracts neighbours, select picks), so most are
written with the recorded ops of `shape` and `autodiff` and get their gradients from those;
`diag` and `rot90` have their own, equally simple vjps.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, getitem, result, subtract, value_of
from ..errors import ShapeError
from .math import where
from .shape import axis_of, broadcast_to, concatenate, ravel, reshape, split

__all__ = ["unstack", "hstack", "vstack", "dstack", "append", "vsplit", "array_split", "rot90", "diag",
           "diagflat", "meshgrid", "diff", "select", "get_item"]


def unstack(x, num=None, axis=0) -> list:
    """The slices of x along `axis`, as a list of tensors of rank one less (each recorded)."""
    x = as_tensor(x)
    shape = np.shape(x.value)
    ax = axis_of(axis, len(shape), "unstack")
    if num is not None and int(num) != shape[ax]:
        raise ShapeError(f"ops.unstack: num={num} does not match the length {shape[ax]} of axis {axis} "
                         f"(input shape {shape}).")
    return [getitem(x, (slice(None),) * ax + (i,)) for i in range(shape[ax])]


def _at_least(xs, rank: int) -> list:
    """Each tensor reshaped to at least `rank` axes as NumPy's atleast_2d/3d do."""
    out = []
    for t in xs:
        t = as_tensor(t)
        s = np.shape(t.value)
        if len(s) == 0:
            t = reshape(t, (1,) * rank)
        elif len(s) == 1 and rank >= 2:
            t = reshape(t, (1, s[0], 1)[:rank])
        elif len(s) == 2 and rank == 3:
            t = reshape(t, s + (1,))
        out.append(t)
    return out


def hstack(xs) -> Tensor:
    """The tensors joined along their second axis (the first for 1-D ones), as NumPy's hstack."""
    ts = [as_tensor(t) for t in xs]
    if ts and all(np.ndim(t.value) <= 1 for t in ts):
        return concatenate([reshape(t, (-1,)) for t in ts], axis=0)
    return concatenate(ts, axis=1)


def vstack(xs) -> Tensor:
    """The tensors joined along a first axis (1-D ones become rows), as NumPy's vstack."""
    return concatenate(_at_least(xs, 2), axis=0)


def dstack(xs) -> Tensor:
    """The tensors joined along a third axis (made (1, n, 1) or (m, n, 1) first), as NumPy's dstack."""
    return concatenate(_at_least(xs, 3), axis=2)


def append(x1, x2, axis=None) -> Tensor:
    """x2 joined to the end of x1 along `axis` (None: both flattened first)."""
    if axis is None:
        return concatenate([ravel(x1), ravel(x2)], axis=0)
    return concatenate([x1, x2], axis=axis)


def array_split(x, indices_or_sections, axis=0) -> list:
    """x cut along `axis` into `indices_or_sections` pieces whose lengths differ by at most one
    (the first ones longer), or at the given indices: a list of recorded tensors."""
    shape = np.shape(value_of(as_tensor(x)))
    ax = axis_of(axis, len(shape), "array_split")
    if np.ndim(indices_or_sections) == 0:
        n = int(indices_or_sections)
        if n <= 0:
            raise ShapeError(f"ops.array_split: the number of sections must be positive, got {n}.")
        each, extra = divmod(shape[ax], n)
        indices_or_sections = list(np.cumsum([each + 1] * extra + [each] * (n - extra))[:-1])
    return split(x, list(indices_or_sections), axis=ax)


def vsplit(x, indices_or_sections) -> list:
    """x cut along its first axis (rank >= 2) into equal sections or at indices, as split."""
    if np.ndim(value_of(as_tensor(x))) < 2:
        raise ShapeError(f"ops.vsplit: needs an input of rank 2 or more, got shape {np.shape(value_of(x))}.")
    return split(x, indices_or_sections, axis=0)


def rot90(array, k=1, axes=(0, 1)) -> Tensor:
    """The tensor rotated by 90 degrees `k` times in the plane of `axes`, from the first axis
    towards the second; the gradient rotates back."""
    x = as_tensor(array)
    xv = np.asarray(x.value)
    if xv.ndim < 2 or len(axes) != 2:
        raise ShapeError(f"ops.rot90: needs an input of rank 2 or more and two axes, got shape {xv.shape} and "
                         f"axes {axes}.")
    a, b = axis_of(axes[0], xv.ndim, "rot90"), axis_of(axes[1], xv.ndim, "rot90")
    if a == b:
        raise ShapeError(f"ops.rot90: the two axes must differ, got {axes}.")
    k = int(k)
    return result(np.rot90(xv, k, (a, b)), (x,), lambda g: (np.rot90(g, -k, (a, b)),))


def diag(x, k=0) -> Tensor:
    """For 1-D x: the square matrix with x on its k-th diagonal; for 2-D x: its k-th diagonal.
    The gradient reads the diagonal back, or writes it into a matrix of zeros."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    if xv.ndim not in (1, 2):
        raise ShapeError(f"ops.diag: needs a 1-D or 2-D input, got shape {xv.shape}.")
    k = int(k)
    y = np.diag(xv, k)
    if xv.ndim == 1:
        return result(y, (x,), lambda g: (np.diagonal(g, k).copy(),))

    def vjp(g):
        out = np.zeros(xv.shape, dtype=g.dtype)
        rows = np.arange(len(g)) + max(-k, 0)
        out[rows, rows + k] = g
        return (out,)
    return result(y, (x,), vjp)


def diagflat(x, k=0) -> Tensor:
    """The square matrix with the flattened x on its k-th diagonal."""
    return diag(ravel(x), k)


def meshgrid(*x, indexing="xy") -> list:
    """Coordinate grids from 1-D tensors, as NumPy's meshgrid ("xy": the first two axes
    swapped, "ij": matrix order); each grid is a recorded broadcast of its vector."""
    if indexing not in ("xy", "ij"):
        raise ShapeError(f"ops.meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}.")
    ts = [ravel(t) for t in x]
    sizes = [t.shape[0] for t in ts]
    n = len(ts)
    out = []
    for i, t in enumerate(ts):
        shape = [1] * n
        shape[i] = sizes[i]
        full = list(sizes)
        if indexing == "xy" and n > 1:
            shape[0], shape[1] = shape[1], shape[0]
            full[0], full[1] = full[1], full[0]
        out.append(broadcast_to(reshape(t, tuple(shape)), tuple(full)))
    return out


def diff(a, n=1, axis=-1) -> Tensor:
    """The n-th discrete difference along `axis`: out[i] = a[i + 1] - a[i], applied n times."""
    x = as_tensor(a)
    rank = np.ndim(x.value)
    ax = axis_of(axis, rank, "diff")
    for _ in range(int(n)):
        lead = (slice(None),) * ax
        x = subtract(getitem(x, lead + (slice(1, None),)), getitem(x, lead + (slice(None, -1),)))
    return x


def select(condlist, choicelist, default=0) -> Tensor:
    """From the first of `choicelist` whose condition in `condlist` holds, elementwise (else
    `default`); the gradient goes to the chosen tensor, never to the conditions."""
    if len(condlist) != len(choicelist) or not condlist:
        raise ShapeError(f"ops.select: condlist and choicelist must be non-empty and of one length, got "
                         f"{len(condlist)} and {len(choicelist)}.")
    out = default
    for c, v in zip(reversed(list(condlist)), reversed(list(choicelist))):
        out = where(c, v, out)
    return out


def get_item(x, key) -> Tensor:
    """x[key] (keras.ops.get_item): indexing and slicing, the gradient scattered back."""
    return getitem(x, key)
