"""Threshold metrics from weighted confusion counts: Precision, Recall and ROC AUC."""
from __future__ import annotations

import numpy as np

from ..losses.base import _match_weights
from ..errors import ConfigError
from .base import Metric, _div
from .functions import _align

__all__ = ["Precision", "Recall", "AUC"]


class _Confusion(Metric):
    """Precision / Recall at one threshold: state (true positives, false positives or negatives).

    Args:
        thresholds: a prediction above it counts as positive (None: 0.5).
        name: as in `Metric`.
    """

    state_size = 2
    _misses_positives = False  # the second count: false negatives (Recall) or false positives

    def __init__(self, thresholds: float | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.thresholds = 0.5 if thresholds is None else float(thresholds)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        yt, yp = _align(y_true, y_pred)
        pos, pred = yt != 0, yp > self.thresholds
        w = np.ones(yp.shape) if sample_weight is None else _match_weights(
            sample_weight, yp.shape, np.float64)
        wrong = (pos & ~pred) if self._misses_positives else (~pos & pred)
        self._state += (float(np.sum(w * (pos & pred))), float(np.sum(w * wrong)))

    def result(self) -> float:
        return _div(self._state[0], self._state[0] + self._state[1])

    def get_config(self) -> dict:
        return {"name": self.name, "thresholds": self.thresholds}


class Precision(_Confusion):
    """tp / (tp + fp) of binary predictions above the threshold (0.5)."""

    default_name = "precision"


class Recall(_Confusion):
    """tp / (tp + fn) of binary predictions above the threshold (0.5)."""

    default_name = "recall"
    _misses_positives = True


class AUC(Metric):
    """ROC AUC over `num_thresholds` fixed thresholds with trapezoidal interpolation (Keras defaults).

    State: weighted counts of positives and negatives above each threshold, plus their totals.

    Args:
        num_thresholds: number of thresholds in [0, 1] (> 1).
        name: as in `Metric`.
    """

    default_name = "auc"

    def __init__(self, num_thresholds: int = 200, name: str | None = None) -> None:
        if num_thresholds < 2:
            raise ConfigError(f"AUC num_thresholds must be > 1, not {num_thresholds}.")
        self.num_thresholds = int(num_thresholds)
        self.state_size = 2 * self.num_thresholds + 2
        super().__init__(name)
        inner = np.arange(1, self.num_thresholds - 1) / (self.num_thresholds - 1)
        self._thresholds = np.concatenate([[-1e-7], inner, [1.0 + 1e-7]])

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        yt, yp = _align(y_true, y_pred)
        w = np.ones(yp.shape) if sample_weight is None else _match_weights(
            sample_weight, yp.shape, np.float64)
        n = self.num_thresholds
        above = np.searchsorted(self._thresholds, yp.ravel(), side="left")  # thresholds < p
        pos = (yt != 0).ravel()
        wf = np.broadcast_to(w, yp.shape).ravel()
        for j, sel in enumerate((pos, ~pos)):
            hist = np.bincount(above[sel], weights=wf[sel], minlength=n + 1)
            # count above threshold i = sum of hist[k] for k > i
            self._state[j * n:(j + 1) * n] += np.cumsum(hist[::-1])[::-1][1:]
            self._state[2 * n + j] += hist.sum()

    def result(self) -> float:
        n = self.num_thresholds
        tp, fp = self._state[:n], self._state[n:2 * n]
        tpr = tp / self._state[2 * n] if self._state[2 * n] else np.zeros(n)
        fpr = fp / self._state[2 * n + 1] if self._state[2 * n + 1] else np.zeros(n)
        return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))

    def get_config(self) -> dict:
        return {"name": self.name, "num_thresholds": self.num_thresholds}
