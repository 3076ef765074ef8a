"""More elementwise ops of keras.ops: integer-style division (`floor_divide`, `mod`),
`divide_no_nan`, `hypot`, `logaddexp2`, `deg2rad`, `heaviside`, `ldexp`, `nextafter`, `erfinv`,
the predicates (`isclose`, `isin`, `signbit`, ...), `logical_xor`, and the complex parts.

Differentiated where Keras's JAX and TensorFlow backends are: `mod` (d/dx1 = 1,
d/dx2 = -floor(x1 / x2)), `divide_no_nan` (0 gradient to both where the divisor is 0),
`hypot` (0 at the origin), `logaddexp2`, `deg2rad`, `heaviside` (to x2 where x1 == 0, the only
place it is used), `ldexp` (to x1), `erfinv`, and `real`/`conj` of real tensors (the identity).
Everything else is piecewise constant or boolean and returns a plain Tensor. Complex tensors are
computed but not differentiated.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tape import unbroadcast
from ..autodiff.tensor import Tensor, _binary, as_tensor, is_tracked, result, value_of
from ..errors import ConfigError
from ..special import erf as _erf
from .math import _floats

__all__ = ["floor_divide", "mod", "divide_no_nan", "hypot", "logaddexp2", "deg2rad", "heaviside", "ldexp",
           "nextafter", "erfinv", "isclose", "isin", "isneginf", "isposinf", "isreal", "signbit", "logical_xor",
           "real", "imag", "conj", "conjugate", "angle"]

_SQRT_PI_OVER_2 = np.sqrt(np.pi) / 2


def _pair(x1, x2):
    a, b = as_tensor(x1), as_tensor(x2)
    return a, b, a.value, b.value


def _plain(name, fn, *xs, **kwargs) -> Tensor:
    """A not-differentiated op of any arity, a broadcast failure naming it and the shapes."""
    ts = [as_tensor(x) for x in xs]
    if len(ts) == 2:
        return Tensor(_binary(name, lambda a, b: fn(a, b, **kwargs), ts[0], ts[1]))
    return Tensor(fn(*[t.value for t in ts], **kwargs))


def floor_divide(x1, x2) -> Tensor:
    """x1 // x2, rounding towards -inf (NumPy's dtype rules; not differentiated)."""
    return _plain("floor_divide", np.floor_divide, x1, x2)


def mod(x1, x2) -> Tensor:
    """x1 mod x2 with the sign of x2 (NumPy's `mod`). For floats the gradient is 1 to x1 and
    -floor(x1 / x2) to x2 (as TensorFlow and JAX); integers are not differentiated."""
    a, b, av, bv = _pair(x1, x2)
    y = _binary("mod", np.mod, a, b)
    if np.result_type(y).kind != "f":
        return Tensor(y)
    need_b = is_tracked(b)
    return result(y, (a, b), lambda g: (unbroadcast(g, np.shape(av)),
                                        unbroadcast(-g * np.floor_divide(av, bv), np.shape(bv)) if need_b else None))


def divide_no_nan(x1, x2) -> Tensor:
    """x1 / x2, but 0 where x2 == 0 (and gradient 0 there, to both). Result in float."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = _floats(a.value), _floats(b.value)
    zero = np.equal(bv, 0)
    safe = np.where(zero, 1, bv).astype(np.result_type(bv), copy=False)
    y = np.where(zero, 0, _binary("divide_no_nan", np.divide, Tensor(av), Tensor(safe)))
    y = y.astype(np.result_type(av, bv), copy=False)
    need_b = is_tracked(b)

    def vjp(g):
        q = np.where(zero, 0, g / safe)
        return (unbroadcast(q, np.shape(av)), unbroadcast(-q * y, np.shape(bv)) if need_b else None)
    return result(y, (a, b), vjp)


def hypot(x1, x2) -> Tensor:
    """sqrt(x1**2 + x2**2) without overflow; the gradient is x / hypot (0 at the origin)."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = _floats(a.value), _floats(b.value)
    y = _binary("hypot", np.hypot, Tensor(av), Tensor(bv))

    def vjp(g):
        q = np.where(y > 0, g / np.where(y > 0, y, 1), 0)
        return unbroadcast(q * av, np.shape(av)), unbroadcast(q * bv, np.shape(bv))
    return result(y, (a, b), vjp)


def logaddexp2(x1, x2) -> Tensor:
    """log2(2**x1 + 2**x2) without overflow, broadcasting; d/dx1 = 2**(x1 - y)."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = _floats(a.value), _floats(b.value)
    y = _binary("logaddexp2", np.logaddexp2, Tensor(av), Tensor(bv))
    return result(y, (a, b), lambda g: (unbroadcast(g * np.exp2(av - y), np.shape(av)),
                                        unbroadcast(g * np.exp2(bv - y), np.shape(bv))))


def deg2rad(x) -> Tensor:
    """Degrees to radians: x * pi / 180 (integers to floatx)."""
    x = as_tensor(x)
    xv = _floats(x.value)
    k = np.pi / 180
    return result(np.deg2rad(xv), (x,), lambda g: (g * k,))


def heaviside(x1, x2) -> Tensor:
    """0 where x1 < 0, 1 where x1 > 0, x2 where x1 == 0 (integers to floatx). Not differentiated
    in x1 (a step); x2 receives the gradient where x1 == 0, as in JAX."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = _floats(a.value), _floats(b.value)
    y = _binary("heaviside", np.heaviside, Tensor(av), Tensor(bv))
    return result(y, (b,), lambda g: (unbroadcast(np.where(av == 0, g, 0), np.shape(bv)),))


