"""The `Metric` base (state as float64 running sums that add up across ranks), the weighted running
`Mean`, and `MeanMetricWrapper`, the running mean of a per-sample function.

A user's `Metric` subclass is written as in Keras 3: `add_variable` / `add_weight` in `__init__`,
`update_state` changing those variables (`assign`, `assign_add`, `assign_sub`, with `distdl.ops`),
`result` (a number or a tensor) and optionally `reset_state`. Its variables are its state vector
(metrics.custom.StateVariables), summed across ranks before `result`, so every state must be a sum:
a variable declared with another aggregation is refused at compile, and a running maximum or any
other state that does not add up is not supported under several ranks.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import backend
from ..errors import ConfigError, ShapeError, unknown_name
from .custom import StateVariables
from .functions import _FUNCTION_NAMES, _FUNCTIONS, _align, accuracy

__all__ = ["Metric", "Mean", "MeanMetricWrapper"]


class Metric:
    """A metric whose whole state is `state_size` float64 numbers that add up across ranks:
    built-ins keep them in `_state`; a user's subclass in the variables it adds (`add_variable`).

    Args:
        name: the name logs use; None takes the class's Keras name.
        dtype: the dtype of the variables `add_variable` makes by default (None: floatx), Keras's
            `Metric.dtype`.
    """

    state_size = 0   # a subclass with variables: set by add_variable
    default_name = "metric"
    _keras_only: dict = {}  # Keras config keys distdl supports only at this value (dropped on load)

    def __init__(self, name: str | None = None, dtype=None) -> None:
        self.name = name or self.default_name
        self._dtype = str(np.dtype(dtype or backend.floatx()))
        self._vars = StateVariables(self.name)
        self._state = np.zeros(self.state_size, dtype=np.float64)

    @property
    def dtype(self) -> str:
        """The metric's default variable dtype, e.g. "float32" (Keras's `Metric.dtype`)."""
        return self._dtype

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum", name=None):
        """A state variable (Keras 3): a non-trainable weight with `assign`, `assign_add`, `assign_sub`,
        `value` and `numpy()`, usable in `distdl.ops`; only aggregation="sum" is supported (see the
        module docstring).

        Args:
            shape: the variable's shape.
            initializer: its initial value: an initializer name, object or function.
            dtype: its dtype; None takes the metric's.
            aggregation: how Keras would combine replicas: "sum" (others are refused at compile).
            name: its name inside the metric.
        """
        self._require_init()
        var = self._vars.add(shape, initializer, dtype or self._dtype, aggregation, name)
        self.state_size = self._vars.size
        return var

    def add_weight(self, shape=(), initializer=None, dtype=None, aggregation="sum", name=None):
        """Keras 3's alias of `add_variable` (initializer None: zeros).

        Args:
            shape: as in `add_variable`.
            initializer: as in `add_variable`; None gives zeros.
            dtype: as in `add_variable`.
            aggregation: as in `add_variable`.
            name: as in `add_variable`.
        """
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self) -> list:
        """The state variables `add_variable` made, in order."""
        return [var for var, _, _ in self._vars.entries]

    def build_for_output(self, output_shape) -> None:
        """Size the state for a model output of `output_shape` (compile calls this, before the
        training loop lays out the states); a metric whose state size is fixed ignores it.

        Args:
            output_shape: the output's shape, with or without the batch axis.
        """

    def check_summed(self) -> None:
        """Raise ConfigError when a state variable is not summed (compile calls this)."""
        self._require_init()
        self._vars.check_summed(self.name)

    def _require_init(self) -> None:
        if not hasattr(self, "_vars"):
            raise ConfigError(f"{type(self).__name__}.__init__ must call super().__init__(name=name, **kwargs) "
                              "before add_variable and before the metric is used.")

    def __call__(self, *args, **kwargs):
        """update_state, then the result (Keras's `Metric.__call__`)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add one batch to the running sums.

        Args:
            y_true: the targets.
            y_pred: the model's output.
            sample_weight: per-sample weights, or None for 1 each.
        """
        raise NotImplementedError

    def result(self) -> float:
        """The metric's value from the running sums (after they were summed across ranks)."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Zero the running sums and set every variable back to its initial value (at the start of
        each epoch and evaluation, and before each training batch)."""
        self._state[:] = 0.0
        self._vars.reset()

    def get_state(self) -> np.ndarray:
        """A copy of the running sums, shape (state_size,), float64 (variables: their changes)."""
        return self._vars.deltas() if self._vars.entries else self._state.copy()

    def set_state(self, state: np.ndarray) -> None:
        """Replace the running sums, e.g. with their sum across ranks.

        Args:
            state: shape (state_size,) numbers, as `get_state` returns them.
        """
        state = np.asarray(state, dtype=np.float64)
        if self._vars.entries:
            self._vars.set(state)
            return
        if state.shape != (self.state_size,):
            raise ShapeError(f"Metric {self.name!r} expects a state of shape ({self.state_size},), "
                             f"not {state.shape}.")
        self._state[:] = state

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able, as Keras saves them."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        """A new metric from `get_config`'s output (Keras's 'dtype' key is dropped, and so are
        Keras's other keys distdl supports only at one value, when they hold it).

        Args:
            config: the constructor arguments.
        """
        return cls(**cls._clean_config(config))

    @classmethod
    def _clean_config(cls, config: dict) -> dict:
        """`config` without 'dtype' and `_keras_only` keys at their supported values."""
        config = {k: v for k, v in config.items() if k != "dtype"}  # Keras configs carry a dtype
        for key, value in cls._keras_only.items():
            got = config.pop(key, value)
            if got != value:
                raise ConfigError(f"Metric {cls.__name__} supports only {key}={value!r}, not {key}={got!r}.")
        return config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def _div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


class Mean(Metric):
    """Weighted running mean of values: state (total, count), as keras.metrics.Mean."""

    state_size = 2
    default_name = "mean"

    def update_state(self, values, sample_weight=None) -> None:
        """Add values (one per sample; extra axes are averaged) to the running mean.

        Args:
            values: the values.
            sample_weight: per-sample weights, or None for 1 each.
        """
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
    """Running weighted mean of fn(y_true, y_pred, **kwargs), a per-sample function (which may be
    the user's, written with `distdl.ops` or NumPy; tensors it returns are converted).

    A scalar fn returns is a batch mean: it counts once per row of the batch, so that N ranks,
    each with its share of the rows, give one process's mean (Keras counts a scalar once per batch,
    which differs only where batches differ in size).

    Args:
        fn: the per-sample function.
        name: the name logs use; None takes fn's name.
        **kwargs: passed on to fn.
    """

    def __init__(self, fn: Callable, name: str | None = None, **kwargs) -> None:
        super().__init__(name or getattr(fn, "__name__", "metric"))
        self._fn, self._fn_kwargs = fn, kwargs

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        """Add fn(y_true, y_pred) of one batch to the running mean.

        Args:
            y_true: the targets.
            y_pred: the model's output.
            sample_weight: per-sample weights, or None for 1 each.
        """
        values = np.asarray(self._fn(y_true, y_pred, **self._fn_kwargs), dtype=np.float64)
        if values.ndim == 0 and np.ndim(y_pred):
            values = np.broadcast_to(values, (len(y_pred),))
        self._accumulate(values, sample_weight)

    def get_config(self) -> dict:
        """name, the function's name (`fn`: a built-in one's Keras name, else its `__name__`,
        which loading looks up again) and its options."""
        fn_name = _FUNCTION_NAMES.get(self._fn) or getattr(self._fn, "__name__", repr(self._fn))
        return {"name": self.name, "fn": fn_name, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        config = dict(config)
        fn_name = config.pop("fn", None)
        fn = _FUNCTIONS.get(fn_name)
        if fn is None:
            raise unknown_name("metric function", fn_name, _FUNCTIONS)
        return cls(fn, **config)


class _Wrapped(MeanMetricWrapper):
    """A MeanMetricWrapper with a fixed function; the config holds only name and options.

    Args:
        name: the name logs use; None takes the class's Keras name.
        **kwargs: options passed on to the function.
    """

    fn: Callable = staticmethod(accuracy)

    def __init__(self, name: str | None = None, **kwargs) -> None:
        super().__init__(type(self).fn, name or self.default_name, **kwargs)

    def get_config(self) -> dict:
        return {"name": self.name, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        return cls(**cls._clean_config(config))
