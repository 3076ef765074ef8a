"""Elementwise math of keras.ops (exponentials, logarithms, powers, rounding, clipping, the
elementwise maximum/minimum and `where`), each with its derivative.

Float-only functions turn integer input into floatx (as Keras does); float input keeps its dtype.
At a kink the gradient follows TensorFlow, Keras's default backend: `maximum`/`minimum` give a
tie wholly to their first argument, `clip` passes the gradient to `x` on the closed interval
[x_min, x_max]; rounding and `sign` have no gradient (their derivative is 0 where it exists).
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tape import unbroadcast
from ..autodiff.tensor import Tensor, _binary, as_tensor, is_tracked, result, value_of
from ..errors import ConfigError, ShapeError
from ..special import _as_float

__all__ = ["exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "square", "cbrt",
           "reciprocal", "logaddexp", "sign", "floor", "ceil", "round", "trunc", "nan_to_num", "clip",
           "maximum", "minimum", "where", "isnan", "isinf", "isfinite"]

_LN2 = np.log(2.0)
_LN10 = np.log(10.0)


def _unary(name: str, fn, deriv, doc: str):
    """A differentiated elementwise op: y = fn(x), dx = g * deriv(x, y) (computed in the vjp)."""
    def op(x) -> Tensor:
        x = as_tensor(x)
        xv = _as_float(x.value)
        y = fn(xv)
        return result(y, (x,), lambda g: (g * deriv(xv, y),))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


exp = _unary("exp", np.exp, lambda x, y: y, "e ** x.")
exp2 = _unary("exp2", np.exp2, lambda x, y: y * _LN2, "2 ** x.")
expm1 = _unary("expm1", np.expm1, lambda x, y: y + 1, "e ** x - 1, exact for small x.")
log = _unary("log", np.log, lambda x, y: 1 / x, "Natural logarithm.")
log1p = _unary("log1p", np.log1p, lambda x, y: 1 / (1 + x), "log(1 + x), exact for small x.")
log2 = _unary("log2", np.log2, lambda x, y: 1 / (x * _LN2), "Base-2 logarithm.")
log10 = _unary("log10", np.log10, lambda x, y: 1 / (x * _LN10), "Base-10 logarithm.")
sqrt = _unary("sqrt", np.sqrt, lambda x, y: 0.5 / y, "Square root.")
rsqrt = _unary("rsqrt", lambda x: 1 / np.sqrt(x), lambda x, y: -0.5 * y / x, "1 / sqrt(x) (keras.ops.rsqrt).")
cbrt = _unary("cbrt", np.cbrt, lambda x, y: 1 / (3 * y * y), "Cube root (real, also of negative x).")
reciprocal = _unary("reciprocal", lambda x: 1 / x, lambda x, y: -y * y, "1 / x.")


def square(x) -> Tensor:
    """x * x (integers stay integers, as NumPy)."""
    x = as_tensor(x)
    xv = x.value
    return result(np.square(xv), (x,), lambda g: (g * 2 * xv,))


def _floats(v):
    """v unchanged if it is already float (a Python float stays weak), else as floatx."""
    return v if isinstance(v, float) or np.result_type(v).kind == "f" else _as_float(v)


def logaddexp(x1, x2) -> Tensor:
    """log(exp(x1) + exp(x2)) without overflow, broadcasting."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = _floats(a.value), _floats(b.value)
    y = _binary("logaddexp", np.logaddexp, Tensor(av), Tensor(bv))
    need_a, need_b = is_tracked(a), is_tracked(b)
    return result(y, (a, b), lambda g: (unbroadcast(g * np.exp(av - y), np.shape(av)) if need_a else None,
                                        unbroadcast(g * np.exp(bv - y), np.shape(bv)) if need_b else None))


def _constant(fn, x, *args, **kwargs) -> Tensor:
    """A piecewise-constant op: its value, recorded as no gradient."""
    return Tensor(fn(as_tensor(x).value, *args, **kwargs))


def sign(x) -> Tensor:
    """-1, 0 or 1 by the sign of x (not differentiated)."""
    return _constant(np.sign, x)


def floor(x) -> Tensor:
    """Largest integer <= x (not differentiated)."""
    return _constant(np.floor, _as_float(value_of(x)))


def ceil(x) -> Tensor:
    """Smallest integer >= x (not differentiated)."""
    return _constant(np.ceil, _as_float(value_of(x)))


def trunc(x) -> Tensor:
    """x rounded towards 0 (not differentiated)."""
    return _constant(np.trunc, x)


