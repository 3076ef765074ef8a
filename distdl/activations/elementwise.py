"""Elementwise activations: the ReLU family, ELU/SELU, sigmoids, tanh, softplus/softsign,
SiLU, GELU (exact erf or tanh form), Mish and exponential."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..special import constant, erf
from .base import Activation, _put

__all__ = ["Linear", "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "Sigmoid", "HardSigmoid", "HardSiLU", "Tanh",
           "Softplus", "Softsign", "SiLU", "GELU", "Mish", "Exponential"]

_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_SQRT_2_OVER_PI = 0.7978845608028654
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class Linear(Activation):
    """The identity, f(x) = x (a Dense layer's default)."""

    name = "linear"

    def forward(self, x, out=None):
        return _put(x, out)

    def backward(self, dy, x, y, out=None):
        return _put(dy, out)


class ReLU(Activation):
    """max(x, 0)."""

    name = "relu"

    def forward(self, x, out=None):
        if x.dtype.kind != "f":
            return np.maximum(x, 0, out=out)
        return np.maximum(x, constant(x.shape, x.dtype, 0.0), out=out)

    def backward(self, dy, x, y, out=None):
        return np.multiply(dy, y > 0, out=out)


class ReLU6(Activation):
    """min(max(x, 0), 6)."""

    name = "relu6"

    def forward(self, x, out=None):
        return np.clip(x, 0, 6, out=out)

    def backward(self, dy, x, y, out=None):
        return np.multiply(dy, (y > 0) & (y < 6), out=out)


class LeakyReLU(Activation):
    """x for x > 0, negative_slope * x otherwise (Keras 3 default slope 0.2).

    Args:
        negative_slope: slope for x <= 0 (>= 0).
    """

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2) -> None:
        if negative_slope < 0:
            raise ConfigError(f"leaky_relu negative_slope must be >= 0, not {negative_slope}.")
        self.negative_slope = float(negative_slope)

    def forward(self, x, out=None):
        return _put(np.where(x > 0, x, x * self.negative_slope), out)

    def backward(self, dy, x, y, out=None):
        # With a slope >= 0, y > 0 exactly where x > 0, so y alone decides the branch.
        return _put(np.where(y > 0, dy, dy * self.negative_slope), out)


