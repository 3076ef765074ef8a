"""Metrics as running sums, so that ranks can add their states and every rank reports the global value.

The training loop concatenates every metric's `get_state()` (float64, `state_size` values) into one
buffer, sums it across ranks, hands each slice back with `set_state`, and then calls `result()`.
Names, defaults and formulas follow Keras 3 (`keras.metrics`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import losses as _losses
from .errors import ConfigError, ShapeError, unknown_name


def _align(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """As Keras: squeeze or expand a trailing size-1 axis when the ranks differ by one."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if yt.ndim == yp.ndim + 1 and yt.shape[-1] == 1:
        yt, yp = (yt, yp[:, None]) if yp.ndim == 1 else (yt[..., 0], yp)
    elif yp.ndim == yt.ndim + 1 and yp.shape[-1] == 1:
        yt, yp = (yt[:, None], yp) if yt.ndim == 1 else (yt, yp[..., 0])
    return yt, yp


def _per_sample(matches: np.ndarray) -> np.ndarray:
    """Mean over the last axis for rank >= 2 element matches, giving one value per sample."""
    m = matches.astype(np.float64)
    return m.mean(axis=-1) if m.ndim > 1 else m


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    """Per-sample fraction of entries where (y_pred > threshold) equals y_true."""
    yt, yp = _align(y_true, y_pred)
    return _per_sample(yt == (yp > threshold))


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where argmax(y_true) == argmax(y_pred) over the last axis, else 0.0."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def _sparse_labels(y_true, y_pred) -> np.ndarray:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return yt[..., 0] if yt.ndim == yp.ndim and yt.shape[-1] == 1 else yt


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where the integer label equals argmax(y_pred), else 0.0 (labels (N,) or (N, 1))."""
    return (_sparse_labels(y_true, y_pred) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    """1.0 where the label's score is among the k largest (ties count as inside, like TF in_top_k)."""
    yp = np.asarray(y_pred)
    idx = _sparse_labels(y_true, yp).astype(np.intp)[..., None]
    target = np.take_along_axis(yp, idx, axis=-1)
    return (np.sum(yp > target, axis=-1) < k).astype(np.float64)


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    """Top-k accuracy against one-hot targets."""
    return sparse_top_k_categorical_accuracy(np.argmax(y_true, axis=-1), y_pred, k)


def accuracy(y_true, y_pred) -> np.ndarray:
    """Exact equality of y_true and y_pred (Keras `Accuracy`)."""
    yt, yp = _align(y_true, y_pred)
    return _per_sample(yt == yp)


class Metric:
    """A metric whose whole state is `state_size` float64 numbers that add up across ranks."""

    state_size = 0
    default_name = "metric"

    def __init__(self, name: str | None = None):
        self.name = name or self.default_name
        self._state = np.zeros(self.state_size, dtype=np.float64)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def reset_state(self) -> None:
        self._state[:] = 0.0

    def get_state(self) -> np.ndarray:
        """A copy of the running sums, shape (state_size,), float64."""
        return self._state.copy()

    def set_state(self, state) -> None:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_size,):
            raise ShapeError(f"Metric {self.name!r} expects a state of shape ({self.state_size},), "
                             f"not {state.shape}.")
        self._state[:] = state

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        return cls(**{k: v for k, v in config.items() if k != "dtype"})  # Keras configs carry a dtype

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def _div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


class Mean(Metric):
    """Weighted running mean of values: state (total, count), as keras.metrics.Mean."""

    state_size = 2
    default_name = "mean"

    def update_state(self, values, sample_weight=None) -> None:
        self._accumulate(values, sample_weight)

    def _accumulate(self, values, sample_weight) -> None:
        v = np.asarray(values, dtype=np.float64)
        if sample_weight is None:
            if v.ndim > 1:
                v = v.reshape(v.shape[0], -1).mean(axis=1)
            self._state += (v.sum(), v.shape[0] if v.ndim else 1)
            return
        w = np.asarray(sample_weight, dtype=np.float64)
        v, w = _align(v, w)
        if v.ndim > w.ndim:  # reduce extra value axes to the weight's rank
            v = v.mean(axis=tuple(range(w.ndim, v.ndim)))
        try:
            w = np.broadcast_to(w, v.shape)
        except ValueError:
            raise ShapeError(f"sample_weight of shape {w.shape} does not fit the values of shape "
                             f"{v.shape} in metric {self.name!r}.") from None
        v = v * w
        if w.ndim > 1:
            w = w.mean(axis=tuple(range(1, w.ndim)))
        if v.ndim > 1:
            v = v.mean(axis=tuple(range(1, v.ndim)))
        self._state += (v.sum(), w.sum())

    def result(self) -> float:
        return _div(self._state[0], self._state[1])


