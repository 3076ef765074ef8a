"""Losses over a whole feature vector rather than per element (Keras 3 formulas): cosine
similarity, categorical hinge, and the overlap losses Dice and Tversky for segmentation.

Dice and Tversky reduce over `axis` as Keras does: axis=None (Keras's default) gives one value
for the whole batch a process holds (under N ranks, each rank's share: the loss of one replica,
as under a Keras distribution strategy); axis=(1, ..., rank - 1) gives one value per sample, whose
mean over ranks is exactly one process's. Gradients are written out by hand.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..special import _as_float
from .base import EPSILON, Loss, _align
from .recorded import _match_weights

__all__ = ["CosineSimilarity", "CategoricalHinge", "Dice", "Tversky"]


class CosineSimilarity(Loss):
    """-sum(l2_normalize(y) * l2_normalize(p)) over the last axis (norms floored at 1e-6, Keras's
    1e-12 on the squared sum): -1 for parallel vectors, 0 when either is zero.

    Args:
        axis: the feature axis; only -1 (the last) is supported.
        reduction: as in `Loss`.
        name: as in `Loss`.
    """

    default_name = "cosine_similarity"

    def __init__(self, axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None) -> None:
        if axis != -1:
            raise ConfigError(f"CosineSimilarity supports only axis=-1 (the feature axis), not axis={axis!r}.")
        super().__init__(reduction, name)

    @staticmethod
    def _norm(x):
        return np.sqrt(np.maximum(np.sum(x * x, axis=-1, keepdims=True), 1e-12))

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        return -np.sum((yt / self._norm(yt)) * (yp / self._norm(yp)), axis=-1)

    def _grad(self, yt, yp, w):
        yn = yt / self._norm(yt)
        sq = np.sum(yp * yp, axis=-1, keepdims=True)
        n = np.sqrt(np.maximum(sq, 1e-12))
        g = -yn / n
        g += (sq > 1e-12) * np.sum(yn * yp, axis=-1, keepdims=True) * yp / (n * n * n)
        return g * w[..., None]


class CategoricalHinge(Loss):
    """max(neg - pos + 1, 0) with pos = sum(y p) and neg = max((1 - y) p) over the last axis
    (one-hot, or -1/1, targets)."""

    default_name = "categorical_hinge"

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        return np.maximum(np.max((1.0 - yt) * yp, axis=-1) - np.sum(yt * yp, axis=-1) + 1.0, 0.0)

    def _grad(self, yt, yp, w):
        other = (1.0 - yt) * yp
        k = np.argmax(other, axis=-1)[..., None]
        active = (np.max(other, axis=-1) - np.sum(yt * yp, axis=-1) + 1.0) > 0
        g = -yt.copy()
        np.put_along_axis(g, k, np.take_along_axis(g, k, axis=-1) + np.take_along_axis(1.0 - yt, k, axis=-1),
                          axis=-1)
        return g * (w * active)[..., None]


class Tversky(Loss):
    """1 - I / (I + alpha FP + beta FN + eps) with I = sum(y p), FP = sum((1 - y) p) and
    FN = sum(y (1 - p)) over `axis` (Salehi et al. 2017); alpha = beta = 0.5 is Dice.

    Args:
        alpha: the weight of false positives.
        beta: the weight of false negatives.
        reduction: as in `Loss`.
        name: as in `Loss`.
        axis: None (the whole batch: one value) or the axes to reduce, e.g. (1, 2, 3) per sample.
    """

    default_name = "tversky"

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None, axis=None) -> None:
        super().__init__(reduction, name)
        self.alpha, self.beta = float(alpha), float(beta)
        self.axis = None if axis is None else tuple(int(a) for a in np.atleast_1d(axis))

    def _params(self):
        return {"alpha": self.alpha, "beta": self.beta, "axis": None if self.axis is None else list(self.axis)}

    @classmethod
    def from_config(cls, config):
        return cls(**{k: v for k, v in config.items() if k != "dtype"})

    def _sums(self, yt, yp):
        """(I, denominator), reduced over `axis` (keepdims, for broadcasting in the gradient)."""
        ax = self.axis
        inter = np.sum(yt * yp, axis=ax, keepdims=True)
        fp = np.sum((1.0 - yt) * yp, axis=ax, keepdims=True)
        fn = np.sum(yt * (1.0 - yp), axis=ax, keepdims=True)
        return inter, inter + self.alpha * fp + self.beta * fn + EPSILON

    def _dterms(self, yt):
        """(d numerator / dp, d denominator / dp) per element."""
        return yt, yt + self.alpha * (1.0 - yt) - self.beta * yt

    def _reduced(self, x):
        return x.reshape(()) if self.axis is None else np.squeeze(x, axis=self.axis)

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        inter, denom = self._sums(yt, yp)
        return self._reduced(1.0 - inter / denom)

    def values(self, y_true, y_pred):
        """Per-row values for the training step: a whole-batch value (axis=None) is spread over this
        rank's rows, one batch mean per row, as a recorded loss's scalar is.

        Args:
            y_true: the targets.
            y_pred: the model's output, shape (rows, ...).
        """
        per = self.call(y_true, y_pred)
        return np.broadcast_to(per, (len(y_pred),)) if per.ndim == 0 else per

    def gradient(self, y_true, y_pred, weights):
        """dL/dy_pred for L = sum(values(y_true, y_pred) * weights).

        Args:
            y_true: the targets.
            y_pred: the model's output.
            weights: weights of `values` (per row when axis=None).
        """
        yp0 = _as_float(y_pred)
        yt, yp = _align(y_true, yp0)
        inter, denom = self._sums(yt, yp)
        dnum, dden = self._dterms(yt)
        g = -(dnum / denom - inter * dden / (denom * denom))
        if self.axis is None:  # L = sum(values * weights), every row's value the batch's
            g *= float(np.sum(np.broadcast_to(weights, (len(yp),)), dtype=np.float64))
        else:
            shape = self._reduced(inter).shape
            w = _match_weights(weights, shape, yp.dtype, "loss weights")
            g *= np.expand_dims(w, self.axis) if w.ndim else w
        return g.astype(yp0.dtype, copy=False).reshape(yp0.shape)

    def value_and_gradient(self, y_true, y_pred, weight, rows, fused=False):
        per = self.values(y_true, y_pred)
        n = int(np.prod(per.shape[1:], dtype=np.int64)) if per.ndim > 1 else 1
        w = np.full(per.shape, weight / (rows * n), dtype=per.dtype)
        return (float(np.sum(per)) / n if per.size else 0.0), self.gradient(y_true, y_pred, w)

    def check_targets(self, y_true, output_shape):
        if self.axis is not None and 0 in [a % (len(np.shape(y_true)) or 1) for a in self.axis]:
            raise ConfigError(f"Loss {self.name!r}: axis {self.axis} includes the batch axis 0; "
                              "use axis=None for a whole-batch value.")
        super().check_targets(y_true, output_shape)


class Dice(Tversky):
    """1 - 2 sum(y p) / (sum(y) + sum(p) + eps) over `axis` (Tversky with alpha = beta = 0.5).

    Args:
        reduction: as in `Loss`.
        name: as in `Loss`.
        axis: None (the whole batch: one value) or the axes to reduce, e.g. (1, 2, 3) per sample.
    """

    default_name = "dice"

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = None, axis=None) -> None:
        super().__init__(0.5, 0.5, reduction, name, axis)

    def _params(self):
        return {"axis": None if self.axis is None else list(self.axis)}

    def _sums(self, yt, yp):
        ax = self.axis
        inter = np.sum(yt * yp, axis=ax, keepdims=True)
        return 2.0 * inter, np.sum(yt, axis=ax, keepdims=True) + np.sum(yp, axis=ax, keepdims=True) + EPSILON

    def _dterms(self, yt):
        return 2.0 * yt, np.ones_like(yt)
