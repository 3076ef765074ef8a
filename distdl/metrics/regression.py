"""Regression metrics (Keras 3): running means of per-sample errors (percentage, squared log,
log-cosh, cosine similarity), their root (RootMeanSquaredError), and R2Score from per-output sums.

Every state is a weighted sum (total, count, or R2Score's per-output sums of y, y^2, squared
residuals and weights), so ranks' states add up to one process's.
"""
from __future__ import annotations

import math

import numpy as np

from .. import losses as _losses
from ..errors import ConfigError, ShapeError
from ..losses.base import _match_ranks
from .base import Metric, _Wrapped

__all__ = ["RootMeanSquaredError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
           "CosineSimilarity", "LogCoshError", "R2Score"]


def _squared_error(y_true, y_pred) -> np.ndarray:
    """(y_pred - y_true)^2 per element (the running mean reduces extra axes per sample, as Keras's
    RootMeanSquaredError does).

    Args:
        y_true: the targets.
        y_pred: the model's output.
    """
    yt, yp = _match_ranks(np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64))
    return (yp - yt) ** 2


def _cosine_similarity(y_true, y_pred) -> np.ndarray:
    """Per-sample cosine similarity over the last axis (the metric's sign: 1 for parallel vectors).

    Args:
        y_true: the targets.
        y_pred: the model's output.
    """
    return -_losses.cosine_similarity(y_true, y_pred)


class RootMeanSquaredError(_Wrapped):
    """sqrt of the running weighted mean of squared errors (per sample, extra axes averaged)."""

    default_name = "root_mean_squared_error"
    fn = staticmethod(_squared_error)

    def result(self) -> float:
        return math.sqrt(max(super().result(), 0.0))


class MeanAbsolutePercentageError(_Wrapped):
    """Running mean of the per-sample mean absolute percentage error."""

    default_name = "mean_absolute_percentage_error"
    fn = staticmethod(_losses.mean_absolute_percentage_error)


class MeanSquaredLogarithmicError(_Wrapped):
    """Running mean of the per-sample mean squared logarithmic error."""

    default_name = "mean_squared_logarithmic_error"
    fn = staticmethod(_losses.mean_squared_logarithmic_error)


class CosineSimilarity(_Wrapped):
    """Running mean of the per-sample cosine similarity of y_true and y_pred (last axis).

    Args:
        name: as in `Metric`.
        axis: the feature axis; only -1.
    """

    default_name = "cosine_similarity"
    _keras_only = {"axis": -1}
    fn = staticmethod(_cosine_similarity)

    def __init__(self, name: str | None = None, axis: int = -1) -> None:
        if axis != -1:
            raise ConfigError(f"CosineSimilarity supports only axis=-1 (the feature axis), not axis={axis!r}.")
        super().__init__(name)


class LogCoshError(_Wrapped):
    """Running mean of the per-sample mean log(cosh(y_pred - y_true))."""

    default_name = "logcosh"
    fn = staticmethod(_losses.log_cosh)


class R2Score(Metric):
    """The coefficient of determination 1 - SS_res / SS_tot per output column, then aggregated.

    State: per column, the weighted sums of y, y^2, (y - p)^2 and the weights, plus the count of
    samples with a nonzero weight (for the adjusted score): 4 x outputs + 1 sums.

    Args:
        class_aggregation: None (one score per column), "uniform_average" or
            "variance_weighted_average".
        num_regressors: > 0 gives the adjusted R2 with this many independent variables.
        name: as in `Metric`.
    """

    default_name = "r2_score"

    def __init__(self, class_aggregation: str | None = "uniform_average", num_regressors: int = 0,
                 name: str | None = None) -> None:
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ConfigError("R2Score class_aggregation must be None, 'uniform_average' or "
                              f"'variance_weighted_average', not {class_aggregation!r}.")
        if num_regressors < 0:
            raise ConfigError(f"R2Score num_regressors must be >= 0, not {num_regressors}.")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        self.num_outputs: int | None = None
        super().__init__(name)

    def build_for_output(self, output_shape) -> None:
        """Size the state for `output_shape[-1]` output columns (kept when already sized).

        Args:
            output_shape: the model output's shape.
        """
        if output_shape is None or self.num_outputs is not None or output_shape[-1] is None:
            return
        self.num_outputs = int(output_shape[-1])
        self.state_size = 4 * self.num_outputs + 1
        self._state = np.zeros(self.state_size)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add the batch's weighted per-column sums.

        Args:
            y_true: targets, shape (batch, outputs).
            y_pred: predictions, shape (batch, outputs).
            sample_weight: per-sample (or per-element) weights, or None for 1 each.
        """
        yt, yp = _match_ranks(np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64))
        if yp.ndim != 2 or yt.shape != yp.shape:
            raise ShapeError(f"R2Score expects 2-D y_true and y_pred of one shape (batch, outputs); "
                             f"got y_true {yt.shape} and y_pred {yp.shape}.")
        self.build_for_output(yp.shape)
        if self.num_outputs != yp.shape[-1]:
            raise ShapeError(f"Metric {self.name!r} scores {self.num_outputs} outputs, not {yp.shape[-1]}.")
        w = np.ones(1) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        w = np.broadcast_to(w[:, None] if w.ndim == 1 else w, yt.shape)
        wy = yt * w
        k = self.num_outputs
        self._state[:k] += wy.sum(axis=0)
        self._state[k:2 * k] += (yt * wy).sum(axis=0)
        self._state[2 * k:3 * k] += ((yt - yp) ** 2 * w).sum(axis=0)
        self._state[3 * k:4 * k] += w.sum(axis=0)
        self._state[4 * k] += np.count_nonzero(np.any(w != 0, axis=-1))

    def result(self):
        """The score: an array per column when class_aggregation is None, else a float."""
        if self.num_outputs is None:
            return 0.0
        k = self.num_outputs
        total_sum, squared, residual, count = self._state[:4 * k].reshape(4, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            total = squared - total_sum * (total_sum / count)
            raw = 1.0 - residual / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            score = float(np.sum(total * raw) / np.sum(total))
        else:
            score = raw
        n, p = self._state[4 * k], self.num_regressors
        if p and n - 1 > p:  # adjusted R2; Keras falls back to the plain score otherwise
            score = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return score

    def get_config(self) -> dict:
        return {"name": self.name, "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}
