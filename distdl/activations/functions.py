"""Keras-style activation functions (`relu(x)`, `softmax(x, axis)`, ...) and their aliases."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .base import _as_float
from .elementwise import (ELU, GELU, SELU, Exponential, HardSigmoid, HardSiLU, LeakyReLU, Mish, ReLU, ReLU6,
                          Sigmoid, SiLU, Softplus, Softsign, Tanh)
from .softmax import LogSoftmax, Softmax

__all__ = ["linear", "relu", "relu6", "leaky_relu", "elu", "selu", "sigmoid", "hard_sigmoid", "hard_silu", "tanh",
           "softplus", "softsign", "silu", "gelu", "mish", "exponential", "softmax", "log_softmax", "swish",
           "hard_swish"]


def linear(x: ArrayLike) -> np.ndarray:
    """Identity.

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return _as_float(x)


def relu(x: ArrayLike) -> np.ndarray:
    """max(x, 0).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return ReLU()(x)


def relu6(x: ArrayLike) -> np.ndarray:
    """min(max(x, 0), 6).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return ReLU6()(x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> np.ndarray:
    """x if x > 0 else negative_slope * x.

    Args:
        x: input array (non-float input is converted to floatx).
        negative_slope: slope for x <= 0.
    """
    return LeakyReLU(negative_slope)(x)


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """x if x > 0 else alpha * (exp(x) - 1).

    Args:
        x: input array (non-float input is converted to floatx).
        alpha: scale of the negative part.
    """
    return ELU(alpha)(x)


def selu(x: ArrayLike) -> np.ndarray:
    """scale * elu(x, alpha) with the self-normalising constants.

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return SELU()(x)


def sigmoid(x: ArrayLike) -> np.ndarray:
    """1 / (1 + exp(-x)), without overflow.

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return Sigmoid()(x)


def hard_sigmoid(x: ArrayLike) -> np.ndarray:
    """clip(x / 6 + 0.5, 0, 1) (Keras 3).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return HardSigmoid()(x)


def hard_silu(x: ArrayLike) -> np.ndarray:
    """x * hard_sigmoid(x).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return HardSiLU()(x)


def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent.

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return Tanh()(x)


def softplus(x: ArrayLike) -> np.ndarray:
    """log(1 + exp(x)), without overflow.

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return Softplus()(x)


def softsign(x: ArrayLike) -> np.ndarray:
    """x / (1 + |x|).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return Softsign()(x)


def silu(x: ArrayLike) -> np.ndarray:
    """x * sigmoid(x).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return SiLU()(x)


def gelu(x: ArrayLike, approximate: bool = False) -> np.ndarray:
    """x * Phi(x) (erf form), or the tanh approximation.

    Args:
        x: input array (non-float input is converted to floatx).
        approximate: use the tanh approximation instead of erf.
    """
    return GELU(approximate)(x)


def mish(x: ArrayLike) -> np.ndarray:
    """x * tanh(softplus(x)).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return Mish()(x)


def exponential(x: ArrayLike) -> np.ndarray:
    """exp(x).

    Args:
        x: input array (non-float input is converted to floatx).
    """
    return Exponential()(x)


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Softmax over `axis`.

    Args:
        x: input array (non-float input is converted to floatx).
        axis: the axis the softmax is taken over.
    """
    return Softmax(axis)(x)


def log_softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Log of the softmax over `axis`, computed stably.

    Args:
        x: input array (non-float input is converted to floatx).
        axis: the axis the softmax is taken over.
    """
    return LogSoftmax(axis)(x)


swish = silu
hard_swish = hard_silu