def ldexp(x1, x2) -> Tensor:
    """x1 * 2**x2 for an integer x2; the gradient to x1 is 2**x2 (x2 is not differentiated)."""
    a, b = as_tensor(x1), as_tensor(x2)
    bv = b.value
    if np.result_type(bv).kind not in "iu":
        raise ConfigError(f"ops.ldexp: the exponent x2 must be an integer tensor, got dtype {np.result_type(bv)}.")
    av = _floats(a.value)
    y = _binary("ldexp", np.ldexp, Tensor(av), b)
    return result(y, (a,), lambda g: (unbroadcast(g * np.ldexp(np.ones((), np.result_type(y)), bv), np.shape(av)),))


def nextafter(x1, x2) -> Tensor:
    """The next float after x1 towards x2 (not differentiated)."""
    return _plain("nextafter", np.nextafter, _floats(value_of(as_tensor(x1))), _floats(value_of(as_tensor(x2))))


def _erfinv(x: np.ndarray) -> np.ndarray:
    """Inverse error function: Giles' single-precision polynomial (M. Giles, "Approximating the
    erfinv function", GPU Computing Gems, 2011) as a start, then three Newton steps on
    distdl.special.erf, which bring it to the precision of erf (~1e-15 in float64). +-1 give
    +-inf, |x| > 1 gives NaN."""
    x = np.asarray(x)
    xd = x.astype(np.float64)
    w = -np.log(np.maximum((1.0 - xd) * (1.0 + xd), 1e-300))
    small = w < 5.0
    ws, wb = w - 2.5, np.sqrt(w) - 3.0
    ps = np.polyval([2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                     -0.00125372503, -0.00417768164, 0.246640727, 1.50140941], ws)
    pb = np.polyval([-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                     -0.0076224613, 0.00943887047, 1.00167406, 2.83297682], wb)
    y = np.where(small, ps, pb) * xd
    inside = np.abs(xd) < 1
    for _ in range(3):   # Newton on erf(y) - x = 0, erf'(y) = 2/sqrt(pi) exp(-y^2)
        step = (_erf(y) - xd) * _SQRT_PI_OVER_2 * np.exp(np.minimum(y * y, 700.0))
        y = np.where(inside, y - step, y)
    y = np.where(np.abs(xd) == 1, np.copysign(np.inf, xd), np.where(np.abs(xd) > 1, np.nan, y))
    return y.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


def erfinv(x) -> Tensor:
    """The inverse of erf on (-1, 1) (integers to floatx); gradient sqrt(pi)/2 * exp(erfinv(x)**2)."""
    x = as_tensor(x)
    xv = _floats(x.value)
    y = _erfinv(xv).astype(np.result_type(xv), copy=False)
    return result(y, (x,), lambda g: (g * _SQRT_PI_OVER_2 * np.exp(y * y),))


def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False) -> Tensor:
    """|x1 - x2| <= atol + rtol * |x2| elementwise (bool, not differentiated)."""
    return _plain("isclose", np.isclose, x1, x2, rtol=rtol, atol=atol, equal_nan=equal_nan)


def isin(x1, x2, assume_unique=False, invert=False) -> Tensor:
    """Whether each element of x1 occurs in x2 (bool of x1's shape; `invert` negates)."""
    a, b = value_of(as_tensor(x1)), value_of(as_tensor(x2))
    return Tensor(np.isin(a, b, assume_unique=assume_unique, invert=invert))


def isneginf(x) -> Tensor:
    """Whether each element is -inf (bool)."""
    return Tensor(np.isneginf(value_of(as_tensor(x))))


def isposinf(x) -> Tensor:
    """Whether each element is +inf (bool)."""
    return Tensor(np.isposinf(value_of(as_tensor(x))))


def isreal(x) -> Tensor:
    """Whether each element has a zero imaginary part (bool; all true for real tensors)."""
    return Tensor(np.isreal(value_of(as_tensor(x))))


def signbit(x) -> Tensor:
    """Whether each element's sign bit is set (bool; true for -0.0 and negative numbers)."""
    return Tensor(np.signbit(value_of(as_tensor(x))))


def logical_xor(x1, x2) -> Tensor:
    """Elementwise exclusive or of the truth values (bool)."""
    return _plain("logical_xor", np.logical_xor, x1, x2)


def _identity_if_real(fn, x) -> Tensor:
    """fn(x), recorded as the identity for real x (complex x: not differentiated)."""
    x = as_tensor(x)
    xv = x.value
    if np.iscomplexobj(xv):
        return Tensor(fn(xv))
    return result(fn(xv), (x,), lambda g: (g,))


def real(x) -> Tensor:
    """The real part (of a real tensor: itself, differentiated as the identity)."""
    return _identity_if_real(np.real, x)


def conj(x) -> Tensor:
    """The complex conjugate (of a real tensor: itself, differentiated as the identity)."""
    return _identity_if_real(np.conj, x)


def conjugate(x) -> Tensor:
    """The complex conjugate (keras.ops.conjugate, as conj)."""
    return _identity_if_real(np.conjugate, x)


def imag(x) -> Tensor:
    """The imaginary part (of a real tensor: zeros; no gradient reaches x through it)."""
    return Tensor(np.imag(value_of(as_tensor(x))))


def angle(x) -> Tensor:
    """The argument of each element in radians (of a real tensor: 0 or pi; not differentiated).
    Integers become floatx."""
    xv = np.asarray(value_of(as_tensor(x)))
    return Tensor(np.angle(xv if xv.dtype.kind in "fc" else _floats(xv)))
