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

from ..activations import (ELU, GELU, SELU, HardSigmoid, HardSiLU, LeakyReLU, LogSoftmax, ReLU6, Sigmoid, SiLU,
                           Softmax, Softplus, Softsign)
from ..autodiff.tensor import Tensor, as_tensor, result
from ..special import _as_float

__all__ = ["relu", "relu6", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "silu", "swish", "gelu", "elu",
           "selu", "celu", "leaky_relu", "softplus", "softsign", "log_sigmoid", "softmax", "log_softmax"]


def _apply(act, x) -> Tensor:
    """`act` (a distdl Activation) on x, recorded with the activation's own derivative."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    y = act.forward(xv)
    return result(y, (x,), lambda g: (act.backward(g, xv, y),))


_RELU6, _SIGMOID, _HARD_SIGMOID, _HARD_SILU = ReLU6(), Sigmoid(), HardSigmoid(), HardSiLU()
_SILU, _SELU, _SOFTPLUS, _SOFTSIGN = SiLU(), SELU(), Softplus(), Softsign()
_GELU = {True: GELU(approximate=True), False: GELU(approximate=False)}


def relu(x) -> Tensor:
    """max(x, 0); gradient 0 at 0 (integers stay integers)."""
    x = as_tensor(x)
    y = np.maximum(x.value, 0)
    return result(y, (x,), lambda g: (g * (y > 0),))


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


def _axis(axis):
    """A softmax axis as NumPy takes it (a list becomes a tuple)."""
    return tuple(axis) if isinstance(axis, list) else axis


swish = silu
hard_swish = hard_silu