def round(x, decimals=0) -> Tensor:  # noqa: A001 (Keras's name)
    """x rounded to `decimals` places, halves to even as NumPy (not differentiated)."""
    return _constant(np.round, x, decimals)


def isnan(x) -> Tensor:
    """Whether each element is NaN (bool, not differentiated)."""
    return _constant(np.isnan, x)


def isinf(x) -> Tensor:
    """Whether each element is +inf or -inf (bool, not differentiated)."""
    return _constant(np.isinf, x)


def isfinite(x) -> Tensor:
    """Whether each element is neither NaN nor infinite (bool, not differentiated)."""
    return _constant(np.isfinite, x)


def nan_to_num(x, nan=0.0, posinf=None, neginf=None) -> Tensor:
    """x with NaN, +inf and -inf replaced; the gradient passes where x is finite, 0 elsewhere."""
    x = as_tensor(x)
    xv = x.value
    y = np.nan_to_num(xv, nan=nan, posinf=posinf, neginf=neginf)
    return result(y, (x,), lambda g: (np.where(np.isfinite(xv), g, 0),))


def clip(x, x_min, x_max) -> Tensor:
    """min(max(x, x_min), x_max), broadcasting. The gradient goes to x where
    x_min <= x <= x_max (bounds included, as TensorFlow's clip_by_value), to x_min where x is
    below it, to x_max where max(x, x_min) is above it (so x_min > x_max gives x_max)."""
    x, lo, hi = as_tensor(x), as_tensor(x_min), as_tensor(x_max)
    xv, lv, hv = x.value, lo.value, hi.value
    try:
        y = np.clip(xv, lv, hv)
    except ValueError:
        raise ShapeError(f"ops.clip: shapes {np.shape(xv)}, {np.shape(lv)} and {np.shape(hv)} of x, x_min "
                         f"and x_max do not broadcast together.") from None

    def vjp(g):
        below = xv < lv
        over = np.maximum(xv, lv) > hv
        return (unbroadcast(np.where(below | over, 0, g), np.shape(xv)),
                unbroadcast(np.where(below & ~over, g, 0), np.shape(lv)),
                unbroadcast(np.where(over, g, 0), np.shape(hv)))
    return result(y, (x, lo, hi), vjp)


def maximum(x1, x2) -> Tensor:
    """Elementwise larger of x1 and x2, broadcasting; a tie's gradient goes to x1 (TensorFlow)."""
    a, b = as_tensor(x1), as_tensor(x2)
    y = _binary("maximum", np.maximum, a, b)
    av, bv = a.value, b.value

    def vjp(g):
        first = np.greater_equal(av, bv)
        return (unbroadcast(np.where(first, g, 0), np.shape(av)), unbroadcast(np.where(first, 0, g), np.shape(bv)))
    return result(y, (a, b), vjp)


def minimum(x1, x2) -> Tensor:
    """Elementwise smaller of x1 and x2, broadcasting; a tie's gradient goes to x1 (TensorFlow)."""
    a, b = as_tensor(x1), as_tensor(x2)
    y = _binary("minimum", np.minimum, a, b)
    av, bv = a.value, b.value

    def vjp(g):
        first = np.less_equal(av, bv)
        return (unbroadcast(np.where(first, g, 0), np.shape(av)), unbroadcast(np.where(first, 0, g), np.shape(bv)))
    return result(y, (a, b), vjp)


def where(condition, x1=None, x2=None):
    """x1 where `condition` holds, else x2 (broadcasting all three); the gradient goes to the
    chosen side and never to `condition`. With x1 and x2 both None: the indices where
    `condition` is true, one int Tensor per axis (as NumPy's nonzero)."""
    c = np.asarray(value_of(as_tensor(condition))).astype(bool)
    if x1 is None and x2 is None:
        return tuple(Tensor(i) for i in np.nonzero(c))
    if x1 is None or x2 is None:
        raise ConfigError("ops.where: give both x1 and x2, or neither (for the indices where condition holds).")
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = a.value, b.value
    try:
        y = np.where(c, av, bv)
    except ValueError:
        raise ShapeError(f"ops.where: shapes {c.shape} (condition), {np.shape(av)} and {np.shape(bv)} do not "
                          f"broadcast together.") from None
    return result(y, (a, b), lambda g: (unbroadcast(np.where(c, g, 0), np.shape(av)),
                                        unbroadcast(np.where(c, 0, g), np.shape(bv))))
