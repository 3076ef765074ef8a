"""The loss base classes and shared helpers: `Loss` (Keras reductions, the gradient contract),
`_Elementwise` (mean or sum over the last axis of an elementwise term), and the target/weight alignment
that every loss and the metrics use.

`call(y_true, y_pred)` gives one value per sample (the last axis reduced, shape y_pred.shape[:-1]).
`gradient(y_true, y_pred, weights)` is dL/dy_pred for L = sum(call(...) * weights); the training
loop passes weights that already hold 1/global_count and any sample weights, so the ranks' gradient
sums add up to the global-batch gradient. Cross-entropies from probabilities also offer
`gradient_logits`, the cheap fused gradient through the output layer's softmax / sigmoid.
`value_and_gradient` is the training step's path without sample weights: both in one pass,
with the same values as `call` and `gradient` / `gradient_logits`.

A user's loss defines only `call`, written with `distdl.ops` (Keras 3's way): its gradient is
recorded (distdl.autodiff) with y_pred a tape leaf, so it needs no `_grad`. Built-in losses keep
their hand-written `_grad`; only a class without one is recorded (`Loss.recorded`; the recorded
path is `recorded.RecordedLoss`, Loss's base).
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import ConfigError, DataError
from ..special import _as_float
from .recorded import RecordedLoss, _match_weights

__all__ = ["EPSILON", "Loss"]

EPSILON = 1e-7
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _align(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Cast y_true to y_pred's float dtype and fix a rank mismatch of one trailing size-1 axis (Keras)."""
    yp = _as_float(y_pred)
    return _match_ranks(np.asarray(y_true, dtype=yp.dtype), yp)


