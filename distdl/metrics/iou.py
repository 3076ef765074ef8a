"""Intersection-over-union metrics (Keras 3): IoU, MeanIoU and BinaryIoU, read off a weighted
num_classes x num_classes confusion matrix (rows: true class, columns: predicted), which is the
state, so ranks' matrices add up to one process's.

Keras keeps the matrix in dtype "int" by default, truncating float sample weights; distdl keeps
float64 sums, as Keras does with dtype="float32".
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..losses.base import _match_ranks, _match_weights
from .base import Metric

__all__ = ["IoU", "MeanIoU", "BinaryIoU"]


class IoU(Metric):
    """tp / (tp + fp + fn) per class, averaged over `target_class_ids` whose denominator is not 0.

    Args:
        num_classes: the number of classes (the matrix is num_classes x num_classes).
        target_class_ids: the classes whose IoU is averaged.
        name: as in `Metric`.
        ignore_class: a true label whose elements are not counted, or None.
        sparse_y_true: whether y_true holds class ids (else scores: argmax over `axis`).
        sparse_y_pred: whether y_pred holds class ids (else scores: argmax over `axis`).
        axis: the class axis of non-sparse inputs.
    """

    default_name = "iou"

    def __init__(self, num_classes: int, target_class_ids, name: str | None = None, ignore_class: int | None = None,
                 sparse_y_true: bool = True, sparse_y_pred: bool = True, axis: int = -1) -> None:
        self.num_classes = int(num_classes)
        if self.num_classes < 1:
            raise ConfigError(f"{type(self).__name__} num_classes must be >= 1, not {num_classes}.")
        self.target_class_ids = [int(c) for c in target_class_ids]
        if not self.target_class_ids or not all(0 <= c < self.num_classes for c in self.target_class_ids):
            raise ConfigError(f"{type(self).__name__} target_class_ids {self.target_class_ids} must be class ids "
                              f"in [0, {self.num_classes}).")
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.sparse_y_true, self.sparse_y_pred, self.axis = bool(sparse_y_true), bool(sparse_y_pred), int(axis)
        self.state_size = self.num_classes ** 2
        super().__init__(name)

    def _labels(self, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
        yt = np.argmax(y_true, axis=self.axis) if not self.sparse_y_true else np.asarray(y_true)
        yp = np.argmax(y_pred, axis=self.axis) if not self.sparse_y_pred else np.asarray(y_pred)
        return yt.astype(np.int64), yp.astype(np.int64)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add the batch's weighted confusion matrix; labels outside [0, num_classes) are skipped.

        Args:
            y_true: class ids (or scores when not sparse_y_true).
            y_pred: class ids (or scores when not sparse_y_pred).
            sample_weight: weights broadcastable to the labels, or None for 1 each.
        """
        yt, yp = _match_ranks(*self._labels(y_true, y_pred))
        if yt.size != yp.size:
            raise ShapeError(f"Metric {self.name!r}: y_true has {yt.size} labels but y_pred has {yp.size}.")
        w = np.ones(yt.size) if sample_weight is None else _match_weights(sample_weight, yt.shape, np.float64).ravel()
        yt, yp = yt.ravel(), yp.ravel()
        n = self.num_classes
        keep = (yt >= 0) & (yt < n) & (yp >= 0) & (yp < n)
        if self.ignore_class is not None:
            keep &= yt != self.ignore_class
        self._state += np.bincount(yt[keep] * n + yp[keep], weights=w[keep], minlength=n * n)

    def result(self) -> float:
        cm = self._state.reshape(self.num_classes, self.num_classes)
        tp = np.diag(cm)
        denom = (cm.sum(axis=0) + cm.sum(axis=1) - tp)[self.target_class_ids]
        tp = tp[self.target_class_ids]
        valid = denom > 1e-9
        iou = np.where(valid, tp / (denom + 1e-7), 0.0)
        return float(np.sum(iou) / (np.sum(valid) + 1e-7))

    def get_config(self) -> dict:
        return {"name": self.name, "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class MeanIoU(IoU):
    """IoU averaged over every class.

    Args:
        num_classes: the number of classes.
        name: as in `Metric`.
        ignore_class: as in IoU.
        sparse_y_true: as in IoU.
        sparse_y_pred: as in IoU.
        axis: as in IoU.
    """

    default_name = "mean_iou"

    def __init__(self, num_classes: int, name: str | None = None, ignore_class: int | None = None,
                 sparse_y_true: bool = True, sparse_y_pred: bool = True, axis: int = -1) -> None:
        super().__init__(num_classes, list(range(int(num_classes))), name, ignore_class, sparse_y_true,
                         sparse_y_pred, axis)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["target_class_ids"]
        return config


class BinaryIoU(IoU):
    """IoU of two classes: a prediction >= `threshold` is class 1, below it class 0.

    Args:
        target_class_ids: [0], [1] or [0, 1] (their mean).
        threshold: where predictions turn from class 0 to class 1.
        name: as in `Metric`.
    """

    default_name = "binary_iou"

    def __init__(self, target_class_ids=(0, 1), threshold: float = 0.5, name: str | None = None) -> None:
        super().__init__(2, target_class_ids, name)
        self.threshold = float(threshold)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add the batch's 2 x 2 confusion matrix of thresholded predictions.

        Args:
            y_true: 0/1 targets.
            y_pred: scores, thresholded at `threshold`.
            sample_weight: weights broadcastable to the targets, or None for 1 each.
        """
        super().update_state(y_true, (np.asarray(y_pred, dtype=np.float64) >= self.threshold).astype(np.int64),
                             sample_weight)

    def get_config(self) -> dict:
        return {"name": self.name, "target_class_ids": self.target_class_ids, "threshold": self.threshold}
