"""Products of keras.ops beyond matmul: `cross`, `kron`, `correlate` and `vander`, each with
its gradient (bilinear in the two operands, so each operand's gradient is the same product
with the output gradient in its place)."""
from __future__ import annotations

import numpy as np

from ..autodiff.tape import unbroadcast
from ..autodiff.tensor import Tensor, as_tensor, is_tracked, result
from ..errors import ConfigError, ShapeError
from .shape import axis_of

__all__ = ["cross", "kron", "correlate", "vander"]


def _three(v: np.ndarray) -> np.ndarray:
    """Vectors on the last axis padded from 2 to 3 components (z = 0)."""
    return v if v.shape[-1] == 3 else np.concatenate([v, np.zeros(v.shape[:-1] + (1,), v.dtype)], -1)


def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None) -> Tensor:
    """The cross product of the 2- or 3-vectors along `axisa` of x1 and `axisb` of x2 (other
    axes broadcast), put along `axisc` (`axis` sets all three). Two 2-vectors give the scalar z
    component, as NumPy. The gradients are b x g and g x a."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    if axis is not None:
        axisa = axisb = axisc = axis
    am = np.moveaxis(av, axis_of(axisa, av.ndim, "cross"), -1)
    bm = np.moveaxis(bv, axis_of(axisb, bv.ndim, "cross"), -1)
    if am.shape[-1] not in (2, 3) or bm.shape[-1] not in (2, 3):
        raise ShapeError(f"ops.cross: the vector axes must have length 2 or 3, got shapes {av.shape} "
                         f"(axisa={axisa}) and {bv.shape} (axisb={axisb}).")
    try:
        c3 = np.cross(_three(am), _three(bm))
    except ValueError:
        raise ShapeError(f"ops.cross: shapes {av.shape} and {bv.shape} do not broadcast outside the vector "
                         f"axes.") from None
    scalar = am.shape[-1] == 2 and bm.shape[-1] == 2
    cax = None if scalar else axis_of(axisc, c3.ndim, "cross")
    y = c3[..., 2] if scalar else np.moveaxis(c3, -1, cax)

    def vjp(g):
        if scalar:
            g3 = np.zeros(g.shape + (3,), dtype=g.dtype)
            g3[..., 2] = g
        else:
            g3 = np.moveaxis(g, cax, -1)
        ga = np.cross(_three(bm), g3)[..., :am.shape[-1]]
        gb = np.cross(g3, _three(am))[..., :bm.shape[-1]]
        return (np.moveaxis(unbroadcast(ga, am.shape), -1, axis_of(axisa, av.ndim, "cross")),
                np.moveaxis(unbroadcast(gb, bm.shape), -1, axis_of(axisb, bv.ndim, "cross")))
    return result(y, (a, b), vjp)


def kron(x1, x2) -> Tensor:
    """The Kronecker product: blocks x1[i] * x2 (the lower rank padded with leading 1s)."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    y = np.kron(av, bv)
    d = max(av.ndim, bv.ndim)
    sa, sb = (1,) * (d - av.ndim) + av.shape, (1,) * (d - bv.ndim) + bv.shape
    need_a, need_b = is_tracked(a), is_tracked(b)

    def vjp(g):  # g as (m0, n0, m1, n1, ...): block i of x1, element j of x2
        gi = np.reshape(g, tuple(v for pair in zip(sa, sb) for v in pair))
        ea = tuple(range(0, 2 * d, 2))
        eb = tuple(range(1, 2 * d, 2))
        ga = np.sum(gi * np.expand_dims(bv.reshape(sb), ea), axis=eb).reshape(av.shape) if need_a else None
        gb = np.sum(gi * np.expand_dims(av.reshape(sa), eb), axis=ea).reshape(bv.shape) if need_b else None
        return ga, gb
    return result(y, (a, b), vjp)


def _correlation_dtype(av, bv):
    dtype = np.result_type(av, bv)
    return np.float64 if dtype in (np.int64, np.float64) else (dtype if dtype == np.float16 else np.float32)


def correlate(x1, x2, mode="valid") -> Tensor:
    """The cross-correlation of two 1-D tensors, c[k] = sum_n x1[n + k] * x2[n], over the
    `mode` "valid", "same" or "full" range (NumPy's correlate; float32 unless float64/int64)."""
    if mode not in ("valid", "same", "full"):
        raise ConfigError(f"ops.correlate: mode must be 'valid', 'same' or 'full', got {mode!r}.")
    a, b = as_tensor(x1), as_tensor(x2)
    dtype = _correlation_dtype(a.value, b.value)
    av, bv = np.asarray(a.value, dtype=dtype), np.asarray(b.value, dtype=dtype)
    if av.ndim != 1 or bv.ndim != 1 or not av.size or not bv.size:
        raise ShapeError(f"ops.correlate: needs two non-empty 1-D tensors, got shapes {av.shape} and {bv.shape}.")
    y = np.correlate(av, bv, mode)
    n_full = len(av) + len(bv) - 1
    m = min(len(av), len(bv))
    start = {"full": 0, "valid": m - 1, "same": (m - 1) // 2 if len(av) >= len(bv) else m // 2}[mode]

    def vjp(g):  # full[j] = sum_n a[n + j - (len(b) - 1)] * b[n]
        gf = np.zeros(n_full, dtype=g.dtype)
        gf[start:start + len(g)] = g
        return np.correlate(gf, bv[::-1], "valid"), np.correlate(gf, av, "valid")[::-1].copy()
    return result(y, (a, b), vjp)


def vander(x, N=None, increasing=False) -> Tensor:  # noqa: N803 (Keras's name)
    """The Vandermonde matrix of the 1-D x: columns x**(N-1), ..., x**0 (reversed when
    `increasing`), N = len(x) by default; the gradient is sum_k g[:, k] * k * x**(k-1)."""
    x = as_tensor(x)
    xv = np.asarray(x.value)
    if xv.ndim != 1:
        raise ShapeError(f"ops.vander: x must be 1-D, got shape {xv.shape}.")
    n = len(xv) if N is None else int(N)
    powers = np.arange(n) if increasing else np.arange(n)[::-1]
    y = np.vander(xv, n, increasing=increasing)
    if y.dtype.kind != "f":
        return Tensor(y)

    def vjp(g):
        lower = np.power(xv[:, None], np.maximum(powers - 1, 0)) * powers
        return (np.sum(g * lower, axis=1),)
    return result(y, (x,), vjp)
