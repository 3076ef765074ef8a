"""Trigonometric and hyperbolic functions of keras.ops, their inverses, and erf, each with its
derivative. Integer input becomes floatx; float input keeps its dtype."""
from __future__ import annotations

import numpy as np

from ..autodiff.tape import unbroadcast
from ..autodiff.tensor import Tensor, _binary, as_tensor, is_tracked, result
from ..special import erf as _erf
from .math import _floats, _unary

__all__ = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh",
           "arcsinh", "arccosh", "arctanh", "erf"]

_TWO_OVER_SQRT_PI = 2 / np.sqrt(np.pi)

sin = _unary("sin", np.sin, lambda x, y: np.cos(x), "Sine (radians).")
cos = _unary("cos", np.cos, lambda x, y: -np.sin(x), "Cosine (radians).")
tan = _unary("tan", np.tan, lambda x, y: 1 + y * y, "Tangent (radians).")
arcsin = _unary("arcsin", np.arcsin, lambda x, y: 1 / np.sqrt(1 - x * x), "Inverse sine, in [-pi/2, pi/2].")
arccos = _unary("arccos", np.arccos, lambda x, y: -1 / np.sqrt(1 - x * x), "Inverse cosine, in [0, pi].")
arctan = _unary("arctan", np.arctan, lambda x, y: 1 / (1 + x * x), "Inverse tangent, in (-pi/2, pi/2).")
sinh = _unary("sinh", np.sinh, lambda x, y: np.cosh(x), "Hyperbolic sine.")
cosh = _unary("cosh", np.cosh, lambda x, y: np.sinh(x), "Hyperbolic cosine.")
tanh = _unary("tanh", np.tanh, lambda x, y: 1 - y * y, "Hyperbolic tangent.")
arcsinh = _unary("arcsinh", np.arcsinh, lambda x, y: 1 / np.sqrt(x * x + 1), "Inverse hyperbolic sine.")
arccosh = _unary("arccosh", np.arccosh, lambda x, y: 1 / np.sqrt(x * x - 1), "Inverse hyperbolic cosine (x >= 1).")
arctanh = _unary("arctanh", np.arctanh, lambda x, y: 1 / (1 - x * x), "Inverse hyperbolic tangent (|x| < 1).")
erf = _unary("erf", _erf, lambda x, y: _TWO_OVER_SQRT_PI * np.exp(-x * x),
             "The error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to x (keras.ops.erf).")


def arctan2(x1, x2) -> Tensor:
    """The angle of the point (x2, x1), in [-pi, pi], broadcasting (x1 is y, x2 is x)."""
    a, b = as_tensor(x1), as_tensor(x2)
    av, bv = _floats(a.value), _floats(b.value)
    y = _binary("arctan2", np.arctan2, Tensor(av), Tensor(bv))
    need_a, need_b = is_tracked(a), is_tracked(b)

    def vjp(g):
        r2 = av * av + bv * bv
        return (unbroadcast(g * bv / r2, np.shape(av)) if need_a else None,
                unbroadcast(-g * av / r2, np.shape(bv)) if need_b else None)
    return result(y, (a, b), vjp)
