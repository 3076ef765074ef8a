"""How a loss without a hand-written gradient is computed and differentiated: `RecordedLoss`,
the part of `Loss` that runs a user's `call` (written with `distdl.ops`) on a tape with y_pred a
leaf, seeds the per-element losses with the training step's weights and runs the reverse pass
(distdl.autodiff); and `_match_weights`, the weight broadcasting every loss shares.

A scalar `call` result is a batch mean: the step counts it once per row of this rank's share
(`values`), so N ranks, each weighting its mean by its rows, sum to one process's loss.
"""
from __future__ import annotations

import numpy as np

from ..autodiff import Tape, Tensor, as_tensor, backward, is_tracked, recording, result, unbroadcast, value_of
from ..errors import ConfigError, ShapeError
from ..special import _as_float

__all__ = ["RecordedLoss"]


def _match_weights(w, shape: tuple, dtype, what: str = "sample_weight") -> np.ndarray:
    """Broadcast per-sample weights to the per-element loss shape (squeezing or expanding trailing axes)."""
    w = np.asarray(w, dtype=dtype)
    if w.ndim == len(shape) + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim < len(shape):
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ShapeError(f"{what} of shape {np.shape(w)} does not fit the per-sample loss "
                         f"shape {shape}.") from None


def _total(t: Tensor) -> Tensor:
    """The sum of all elements of `t`, recorded."""
    shape = np.shape(t.value)
    return result(np.sum(t.value), (t,), lambda g: (np.broadcast_to(g, shape),))


class RecordedLoss:
    """The recorded path of `Loss` (its base): used where `recorded` holds, i.e. the loss class
    defines `call` but no `_grad`. Expects `name`, `reduction`, `call` and `recorded` from `Loss`."""

    _pending = None  # (y_true, y_pred, tape, leaf, output) of the last `values`, for `gradient`

    def _run_call(self, y_true, y_pred, tape: Tape | None) -> tuple[Tensor, object]:
        """(y_pred's Tensor, call's output) with y_true as y_pred's float dtype (as Keras converts
        both to the loss dtype) and y_pred a leaf of `tape` when given."""
        yp = _as_float(value_of(y_pred))
        yt = np.asarray(value_of(y_true), dtype=yp.dtype)
        with recording(tape):
            leaf = tape.leaf(yp) if tape is not None else Tensor(yp)
            out = self._checked(self.call(Tensor(yt), leaf))
        return leaf, out

    def _checked(self, out):
        """`call`'s output, refused with a sentence unless it is a tensor (or number) of losses."""
        value = value_of(out)
        if isinstance(value, (list, tuple, dict)) or value is None or np.asarray(value).dtype.kind not in "fiub":
            raise ConfigError(f"Loss {self.name!r}: call returned {type(out).__name__}; it must return a tensor of "
                              "per-sample losses (e.g. ops.mean(ops.square(y_true - y_pred), axis=-1)) or a scalar.")
        return out

    def values(self, y_true, y_pred) -> np.ndarray:
        """Per-element losses as the training step sums them (y_pred.shape[:-1] for built-ins).

        A recorded loss returns what its `call` gives, and keeps the recording for `gradient` on the
        same arrays; a scalar, being a batch mean already, is spread over this rank's rows (one value
        per row), so that N ranks, each weighting its mean by its rows, sum to one process's loss.

        Args:
            y_true: targets.
            y_pred: the model's output, shape (rows, ...).
        """
        if not self.recorded:
            return self.call(y_true, y_pred)
        if not len(y_pred):  # a rank with no rows in this batch: nothing to record
            return np.zeros(np.shape(y_pred)[:-1], dtype=_as_float(y_pred).dtype)
        tape = Tape(f"loss {self.name!r}")
        leaf, out = self._run_call(y_true, y_pred, tape)
        self._pending = (y_true, y_pred, tape, leaf, out)
        per = np.asarray(value_of(out))
        return np.broadcast_to(per, (len(leaf.value),)) if per.ndim == 0 else per

    def _recorded_gradient(self, y_true, y_pred, weights) -> np.ndarray:
        """dL/dy_pred for L = sum(values(y_true, y_pred) * weights), by the reverse pass over `call`."""
        pending, self._pending = self._pending, None
        if not len(y_pred):
            return np.zeros_like(_as_float(y_pred))
        if pending is not None and pending[0] is y_true and pending[1] is y_pred:
            tape, leaf, out = pending[2:]
        else:
            tape = Tape(f"loss {self.name!r}")
            leaf, out = self._run_call(y_true, y_pred, tape)
        yp = leaf.value
        shape = np.shape(value_of(out))
        w = _match_weights(weights, shape or (len(yp),), yp.dtype, "loss weights")
        g = backward(tape, [(out, unbroadcast(w, shape))])[leaf._index]
        return np.zeros_like(yp) if g is None else np.asarray(g, dtype=yp.dtype).reshape(yp.shape)

    def _recorded_call(self, y_true, y_pred, sample_weight):
        """`__call__` of a recorded loss, through recorded ops: inside a recording (a custom layer's
        `add_loss`, say) with a tracked y_pred the result is a tracked Tensor, else a NumPy scalar."""
        tracked = is_tracked(y_pred)
        yp = y_pred if tracked else Tensor(_as_float(value_of(y_pred)))
        dtype = np.result_type(yp.value)
        yt = y_true if is_tracked(y_true) else Tensor(np.asarray(value_of(y_true), dtype=dtype))
        loss = as_tensor(self._checked(self.call(yt, yp)))
        if loss.ndim == 0 and sample_weight is not None:  # Keras: a scalar times each weight
            loss = loss * np.ones(np.shape(sample_weight)[:1], dtype=dtype)
        w = None if sample_weight is None else _match_weights(sample_weight, loss.shape, dtype)
        if w is not None:
            loss = loss * w
        if self.reduction not in (None, "none") and loss.ndim:
            denom = loss.size if self.reduction != "sum" else 1
            if self.reduction == "mean_with_sample_weight" and w is not None:
                denom = float(np.sum(w, dtype=np.float64))
            loss = _total(loss) * (dtype.type(1 / denom) if denom else dtype.type(0))
        return loss if is_tracked(loss) else np.asarray(loss.value, dtype=dtype)[()]
