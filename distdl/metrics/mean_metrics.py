"""Running means of a fixed per-sample function: the accuracies, MeanSquaredError, MeanAbsoluteError,
and AutoAccuracy, which picks binary, sparse or categorical accuracy from the shapes."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import losses as _losses
from ..errors import ConfigError
from .base import Mean, _Wrapped
from .functions import (accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                        sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)

__all__ = ["Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "MeanSquaredError",
           "MeanAbsoluteError", "AutoAccuracy"]


class Accuracy(_Wrapped):
    """Running mean of `accuracy`: how often y_pred equals y_true exactly."""

    default_name = "accuracy"
    fn = staticmethod(accuracy)


class BinaryAccuracy(_Wrapped):
    """Running mean of `binary_accuracy`.

    Args:
        name: as in `Metric`.
        threshold: a prediction above it counts as 1 (in (0, 1)).
    """

    default_name = "binary_accuracy"
    fn = staticmethod(binary_accuracy)

    def __init__(self, name: str | None = None, threshold: float = 0.5) -> None:
        if not 0 < threshold < 1:
            raise ConfigError(f"BinaryAccuracy threshold must lie in (0, 1), not {threshold}.")
        super().__init__(name, threshold=float(threshold))


class CategoricalAccuracy(_Wrapped):
    """Running mean of `categorical_accuracy` (one-hot targets)."""

    default_name = "categorical_accuracy"
    fn = staticmethod(categorical_accuracy)


class SparseCategoricalAccuracy(_Wrapped):
    """Running mean of `sparse_categorical_accuracy` (integer labels)."""

    default_name = "sparse_categorical_accuracy"
    fn = staticmethod(sparse_categorical_accuracy)


class TopKCategoricalAccuracy(_Wrapped):
    """Running mean of `top_k_categorical_accuracy` (one-hot targets).

    Args:
        k: how many of the largest scores count as a hit.
        name: as in `Metric`.
    """

    default_name = "top_k_categorical_accuracy"
    fn = staticmethod(top_k_categorical_accuracy)

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        super().__init__(name, k=int(k))


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Running mean of `sparse_top_k_categorical_accuracy` (integer labels).

    Args:
        k: how many of the largest scores count as a hit.
        name: as in `Metric`.
    """

    default_name = "sparse_top_k_categorical_accuracy"
    fn = staticmethod(sparse_top_k_categorical_accuracy)


class MeanSquaredError(_Wrapped):
    """Running mean of the per-sample mean squared error."""

    default_name = "mean_squared_error"
    fn = staticmethod(_losses.mean_squared_error)


class MeanAbsoluteError(_Wrapped):
    """Running mean of the per-sample mean absolute error."""

    default_name = "mean_absolute_error"
    fn = staticmethod(_losses.mean_absolute_error)


class AutoAccuracy(Mean):
    """'accuracy' / 'acc': binary, sparse categorical or categorical accuracy, chosen the Keras way
    from the shapes at the first update_state (the state is (total, count) in every case).

    Args:
        name: as in `Metric`.
    """

    default_name = "accuracy"

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self._fn: Callable | None = None

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add one batch's accuracies (the kind chosen at the first call) to the running mean.

        Args:
            y_true: the targets.
            y_pred: the model's output.
            sample_weight: per-sample weights, or None for 1 each.
        """
        if self._fn is None:
            yt, yp = np.asarray(y_true), np.asarray(y_pred)
            if yp.shape[-1] == 1:
                self._fn = binary_accuracy
            elif yt.ndim < yp.ndim or (yt.shape[-1] == 1 and yp.shape[-1] > 1):
                self._fn = sparse_categorical_accuracy
            else:
                self._fn = categorical_accuracy
        self._accumulate(self._fn(y_true, y_pred), sample_weight)