class ELU(Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise.

    Args:
        alpha: scale of the negative part (> 0).
        scale: factor on both parts (1 for ELU; SELU sets its own).
    """

    name = "elu"

    def __init__(self, alpha: float = 1.0, scale: float = 1.0) -> None:
        if alpha <= 0:
            raise ConfigError(f"elu alpha must be > 0, not {alpha}.")
        self.alpha, self.scale = float(alpha), float(scale)

    def forward(self, x, out=None):
        neg = np.expm1(np.minimum(x, 0))
        neg *= self.alpha * self.scale
        pos = np.maximum(x, 0)
        if self.scale != 1.0:
            pos *= self.scale
        return np.add(pos, neg, out=out)

    def backward(self, dy, x, y, out=None):
        # For x <= 0: d/dx = scale * alpha * exp(x) = y + scale * alpha.
        deriv = np.where(y > 0, self.scale, y + self.scale * self.alpha)
        return np.multiply(dy, deriv, out=out)


class SELU(ELU):
    """scale * elu(x, alpha) with the self-normalising constants (Klambauer et al. 2017)."""

    name = "selu"

    def __init__(self) -> None:
        super().__init__(_SELU_ALPHA, _SELU_SCALE)


class Sigmoid(Activation):
    """1 / (1 + exp(-x)), without overflow."""

    name = "sigmoid"

    def forward(self, x, out=None):
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        num = np.where(x >= 0, 1.0, e).astype(e.dtype, copy=False)
        e += 1.0
        return np.divide(num, e, out=out)

    def backward(self, dy, x, y, out=None):
        deriv = 1.0 - y
        deriv *= y
        return np.multiply(dy, deriv, out=out)


class HardSigmoid(Activation):
    """Keras 3 hard_sigmoid: relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)."""

    name = "hard_sigmoid"

    def forward(self, x, out=None):
        y = np.multiply(x, 1.0 / 6.0, out=out)
        y += 0.5
        return np.clip(y, 0.0, 1.0, out=y)

    def backward(self, dy, x, y, out=None):
        deriv = ((y > 0) & (y < 1)).astype(dy.dtype)
        deriv *= 1.0 / 6.0
        return np.multiply(dy, deriv, out=out)


class HardSiLU(Activation):
    """x * hard_sigmoid(x) (alias hard_swish)."""

    name = "hard_silu"
    uses_input = True

    def forward(self, x, out=None):
        hs = np.clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)
        return np.multiply(x, hs, out=out)

    def backward(self, dy, x, y, out=None):
        deriv = np.clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)
        deriv += np.where(np.abs(x) < 3.0, x * (1.0 / 6.0), 0.0)
        return np.multiply(dy, deriv, out=out)


class Tanh(Activation):
    """Hyperbolic tangent."""

    name = "tanh"

    def forward(self, x, out=None):
        return np.tanh(x, out=out)

    def backward(self, dy, x, y, out=None):
        deriv = y * y
        np.subtract(1.0, deriv, out=deriv)
        return np.multiply(dy, deriv, out=out)


class Softplus(Activation):
    """log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|))."""

    name = "softplus"

    def forward(self, x, out=None):
        tail = np.log1p(np.exp(-np.abs(x)))
        return np.add(np.maximum(x, 0), tail, out=out)

    def backward(self, dy, x, y, out=None):
        # sigmoid(x) = 1 - exp(-softplus(x)); -expm1 keeps precision when y is tiny.
        deriv = np.expm1(-y)
        np.negative(deriv, out=deriv)
        return np.multiply(dy, deriv, out=out)


class Softsign(Activation):
    """x / (1 + |x|)."""

    name = "softsign"

    def forward(self, x, out=None):
        den = np.abs(x)
        den += 1.0
        return np.divide(x, den, out=out)

    def backward(self, dy, x, y, out=None):
        # 1 / (1 + |x|)^2 = (1 - |y|)^2
        deriv = np.abs(y)
        np.subtract(1.0, deriv, out=deriv)
        deriv *= deriv
        return np.multiply(dy, deriv, out=out)


class SiLU(Activation):
    """x * sigmoid(x) (alias swish)."""

    name = "silu"
    uses_input = True

    def forward(self, x, out=None):
        s = Sigmoid().forward(x)
        return np.multiply(x, s, out=out)

    def backward(self, dy, x, y, out=None):
        s = Sigmoid().forward(x)
        deriv = 1.0 - s       # sigma'(x) x + sigma = s * (1 + x (1 - s))
        deriv *= x
        deriv += 1.0
        deriv *= s
        return np.multiply(dy, deriv, out=out)


class GELU(Activation):
    """x * Phi(x); exact erf form by default (Keras `approximate=False`), or the tanh form.

    Args:
        approximate: use the tanh approximation instead of erf.
    """

    name = "gelu"
    uses_input = True

    def __init__(self, approximate: bool = False) -> None:
        self.approximate = bool(approximate)

    def _tanh_inner(self, x):
        return np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))

    def forward(self, x, out=None):
        if self.approximate:
            cdf = self._tanh_inner(x)
        else:
            cdf = erf(x * _SQRT_HALF)
        cdf += 1.0
        cdf *= 0.5
        return np.multiply(x, cdf, out=out)

    def backward(self, dy, x, y, out=None):
        if self.approximate:
            t = self._tanh_inner(x)
            inner = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)
            deriv = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner
        else:
            deriv = erf(x * _SQRT_HALF)
            deriv += 1.0
            deriv *= 0.5   # Phi(x)
            deriv += x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)   # + x phi(x)
        return np.multiply(dy, deriv, out=out)


class Mish(Activation):
    """x * tanh(softplus(x))."""

    name = "mish"
    uses_input = True

    def forward(self, x, out=None):
        t = np.tanh(Softplus().forward(x))
        return np.multiply(x, t, out=out)

    def backward(self, dy, x, y, out=None):
        t = np.tanh(Softplus().forward(x))
        deriv = 1.0 - t * t
        deriv *= x
        deriv *= Sigmoid().forward(x)
        deriv += t
        return np.multiply(dy, deriv, out=out)


class Exponential(Activation):
    """exp(x)."""

    name = "exponential"

    def forward(self, x, out=None):
        return np.exp(x, out=out)

    def backward(self, dy, x, y, out=None):
        return np.multiply(dy, y, out=out)
