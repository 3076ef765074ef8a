"""The activations under keras.ops (and keras.ops.nn), each with its derivative.

Forward formulas and derivatives are those of distdl.activations (the built-in layers' own), so
a custom layer written with these ops follows a built-in layer's numbers exactly, including at
the kinks: relu and relu6 have derivative 0 at 0 (and at 6), leaky_relu has the negative slope
at 0 (TensorFlow's convention), elu and selu take the negative branch at 0 (selu: scale * alpha,
as JAX; TensorFlow gives scale), hard_sigmoid has 0 at -3 and 3 (relu6(x + 3) / 6, as Keras's
TensorFlow backend). Integer input becomes floatx; float input keeps its dtype.
"""
from __future__ import annotations

import numpy as np

from ..activations import (ELU, GELU, SELU, HardSigmoid, HardSiLU, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU,
                           Softmax, Softplus, Softsign)
from ..autodiff.tensor import Tensor, as_tensor, result
from ..errors import ShapeError
from ..special import _as_float
from .math import clip

__all__ = ["relu", "relu6", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "silu", "swish", "gelu", "elu",
           "selu", "celu", "leaky_relu", "softplus", "softsign", "log_sigmoid", "softmax", "log_softmax",
           "glu", "hard_tanh", "tanh_shrink", "soft_shrink", "hard_shrink", "threshold", "squareplus",
           "sparse_plus", "sparse_sigmoid"]


def _apply(act, x) -> Tensor:
    """`act` (a distdl Activation) on x, recorded with the activation's own derivative."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    y = act.forward(xv)
    return result(y, (x,), lambda g: (act.backward(g, xv, y),))


_RELU, _RELU6, _SIGMOID, _HARD_SIGMOID, _HARD_SILU = ReLU(), ReLU6(), Sigmoid(), HardSigmoid(), HardSiLU()
_SILU, _SELU, _SOFTPLUS, _SOFTSIGN = SiLU(), SELU(), Softplus(), Softsign()
_GELU = {True: GELU(approximate=True), False: GELU(approximate=False)}


def relu(x) -> Tensor:
    """max(x, 0); gradient 0 at 0 (integers stay integers). Through distdl's ReLU, whose
    forward against a cached zero array runs 2-3x faster than np.maximum(x, 0)."""
    x = as_tensor(x)
    y = _RELU.forward(np.asarray(x.value))
    return result(y, (x,), lambda g: (_RELU.backward(g, None, y),))


def relu6(x) -> Tensor:
    """min(max(x, 0), 6)."""
    return _apply(_RELU6, x)


def sigmoid(x) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow."""
    return _apply(_SIGMOID, x)


def hard_sigmoid(x) -> Tensor:
    """relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1) (Keras 3)."""
    return _apply(_HARD_SIGMOID, x)


def hard_silu(x) -> Tensor:
    """x * hard_sigmoid(x) (alias hard_swish)."""
    return _apply(_HARD_SILU, x)


def silu(x) -> Tensor:
    """x * sigmoid(x) (alias swish)."""
    return _apply(_SILU, x)


def gelu(x, approximate=True) -> Tensor:
    """x * Phi(x): the tanh approximation by default (keras.ops.gelu), the exact erf form with
    approximate=False."""
    return _apply(_GELU[bool(approximate)], x)


def elu(x, alpha=1.0) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _apply(ELU(alpha), x)


def selu(x) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants (Klambauer et al. 2017)."""
    return _apply(_SELU, x)


def celu(x, alpha=1.0) -> Tensor:
    """max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1); its derivative is continuous (1 at 0)."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    y = np.maximum(xv, 0) + alpha * np.expm1(np.minimum(xv, 0) / alpha)
    return result(y, (x,), lambda g: (g * np.where(xv > 0, 1, y / alpha + 1),))


def leaky_relu(x, negative_slope=0.2) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return _apply(LeakyReLU(negative_slope), x)


def softplus(x) -> Tensor:
    """log(1 + exp(x)) = logaddexp(x, 0), computed as max(x, 0) + log1p(exp(-|x|))."""
    return _apply(_SOFTPLUS, x)