class MeanMetricWrapper(Mean):
    """Running weighted mean of fn(y_true, y_pred, **kwargs), a per-sample function."""

    def __init__(self, fn: Callable, name: str | None = None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "metric"))
        self._fn, self._fn_kwargs = fn, kwargs

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        self._accumulate(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self) -> dict:
        fn_name = _FUNCTION_NAMES.get(self._fn)
        if fn_name is None:
            raise ConfigError(f"Metric {self.name!r} wraps a custom function and cannot be serialized.")
        return {"name": self.name, "fn": fn_name, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        config = dict(config)
        fn = _FUNCTIONS.get(config.pop("fn", None))
        if fn is None:
            raise unknown_name("metric function", None, _FUNCTIONS)
        return cls(fn, **config)


class _Wrapped(MeanMetricWrapper):
    """A MeanMetricWrapper with a fixed function; the config holds only name and options."""

    fn: Callable = staticmethod(accuracy)

    def __init__(self, name: str | None = None, **kwargs):
        super().__init__(type(self).fn, name or self.default_name, **kwargs)

    def get_config(self) -> dict:
        return {"name": self.name, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        return cls(**{k: v for k, v in config.items() if k != "dtype"})


class Accuracy(_Wrapped):
    default_name = "accuracy"
    fn = staticmethod(accuracy)


class BinaryAccuracy(_Wrapped):
    default_name = "binary_accuracy"
    fn = staticmethod(binary_accuracy)

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        if not 0 < threshold < 1:
            raise ConfigError(f"BinaryAccuracy threshold must lie in (0, 1), not {threshold}.")
        super().__init__(name, threshold=float(threshold))


class CategoricalAccuracy(_Wrapped):
    default_name = "categorical_accuracy"
    fn = staticmethod(categorical_accuracy)


class SparseCategoricalAccuracy(_Wrapped):
    default_name = "sparse_categorical_accuracy"
    fn = staticmethod(sparse_categorical_accuracy)


class TopKCategoricalAccuracy(_Wrapped):
    default_name = "top_k_categorical_accuracy"
    fn = staticmethod(top_k_categorical_accuracy)

    def __init__(self, k: int = 5, name: str | None = None):
        super().__init__(name, k=int(k))


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    default_name = "sparse_top_k_categorical_accuracy"
    fn = staticmethod(sparse_top_k_categorical_accuracy)


class MeanSquaredError(_Wrapped):
    default_name = "mean_squared_error"
    fn = staticmethod(_losses.mean_squared_error)


class MeanAbsoluteError(_Wrapped):
    default_name = "mean_absolute_error"
    fn = staticmethod(_losses.mean_absolute_error)


class AutoAccuracy(Mean):
    """'accuracy' / 'acc': binary, sparse categorical or categorical accuracy, chosen the Keras way
    from the shapes at the first update_state (the state is (total, count) in every case)."""

    default_name = "accuracy"

    def __init__(self, name: str | None = None):
        super().__init__(name)
        self._fn: Callable | None = None

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self._fn is None:
            yt, yp = np.asarray(y_true), np.asarray(y_pred)
            if yp.shape[-1] == 1:
                self._fn = binary_accuracy
            elif yt.ndim < yp.ndim or (yt.shape[-1] == 1 and yp.shape[-1] > 1):
                self._fn = sparse_categorical_accuracy
            else:
                self._fn = categorical_accuracy
        self._accumulate(self._fn(y_true, y_pred), sample_weight)


class _Confusion(Metric):
    """Precision / Recall at one threshold: state (true positives, false positives or negatives)."""

    state_size = 2

    def __init__(self, thresholds: float | None = None, name: str | None = None):
        super().__init__(name)
        self.thresholds = 0.5 if thresholds is None else float(thresholds)

    def _counts(self, y_true, y_pred, sample_weight):
        yt, yp = _align(y_true, y_pred)
        pos, pred = yt != 0, yp > self.thresholds
        w = np.ones(yp.shape) if sample_weight is None else _losses._match_weights(
            sample_weight, yp.shape, np.float64)
        return float(np.sum(w * (pos & pred))), float(np.sum(w * (~pos & pred))), \
            float(np.sum(w * (pos & ~pred)))

    def get_config(self) -> dict:
        return {"name": self.name, "thresholds": self.thresholds}


class Precision(_Confusion):
    """tp / (tp + fp) of binary predictions above the threshold (0.5)."""

    default_name = "precision"

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        tp, fp, _ = self._counts(y_true, y_pred, sample_weight)
        self._state += (tp, fp)

    def result(self) -> float:
        return _div(self._state[0], self._state[0] + self._state[1])


class Recall(_Confusion):
    """tp / (tp + fn) of binary predictions above the threshold (0.5)."""

    default_name = "recall"

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        tp, _, fn = self._counts(y_true, y_pred, sample_weight)
        self._state += (tp, fn)

    def result(self) -> float:
        return _div(self._state[0], self._state[0] + self._state[1])


class AUC(Metric):
    """ROC AUC over `num_thresholds` fixed thresholds with trapezoidal interpolation (Keras defaults).

    State: weighted counts of positives and negatives above each threshold, plus their totals.
    """

    default_name = "auc"

    def __init__(self, num_thresholds: int = 200, name: str | None = None):
        if num_thresholds < 2:
            raise ConfigError(f"AUC num_thresholds must be > 1, not {num_thresholds}.")
        self.num_thresholds = int(num_thresholds)
        self.state_size = 2 * self.num_thresholds + 2
        super().__init__(name)
        inner = np.arange(1, self.num_thresholds - 1) / (self.num_thresholds - 1)
        self._thresholds = np.concatenate([[-1e-7], inner, [1.0 + 1e-7]])

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        yt, yp = _align(y_true, y_pred)
        w = np.ones(yp.shape) if sample_weight is None else _losses._match_weights(
            sample_weight, yp.shape, np.float64)
        n = self.num_thresholds
        above = np.searchsorted(self._thresholds, yp.ravel(), side="left")  # thresholds < p
        pos = (yt != 0).ravel()
        wf = np.broadcast_to(w, yp.shape).ravel()
        for j, sel in enumerate((pos, ~pos)):
            hist = np.bincount(above[sel], weights=wf[sel], minlength=n + 1)
            # count above threshold i = sum of hist[k] for k > i
            self._state[j * n:(j + 1) * n] += np.cumsum(hist[::-1])[::-1][1:]
            self._state[2 * n + j] += hist.sum()

    def result(self) -> float:
        n = self.num_thresholds
        tp, fp = self._state[:n], self._state[n:2 * n]
        tpr = tp / self._state[2 * n] if self._state[2 * n] else np.zeros(n)
        fpr = fp / self._state[2 * n + 1] if self._state[2 * n + 1] else np.zeros(n)
        return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))

    def get_config(self) -> dict:
        return {"name": self.name, "num_thresholds": self.num_thresholds}


