"""Threshold metrics from weighted confusion counts: Precision and Recall (one threshold), and
TruePositives / TrueNegatives / FalsePositives / FalseNegatives at one or more thresholds.

`confusion_counts` is the one counting rule (Keras's): an element is predicted positive when
y_pred > threshold, and a positive when y_true != 0; each count is a sum of sample weights, so
ranks' counts add up. The curve metrics (curves.py) use it too.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..losses.base import _match_weights
from .base import Metric, _div
from .functions import _align

__all__ = ["Precision", "Recall", "TruePositives", "TrueNegatives", "FalsePositives", "FalseNegatives",
           "confusion_counts"]


def confusion_counts(y_true, y_pred, thresholds: np.ndarray, sample_weight=None,
                     class_id: int | None = None) -> np.ndarray:
    """Weighted (tp, fp, tn, fn) at each threshold, shape (4, len(thresholds)), float64.

    Args:
        y_true: the targets (nonzero: positive), any shape matching y_pred.
        y_pred: the scores; an element is predicted positive at threshold t when y_pred > t.
        thresholds: sorted ascending.
        sample_weight: per-sample (or per-element) weights, or None for 1 each.
        class_id: count only this column of the last axis, or None for every element.
    """
    yt, yp = _align(y_true, y_pred)
    yp = np.asarray(yp, dtype=np.float64)
    w = np.ones(yp.shape) if sample_weight is None else _match_weights(sample_weight, yp.shape, np.float64)
    if class_id is not None:
        if yp.ndim < 2 or not 0 <= class_id < yp.shape[-1]:
            raise ConfigError(f"class_id {class_id} is outside the last axis of y_pred with shape {yp.shape}.")
        yt, yp, w = yt[..., class_id], yp[..., class_id], w[..., class_id]
    pos = (np.broadcast_to(yt, yp.shape) != 0).ravel()
    wf = np.broadcast_to(w, yp.shape).ravel()
    n = len(thresholds)
    above = np.searchsorted(thresholds, yp.ravel(), side="left")  # how many thresholds lie below p
    out = np.empty((4, n))
    for j, sel in enumerate((pos, ~pos)):
        hist = np.bincount(above[sel], weights=wf[sel], minlength=n + 1)
        over = np.cumsum(hist[::-1])[::-1][1:]        # weight above threshold i: bins k > i
        out[j] = over                                 # tp, fp
        out[3 - j] = hist.sum() - over                # fn, tn
    return out


def _thresholds(thresholds, default: float = 0.5) -> np.ndarray:
    """Keras's parse_init_thresholds: one number or a list, each in [0, 1]."""
    values = [default] if thresholds is None else list(np.atleast_1d(thresholds))
    if any(v is None or not 0 <= v <= 1 for v in values):
        raise ConfigError(f"Threshold values must be in [0, 1]; got thresholds={thresholds!r}.")
    return np.asarray(values, dtype=np.float64)


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
        self.thresholds = float(_thresholds(thresholds)[0])

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        tp, fp, _, fn = confusion_counts(y_true, y_pred, np.array([self.thresholds]), sample_weight)[:, 0]
        self._state += (tp, fn if self._misses_positives else fp)

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


class _Count(Metric):
    """One confusion count at each threshold: state, the weighted counts (Keras's `accumulator`).

    Args:
        thresholds: a number or a list in [0, 1] (None: 0.5); a list gives a result per threshold.
        name: as in `Metric`.
    """

    _row = 0  # which of confusion_counts' (tp, fp, tn, fn)

    def __init__(self, thresholds=None, name: str | None = None) -> None:
        self._list = thresholds is not None and np.ndim(thresholds) > 0
        t = _thresholds(thresholds)
        self.state_size = len(t)
        super().__init__(name)
        self.thresholds = t
        self._order = np.argsort(t, kind="stable")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add the batch's weighted count at each threshold.

        Args:
            y_true: the targets (nonzero: positive).
            y_pred: the scores.
            sample_weight: per-sample (or per-element) weights, or None for 1 each.
        """
        counts = confusion_counts(y_true, y_pred, self.thresholds[self._order], sample_weight)[self._row]
        self._state[self._order] += counts

    def result(self):
        return self._state.copy() if self._list else float(self._state[0])

    def get_config(self) -> dict:
        t = self.thresholds.tolist()
        return {"name": self.name, "thresholds": t if self._list else t[0]}


class TruePositives(_Count):
    """Weighted count of positives predicted above the threshold(s)."""

    default_name = "true_positives"


class FalsePositives(_Count):
    """Weighted count of negatives predicted above the threshold(s)."""

    default_name = "false_positives"
    _row = 1


class TrueNegatives(_Count):
    """Weighted count of negatives predicted at or below the threshold(s)."""

    default_name = "true_negatives"
    _row = 2


class FalseNegatives(_Count):
    """Weighted count of positives predicted at or below the threshold(s)."""

    default_name = "false_negatives"
    _row = 3
