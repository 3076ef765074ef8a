"""F-beta and F1 scores (Keras 3): per-class weighted true positives, false positives, false
negatives and supports, summed over batches and ranks, then combined by `average`.

The state's size depends on the number of classes, which compile gives (`build_for_output`);
outside a model the first `update_state` sizes it.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from .base import Metric

__all__ = ["FBetaScore", "F1Score"]

_EPS = 1e-7


class FBetaScore(Metric):
    """(1 + beta^2) P R / (beta^2 P + R) from per-class counts (2-D inputs: (batch, classes)).

    Args:
        average: None (one score per class), "micro" (from the counts of every class together),
            "macro" (the mean of the class scores) or "weighted" (their mean weighted by support).
        beta: > 0; how much more recall counts than precision.
        threshold: a score above it is a positive prediction; None: each row's largest score.
        name: as in `Metric`.
    """

    default_name = "fbeta_score"

    def __init__(self, average: str | None = None, beta: float = 1.0, threshold: float | None = None,
                 name: str | None = None) -> None:
        if average not in (None, "micro", "macro", "weighted"):
            raise ConfigError(f"FBetaScore average must be None, 'micro', 'macro' or 'weighted', not {average!r}.")
        if not beta > 0:
            raise ConfigError(f"FBetaScore beta must be > 0, not {beta}.")
        if threshold is not None and not 0 < threshold <= 1:
            raise ConfigError(f"FBetaScore threshold must verify 0 < threshold <= 1, not {threshold}.")
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else float(threshold)
        self.num_classes: int | None = None
        super().__init__(name)

    def build_for_output(self, output_shape) -> None:
        """Size the state for `output_shape[-1]` classes (kept when already sized).

        Args:
            output_shape: the model output's shape.
        """
        if output_shape is None or self.num_classes is not None or output_shape[-1] is None:
            return
        self.num_classes = int(output_shape[-1])
        self.state_size = 4 * (1 if self.average == "micro" else self.num_classes)
        self._state = np.zeros(self.state_size)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add the batch's weighted per-class counts.

        Args:
            y_true: multi-hot targets, shape (batch, classes).
            y_pred: scores, shape (batch, classes).
            sample_weight: per-sample (or per-element) weights, or None for 1 each.
        """
        yt, yp = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
        if yp.ndim != 2 or yt.shape != yp.shape:
            raise ShapeError(f"{type(self).__name__} expects 2-D y_true and y_pred of one shape (batch, classes); "
                             f"got y_true {yt.shape} and y_pred {yp.shape}.")
        self.build_for_output(yp.shape)
        if self.num_classes != yp.shape[-1]:
            raise ShapeError(f"Metric {self.name!r} counts {self.num_classes} classes, not {yp.shape[-1]}.")
        if self.threshold is None:
            pred = (yp >= np.max(yp, axis=-1, keepdims=True)) & (np.abs(yp) > 1e-9)
        else:
            pred = yp > self.threshold
        pred = pred.astype(np.float64)
        w = np.ones((len(yp), 1)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.ndim < 2:
            w = w.reshape(w.shape + (1,) * (2 - w.ndim))
        parts = [pred * yt, pred * (1 - yt), (1 - pred) * yt, yt]
        axis = None if self.average == "micro" else 0
        self._state += np.concatenate([np.atleast_1d(np.sum(p * w, axis=axis)) for p in parts])

    def result(self):
        """The score: an array per class when average is None, else a float."""
        if self.num_classes is None:
            return 0.0
        tp, fp, fn, support = self._state.reshape(4, -1)
        precision = tp / (tp + fp + _EPS)
        recall = tp / (tp + fn + _EPS)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + _EPS) * (1 + b2)
        if self.average == "weighted":
            return float(np.sum(score * support / (np.sum(support) + _EPS)))
        if self.average is not None:
            return float(np.mean(score))
        return score

    def get_config(self) -> dict:
        return {"name": self.name, "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """FBetaScore with beta = 1: the harmonic mean of precision and recall.

    Args:
        average: as in FBetaScore.
        threshold: as in FBetaScore.
        name: as in `Metric`.
    """

    default_name = "f1_score"
    _keras_only = {"beta": 1.0}

    def __init__(self, average: str | None = None, threshold: float | None = None,
                 name: str | None = None) -> None:
        super().__init__(average, 1.0, threshold, name)

    def get_config(self) -> dict:
        return {"name": self.name, "average": self.average, "threshold": self.threshold}
