"""Activations by Keras name, each an object with a forward pass and its derivative.

Every activation works elementwise (softmax / log_softmax over one axis, the last by default),
keeps the input's float dtype (float32 stays float32), and never overflows for |x| up to 1e4.
`forward(x, out=x)` may run in place; `backward(dy, x, y, out=dy)` may overwrite dy.
Activations whose derivative can be written in terms of the output y (`uses_input = False`)
let a layer drop its pre-activation buffer after the forward pass.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .backend import floatx
from .errors import ConfigError, unknown_name

_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_SQRT_2_OVER_PI = 0.7978845608028654
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

# W. J. Cody's rational Chebyshev coefficients for erf/erfc (Math. Comp. 23, 1969), as published.
_ERF_A = (3.16112374387056560e0, 1.13864154151050156e2, 3.77485237685302021e2,
          3.20937758913846947e3, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
          2.84423683343917062e3)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e0, 6.61191906371416295e1,
          2.98635138197400131e2, 8.81952221241769090e2, 1.71204761263407058e3,
          2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
          1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
          3.43936767414372164e3, 1.23033935480374942e3)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 0.5641895835477563


def _rational(t: np.ndarray, num: tuple, den: tuple) -> np.ndarray:
    """Cody's Horner scheme: num[-1] is the leading numerator term, the denominator is monic."""
    n = num[-1] * t
    d = t.copy()
    for a, b in zip(num[:-2], den[:-1]):
        n += a
        n *= t
        d += b
        d *= t
    n += num[-2]
    d += den[-1]
    return n / d


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised error function (relative error ~1e-15 in float64), same dtype as a float x.

    Three regions as in Cody (1969): a rational in x^2 for |x| <= 0.5, and exp(-x^2) times a
    rational in |x| (up to 4) or in 1/x^2 (beyond) for erfc; each element is computed once.
    """
    x = _as_float(x)
    ax = np.abs(x)
    y = np.empty_like(x)
    small = ax <= 0.46875
    mid = ~small & (ax <= 4.0)
    big = ~(small | mid)  # includes NaN, which then propagates
    xs = x[small]
    y[small] = xs * _rational(xs * xs, _ERF_A, _ERF_B)
    am = ax[mid]
    y[mid] = 1.0 - np.exp(-am * am) * _rational(am, _ERF_C, _ERF_D)
    ab = np.minimum(ax[big], 30.0)  # erfc(30) underflows to 0 anyway; avoids 1/x^2 noise
    z = 1.0 / (ab * ab)
    tail = (_INV_SQRT_PI - z * _rational(z, _ERF_P, _ERF_Q)) / ab
    y[big] = 1.0 - np.exp(-ab * ab) * tail
    np.copysign(y, x, out=y, where=~small)
    return y


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(floatx())


def _put(value: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Return value, copied into out when a destination buffer was given."""
    if out is None or out is value:
        return value
    np.copyto(out, value)
    return out


class Activation:
    """An activation and its derivative. Subclass it to add a custom activation.

    forward(x, out=None) -> y with y.shape == x.shape; backward(dy, x, y, out=None) -> dx,
    where x is None when `uses_input` is False (the derivative is a function of y alone).
    """

    name: str = ""
    uses_input: bool = False

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, x: np.ndarray | None, y: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x) -> np.ndarray:
        return self.forward(_as_float(x))

    def __repr__(self) -> str:
        return f"<Activation {self.name}>"


class Linear(Activation):
    name = "linear"

    def forward(self, x, out=None):
        return _put(x, out)

    def backward(self, dy, x, y, out=None):
        return _put(dy, out)


class ReLU(Activation):
    name = "relu"

    def forward(self, x, out=None):
        return np.maximum(x, 0, out=out)

    def backward(self, dy, x, y, out=None):
        return np.multiply(dy, y > 0, out=out)


class ReLU6(Activation):
    name = "relu6"

    def forward(self, x, out=None):
        return np.clip(x, 0, 6, out=out)

    def backward(self, dy, x, y, out=None):
        return np.multiply(dy, (y > 0) & (y < 6), out=out)


