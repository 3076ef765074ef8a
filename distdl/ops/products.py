"""Products and contractions of keras.ops: dot, einsum, tensordot, outer, inner, vdot, trace,
diagonal (matmul lives in distdl.autodiff), each with its gradient.

Every contraction is an einsum underneath: `dot`, `inner`, `tensordot` compute with NumPy's own
function and differentiate through `_einsum_grads`, which writes, for each operand, the einsum
of the output gradient with the other operands. That one rule covers what NumPy's einsum
allows: ellipses (also broadcast ones), indices summed within one operand only (their gradient
is broadcast back) and repeated indices in one operand (a diagonal: the gradient is written
onto it).
"""
from __future__ import annotations

import string

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, is_tracked, multiply, result
from ..errors import ShapeError

__all__ = ["dot", "einsum", "tensordot", "outer", "inner", "vdot", "trace", "diagonal"]

_LETTERS = string.ascii_letters


def _parse(subscripts: str, shapes) -> tuple:
    """Explicit subscripts: (per-operand index strings, output string), ellipses expanded to
    letters unused elsewhere (right-aligned, as NumPy broadcasts them)."""
    subscripts = subscripts.replace(" ", "")
    lhs, arrow, out = subscripts.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ShapeError(f"ops.einsum: subscripts {subscripts!r} name {len(ins)} operands, got {len(shapes)}.")
    free = [c for c in _LETTERS if c not in subscripts]
    width = max((len(shape) - len(s.replace("...", "")) for s, shape in zip(ins, shapes) if "..." in s), default=0)
    ell = "".join(free[:width])
    expanded = []
    for s, shape in zip(ins, shapes):
        if "..." in s:
            k = len(shape) - len(s.replace("...", ""))
            s = s.replace("...", ell[width - k:] if k else "")
        if len(s) != len(shape):
            raise ShapeError(f"ops.einsum: subscripts {s!r} do not fit an operand of shape {shape}.")
        expanded.append(s)
    if not arrow:  # implicit output: broadcast axes, then the indices used once, sorted
        joined = "".join(expanded)
        out = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return expanded, out


def _einsum_grads(ins, out, values, need, g) -> list:
    """Gradients of einsum(ins -> out) for the operands flagged in `need`."""
    sizes = {}
    for s, v in zip(ins, values):
        for c, n in zip(s, v.shape):
            sizes[c] = max(sizes.get(c, 1), n)
    grads = []
    for i, (s, v) in enumerate(zip(ins, values)):
        if not need[i]:
            grads.append(None)
            continue
        others = [(t, w) for j, (t, w) in enumerate(zip(ins, values)) if j != i]
        seen = set(out).union(*[set(t) for t, _ in others]) if others else set(out)
        uniq = "".join(dict.fromkeys(s))
        known = "".join(c for c in uniq if c in seen)
        subs = ",".join([out] + [t for t, _ in others]) + "->" + known
        gk = np.einsum(subs, g, *[w for _, w in others], optimize=bool(others))
        # indices only this operand sums over: the gradient is the same all along them
        gu = np.broadcast_to(np.expand_dims(gk, tuple(k for k, c in enumerate(uniq) if c not in seen)),
                             tuple(sizes[c] for c in uniq))
        # axes this operand broadcast (length 1 against a longer one elsewhere): sum them back
        own = {c: n for c, n in zip(s, v.shape)}
        gu = np.sum(gu, axis=tuple(k for k, c in enumerate(uniq) if own[c] == 1 and sizes[c] != 1), keepdims=True)
        if len(uniq) == len(s):
            grads.append(np.transpose(gu, [uniq.index(c) for c in s]) if uniq != s else np.array(gu))
            continue
        full = np.zeros(v.shape, dtype=gu.dtype)   # repeated indices: write onto the diagonal
        grid = np.ogrid[tuple(slice(0, n) for n in gu.shape)]
        full[tuple(grid[uniq.index(c)] for c in s)] = gu
        grads.append(full)
    return grads


def _record(y, ts, ins, out) -> Tensor:
    values = [np.asarray(t.value) for t in ts]
    need = [is_tracked(t) for t in ts]
    return result(y, tuple(ts), lambda g: tuple(_einsum_grads(ins, out, values, need, g)))


def einsum(subscripts, *operands) -> Tensor:
    """Einstein summation with NumPy's subscripts (explicit or implicit output, ellipses,
    repeated indices), e.g. einsum("bij,bjk->bik", a, b)."""
    ts = [as_tensor(t) for t in operands]
    values = [np.asarray(t.value) for t in ts]
    ins, out = _parse(subscripts, [v.shape for v in values])
    try:
        y = np.einsum(subscripts, *values, optimize=len(values) > 1)
    except ValueError as exc:
        raise ShapeError(f"ops.einsum: subscripts {subscripts!r} do not fit operands of shapes "
                         f"{[v.shape for v in values]} ({exc}).") from None
    return _record(y, ts, ins, out)


