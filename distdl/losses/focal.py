"""Focal cross-entropies (Lin et al. 2017, Keras 3 formulas): the binary and categorical
cross-entropies scaled by (1 - p_t)^gamma, which shrinks the loss of well-classified elements.

Their gradients are written out by hand (the focal factor's derivative plus the cross-entropy's,
chained through the sigmoid or softmax when `from_logits`); the factor does not simplify against
the activation, so no fused gradient is offered.
"""
from __future__ import annotations

import numpy as np

from ..activations import Sigmoid, Softmax
from ..errors import ConfigError
from .base import EPSILON, Loss, _align

__all__ = ["BinaryFocalCrossentropy", "CategoricalFocalCrossentropy"]


def _pow_and_slope(base: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """(base^gamma, d/dbase of it), the slope taken as 0 where base is 0 (the factor's minimum)."""
    power = np.power(base, gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(base > 0, gamma * power / np.where(base > 0, base, 1.0), 0.0)
    return power, slope.astype(base.dtype, copy=False)


class _Focal(Loss):
    """The options both focal losses share.

    Args:
        alpha: the weighting factor (binary: of the positive class, with apply_class_balancing).
        gamma: the focusing parameter (>= 0); 0 gives the plain cross-entropy (times alpha).
        from_logits: whether y_pred holds logits rather than probabilities.
        label_smoothing: in [0, 1]: targets move this far towards the uniform distribution.
        reduction: as in `Loss`.
        name: as in `Loss`.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        super().__init__(reduction, name)
        if gamma < 0:
            raise ConfigError(f"{type(self).__name__} gamma must be >= 0, not {gamma}.")
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def _params(self):
        return {"alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class BinaryFocalCrossentropy(_Focal):
    """Mean over the last axis of (1 - p_t)^gamma * bce(y, p), p_t = y p + (1 - y)(1 - p); with
    apply_class_balancing also times alpha for positives and 1 - alpha for negatives.

    Args:
        apply_class_balancing: whether to weigh the classes by alpha / 1 - alpha.
        alpha: the positive class's weight when balancing (Keras default 0.25).
        gamma: the focusing parameter (Keras default 2.0).
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], targets squeezed towards 0.5.
        reduction: as in `Loss`.
        name: as in `Loss`.
    """

    default_name = "binary_focal_crossentropy"

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25, gamma: float = 2.0,
                 from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None) -> None:
        super().__init__(alpha, gamma, from_logits, label_smoothing, reduction, name)
        self.apply_class_balancing = bool(apply_class_balancing)

    def _params(self):
        return {"apply_class_balancing": self.apply_class_balancing, **super()._params()}

    def _parts(self, yt, yp):
        """(targets, p, focal factor, its slope in p, bce, its slope in p, class weight)."""
        s = self.label_smoothing
        y = yt * (1.0 - s) + 0.5 * s if s else yt
        p = Sigmoid().forward(yp) if self.from_logits else yp
        pc = np.clip(p, EPSILON, 1.0 - EPSILON)
        bce = -(y * np.log(pc) + (1.0 - y) * np.log(1.0 - pc))
        dbce = ((1.0 - y) / (1.0 - pc) - y / pc) * ((p >= EPSILON) & (p <= 1.0 - EPSILON))
        pt = y * p + (1.0 - y) * (1.0 - p)
        factor, slope = _pow_and_slope(1.0 - pt, self.gamma)
        dfactor = -slope * (2.0 * y - 1.0)                      # d(1 - p_t)^gamma / dp
        cw = y * self.alpha + (1.0 - y) * (1.0 - self.alpha) if self.apply_class_balancing else 1.0
        return p, factor, dfactor, bce, dbce, cw

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        _, factor, _, bce, _, cw = self._parts(yt, yp)
        return np.mean(cw * factor * bce, axis=-1)

    def _grad(self, yt, yp, w):
        p, factor, dfactor, bce, dbce, cw = self._parts(yt, yp)
        g = cw * (dfactor * bce + factor * dbce)
        if self.from_logits:
            g = g * (p * (1.0 - p))
        return g * (w / yp.shape[-1])[..., None]


class CategoricalFocalCrossentropy(_Focal):
    """-sum(alpha (1 - q)^gamma y log q) over the last axis, q = p renormalised and clipped to
    [eps, 1 - eps] (softmax of y_pred when from_logits), y smoothed towards 1 / classes.

    Args:
        alpha: the weighting factor (Keras default 0.25).
        gamma: the focusing parameter (Keras default 2.0).
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], as in CategoricalCrossentropy.
        reduction: as in `Loss`.
        name: as in `Loss`.
    """

    default_name = "categorical_focal_crossentropy"

    def _targets(self, yt):
        s = self.label_smoothing
        return yt * (1.0 - s) + s / yt.shape[-1] if s else yt

    def _probs(self, yp):
        return Softmax().forward(yp) if self.from_logits else yp

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        p = self._probs(yp)
        q = np.clip(p / np.sum(p, axis=-1, keepdims=True), EPSILON, 1.0 - EPSILON)
        return -np.sum(self.alpha * np.power(1.0 - q, self.gamma) * self._targets(yt) * np.log(q), axis=-1)

    def _grad(self, yt, yp, w):
        y, p = self._targets(yt), self._probs(yp)
        s = np.sum(p, axis=-1, keepdims=True)
        q = p / s
        qc = np.clip(q, EPSILON, 1.0 - EPSILON)
        factor, slope = _pow_and_slope(1.0 - qc, self.gamma)
        inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)
        g = self.alpha * y * (slope * np.log(qc) - factor / qc) * inside   # dL/dq
        g -= np.sum(g * q, axis=-1, keepdims=True)                         # through q = p / sum(p)
        g /= s
        if self.from_logits:                                               # through p = softmax(z)
            g = p * (g - np.sum(g * p, axis=-1, keepdims=True))
        return g * w[..., None]