class LeakyReLU(Activation):
    """x for x > 0, negative_slope * x otherwise (Keras 3 default slope 0.2)."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2):
        if negative_slope < 0:
            raise ConfigError(f"leaky_relu negative_slope must be >= 0, not {negative_slope}.")
        self.negative_slope = float(negative_slope)

    def forward(self, x, out=None):
        return _put(np.where(x > 0, x, x * self.negative_slope), out)

    def backward(self, dy, x, y, out=None):
        # With a slope >= 0, y > 0 exactly where x > 0, so y alone decides the branch.
        return _put(np.where(y > 0, dy, dy * self.negative_slope), out)


class ELU(Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    name = "elu"

    def __init__(self, alpha: float = 1.0, scale: float = 1.0):
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
    name = "selu"

    def __init__(self):
        super().__init__(_SELU_ALPHA, _SELU_SCALE)


class Sigmoid(Activation):
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
    """x * Phi(x); exact erf form by default (Keras `approximate=False`), or the tanh form."""

    name = "gelu"
    uses_input = True

    def __init__(self, approximate: bool = False):
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
    name = "exponential"

    def forward(self, x, out=None):
        return np.exp(x, out=out)

    def backward(self, dy, x, y, out=None):
        return np.multiply(dy, y, out=out)


class Softmax(Activation):
    """exp(x) / sum(exp(x)) over `axis` (the last by default), shifted by the max for stability."""

    name = "softmax"

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x, out=None):
        y = np.subtract(x, np.max(x, axis=self.axis, keepdims=True), out=out)
        np.exp(y, out=y)
        y /= np.sum(y, axis=self.axis, keepdims=True)
        return y

    def backward(self, dy, x, y, out=None):
        s = np.sum(dy * y, axis=self.axis, keepdims=True)
        dx = np.subtract(dy, s, out=out)
        dx *= y
        return dx


class LogSoftmax(Activation):
    """x - logsumexp(x) over `axis`; backward dx = dy - softmax * sum(dy)."""

    name = "log_softmax"

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x, out=None):
        y = np.subtract(x, np.max(x, axis=self.axis, keepdims=True), out=out)
        y -= np.log(np.sum(np.exp(y), axis=self.axis, keepdims=True))
        return y

    def backward(self, dy, x, y, out=None):
        p = np.exp(y)
        p *= np.sum(dy, axis=self.axis, keepdims=True)
        return np.subtract(dy, p, out=out)


# ----------------------------------------------------------------- Keras-style functions
def linear(x):
    """Identity."""
    return _as_float(x)


def relu(x):
    """max(x, 0)."""
    return ReLU()(x)


def relu6(x):
    """min(max(x, 0), 6)."""
    return ReLU6()(x)


def leaky_relu(x, negative_slope: float = 0.2):
    """x if x > 0 else negative_slope * x."""
    return LeakyReLU(negative_slope)(x)


def elu(x, alpha: float = 1.0):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return ELU(alpha)(x)


def selu(x):
    """scale * elu(x, alpha) with the self-normalising constants."""
    return SELU()(x)


def sigmoid(x):
    """1 / (1 + exp(-x)), without overflow."""
    return Sigmoid()(x)


def hard_sigmoid(x):
    """clip(x / 6 + 0.5, 0, 1) (Keras 3)."""
    return HardSigmoid()(x)


def hard_silu(x):
    """x * hard_sigmoid(x)."""
    return HardSiLU()(x)


def tanh(x):
    """Hyperbolic tangent."""
    return Tanh()(x)


def softplus(x):
    """log(1 + exp(x)), without overflow."""
    return Softplus()(x)


def softsign(x):
    """x / (1 + |x|)."""
    return Softsign()(x)


def silu(x):
    """x * sigmoid(x)."""
    return SiLU()(x)


def gelu(x, approximate: bool = False):
    """x * Phi(x) (erf form), or the tanh approximation."""
    return GELU(approximate)(x)


def mish(x):
    """x * tanh(softplus(x))."""
    return Mish()(x)


def exponential(x):
    """exp(x)."""
    return Exponential()(x)


def softmax(x, axis: int = -1):
    """Softmax over `axis`."""
    return Softmax(axis)(x)


def log_softmax(x, axis: int = -1):
    """Log of the softmax over `axis`, computed stably."""
    return LogSoftmax(axis)(x)


swish = silu
hard_swish = hard_silu

_CLASSES: dict[str, type[Activation]] = {
    c.name: c for c in (Linear, ReLU, ReLU6, LeakyReLU, ELU, SELU, Sigmoid, HardSigmoid,
                        HardSiLU, Tanh, Softplus, Softsign, SiLU, GELU, Mish, Exponential,
                        Softmax, LogSoftmax)
}
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
_FUNCTIONS: dict[Callable, str] = {
    linear: "linear", relu: "relu", relu6: "relu6", leaky_relu: "leaky_relu", elu: "elu",
    selu: "selu", sigmoid: "sigmoid", hard_sigmoid: "hard_sigmoid", hard_silu: "hard_silu",
    tanh: "tanh", softplus: "softplus", softsign: "softsign", silu: "silu", gelu: "gelu",
    mish: "mish", exponential: "exponential", softmax: "softmax", log_softmax: "log_softmax",
}


def get(identifier) -> Activation:
    """Resolve None, a Keras name, a module function, an Activation class or instance."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Activation):
        return identifier()
    if isinstance(identifier, dict) and isinstance(identifier.get("name"), str):
        identifier = identifier["name"]
    if isinstance(identifier, str):
        key = _ALIASES.get(identifier, identifier)
        if key not in _CLASSES:
            raise unknown_name("activation", identifier, list(_CLASSES) + list(_ALIASES))
        return _CLASSES[key]()
    if callable(identifier) and identifier in _FUNCTIONS:
        return _CLASSES[_FUNCTIONS[identifier]]()
    if callable(identifier):
        label = getattr(identifier, "__name__", repr(identifier))
        raise ConfigError(
            f"Custom activation {label!r} needs a derivative: subclass "
            "distdl.activations.Activation and implement forward and backward.")
    raise unknown_name("activation", repr(identifier), list(_CLASSES) + list(_ALIASES))


def serialize(activation) -> str:
    """The Keras name stored in layer configs."""
    return get(activation).name


def deserialize(name) -> Activation:
    """Inverse of serialize."""
    return get(name)
