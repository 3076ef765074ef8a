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


class Accuracy(_Wrapped):
    default_name = "accuracy"
    fn = staticmethod(accuracy)


class BinaryAccuracy(_Wrapped):
    default_name = "binary_accuracy"
    fn = staticmethod(binary_accuracy)

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        if not 0 < threshold < 1:
            raise ConfigError(f"BinaryAccuracy threshold must lie in (0, 1), not {threshold}.")
        super().__init__(name, threshold=float(threshold))


class CategoricalAccuracy(_Wrapped):
    default_name = "categorical_accuracy"
    fn = staticmethod(categorical_accuracy)


class SparseCategoricalAccuracy(_Wrapped):
    default_name = "sparse_categorical_accuracy"
    fn = staticmethod(sparse_categorical_accuracy)


class TopKCategoricalAccuracy(_Wrapped):
    default_name = "top_k_categorical_accuracy"
    fn = staticmethod(top_k_categorical_accuracy)

    def __init__(self, k: int = 5, name: str | None = None):
        super().__init__(name, k=int(k))


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    default_name = "sparse_top_k_categorical_accuracy"
    fn = staticmethod(sparse_top_k_categorical_accuracy)


class MeanSquaredError(_Wrapped):
    default_name = "mean_squared_error"
    fn = staticmethod(_losses.mean_squared_error)


class MeanAbsoluteError(_Wrapped):
    default_name = "mean_absolute_error"
    fn = staticmethod(_losses.mean_absolute_error)


class AutoAccuracy(Mean):
    """'accuracy' / 'acc': binary, sparse categorical or categorical accuracy, chosen the Keras way
    from the shapes at the first update_state (the state is (total, count) in every case)."""

    default_name = "accuracy"

    def __init__(self, name: str | None = None):
        super().__init__(name)
        self._fn: Callable | None = None

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self._fn is None:
            yt, yp = np.asarray(y_true), np.asarray(y_pred)
            if yp.shape[-1] == 1:
                self._fn = binary_accuracy
            elif yt.ndim < yp.ndim or (yt.shape[-1] == 1 and yp.shape[-1] > 1):
                self._fn = sparse_categorical_accuracy
            else:
                self._fn = categorical_accuracy
        self._accumulate(self._fn(y_true, y_pred), sample_weight)
