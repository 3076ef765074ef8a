"""Cross-entropy losses: binary, categorical (one-hot) and sparse categorical (integer labels),
from probabilities or logits, each with the fused gradient through its output activation."""
from __future__ import annotations

import numpy as np

from ..activations import LogSoftmax, Sigmoid, Softmax
from ..errors import DataError
from .base import EPSILON, Loss, _Elementwise, _align, _as_float, _first_bad, _model_width, _row_index

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy"]


class _Smoothed(Loss):
    """The from_logits / label_smoothing options of the binary and categorical cross-entropies;
    from probabilities, the gradient can be fused through `_activation`.

    Args:
        from_logits: whether y_pred holds logits rather than probabilities.
        label_smoothing: in [0, 1]: targets move this far towards the uniform distribution.
        reduction: as in `Loss`.
        name: as in `Loss`.
    """

    _activation = "softmax"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None) -> None:
        super().__init__(reduction, name)
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)
        self.fused_activation = None if self.from_logits else self._activation

    def _params(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class BinaryCrossentropy(_Smoothed, _Elementwise):
    """Mean over the last axis of -(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps];
    from logits the stable max(z, 0) - z y + log(1 + exp(-|z|))."""

    default_name = "binary_crossentropy"
    _activation = "sigmoid"

    def _targets(self, yt):
        s = self.label_smoothing
        return yt * (1.0 - s) + 0.5 * s if s else yt

    def _f(self, yt, yp):
        if self.from_logits:
            return np.maximum(yp, 0.0) - yp * yt + np.log1p(np.exp(-np.abs(yp)))
        p = np.clip(yp, EPSILON, 1.0 - EPSILON)
        return -(yt * np.log(p) + (1.0 - yt) * np.log(1.0 - p))

    def _df(self, yt, yp):
        if self.from_logits:
            return Sigmoid().forward(yp) - yt
        p = np.clip(yp, EPSILON, 1.0 - EPSILON)
        inside = (yp >= EPSILON) & (yp <= 1.0 - EPSILON)
        return ((1.0 - yt) / (1.0 - p) - yt / p) * inside

    def _fused_df(self, yt, yp):
        return yp - yt

    def gradient_logits(self, y_true, y_prob, weights):
        """(sigmoid(z) - y) * w / n_last, given y_prob = sigmoid(z).

        Args:
            y_true: the targets.
            y_prob: the output layer's activation of z.
            weights: per-sample weights, as in `Loss.gradient`.
        """
        if self.from_logits:
            return super().gradient_logits(y_true, y_prob, weights)
        p0 = _as_float(y_prob)
        yt, p = _align(y_true, p0)
        w = self._loss_weights(y_true, p, weights)
        g = p - self._targets(yt)
        g *= (w / p.shape[-1])[..., None]
        return g.reshape(p0.shape)

    def check_targets(self, y_true, output_shape):
        super().check_targets(y_true, output_shape)
        y = np.asarray(y_true)
        bad = (y < 0) | (y > 1)
        if bad.any():
            row, value = _first_bad(bad, y)
            raise DataError(f"Targets for {self.name!r} must lie in [0, 1]; row {row} holds {value}.")


class CategoricalCrossentropy(_Smoothed):
    """-sum(y log p) over the last axis, p renormalised and clipped, or log_softmax of logits."""

    default_name = "categorical_crossentropy"

    def _targets(self, yt):
        s = self.label_smoothing
        return yt * (1.0 - s) + s / yt.shape[-1] if s else yt

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        y = self._targets(yt)
        if self.from_logits:
            return -np.sum(y * LogSoftmax().forward(yp), axis=-1)
        return _from_probs(y, yp)

    def _grad(self, yt, yp, w):
        y = self._targets(yt)
        if self.from_logits:
            g = Softmax().forward(yp)
            g *= np.sum(y, axis=-1, keepdims=True)
            g -= y
        else:
            s = np.sum(yp, axis=-1, keepdims=True)
            q = yp / s
            inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)
            g = -y / np.clip(q, EPSILON, 1.0 - EPSILON) * inside      # dL/dq
            g -= np.sum(g * q, axis=-1, keepdims=True)                 # through q = p / sum(p)
            g /= s
        g *= w[..., None]
        return g

    def value_and_gradient(self, y_true, y_pred, weight, rows, fused=False):
        yp = _as_float(y_pred)
        if yp.ndim != 2 or not (self.from_logits or fused):
            return super().value_and_gradient(y_true, y_pred, weight, rows, fused)
        yt, _ = _align(y_true, yp)
        y = self._targets(yt)
        scale = yp.dtype.type(weight / rows)
        if self.from_logits:  # one shifted exp serves log_softmax (the value) and softmax (the gradient)
            shifted, e, s = _shifted_exp(yp)
            per = -np.sum(y * (shifted - np.log(s)), axis=-1)
            g = np.divide(e, s, out=e)
        else:
            per = _from_probs(y, yp)  # y already smoothed: not self.call, which would smooth again
            g = yp.copy()
        g *= np.sum(y, axis=-1, keepdims=True)
        g -= y
        g *= scale
        return float(np.sum(per)) if per.size else 0.0, g

    def gradient_logits(self, y_true, y_prob, weights):
        """(p * sum(y) - y) * w, given y_prob = softmax(z).

        Args:
            y_true: the targets.
            y_prob: the output layer's activation of z.
            weights: per-sample weights, as in `Loss.gradient`.
        """
        if self.from_logits:
            return super().gradient_logits(y_true, y_prob, weights)
        p0 = _as_float(y_prob)
        yt, p = _align(y_true, p0)
        w = self._loss_weights(y_true, p, weights)
        y = self._targets(yt)
        g = p * np.sum(y, axis=-1, keepdims=True)
        g -= y
        g *= w[..., None]
        return g.reshape(p0.shape)

    def check_targets(self, y_true, output_shape):
        y = np.asarray(y_true)
        _, width = _model_width(output_shape)
        if y.ndim < 2 or y.shape[-1] != width:
            got = y.shape[-1] if y.ndim >= 2 else 1
            hint = " (integer labels need sparse_categorical_crossentropy)" if y.ndim < 2 else ""
            raise DataError(f"One-hot targets for {self.name!r} have width {got} but the model output "
                            f"has width {width}{hint}.")


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer class labels of shape (N, ...) or (N, ..., 1).

    Args:
        from_logits: whether y_pred holds logits rather than probabilities.
        ignore_class: a label whose samples count neither in the loss nor in its mean, or None.
        reduction: as in `Loss`.
        name: as in `Loss`.
    """

    default_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None) -> None:
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.fused_activation = None if self.from_logits else "softmax"

    def _params(self):
        return {"from_logits": self.from_logits, "ignore_class": self.ignore_class}

    def _squeeze(self, y_true, ndim: int) -> np.ndarray:
        y = np.asarray(y_true)
        return y[..., 0] if y.ndim == ndim and y.ndim and y.shape[-1] == 1 else y

    def _prepare(self, y_true, yp):
        y = self._squeeze(y_true, yp.ndim)
        idx = y.astype(np.intp)
        if self.ignore_class is not None:
            idx = np.where(y != self.ignore_class, idx, 0)
        return idx[..., None], yp

    def valid_mask(self, y_true):
        if self.ignore_class is None:
            return None
        return np.asarray(y_true) != self.ignore_class

    def call(self, y_true, y_pred):
        yp = _as_float(y_pred)
        idx, _ = self._prepare(y_true, yp)
        if self.from_logits:
            loss = -np.take_along_axis(LogSoftmax().forward(yp), idx, axis=-1)[..., 0]
        else:
            q = np.take_along_axis(yp, idx, axis=-1)[..., 0] / np.sum(yp, axis=-1)
            loss = -np.log(np.clip(q, EPSILON, 1.0 - EPSILON))
        mask = self.valid_mask(y_true)
        if mask is not None:
            loss = np.where(mask.reshape(loss.shape), loss, 0.0).astype(yp.dtype, copy=False)
        return loss

    def _grad(self, idx, yp, w):
        if self.from_logits:
            return self._fused(idx, Softmax().forward(yp), w)
        s = np.sum(yp, axis=-1)
        q = np.take_along_axis(yp, idx, axis=-1)[..., 0] / s
        inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)
        wk = -w * inside / (np.clip(q, EPSILON, 1.0 - EPSILON) * s)     # dL/dp_k
        g = np.empty_like(yp)
        g[...] = (-wk * q)[..., None]                                   # every p_j enters via sum(p)
        np.put_along_axis(g, idx, np.take_along_axis(g, idx, axis=-1) + wk[..., None], axis=-1)
        return g

    def _fused(self, idx, p, w):
        g = p.copy()
        np.put_along_axis(g, idx, np.take_along_axis(g, idx, axis=-1) - 1.0, axis=-1)
        g *= w[..., None]
        return g

    def value_and_gradient(self, y_true, y_pred, weight, rows, fused=False):
        yp = _as_float(y_pred)
        y = self._squeeze(y_true, yp.ndim)
        if yp.ndim != 2 or y.ndim != 1 or self.ignore_class is not None or not (self.from_logits or fused):
            return super().value_and_gradient(y_true, y_pred, weight, rows, fused)
        r, y = _row_index(len(y)), y.astype(np.intp, copy=False)
        if self.from_logits:  # one shifted exp serves log_softmax (the value) and softmax (the gradient)
            shifted, e, s = _shifted_exp(yp)
            per = -(shifted[r, y] - np.log(s[:, 0]))
            g = np.divide(e, s, out=e)
        else:
            q = yp[r, y] / yp.sum(axis=-1)
            per = -np.log(np.clip(q, EPSILON, 1.0 - EPSILON))
            g = yp.copy()
        g[r, y] -= 1.0
        g *= yp.dtype.type(weight / rows)
        return float(per.sum()) if per.size else 0.0, g

    def gradient_logits(self, y_true, y_prob, weights):
        """(p - onehot(y)) * w, given y_prob = softmax(z).

        Args:
            y_true: the targets.
            y_prob: the output layer's activation of z.
            weights: per-sample weights, as in `Loss.gradient`.
        """
        if self.from_logits:
            return super().gradient_logits(y_true, y_prob, weights)
        p = _as_float(y_prob)
        idx, _ = self._prepare(y_true, p)
        return self._fused(idx, p, self._loss_weights(y_true, p, weights))

    def check_targets(self, y_true, output_shape):
        y = np.asarray(y_true)
        shape, n = _model_width(output_shape)
        if y.ndim == len(shape) + 1 and y.shape[-1] != 1:
            raise DataError(f"Targets for {self.name!r} have shape {y.shape} but integer class labels "
                            f"of shape {y.shape[:-1]} are expected (one-hot targets need "
                            "categorical_crossentropy).")
        per = y.shape[1:len(shape)]  # one label per output row: the output's shape less its class axis
        if y.ndim not in (len(shape), len(shape) + 1) or any(e is not None and g != e for g, e in zip(per, shape)):
            raise DataError(f"Targets for {self.name!r} have shape {y.shape}, but the model output of shape "
                            f"{(None,) + shape} takes integer class labels of shape {(None,) + shape[:-1]}.")
        if y.dtype.kind == "f":
            bad = ~np.isfinite(y) | (np.mod(y, 1.0) != 0)
            if bad.any():
                row, value = _first_bad(bad, y)
                raise DataError(f"Targets for {self.name!r} must be integer class labels; "
                                f"row {row} holds {value}.")
        elif y.dtype.kind not in "iub":
            raise DataError(f"Targets for {self.name!r} must be integer class labels, not {y.dtype}.")
        bad = (y < 0) | (y >= n)
        if self.ignore_class is not None:
            bad &= y != self.ignore_class
        if bad.any():
            row, value = _first_bad(bad, y)
            raise DataError(f"Label {value} at row {row} is outside [0, {n}) for {self.name!r} "
                            f"with {n} output classes.")


def _from_probs(y, p):
    """Per-sample -sum(y log q) with q = p renormalised over the last axis and clipped (y smoothed)."""
    q = p / np.sum(p, axis=-1, keepdims=True)
    return -np.sum(y * np.log(np.clip(q, EPSILON, 1.0 - EPSILON)), axis=-1)


def _shifted_exp(z):
    """(z - max, exp(z - max), its row sums): log_softmax is shifted - log(sum), softmax exp / sum."""
    shifted = z - z.max(axis=-1, keepdims=True)  # array methods: no fromnumeric wrapper per call
    e = np.exp(shifted)
    return shifted, e, e.sum(axis=-1, keepdims=True)
