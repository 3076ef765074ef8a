"""Metrics read off a curve of confusion counts over many thresholds: AUC (ROC, PR, PRGAIN with
Keras's interpolation, minoring or majoring sums) and the best sensitivity / specificity /
precision / recall under a constraint on the other.

State: the weighted (tp, fp, tn, fn) at every threshold (confusion.confusion_counts), 4 x
num_thresholds sums, so N ranks' states add up to one process's and every rank reads the
global curve.
"""
from __future__ import annotations

import numpy as np

from ..activations import sigmoid
from ..errors import ConfigError
from .base import Metric
from .confusion import confusion_counts

__all__ = ["AUC", "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall",
           "RecallAtPrecision"]

_EPS = 1e-7


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0 (Keras's divide_no_nan)."""
    out = np.zeros_like(a)
    np.divide(a, b, out=out, where=b != 0)
    return out


class _Curve(Metric):
    """Counts (tp, fp, tn, fn) at fixed thresholds, as the state."""

    _thresholds = np.zeros(1)
    _class_id: int | None = None

    def _setup(self, thresholds: np.ndarray, name: str | None) -> None:
        self._thresholds = np.asarray(thresholds, dtype=np.float64)
        self.state_size = 4 * len(self._thresholds)
        Metric.__init__(self, name)

    def _scores(self, y_pred):
        return np.clip(np.asarray(y_pred, dtype=np.float64), 0.0, 1.0)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add the batch's weighted confusion counts at every threshold.

        Args:
            y_true: the targets (nonzero: positive).
            y_pred: the scores.
            sample_weight: per-sample (or per-element) weights, or None for 1 each.
        """
        counts = confusion_counts(y_true, self._scores(y_pred), self._thresholds, sample_weight, self._class_id)
        self._state += counts.ravel()

    @property
    def _counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        tp, fp, tn, fn = self._state.reshape(4, -1)
        return tp, fp, tn, fn


class AUC(_Curve):
    """Area under the ROC or PR curve over `num_thresholds` thresholds (Keras 3 defaults): the
    thresholds are -eps, (i / (num_thresholds - 1)) for the inner ones, and 1 + eps, or the given
    `thresholds` between -eps and 1 + eps.

    Args:
        num_thresholds: number of thresholds (> 1), ignored when `thresholds` is given.
        curve: "ROC", "PR" or "PRGAIN".
        summation_method: "interpolation" (trapezoids; for PR, Davis & Goadrich's), "minoring" or
            "majoring".
        name: as in `Metric`.
        thresholds: explicit thresholds in [0, 1], or None.
        multi_label: only False (one curve over every element) is supported.
        from_logits: whether y_pred holds logits (a sigmoid is applied first).
    """

    default_name = "auc"
    _keras_only = {"num_labels": None, "label_weights": None}

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, thresholds=None, multi_label: bool = False,
                 from_logits: bool = False) -> None:
        self.curve, self.summation_method = str(curve).upper(), str(summation_method).lower()
        if self.curve not in ("ROC", "PR", "PRGAIN"):
            raise ConfigError(f"AUC curve must be 'ROC', 'PR' or 'PRGAIN', not {curve!r}.")
        if self.summation_method not in ("interpolation", "minoring", "majoring"):
            raise ConfigError(f"AUC summation_method must be 'interpolation', 'minoring' or 'majoring', "
                              f"not {summation_method!r}.")
        if multi_label:
            raise ConfigError("AUC multi_label=True is not supported: use one AUC per output column.")
        self._given = None if thresholds is None else sorted(float(t) for t in thresholds)
        if self._given is not None:
            inner = self._given
            num_thresholds = len(inner) + 2
        elif num_thresholds <= 1:
            raise ConfigError(f"AUC num_thresholds must be > 1, not {num_thresholds}.")
        else:
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.num_thresholds, self.from_logits = int(num_thresholds), bool(from_logits)
        self._setup(np.array([0.0 - _EPS, *inner, 1.0 + _EPS]), name)

    def _scores(self, y_pred):
        return super()._scores(sigmoid(np.asarray(y_pred, dtype=np.float64)) if self.from_logits else y_pred)

    def _interpolate_pr(self) -> float:
        """Davis & Goadrich's PR interpolation, Keras's closed form."""
        tp, fp, _, fn = self._counts
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _ratio(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        safe = np.where(both, _ratio(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return float(np.sum(_ratio(slope * (dtp + intercept * np.log(safe)), np.maximum(tp[1:] + fn[1:], 0))))

    def result(self) -> float:
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr()
        tp, fp, tn, fn = self._counts
        recall = _ratio(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _ratio(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _ratio(tp, tp + fp)
        else:  # PRGAIN
            scale = _ratio(tp + fn, tn + fp)
            x = np.maximum(np.where(tp == 0, 0.0, 1.0 - scale * _ratio(fn, tp)), 0.0)
            y = np.where(tp == 0, 1.0, 1.0 - scale * _ratio(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self) -> dict:
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "thresholds": self._given,
                "multi_label": False, "from_logits": self.from_logits}


class _AtConstraint(_Curve):
    """The best of one rate among thresholds where another rate is >= `value` (0 when none is).

    Args:
        value: the constraint, in [0, 1].
        num_thresholds: thresholds evenly spaced over [0, 1] (1: just 0.5).
        class_id: score only this column of the last axis, or None for every element.
        name: as in `Metric`.
    """

    _arg = "value"

    def __init__(self, value: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None) -> None:
        if not 0 <= value <= 1:
            raise ConfigError(f"{type(self).__name__} argument `{self._arg}` must be in the range [0, 1], "
                              f"not {value}.")
        if num_thresholds <= 0:
            raise ConfigError(f"{type(self).__name__} num_thresholds must be an integer > 0, not {num_thresholds}.")
        self.value, self.num_thresholds = float(value), int(num_thresholds)
        self._class_id = None if class_id is None else int(class_id)
        n = self.num_thresholds
        inner = [(i + 1) * 1.0 / (n - 1) for i in range(n - 2)]  # Keras's exact thresholds
        self._setup(np.array([0.5]) if n == 1 else np.array([0.0, *inner, 1.0]), name)

    @property
    def class_id(self) -> int | None:
        """The scored column of the last axis, or None."""
        return self._class_id

    def _rates(self) -> tuple[np.ndarray, np.ndarray]:
        """(constrained rate, rate to maximise) at each threshold."""
        raise NotImplementedError

    def result(self) -> float:
        constrained, dependent = self._rates()
        return float(np.max(np.where(constrained >= self.value, dependent, 0.0), initial=0.0))

    def get_config(self) -> dict:
        return {"name": self.name, self._arg: self.value, "num_thresholds": self.num_thresholds,
                "class_id": self._class_id}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        config = cls._clean_config(config)
        return cls(config.pop(cls._arg), **config)


class SensitivityAtSpecificity(_AtConstraint):
    """Best sensitivity tp / (tp + fn) where specificity tn / (tn + fp) >= `specificity`.

    Args:
        specificity: the specificity to reach, in [0, 1].
        num_thresholds: thresholds evenly spaced over [0, 1] (1: just 0.5).
        class_id: score only this column of the last axis, or None for every element.
        name: as in `Metric`.
    """

    default_name = "sensitivity_at_specificity"
    _arg = "specificity"

    def __init__(self, specificity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None) -> None:
        super().__init__(specificity, num_thresholds, class_id, name)
        self.specificity = self.value

    def _rates(self):
        tp, fp, tn, fn = self._counts
        return _ratio(tn, tn + fp), _ratio(tp, tp + fn)


class SpecificityAtSensitivity(_AtConstraint):
    """Best specificity tn / (tn + fp) where sensitivity tp / (tp + fn) >= `sensitivity`.

    Args:
        sensitivity: the sensitivity to reach, in [0, 1].
        num_thresholds: thresholds evenly spaced over [0, 1] (1: just 0.5).
        class_id: score only this column of the last axis, or None for every element.
        name: as in `Metric`.
    """

    default_name = "specificity_at_sensitivity"
    _arg = "sensitivity"

    def __init__(self, sensitivity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None) -> None:
        super().__init__(sensitivity, num_thresholds, class_id, name)
        self.sensitivity = self.value

    def _rates(self):
        tp, fp, tn, fn = self._counts
        return _ratio(tp, tp + fn), _ratio(tn, tn + fp)


class PrecisionAtRecall(_AtConstraint):
    """Best precision tp / (tp + fp) where recall tp / (tp + fn) >= `recall`.

    Args:
        recall: the recall to reach, in [0, 1].
        num_thresholds: thresholds evenly spaced over [0, 1] (1: just 0.5).
        class_id: score only this column of the last axis, or None for every element.
        name: as in `Metric`.
    """

    default_name = "precision_at_recall"
    _arg = "recall"

    def __init__(self, recall: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None) -> None:
        super().__init__(recall, num_thresholds, class_id, name)
        self.recall = self.value

    def _rates(self):
        tp, fp, _, fn = self._counts
        return _ratio(tp, tp + fn), _ratio(tp, tp + fp)


class RecallAtPrecision(_AtConstraint):
    """Best recall tp / (tp + fn) where precision tp / (tp + fp) >= `precision` (0 if unreachable).

    Args:
        precision: the precision to reach, in [0, 1].
        num_thresholds: thresholds evenly spaced over [0, 1] (1: just 0.5).
        class_id: score only this column of the last axis, or None for every element.
        name: as in `Metric`.
    """

    default_name = "recall_at_precision"
    _arg = "precision"

    def __init__(self, precision: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None) -> None:
        super().__init__(precision, num_thresholds, class_id, name)
        self.precision = self.value

    def _rates(self):
        tp, fp, _, fn = self._counts
        return _ratio(tp, tp + fp), _ratio(tp, tp + fn)