_FUNCTIONS: dict[str, Callable] = {
    "accuracy": accuracy, "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    **{f.__name__: f for f in _losses._FUNCTIONS},
}
_FUNCTION_NAMES = {f: n for n, f in _FUNCTIONS.items()}
_CLASSES: dict[str, type[Metric]] = {c.__name__: c for c in (
    Mean, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
    AutoAccuracy, Precision, Recall, AUC)}
# Functions whose class form carries extra behaviour (threshold checks, k) map to that class.
_FUNCTION_CLASSES = {binary_accuracy: BinaryAccuracy, categorical_accuracy: CategoricalAccuracy,
                     sparse_categorical_accuracy: SparseCategoricalAccuracy,
                     top_k_categorical_accuracy: TopKCategoricalAccuracy,
                     sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy}
_SHORT = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
          "msle": "mean_squared_logarithmic_error", "precision": "Precision", "recall": "Recall",
          "auc": "AUC"}


def _valid_names() -> list:
    return ["accuracy", "acc", *_SHORT, *_FUNCTIONS, *_CLASSES]


def get(identifier, name: str | None = None) -> Metric:
    """Resolve a Keras metric name, function, class, instance or config dict to a Metric.

    String metrics keep the name the user wrote ('acc' logs as 'acc', 'mse' as 'mse').
    """
    if isinstance(identifier, Metric):
        if name:
            identifier.name = name
        return identifier
    if isinstance(identifier, dict):
        metric = deserialize(identifier)
        return get(metric, name)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier(name=name)
    if isinstance(identifier, str):
        label = name or identifier
        key = _SHORT.get(identifier, identifier)
        if identifier.lower() in ("accuracy", "acc"):
            metric: Metric = AutoAccuracy(name=label)
        elif key in _CLASSES and key != "MeanMetricWrapper":
            metric = _CLASSES[key](name=label)
        elif key in _FUNCTIONS:
            fn = _FUNCTIONS[key]
            cls = _FUNCTION_CLASSES.get(fn)
            metric = cls(name=label) if cls else MeanMetricWrapper(fn, name=label)
        else:
            raise unknown_name("metric", identifier, _valid_names())
        metric._identifier = identifier
        return metric
    if callable(identifier):
        cls = _FUNCTION_CLASSES.get(identifier)
        return cls(name=name) if cls else MeanMetricWrapper(identifier, name=name)
    raise unknown_name("metric", repr(identifier), _valid_names())


def serialize(metric) -> str | dict:
    """The string the user gave, or {'class_name': ..., 'config': ...}."""
    metric = get(metric)
    ident = getattr(metric, "_identifier", None)
    if ident is not None and ident == metric.name:
        return ident
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config) -> Metric:
    """Inverse of serialize."""
    if isinstance(config, str):
        return get(config)
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in _CLASSES:
        raise unknown_name("metric class", name, _CLASSES)
    return _CLASSES[name].from_config(dict(config.get("config", {})))
