"""Per-sample metric functions (the accuracies, Keras style) and the name -> function table that
also lists the loss functions usable as metrics."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import losses as _losses
from ..losses.base import _match_ranks as _align

__all__ = ["accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"]


def _per_sample(matches: np.ndarray) -> np.ndarray:
    """Mean over the last axis for rank >= 2 element matches, giving one value per sample."""
    m = matches.astype(np.float64)
    return m.mean(axis=-1) if m.ndim > 1 else m


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    """Per-sample fraction of entries where (y_pred > threshold) equals y_true.

    Args:
        y_true: the targets.
        y_pred: the model's output.
        threshold: a prediction above it counts as 1.
    """
    yt, yp = _align(y_true, y_pred)
    return _per_sample(yt == (yp > threshold))


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where argmax(y_true) == argmax(y_pred) over the last axis, else 0.0.

    Args:
        y_true: one-hot targets.
        y_pred: the model's output.
    """
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def _sparse_labels(y_true, y_pred) -> np.ndarray:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return yt[..., 0] if yt.ndim == yp.ndim and yt.shape[-1] == 1 else yt


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where the integer label equals argmax(y_pred), else 0.0 (labels (N,) or (N, 1)).

    Args:
        y_true: integer class labels.
        y_pred: the model's output.
    """
    return (_sparse_labels(y_true, y_pred) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    """1.0 where the label's score is among the k largest (ties count as inside, like TF in_top_k).

    Args:
        y_true: integer class labels.
        y_pred: the model's scores.
        k: how many of the largest scores count as a hit.
    """
    yp = np.asarray(y_pred)
    idx = _sparse_labels(y_true, yp).astype(np.intp)[..., None]
    target = np.take_along_axis(yp, idx, axis=-1)
    return (np.sum(yp > target, axis=-1) < k).astype(np.float64)


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    """Top-k accuracy against one-hot targets.

    Args:
        y_true: one-hot targets.
        y_pred: the model's scores.
        k: how many of the largest scores count as a hit.
    """
    return sparse_top_k_categorical_accuracy(np.argmax(y_true, axis=-1), y_pred, k)


def accuracy(y_true, y_pred) -> np.ndarray:
    """Exact equality of y_true and y_pred (Keras `Accuracy`).

    Args:
        y_true: the targets.
        y_pred: the model's output.
    """
    yt, yp = _align(y_true, y_pred)
    return _per_sample(yt == yp)


_FUNCTIONS: dict[str, Callable] = {
    "accuracy": accuracy, "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    **{f.__name__: f for f in _losses._FUNCTIONS},
}
_FUNCTION_NAMES = {f: n for n, f in _FUNCTIONS.items()}
