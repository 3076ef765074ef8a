"""Keras-style activation functions (`relu(x)`, `softmax(x, axis)`, ...) and their aliases."""
from __future__ import annotations

from .base import _as_float
from .elementwise import (ELU, GELU, SELU, Exponential, HardSigmoid, HardSiLU, LeakyReLU, Mish, ReLU, ReLU6,
                          Sigmoid, SiLU, Softplus, Softsign, Tanh)
from .softmax import LogSoftmax, Softmax


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
