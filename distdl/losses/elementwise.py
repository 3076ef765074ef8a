"""Elementwise losses: regression (squared, absolute, percentage, log errors, Huber, log-cosh),
Poisson, KL divergence and the hinge losses."""
from __future__ import annotations

import numpy as np

from .base import EPSILON, _Elementwise

__all__ = ["MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "Huber", "LogCosh", "Poisson", "KLDivergence", "Hinge",
           "SquaredHinge"]


class MeanSquaredError(_Elementwise):
    """(p - y)^2, averaged over the last axis."""

    default_name = "mean_squared_error"

    def _f(self, yt, yp):
        d = yp - yt
        return d * d

    def _df(self, yt, yp):
        return 2.0 * (yp - yt)


class MeanAbsoluteError(_Elementwise):
    """|p - y|, averaged over the last axis."""

    default_name = "mean_absolute_error"

    def _f(self, yt, yp):
        return np.abs(yp - yt)

    def _df(self, yt, yp):
        return np.sign(yp - yt)


class MeanAbsolutePercentageError(_Elementwise):
    """100 * |y - p| / max(|y|, eps)."""

    default_name = "mean_absolute_percentage_error"

    def _f(self, yt, yp):
        return 100.0 * np.abs(yt - yp) / np.maximum(np.abs(yt), EPSILON)

    def _df(self, yt, yp):
        return 100.0 * np.sign(yp - yt) / np.maximum(np.abs(yt), EPSILON)


class MeanSquaredLogarithmicError(_Elementwise):
    """(log(max(p, eps) + 1) - log(max(y, eps) + 1))^2."""

    default_name = "mean_squared_logarithmic_error"

    def _f(self, yt, yp):
        d = np.log(np.maximum(yp, EPSILON) + 1.0) - np.log(np.maximum(yt, EPSILON) + 1.0)
        return d * d

    def _df(self, yt, yp):
        pc = np.maximum(yp, EPSILON) + 1.0
        d = np.log(pc) - np.log(np.maximum(yt, EPSILON) + 1.0)
        return 2.0 * d / pc * (yp >= EPSILON)


class Huber(_Elementwise):
    """0.5 e^2 for |e| <= delta, delta |e| - 0.5 delta^2 beyond, e = p - y.

    Args:
        delta: where the loss turns from quadratic to linear.
        reduction: as in `Loss`.
        name: as in `Loss`.
    """

    default_name = "huber_loss"

    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name)
        self.delta = float(delta)

    def _params(self):
        return {"delta": self.delta}

    def _f(self, yt, yp):
        a = np.abs(yp - yt)
        d = self.delta
        return np.where(a <= d, 0.5 * a * a, d * a - 0.5 * d * d)

    def _df(self, yt, yp):
        return np.clip(yp - yt, -self.delta, self.delta)


class LogCosh(_Elementwise):
    """log(cosh(p - y)), computed as x + softplus(-2x) - log 2."""

    default_name = "log_cosh"

    def _f(self, yt, yp):
        x = yp - yt
        return x + np.maximum(-2.0 * x, 0.0) + np.log1p(np.exp(-2.0 * np.abs(x))) - np.log(2.0)

    def _df(self, yt, yp):
        return np.tanh(yp - yt)


class Poisson(_Elementwise):
    """p - y log(p + eps)."""

    default_name = "poisson"

    def _f(self, yt, yp):
        return yp - yt * np.log(yp + EPSILON)

    def _df(self, yt, yp):
        return 1.0 - yt / (yp + EPSILON)


class KLDivergence(_Elementwise):
    """sum(y log(y / p)) with y and p clipped to [eps, 1]."""

    default_name = "kl_divergence"
    _mean = False

    def _f(self, yt, yp):
        y = np.clip(yt, EPSILON, 1.0)
        return y * np.log(y / np.clip(yp, EPSILON, 1.0))

    def _df(self, yt, yp):
        inside = (yp >= EPSILON) & (yp <= 1.0)
        return -np.clip(yt, EPSILON, 1.0) / np.clip(yp, EPSILON, 1.0) * inside


class Hinge(_Elementwise):
    """max(1 - y p, 0); labels given as 0/1 are mapped to -1/1 first (Keras)."""

    default_name = "hinge"
    _power = 1

    def _targets(self, yt):
        return 2.0 * yt - 1.0 if np.all((yt == 0) | (yt == 1)) else yt

    def _f(self, yt, yp):
        return np.maximum(1.0 - yt * yp, 0.0) ** self._power

    def _df(self, yt, yp):
        m = np.maximum(1.0 - yt * yp, 0.0)
        return -yt * (m > 0) if self._power == 1 else -2.0 * yt * m


class SquaredHinge(Hinge):
    """max(1 - y p, 0)^2; labels given as 0/1 are mapped to -1/1 first (Keras)."""

    default_name = "squared_hinge"
    _power = 2
