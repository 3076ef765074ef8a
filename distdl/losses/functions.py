"""Keras-style loss functions: `mean_squared_error(y_true, y_pred)` and friends, giving per-sample
values of the default-configured loss class, plus their short aliases (`mse`, `mae`, ...)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .crossentropy import BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy
from .focal import BinaryFocalCrossentropy, CategoricalFocalCrossentropy
from .overlap import CategoricalHinge, CosineSimilarity, Dice, Tversky
from .elementwise import (Hinge, Huber, KLDivergence, LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError,
                          MeanSquaredError, MeanSquaredLogarithmicError, Poisson, SquaredHinge)

__all__ = ["mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
           "mean_squared_logarithmic_error", "log_cosh", "poisson", "kl_divergence", "hinge", "squared_hinge",
           "huber", "binary_crossentropy", "binary_focal_crossentropy", "categorical_focal_crossentropy",
           "cosine_similarity", "categorical_hinge", "dice", "tversky", "categorical_crossentropy",
           "sparse_categorical_crossentropy",
           "mse", "MSE", "mae", "MAE", "mape", "MAPE", "msle", "MSLE", "kld", "KLD"]


def _per_sample(cls: type, name: str) -> Callable:
    """A Keras-style function name -> per-sample values of the default-configured loss class."""
    def fn(y_true, y_pred) -> np.ndarray:
        return cls().call(y_true, y_pred)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"Per-sample {name} (shape y_pred.shape[:-1]); see {cls.__name__}.\n\n"
                  "Args:\n    y_true: the targets.\n    y_pred: the model's output.\n")
    return fn


mean_squared_error = _per_sample(MeanSquaredError, "mean_squared_error")
mean_absolute_error = _per_sample(MeanAbsoluteError, "mean_absolute_error")
mean_absolute_percentage_error = _per_sample(MeanAbsolutePercentageError, "mean_absolute_percentage_error")
mean_squared_logarithmic_error = _per_sample(MeanSquaredLogarithmicError, "mean_squared_logarithmic_error")
log_cosh = _per_sample(LogCosh, "log_cosh")
poisson = _per_sample(Poisson, "poisson")
kl_divergence = _per_sample(KLDivergence, "kl_divergence")
hinge = _per_sample(Hinge, "hinge")
squared_hinge = _per_sample(SquaredHinge, "squared_hinge")
categorical_hinge = _per_sample(CategoricalHinge, "categorical_hinge")


def huber(y_true, y_pred, delta: float = 1.0) -> np.ndarray:
    """Per-sample Huber loss.

    Args:
        y_true: the targets.
        y_pred: the model's output.
        delta: where the loss turns from quadratic to linear.
    """
    return Huber(delta).call(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample binary cross-entropy (mean over the last axis).

    Args:
        y_true: the targets.
        y_pred: the model's output.
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], as in BinaryCrossentropy.
    """
    return BinaryCrossentropy(from_logits, label_smoothing).call(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                             label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample categorical cross-entropy.

    Args:
        y_true: one-hot targets.
        y_pred: the model's output.
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], as in CategoricalCrossentropy.
    """
    return CategoricalCrossentropy(from_logits, label_smoothing).call(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                                    ignore_class: int | None = None) -> np.ndarray:
    """Per-sample cross-entropy against integer labels.

    Args:
        y_true: integer class labels.
        y_pred: the model's output.
        from_logits: whether y_pred holds logits.
        ignore_class: a label whose samples get loss 0, or None.
    """
    return SparseCategoricalCrossentropy(from_logits, ignore_class).call(y_true, y_pred)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing: bool = False, alpha: float = 0.25,
                              gamma: float = 2.0, from_logits: bool = False,
                              label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample binary focal cross-entropy (mean over the last axis).

    Args:
        y_true: the targets.
        y_pred: the model's output.
        apply_class_balancing: weigh positives by alpha, negatives by 1 - alpha.
        alpha: the positive class's weight when balancing.
        gamma: the focusing parameter.
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], as in BinaryFocalCrossentropy.
    """
    return BinaryFocalCrossentropy(apply_class_balancing, alpha, gamma, from_logits,
                                   label_smoothing).call(y_true, y_pred)


def categorical_focal_crossentropy(y_true, y_pred, alpha: float = 0.25, gamma: float = 2.0,
                                   from_logits: bool = False, label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample categorical focal cross-entropy.

    Args:
        y_true: one-hot targets.
        y_pred: the model's output.
        alpha: the weighting factor.
        gamma: the focusing parameter.
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], as in CategoricalFocalCrossentropy.
    """
    return CategoricalFocalCrossentropy(alpha, gamma, from_logits, label_smoothing).call(y_true, y_pred)


def cosine_similarity(y_true, y_pred, axis: int = -1) -> np.ndarray:
    """Per-sample negative cosine similarity over the last axis.

    Args:
        y_true: the targets.
        y_pred: the model's output.
        axis: the feature axis (only -1).
    """
    return CosineSimilarity(axis).call(y_true, y_pred)


def dice(y_true, y_pred, axis=None) -> np.ndarray:
    """Dice loss over `axis` (None: one value for the whole batch).

    Args:
        y_true: the targets.
        y_pred: the model's output.
        axis: None, or the axes to reduce.
    """
    return Dice(axis=axis).call(y_true, y_pred)


def tversky(y_true, y_pred, alpha: float = 0.5, beta: float = 0.5, axis=None) -> np.ndarray:
    """Tversky loss over `axis` (None: one value for the whole batch).

    Args:
        y_true: the targets.
        y_pred: the model's output.
        alpha: the weight of false positives.
        beta: the weight of false negatives.
        axis: None, or the axes to reduce.
    """
    return Tversky(alpha, beta, axis=axis).call(y_true, y_pred)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
