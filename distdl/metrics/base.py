"""The `Metric` base (state as float64 running sums that add up across ranks), the weighted running
`Mean`, and `MeanMetricWrapper`, the running mean of a per-sample function."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ConfigError, ShapeError, unknown_name
from .functions import _FUNCTION_NAMES, _FUNCTIONS, _align, accuracy

__all__ = ["Metric", "Mean", "MeanMetricWrapper"]


class Metric:
    """A metric whose whole state is `state_size` float64 numbers that add up across ranks.

    Args:
        name: the name logs use; None takes the class's Keras name.
    """

    state_size = 0
    default_name = "metric"

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.default_name
        self._state = np.zeros(self.state_size, dtype=np.float64)

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
        """Zero the running sums (at the start of each epoch and evaluation)."""
        self._state[:] = 0.0

    def get_state(self) -> np.ndarray:
        """A copy of the running sums, shape (state_size,), float64."""
        return self._state.copy()

    def set_state(self, state: np.ndarray) -> None:
        """Replace the running sums, e.g. with their sum across ranks.

        Args:
            state: shape (state_size,) numbers, as `get_state` returns them.
        """
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_size,):
            raise ShapeError(f"Metric {self.name!r} expects a state of shape ({self.state_size},), "
                             f"not {state.shape}.")
        self._state[:] = state

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able, as Keras saves them."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        """A new metric from `get_config`'s output (Keras's 'dtype' key is dropped).

        Args:
            config: the constructor arguments.
        """
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
    """Running weighted mean of fn(y_true, y_pred, **kwargs), a per-sample function.

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
        self._accumulate(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self) -> dict:
        fn_name = _FUNCTION_NAMES.get(self._fn)
        if fn_name is None:
            raise ConfigError(f"Metric {self.name!r} wraps a custom function and cannot be serialized.")
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
        return cls(**{k: v for k, v in config.items() if k != "dtype"})
