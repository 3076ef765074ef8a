"""Metrics as running sums, so that ranks can add their states and every rank reports the global value.

The training loop concatenates every metric's `get_state()` (float64, `state_size` values) into one
buffer, sums it across ranks, hands each slice back with `set_state`, and then calls `result()`.
Names, defaults and formulas follow Keras 3 (`keras.metrics`).

This package re-exports the whole API and holds the name registry (`get`, `serialize`, `deserialize`):
`functions` (per-sample functions), `base` (Metric, Mean, MeanMetricWrapper), `mean_metrics`
(accuracies, MSE/MAE, AutoAccuracy), `regression` (RMSE, MAPE, MSLE, cosine, log-cosh, R2Score),
`probabilistic` (KL divergence, cross-entropies), `confusion` (Precision, Recall, TruePositives
and the other counts), `curves` (AUC, SensitivityAtSpecificity and kin), `fscore` (F1Score,
FBetaScore), `iou` (IoU, MeanIoU, BinaryIoU) and `custom` (the state variables of a user's Metric
subclass). A user's function becomes a MeanMetricWrapper.
"""
from __future__ import annotations

from .. import registry
from ..errors import unknown_name
from .base import Mean, MeanMetricWrapper, Metric
from .confusion import FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives
from .curves import AUC, PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity
from .fscore import F1Score, FBetaScore
from .iou import BinaryIoU, IoU, MeanIoU
from .probabilistic import BinaryCrossentropy, CategoricalCrossentropy, KLDivergence, SparseCategoricalCrossentropy
from .regression import (CosineSimilarity, LogCoshError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
                         R2Score, RootMeanSquaredError)
from .functions import (_FUNCTIONS, accuracy,
                        binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                        sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from .mean_metrics import (Accuracy, AutoAccuracy, BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError,
                           MeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                           TopKCategoricalAccuracy)

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "AUC", "Precision", "Recall", "Accuracy", "AutoAccuracy",
           "BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError", "MeanSquaredError",
           "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy",
           "TruePositives", "TrueNegatives", "FalsePositives", "FalseNegatives", "PrecisionAtRecall",
           "RecallAtPrecision", "SensitivityAtSpecificity", "SpecificityAtSensitivity", "F1Score", "FBetaScore",
           "IoU", "MeanIoU", "BinaryIoU", "BinaryCrossentropy", "CategoricalCrossentropy", "KLDivergence",
           "SparseCategoricalCrossentropy", "CosineSimilarity", "LogCoshError", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "R2Score", "RootMeanSquaredError",
           "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "sparse_top_k_categorical_accuracy", "top_k_categorical_accuracy", "get", "serialize",
           "deserialize"]

_CLASSES: dict[str, type[Metric]] = {c.__name__: c for c in (
    Mean, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
    AutoAccuracy, Precision, Recall, AUC, TruePositives, TrueNegatives, FalsePositives, FalseNegatives,
    PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity, F1Score, FBetaScore,
    IoU, MeanIoU, BinaryIoU, BinaryCrossentropy, CategoricalCrossentropy, KLDivergence,
    SparseCategoricalCrossentropy, CosineSimilarity, LogCoshError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, R2Score, RootMeanSquaredError)}
# Functions whose class form carries extra behaviour (threshold checks, k) map to that class.
_FUNCTION_CLASSES = {binary_accuracy: BinaryAccuracy, categorical_accuracy: CategoricalAccuracy,
                     sparse_categorical_accuracy: SparseCategoricalAccuracy,
                     top_k_categorical_accuracy: TopKCategoricalAccuracy,
                     sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy}
_SHORT = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
          "msle": "mean_squared_logarithmic_error", "precision": "Precision", "recall": "Recall",
          "auc": "AUC", "root_mean_squared_error": "RootMeanSquaredError", "logcosh": "LogCoshError",
          "cosine_similarity": "CosineSimilarity",
          "f1_score": "F1Score", "f_beta_score": "FBetaScore", "r2_score": "R2Score",
          "true_positives": "TruePositives", "true_negatives": "TrueNegatives",
          "false_positives": "FalsePositives", "false_negatives": "FalseNegatives"}


def _valid_names() -> list:
    return ["accuracy", "acc", *_SHORT, *_FUNCTIONS, *_CLASSES]


def get(identifier: object, name: str | None = None) -> Metric:
    """Resolve a Keras metric name, function, class, instance or config dict to a Metric.

    String metrics keep the name the user wrote ('acc' logs as 'acc', 'mse' as 'mse').

    Args:
        identifier: any of those.
        name: the name to log it under; None keeps the one given or the class's.
    """
    if isinstance(identifier, Metric):  # a user's subclass too: its variables must be sums
        if name:
            identifier.name = name
        identifier.check_summed()
        return identifier
    if isinstance(identifier, dict):
        metric = deserialize(identifier)
        return get(metric, name)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return get(identifier(name=name) if name else identifier())  # a subclass's own default name
    if isinstance(identifier, str):
        label = name or identifier
        key = _SHORT.get(identifier, identifier)
        custom = registry.get_registered_object(identifier)  # custom_objects, then registered names
        if custom is not None:  # saved as the name the user wrote, found again the same way
            metric = get(custom, label)
            metric._identifier = identifier
            return metric
        if identifier.lower() in ("accuracy", "acc"):
            metric: Metric = AutoAccuracy(name=label)
        elif key in _CLASSES and key != "MeanMetricWrapper":
            metric = _CLASSES[key](name=label)
        elif key in _FUNCTIONS:
            fn = _FUNCTIONS[key]
            cls = _FUNCTION_CLASSES.get(fn)
            metric = cls(name=label) if cls else MeanMetricWrapper(fn, name=label)
        else:
            raise registry.not_found("metric", identifier, _valid_names())
        metric._identifier = identifier
        return metric
    if callable(identifier):
        cls = _FUNCTION_CLASSES.get(identifier)
        return cls(name=name) if cls else MeanMetricWrapper(identifier, name=name)
    raise unknown_name("metric", repr(identifier), _valid_names())


def serialize(metric: object) -> str | dict:
    """The string the user gave, or {'class_name': ..., 'config': ...}.

    Args:
        metric: anything `get` accepts.
    """
    metric = get(metric)
    ident = getattr(metric, "_identifier", None)
    if ident is not None and ident == metric.name:
        return ident
    return registry.serialize(metric)


def deserialize(config: dict | str) -> Metric:
    """Inverse of serialize.

    Args:
        config: a dict from `serialize`, or a metric name.
    """
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict):
        raise unknown_name("metric class", None, _CLASSES)
    found = registry.resolve("metric class", config.get("class_name"), _CLASSES, config.get("registered_name"))
    return found.from_config(dict(config.get("config") or {})) if isinstance(found, type) else get(found)
