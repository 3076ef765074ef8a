"""Activations over one axis: softmax and log_softmax, each shifted by the max for stability."""
from __future__ import annotations

import numpy as np

from .base import Activation

__all__ = ["Softmax", "LogSoftmax"]


class Softmax(Activation):
    """exp(x) / sum(exp(x)) over `axis` (the last by default), shifted by the max for stability.

    Args:
        axis: the axis the probabilities sum to 1 over.
    """

    name = "softmax"

    def __init__(self, axis: int = -1) -> None:
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
    """x - logsumexp(x) over `axis`; backward dx = dy - softmax * sum(dy).

    Args:
        axis: the axis the softmax is taken over.
    """

    name = "log_softmax"

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x, out=None):
        y = np.subtract(x, np.max(x, axis=self.axis, keepdims=True), out=out)
        y -= np.log(np.sum(np.exp(y), axis=self.axis, keepdims=True))
        return y

    def backward(self, dy, x, y, out=None):
        p = np.exp(y)
        p *= np.sum(dy, axis=self.axis, keepdims=True)
        return np.subtract(dy, p, out=out)