def tensordot(x1, x2, axes=2) -> Tensor:
    """Sum of products over `axes`: an int n (the last n of x1 with the first n of x2) or a
    pair of axis lists; the free axes of x1 then those of x2 remain."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    if np.isscalar(axes):
        n = int(axes)
        ax_a, ax_b = list(range(av.ndim - n, av.ndim)), list(range(n))
    else:
        ax_a, ax_b = ([int(k) for k in np.atleast_1d(part)] for part in axes)
    try:
        ax_a = [k % av.ndim for k in ax_a]
        ax_b = [k % bv.ndim for k in ax_b]
        y = np.tensordot(av, bv, axes=(ax_a, ax_b))
    except (ValueError, ZeroDivisionError):
        raise ShapeError(f"ops.tensordot: axes {axes} do not pair up shapes {av.shape} and {bv.shape} "
                         f"(the summed axes must have equal lengths).") from None
    sa = list(_LETTERS[:av.ndim])
    sb = list(_LETTERS[av.ndim:av.ndim + bv.ndim])
    for i, j in zip(ax_a, ax_b):
        sb[j] = sa[i]
    out = "".join(c for k, c in enumerate(sa) if k not in ax_a) + "".join(c for k, c in enumerate(sb) if k not in ax_b)
    return _record(y, (a, b), ["".join(sa), "".join(sb)], out)


def dot(x1, x2) -> Tensor:
    """NumPy's dot: a product with a scalar, the inner product of vectors, else the sum over the
    last axis of x1 and the second-to-last (or only) axis of x2."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    if av.ndim == 0 or bv.ndim == 0:
        return multiply(a, b)
    if av.shape[-1] != bv.shape[max(bv.ndim - 2, 0)]:
        which = "only" if bv.ndim == 1 else "second-to-last"
        raise ShapeError(f"ops.dot: shapes {av.shape} and {bv.shape} do not fit together (the last axis of "
                         f"the first must equal the {which} axis of the second).")
    return tensordot(a, b, axes=([av.ndim - 1], [max(bv.ndim - 2, 0)]))


def inner(x1, x2) -> Tensor:
    """The sum over the last axes of x1 and x2 (a product when either is a scalar)."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    if av.ndim == 0 or bv.ndim == 0:
        return multiply(a, b)
    if av.shape[-1] != bv.shape[-1]:
        raise ShapeError(f"ops.inner: the last axes of shapes {av.shape} and {bv.shape} must have equal lengths.")
    return tensordot(a, b, axes=([av.ndim - 1], [bv.ndim - 1]))


def outer(x1, x2) -> Tensor:
    """The outer product of x1 and x2, both flattened: shape (x1.size, x2.size)."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    y = np.outer(av, bv)
    return result(y, (a, b), lambda g: ((g @ bv.ravel()).reshape(av.shape), (av.ravel() @ g).reshape(bv.shape)))


def vdot(x1, x2) -> Tensor:
    """The dot product of x1 and x2 flattened (equal sizes)."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    if av.size != bv.size:
        raise ShapeError(f"ops.vdot: inputs of shapes {av.shape} and {bv.shape} must have the same size.")
    return result(np.vdot(av, bv), (a, b), lambda g: ((g * bv).reshape(av.shape), (g * av).reshape(bv.shape)))


def _diagonal_index(op: str, shape, offset, axis1, axis2):
    """(a1, a2, rows, cols): the two axes (non-negative) and the diagonal's positions on them."""
    nd = len(shape)
    if nd < 2:
        raise ShapeError(f"ops.{op}: needs an input of rank 2 or more, got shape {tuple(shape)}.")
    a1, a2 = int(axis1) % nd, int(axis2) % nd
    if a1 == a2 or not (-nd <= int(axis1) < nd and -nd <= int(axis2) < nd):
        raise ShapeError(f"ops.{op}: axis1={axis1} and axis2={axis2} must be two different axes of an "
                         f"input of shape {tuple(shape)}.")
    k = int(offset)
    n = max(0, min(shape[a1] - max(-k, 0), shape[a2] - max(k, 0)))
    return a1, a2, np.arange(n) + max(-k, 0), np.arange(n) + max(k, 0)


def _onto_diagonal(shape, a1, a2, rows, cols, gd):
    """An array of `shape`, zero but for gd (..., n) along the diagonal of axes a1, a2."""
    out = np.zeros(shape, dtype=gd.dtype)
    np.moveaxis(out, (a1, a2), (-2, -1))[..., rows, cols] = gd
    return out


def diagonal(x, offset=0, axis1=0, axis2=1) -> Tensor:
    """The `offset` diagonal over axes axis1, axis2, as x's other axes then the diagonal."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    a1, a2, rows, cols = _diagonal_index("diagonal", xv.shape, offset, axis1, axis2)
    y = np.diagonal(xv, int(offset), a1, a2)
    return result(y, (x,), lambda g: (_onto_diagonal(xv.shape, a1, a2, rows, cols, g),))


def trace(x, offset=0, axis1=0, axis2=1) -> Tensor:
    """The sum of the `offset` diagonal over axes axis1, axis2."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    a1, a2, rows, cols = _diagonal_index("trace", xv.shape, offset, axis1, axis2)
    y = np.trace(xv, int(offset), a1, a2)

    def vjp(g):   # every diagonal entry gets the gradient of its trace
        g = np.asarray(g)
        return (_onto_diagonal(xv.shape, a1, a2, rows, cols, np.broadcast_to(g[..., None], g.shape + (len(rows),))),)
    return result(y, (x,), vjp)
