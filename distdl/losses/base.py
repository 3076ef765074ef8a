"""Losses by Keras name: per-element values, Keras reductions, and the exact gradient.

`call(y_true, y_pred)` gives one value per sample (the last axis reduced, shape y_pred.shape[:-1]).
`gradient(y_true, y_pred, weights)` is dL/dy_pred for L = sum(call(...) * weights); the training
loop passes weights that already hold 1/global_count and any sample weights, so the ranks' gradient
sums add up to the global-batch gradient. Cross-entropies from probabilities also offer
`gradient_logits`, the cheap fused gradient through the output layer's softmax / sigmoid.
"""
from __future__ import annotations

import numpy as np

from .activations import LogSoftmax, Sigmoid, Softmax
from .backend import floatx
from .errors import ConfigError, DataError, ShapeError, unknown_name

EPSILON = 1e-7
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(floatx())


def _align(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Cast y_true to y_pred's float dtype and fix a rank mismatch of one trailing size-1 axis (Keras)."""
    yp = _as_float(y_pred)
    yt = np.asarray(y_true, dtype=yp.dtype)
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


class Loss:
    """Base loss: subclasses implement `call` (per-element values) and `_grad` (dL/dy_pred)."""

    fused_activation: str | None = None
    default_name = "loss"

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = None):
        if reduction not in _REDUCTIONS:
            raise ConfigError(f"Unknown loss reduction {reduction!r}; valid values are: 'sum_over_batch_size', "
                              "'sum', 'mean', 'mean_with_sample_weight', 'none', None.")
        self.reduction = reduction
        self.name = name or self.default_name

    # ------------------------------------------------------------------ subclass hooks
    def call(self, y_true, y_pred) -> np.ndarray:
        """Per-element loss, shape y_pred.shape[:-1]."""
        raise NotImplementedError

    def _grad(self, yt: np.ndarray, yp: np.ndarray, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def valid_mask(self, y_true) -> np.ndarray | None:
        """Bool mask (per-element loss shape) of the elements that count, or None when all do."""
        return None

    def _params(self) -> dict:
        return {}

    # ------------------------------------------------------------------ public API
    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss as Keras computes it: sum(loss * sample_weight) / number of elements."""
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
            denom = float(np.sum(w, dtype=np.float64)) if sample_weight is not None else loss.size
            total = total / denom if denom else 0.0
        return loss.dtype.type(total)

    def gradient(self, y_true, y_pred, weights) -> np.ndarray:
        """dL/dy_pred for L = sum(call(y_true, y_pred) * weights); same shape and dtype as y_pred."""
        yp0 = _as_float(y_pred)
        yt, yp = self._prepare(y_true, yp0)
        w = _match_weights(weights, yp.shape[:-1], yp.dtype, "loss weights")
        mask = self.valid_mask(y_true)
        if mask is not None:
            w = w * np.reshape(mask, w.shape)
        return self._grad(yt, yp, w).reshape(yp0.shape)

    def gradient_logits(self, y_true, y_prob, weights) -> np.ndarray:
        """dL/dz where y_prob = fused_activation(z); only for losses with a fused_activation."""
        raise ConfigError(f"Loss {self.name!r} has no fused activation gradient.")

    def _prepare(self, y_true, yp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _align(y_true, yp)

    def check_targets(self, y_true, output_shape) -> None:
        """Raise DataError when targets cannot fit a model output of `output_shape` (batch axis optional)."""
        y = np.asarray(y_true)
        shape, width = _model_width(output_shape)
        per = y.shape[1:]
        if per == shape or per + (1,) == shape or per == shape + (1,):
            return
        got = y.shape[-1] if y.ndim > 1 else 1
        raise DataError(f"Targets for loss {self.name!r} have shape {y.shape}, which does not match the "
                        f"model output shape {shape} (target width {got} vs output width {width}).")

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, **self._params()}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        """Build from get_config(); Keras's own 'dtype' and default 'axis' keys are accepted and dropped."""
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


class MeanSquaredError(_Elementwise):
    default_name = "mean_squared_error"

    def _f(self, yt, yp):
        d = yp - yt
        return d * d

    def _df(self, yt, yp):
        return 2.0 * (yp - yt)


class MeanAbsoluteError(_Elementwise):
    default_name = "mean_absolute_error"

    def _f(self, yt, yp):
        return np.abs(yp - yt)

    def _df(self, yt, yp):
        return np.sign(yp - yt)


class MeanAbsolutePercentageError(_Elementwise):
    """100 * |y - p| / max(|y|, eps)."""

    default_name = "mean_absolute_percentage_error"

    def _f(self, yt, yp):
        return 100.0 * np.abs(yt - yp) / np.maximum(np.abs(yt), EPSILON)

    def _df(self, yt, yp):
        return 100.0 * np.sign(yp - yt) / np.maximum(np.abs(yt), EPSILON)


class MeanSquaredLogarithmicError(_Elementwise):
    """(log(max(p, eps) + 1) - log(max(y, eps) + 1))^2."""

    default_name = "mean_squared_logarithmic_error"

    def _f(self, yt, yp):
        d = np.log(np.maximum(yp, EPSILON) + 1.0) - np.log(np.maximum(yt, EPSILON) + 1.0)
        return d * d

    def _df(self, yt, yp):
        pc = np.maximum(yp, EPSILON) + 1.0
        d = np.log(pc) - np.log(np.maximum(yt, EPSILON) + 1.0)
        return 2.0 * d / pc * (yp >= EPSILON)


class Huber(_Elementwise):
    """0.5 e^2 for |e| <= delta, delta |e| - 0.5 delta^2 beyond, e = p - y."""

    default_name = "huber_loss"

    def __init__(self, delta: float = 1.0, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        self.delta = float(delta)

    def _params(self):
        return {"delta": self.delta}

    def _f(self, yt, yp):
        a = np.abs(yp - yt)
        d = self.delta
        return np.where(a <= d, 0.5 * a * a, d * a - 0.5 * d * d)

    def _df(self, yt, yp):
        return np.clip(yp - yt, -self.delta, self.delta)


class LogCosh(_Elementwise):
    """log(cosh(p - y)), computed as x + softplus(-2x) - log 2."""

    default_name = "log_cosh"

    def _f(self, yt, yp):
        x = yp - yt
        return x + np.maximum(-2.0 * x, 0.0) + np.log1p(np.exp(-2.0 * np.abs(x))) - np.log(2.0)

    def _df(self, yt, yp):
        return np.tanh(yp - yt)


class Poisson(_Elementwise):
    """p - y log(p + eps)."""

    default_name = "poisson"

    def _f(self, yt, yp):
        return yp - yt * np.log(yp + EPSILON)

    def _df(self, yt, yp):
        return 1.0 - yt / (yp + EPSILON)


class KLDivergence(_Elementwise):
    """sum(y log(y / p)) with y and p clipped to [eps, 1]."""

    default_name = "kl_divergence"
    _mean = False

    def _f(self, yt, yp):
        y = np.clip(yt, EPSILON, 1.0)
        return y * np.log(y / np.clip(yp, EPSILON, 1.0))

    def _df(self, yt, yp):
        inside = (yp >= EPSILON) & (yp <= 1.0)
        return -np.clip(yt, EPSILON, 1.0) / np.clip(yp, EPSILON, 1.0) * inside


class Hinge(_Elementwise):
    """max(1 - y p, 0); labels given as 0/1 are mapped to -1/1 first (Keras)."""

    default_name = "hinge"
    _power = 1

    def _targets(self, yt):
        return 2.0 * yt - 1.0 if np.all((yt == 0) | (yt == 1)) else yt

    def _f(self, yt, yp):
        return np.maximum(1.0 - yt * yp, 0.0) ** self._power

    def _df(self, yt, yp):
        m = np.maximum(1.0 - yt * yp, 0.0)
        return -yt * (m > 0) if self._power == 1 else -2.0 * yt * m


class SquaredHinge(Hinge):
    default_name = "squared_hinge"
    _power = 2


class BinaryCrossentropy(_Elementwise):
    """Mean over the last axis of -(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps];
    from logits the stable max(z, 0) - z y + log(1 + exp(-|z|))."""

    default_name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)
        self.fused_activation = None if self.from_logits else "sigmoid"

    def _params(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

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

    def gradient_logits(self, y_true, y_prob, weights):
        """(sigmoid(z) - y) * w / n_last, given y_prob = sigmoid(z)."""
        if self.from_logits:
            return super().gradient_logits(y_true, y_prob, weights)
        p0 = _as_float(y_prob)
        yt, p = _align(y_true, p0)
        w = _match_weights(weights, p.shape[:-1], p.dtype, "loss weights")
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


class CategoricalCrossentropy(Loss):
    """-sum(y log p) over the last axis, p renormalised and clipped, or log_softmax of logits."""

    default_name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)
        self.fused_activation = None if self.from_logits else "softmax"

    def _params(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def _targets(self, yt):
        s = self.label_smoothing
        return yt * (1.0 - s) + s / yt.shape[-1] if s else yt

    def call(self, y_true, y_pred):
        yt, yp = _align(y_true, y_pred)
        y = self._targets(yt)
        if self.from_logits:
            return -np.sum(y * LogSoftmax().forward(yp), axis=-1)
        q = yp / np.sum(yp, axis=-1, keepdims=True)
        return -np.sum(y * np.log(np.clip(q, EPSILON, 1.0 - EPSILON)), axis=-1)

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

    def gradient_logits(self, y_true, y_prob, weights):
        """(p * sum(y) - y) * w, given y_prob = softmax(z)."""
        if self.from_logits:
            return super().gradient_logits(y_true, y_prob, weights)
        p0 = _as_float(y_prob)
        yt, p = _align(y_true, p0)
        w = _match_weights(weights, p.shape[:-1], p.dtype, "loss weights")
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
    """Categorical cross-entropy with integer class labels of shape (N, ...) or (N, ..., 1)."""

    default_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction="sum_over_batch_size", name=None):
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

    def gradient_logits(self, y_true, y_prob, weights):
        """(p - onehot(y)) * w, given y_prob = softmax(z)."""
        if self.from_logits:
            return super().gradient_logits(y_true, y_prob, weights)
        p = _as_float(y_prob)
        idx, _ = self._prepare(y_true, p)
        w = _match_weights(weights, p.shape[:-1], p.dtype, "loss weights")
        mask = self.valid_mask(y_true)
        if mask is not None:
            w = w * mask.reshape(w.shape)
        return self._fused(idx, p, w)

    def check_targets(self, y_true, output_shape):
        y = np.asarray(y_true)
        shape, n = _model_width(output_shape)
        if y.ndim == len(shape) + 1 and y.shape[-1] != 1:
            raise DataError(f"Targets for {self.name!r} have shape {y.shape} but integer class labels "
                            f"of shape {y.shape[:-1]} are expected (one-hot targets need "
                            "categorical_crossentropy).")
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


# ---------------------------------------------------------------------- Keras-style functions
def _per_sample(cls: type, name: str):
    """A Keras-style function name -> per-sample values of the default-configured loss class."""
    def fn(y_true, y_pred) -> np.ndarray:
        return cls().call(y_true, y_pred)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Per-sample {name} (shape y_pred.shape[:-1]); see {cls.__name__}."
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


def huber(y_true, y_pred, delta: float = 1.0) -> np.ndarray:
    """Per-sample Huber loss."""
    return Huber(delta).call(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample binary cross-entropy (mean over the last axis)."""
    return BinaryCrossentropy(from_logits, label_smoothing).call(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                             label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample categorical cross-entropy."""
    return CategoricalCrossentropy(from_logits, label_smoothing).call(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                                    ignore_class: int | None = None) -> np.ndarray:
    """Per-sample cross-entropy against integer labels."""
    return SparseCategoricalCrossentropy(from_logits, ignore_class).call(y_true, y_pred)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence

_FUNCTIONS = {
    mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError, huber: Huber, log_cosh: LogCosh,
    poisson: Poisson, kl_divergence: KLDivergence, hinge: Hinge, squared_hinge: SquaredHinge,
    binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
}
_CLASSES = {c.__name__: c for c in _FUNCTIONS.values()}
_NAMES = {f.__name__: c for f, c in _FUNCTIONS.items()}
_NAMES.update({a: _NAMES[f] for f, aliases in {
    "mean_squared_error": ("mse", "MSE"), "mean_absolute_error": ("mae", "MAE"),
    "mean_absolute_percentage_error": ("mape", "MAPE"),
    "mean_squared_logarithmic_error": ("msle", "MSLE"), "huber": ("huber_loss",),
    "log_cosh": ("logcosh",), "kl_divergence": ("kld", "KLD", "kullback_leibler_divergence"),
    "binary_crossentropy": ("bce", "BCE"), "categorical_crossentropy": ("cce", "CCE"),
}.items() for a in aliases})
_NAMES.update(_CLASSES)


def get(identifier) -> Loss | None:
    """Resolve a Keras loss name or alias, a Loss class or instance, a module function, or a config dict."""
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        if identifier not in _NAMES:
            raise unknown_name("loss", identifier, _NAMES)
        return _NAMES[identifier]()
    if callable(identifier) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if callable(identifier):
        label = getattr(identifier, "__name__", repr(identifier))
        raise ConfigError(f"Custom loss {label!r} needs a gradient: subclass distdl.losses.Loss "
                          "and implement call and _grad.")
    raise unknown_name("loss", repr(identifier), _NAMES)


def serialize(loss) -> dict:
    """{'class_name': ..., 'config': ...} for model configs."""
    loss = get(loss)
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config) -> Loss:
    """Inverse of serialize; also accepts a plain name."""
    if isinstance(config, str):
        return get(config)
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in _CLASSES:
        raise unknown_name("loss class", name, _CLASSES)
    return _CLASSES[name].from_config(dict(config.get("config", {})))
