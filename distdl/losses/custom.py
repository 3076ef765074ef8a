"""`LossFunctionWrapper`: a user's function `fn(y_true, y_pred)` as a trainable loss (Keras 3).

The function is written with `distdl.ops` and returns per-sample losses, shape (batch,) or
(batch, ...), or a scalar (a batch mean). Its gradient is recorded (`Loss.recorded`): the wrapper
defines only `call`. Reductions, sample weights and masks are those of `Loss`.

Under N ranks a per-sample function gives exactly the global batch's loss; a scalar is this rank's
batch mean, which the training step weights by this rank's rows over the global batch's rows, so N
ranks still follow one process (see `Loss.values`).
"""
from __future__ import annotations

from typing import Callable

from ..autodiff.tensor import Tensor, getitem
from .base import Loss

__all__ = ["LossFunctionWrapper"]


def _same_rank(y_true: Tensor, y_pred: Tensor) -> tuple[Tensor, Tensor]:
    """As Keras's `squeeze_or_expand_to_same_rank`: when the ranks differ by one and the longer
    has a trailing axis of 1, squeeze it (or expand the other when that one is 1-D); recorded."""
    rt, rp = y_true.ndim, y_pred.ndim
    if rt == rp + 1 and y_true.shape[-1] == 1:
        if rp == 1:
            y_pred = getitem(y_pred, (slice(None), None))
        else:
            y_true = getitem(y_true, (Ellipsis, 0))
    elif rp == rt + 1 and y_pred.shape[-1] == 1:
        if rt == 1:
            y_true = getitem(y_true, (slice(None), None))
        else:
            y_pred = getitem(y_pred, (Ellipsis, 0))
    return y_true, y_pred


class LossFunctionWrapper(Loss):
    """A loss from a function `fn(y_true, y_pred, **kwargs)` written with `distdl.ops`.

    Args:
        fn: the per-sample loss function (or one returning the batch mean).
        reduction: as in `Loss`.
        name: the name logs and configs use; None takes `fn.__name__`.
        dtype: accepted for Keras compatibility (see `Loss`).
        **kwargs: passed on to `fn`.
    """

    def __init__(self, fn: Callable, reduction="sum_over_batch_size", name: str | None = None, dtype=None,
                 **kwargs) -> None:
        super().__init__(reduction=reduction, name=name or getattr(fn, "__name__", "loss"))
        self.fn, self._fn_kwargs = fn, kwargs

    def call(self, y_true, y_pred):
        """fn on y_true and y_pred brought to the same rank (Keras's wrapper does the same).

        Args:
            y_true: the targets, a Tensor in y_pred's float dtype.
            y_pred: the model's output, a Tensor (recorded while training).
        """
        y_true, y_pred = _same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        """name, reduction, the function's name (`fn`, looked up again when loading) and its options."""
        return {"name": self.name, "reduction": self.reduction, "fn": getattr(self.fn, "__name__", repr(self.fn)),
                **self._fn_kwargs}
