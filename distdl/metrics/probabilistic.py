"""Probabilistic metrics (Keras 3): running means of the per-sample KL divergence and the
binary, categorical and sparse categorical cross-entropies (the losses' function forms), with
the losses' from_logits / label_smoothing options."""
from __future__ import annotations

from .. import losses as _losses
from .base import _Wrapped

__all__ = ["KLDivergence", "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy"]


class KLDivergence(_Wrapped):
    """Running mean of the per-sample KL divergence sum(y log(y / p))."""

    default_name = "kl_divergence"
    fn = staticmethod(_losses.kl_divergence)


class BinaryCrossentropy(_Wrapped):
    """Running mean of the per-sample binary cross-entropy.

    Args:
        name: as in `Metric`.
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], as in the loss.
    """

    default_name = "binary_crossentropy"
    fn = staticmethod(_losses.binary_crossentropy)

    def __init__(self, name: str | None = None, from_logits: bool = False, label_smoothing: float = 0.0) -> None:
        super().__init__(name, from_logits=bool(from_logits), label_smoothing=float(label_smoothing))


class CategoricalCrossentropy(BinaryCrossentropy):
    """Running mean of the per-sample categorical cross-entropy (one-hot targets).

    Args:
        name: as in `Metric`.
        from_logits: whether y_pred holds logits.
        label_smoothing: in [0, 1], as in the loss.
    """

    default_name = "categorical_crossentropy"
    _keras_only = {"axis": -1}
    fn = staticmethod(_losses.categorical_crossentropy)


class SparseCategoricalCrossentropy(_Wrapped):
    """Running mean of the per-sample cross-entropy against integer labels.

    Args:
        name: as in `Metric`.
        from_logits: whether y_pred holds logits.
    """

    default_name = "sparse_categorical_crossentropy"
    _keras_only = {"axis": -1}
    fn = staticmethod(_losses.sparse_categorical_crossentropy)

    def __init__(self, name: str | None = None, from_logits: bool = False) -> None:
        super().__init__(name, from_logits=bool(from_logits))