def _match_ranks(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """As Keras: squeeze or expand a trailing size-1 axis when the ranks differ by one (dtypes kept)."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.ndim == yp.ndim + 1 and yt.shape[-1] == 1:
        if yp.ndim == 1:
            yp = yp[:, None]
        else:
            yt = yt[..., 0]
    elif yp.ndim == yt.ndim + 1 and yp.shape[-1] == 1:
        if yt.ndim == 1:
            yt = yt[:, None]
        else:
            yp = yp[..., 0]
    return yt, yp


_ARANGE = np.arange(0)


def _row_index(n: int) -> np.ndarray:
    """arange(n), from a cache that grows as needed (for fancy indexing by labels)."""
    global _ARANGE
    if len(_ARANGE) < n:
        _ARANGE = np.arange(max(n, 2 * len(_ARANGE)))
    return _ARANGE[:n]


def _per_row(per: np.ndarray) -> int:
    """Loss elements per sample (per-element loss shape without the batch axis)."""
    return int(np.prod(per.shape[1:], dtype=np.int64)) if per.ndim > 1 else 1


def _model_width(output_shape) -> tuple[tuple, int]:
    shape = tuple(output_shape)
    if shape and shape[0] is None:
        shape = shape[1:]
    return shape, int(shape[-1]) if shape else 1


def _first_bad(bad: np.ndarray, y: np.ndarray) -> tuple[int, object]:
    """Row index (first axis) and value of the first True in `bad`."""
    flat = int(np.argmax(bad.ravel()))
    row = int(np.unravel_index(flat, y.shape)[0]) if y.ndim else 0
    value = y.ravel()[flat]
    return row, value.item() if hasattr(value, "item") else value


class Loss(RecordedLoss):
    """Base loss: subclasses implement `call` (per-element values) and `_grad` (dL/dy_pred), or
    only `call`, written with `distdl.ops`, whose gradient is then recorded (see `recorded`).

    Args:
        reduction: "sum_over_batch_size" (Keras default), "sum", "mean", "mean_with_sample_weight", "none" or
            None.
        name: the name logs and configs use; None takes the class's Keras name.
        dtype: Keras 3's argument, accepted for compatibility: losses compute in y_pred's float dtype.
    """

    fused_activation: str | None = None
    default_name = "loss"

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = None,
                 dtype=None) -> None:
        if reduction not in _REDUCTIONS:
            raise ConfigError(f"Unknown loss reduction {reduction!r}; valid values are: 'sum_over_batch_size', "
                              "'sum', 'mean', 'mean_with_sample_weight', 'none', None.")
        self.reduction = reduction
        if name is None and self.recorded and type(self).default_name == Loss.default_name:
            name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type(self).__name__)  # Keras's auto name:
            name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()            # CustomMSE -> custom_mse
        self.name = name or self.default_name

    # ------------------------------------------------------------------ subclass hooks
    def call(self, y_true, y_pred) -> np.ndarray:
        """Per-element loss, shape y_pred.shape[:-1].

        Args:
            y_true: targets, as the loss expects them (floats, one-hot rows or integer labels).
            y_pred: the model's output.
        """
        raise NotImplementedError

    def _grad(self, yt: np.ndarray, yp: np.ndarray, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def valid_mask(self, y_true) -> np.ndarray | None:
        """Bool mask (per-element loss shape) of the elements that count, or None when all do.

        Args:
            y_true: targets, as the loss expects them (floats, one-hot rows or integer labels).
        """
        return None

    def _params(self) -> dict:
        return {}

    # ------------------------------------------------------------------ recorded losses
    @property
    def recorded(self) -> bool:
        """Whether the gradient comes from recording `call` (a loss class that defines no `_grad`)."""
        return type(self)._grad is Loss._grad

    # ------------------------------------------------------------------ public API
    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss as Keras computes it: sum(loss * sample_weight) / number of elements.
        A recorded loss given tracked tensors (inside a recording) returns a tracked Tensor.

        Args:
            y_true: targets, as the loss expects them (floats, one-hot rows or integer labels).
            y_pred: the model's output.
            sample_weight: per-sample (or per-element) weights, or None.
        """
        if self.recorded:
            return self._recorded_call(y_true, y_pred, sample_weight)
        loss = self.call(y_true, y_pred)
        w = None
        mask = self.valid_mask(y_true)
        if mask is not None:
            mask = np.asarray(mask, dtype=loss.dtype).reshape(loss.shape)
            if self.reduction in ("sum_over_batch_size", "mean"):
                valid = float(mask.sum())
                mask = mask * (loss.size / valid if valid else 0.0)  # divide by the valid count only
            w = mask
        if sample_weight is not None:
            sw = _match_weights(sample_weight, loss.shape, loss.dtype)
            w = sw if w is None else w * sw
        if w is not None:
            loss = loss * w
        if self.reduction in (None, "none") or loss.ndim == 0:
            return loss
        total = float(np.sum(loss, dtype=np.float64))
        if self.reduction in ("sum_over_batch_size", "mean") and loss.size:
            total /= loss.size
        elif self.reduction == "mean_with_sample_weight":
            # as Keras, an ignore_class mask counts as sample weights: divide by the valid count
            denom = float(np.sum(w, dtype=np.float64)) if w is not None else loss.size
            total = total / denom if denom else 0.0
        return loss.dtype.type(total)

    def gradient(self, y_true, y_pred, weights) -> np.ndarray:
        """dL/dy_pred for L = sum(call(y_true, y_pred) * weights); same shape and dtype as y_pred.

        Args:
            y_true: targets, as the loss expects them (floats, one-hot rows or integer labels).
            y_pred: the model's output.
            weights: per-sample weights, shape y_pred.shape[:-1] (or broadcastable); for a recorded
                loss, the shape of `values`.
        """
        if self.recorded:
            return self._recorded_gradient(y_true, y_pred, weights)
        yp0 = _as_float(y_pred)
        yt, yp = self._prepare(y_true, yp0)
        return self._grad(yt, yp, self._loss_weights(y_true, yp, weights)).reshape(yp0.shape)

    def _loss_weights(self, y_true, yp: np.ndarray, weights) -> np.ndarray:
        """`weights` broadcast to the per-sample shape yp.shape[:-1], zero where `valid_mask` is False."""
        w = _match_weights(weights, yp.shape[:-1], yp.dtype, "loss weights")
        mask = self.valid_mask(y_true)
        if mask is not None:
            w = w * np.reshape(mask, w.shape)
        return w

    def gradient_logits(self, y_true, y_prob, weights) -> np.ndarray:
        """dL/dz where y_prob = fused_activation(z); only for losses with a fused_activation.

        Args:
            y_true: targets, as the loss expects them (floats, one-hot rows or integer labels).
            y_prob: the output layer's activation of z (softmax or sigmoid).
            weights: per-sample weights, as in `gradient`.
        """
        raise ConfigError(f"Loss {self.name!r} has no fused activation gradient.")

    def value_and_gradient(self, y_true, y_pred, weight: float, rows: int,
                           fused: bool = False) -> tuple[float, np.ndarray]:
        """(sum(call) / elements per row, gradient for weights weight / (rows x elements per row)).

        The gradient is `gradient_logits` when `fused`, else `gradient`, as the training step
        needs it when there are no sample weights.

        Args:
            y_true: targets, as the loss expects them (floats, one-hot rows or integer labels).
            y_pred: the model's output (probabilities when `fused`).
            weight: this rank's share of the global batch's weight.
            rows: the global batch size the loss is averaged over.
            fused: give dL/dz through the fused activation instead of dL/dy_pred.
        """
        per = self.values(y_true, y_pred)
        n = _per_row(per)
        value = float(np.sum(per)) / n if per.size else 0.0
        w = np.full(per.shape, weight / (rows * n), dtype=per.dtype)
        return value, (self.gradient_logits(y_true, y_pred, w) if fused else self.gradient(y_true, y_pred, w))

    def _prepare(self, y_true, yp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _align(y_true, yp)

    def check_targets(self, y_true, output_shape) -> None:
        """Raise DataError when targets cannot fit a model output of `output_shape` (batch axis optional).

        Args:
            y_true: targets, as the loss expects them (floats, one-hot rows or integer labels).
            output_shape: the model output's shape, with or without the batch axis.
        """
        if self.recorded:  # a user's call decides what targets it takes
            return
        y = np.asarray(y_true)
        shape, width = _model_width(output_shape)
        per = y.shape[1:]
        if per == shape or per + (1,) == shape or per == shape + (1,):
            return
        got = y.shape[-1] if y.ndim > 1 else 1
        raise DataError(f"Targets for loss {self.name!r} have shape {y.shape}, which does not match the "
                        f"model output shape {shape} (target width {got} vs output width {width}).")

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able, as Keras saves them."""
        return {"name": self.name, "reduction": self.reduction, **self._params()}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        """Build from get_config(); Keras's own 'dtype' and default 'axis' keys are accepted and dropped.

        Args:
            config: the constructor arguments.
        """
        config = {k: v for k, v in config.items() if k != "dtype"}
        if config.pop("axis", -1) != -1:
            raise ConfigError(f"Loss {cls.__name__} supports only axis=-1.")
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.get_config()}>"


class _Elementwise(Loss):
    """Losses that are a mean (or sum) over the last axis of an elementwise term f(y, p)."""

    _mean = True

    def _targets(self, yt: np.ndarray) -> np.ndarray:
        return yt

    def _f(self, yt, yp):
        raise NotImplementedError

    def _df(self, yt, yp):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        f = self._f(self._targets(yt), yp)
        return f.mean(axis=-1) if self._mean else f.sum(axis=-1)

    def _grad(self, yt, yp, w):
        g = self._df(self._targets(yt), yp)
        scale = w / yp.shape[-1] if self._mean else w
        g *= scale[..., None]
        return g

    def _fused_df(self, yt, yp):
        """d f / d z for the fused activation's pre-activation z (subclasses with one)."""
        raise NotImplementedError

    def value_and_gradient(self, y_true, y_pred, weight, rows, fused=False):
        yp0 = _as_float(y_pred)
        yt, yp = _align(y_true, yp0)
        t = self._targets(yt)
        f = self._f(t, yp)
        per = f.mean(axis=-1) if self._mean else f.sum(axis=-1)
        n = _per_row(per)
        value = float(np.sum(per)) / n if per.size else 0.0
        g = self._fused_df(t, yp) if fused else self._df(t, yp)
        scale = yp.dtype.type(weight / (rows * n))
        g *= scale / yp.shape[-1] if self._mean else scale
        return value, g.reshape(yp0.shape)