def softsign(x) -> Tensor:
    """x / (1 + |x|)."""
    return _apply(_SOFTSIGN, x)


def log_sigmoid(x) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), without overflow; derivative sigmoid(-x) = -expm1(y)."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    y = -_SOFTPLUS.forward(-xv)
    return result(y, (x,), lambda g: (g * -np.expm1(y),))


def softmax(x, axis=-1) -> Tensor:
    """exp(x) / sum(exp(x)) over `axis` (an int, a tuple, or None for all axes), shifted by the
    maximum for stability."""
    return _apply(Softmax(_axis(axis)), x)


def log_softmax(x, axis=-1) -> Tensor:
    """x - logsumexp(x) over `axis` (an int, a tuple, or None for all axes), computed stably."""
    return _apply(LogSoftmax(_axis(axis)), x)


def _elementwise(x, fn, deriv) -> Tensor:
    """y = fn(x) with dx = g * deriv(x, y), computed in the vjp (the piecewise ops below)."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    y = fn(xv)
    return result(y, (x,), lambda g: (g * deriv(xv, y),))


def glu(x, axis=-1) -> Tensor:
    """a * sigmoid(b), where a and b are the two halves of x along `axis` (its size must be even)."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    if xv.ndim == 0 or xv.shape[axis] % 2:
        raise ShapeError(f"ops.glu: x of shape {xv.shape} must have an even size along axis {axis}.")
    a, b = np.split(xv, 2, axis=axis)
    s = _SIGMOID.forward(b)
    return result(a * s, (x,), lambda g: (np.concatenate([g * s, g * a * s * (1 - s)], axis=axis),))


def hard_tanh(x) -> Tensor:
    """x clipped to [-1, 1] (gradient 1 on the closed interval, as ops.clip)."""
    return clip(x, -1.0, 1.0)


def tanh_shrink(x) -> Tensor:
    """x - tanh(x)."""
    return _elementwise(x, lambda v: v - np.tanh(v), lambda v, y: np.tanh(v) ** 2)


def soft_shrink(x, threshold=0.5) -> Tensor:
    """x - threshold above threshold, x + threshold below -threshold, 0 between."""
    return _elementwise(x, lambda v: np.where(v > threshold, v - threshold, np.where(v < -threshold, v + threshold, 0)),
                        lambda v, y: np.abs(v) > threshold)


def hard_shrink(x, threshold=0.5) -> Tensor:
    """x where |x| > threshold, else 0."""
    return _elementwise(x, lambda v: np.where(np.abs(v) > threshold, v, 0), lambda v, y: np.abs(v) > threshold)


def threshold(x, threshold, default_value) -> Tensor:
    """x where x > threshold, else default_value."""
    return _elementwise(x, lambda v: np.where(v > threshold, v, default_value), lambda v, y: v > threshold)


def squareplus(x, b=4) -> Tensor:
    """(x + sqrt(x^2 + b)) / 2, a smooth relu."""
    return _elementwise(x, lambda v: (v + np.sqrt(v * v + b)) / 2, lambda v, y: (1 + v / np.sqrt(v * v + b)) / 2)


def sparse_plus(x) -> Tensor:
    """0 for x <= -1, (x + 1)^2 / 4 for -1 < x < 1, x for x >= 1 (continuously differentiable)."""
    return _elementwise(x, lambda v: np.where(v <= -1, 0, np.where(v < 1, 0.25 * (v + 1) ** 2, v)),
                        lambda v, y: np.clip((v + 1) / 2, 0, 1))


def sparse_sigmoid(x) -> Tensor:
    """0 for x <= -1, (x + 1) / 2 between, 1 for x >= 1 (derivative 0 at -1 and 1)."""
    return _elementwise(x, lambda v: np.clip(0.5 * (v + 1), 0, 1), lambda v, y: np.where(np.abs(v) < 1, 0.5, 0))


def _axis(axis):
    """A softmax axis as NumPy takes it (a list becomes a tuple)."""
    return tuple(axis) if isinstance(axis, list) else axis


swish = silu
hard_swish = hard_silu
