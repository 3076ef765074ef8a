"""The state variables of a user's `Metric` subclass (Keras 3's `add_variable` / `add_weight`).

A Keras metric keeps its state in variables that `update_state` changes with `assign`,
`assign_add` and `assign_sub`. distdl's engine keeps every metric's state as a float64 vector
that is summed across ranks (and across the batches of an epoch) before `result`; `StateVariables`
makes a subclass's variables that vector: each variable's change since its initial value,
flattened and concatenated in the order they were added. Summing those changes is Keras's
aggregation="sum" under a distribution strategy, so the printed numbers are global.

A state that is not a sum (aggregation "mean", "only_first_replica", "none", or a running
maximum kept with `assign`) cannot be summed: variables declared so are refused when the model
is compiled (`check_summed`); a running maximum cannot be detected, and is not supported.
"""
from __future__ import annotations

import numpy as np

from .. import backend, initializers
from ..arena import Variable
from ..errors import ConfigError, ShapeError

__all__ = ["StateVariables"]

_AGGREGATIONS = ("sum", "mean", "only_first_replica", "none")


class StateVariables:
    """A metric's variables with their initial values and Keras aggregations.

    Args:
        owner: the metric's name, for variable names and error messages.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.entries: list = []   # (Variable, initial value, aggregation)

    def add(self, shape=(), initializer="zeros", dtype=None, aggregation="sum", name=None) -> Variable:
        """A new non-trainable variable; it acts as a tensor in `distdl.ops`.

        Args:
            shape: its shape (an int or a tuple).
            initializer: a name, an Initializer or a function `fn(shape, dtype=None)`; None: zeros.
            dtype: its dtype; None: floatx.
            aggregation: Keras's "sum", "mean", "only_first_replica" or "none" (only "sum" passes
                `check_summed`).
            name: its name inside the metric.
        """
        if aggregation not in _AGGREGATIONS:
            raise ConfigError(f"Metric {self.owner!r}: variable {name!r} has aggregation {aggregation!r}; "
                              f"valid values are: {', '.join(_AGGREGATIONS)}.")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in (shape or ()))
        dtype = np.dtype(dtype or backend.floatx())
        init = initializers.get(initializer if initializer is not None else "zeros")
        value = np.array(np.broadcast_to(np.asarray(init(shape, dtype=dtype), dtype=dtype), shape))
        label = name or f"variable_{len(self.entries)}"
        var = Variable(f"{self.owner}/{label}", value, trainable=False)
        self.entries.append((var, value.copy(), aggregation))
        return var

    @property
    def size(self) -> int:
        """Numbers in the state vector: every variable's elements."""
        return sum(init.size for _, init, _ in self.entries)

    def reset(self) -> None:
        """Every variable back to its initial value."""
        for var, init, _ in self.entries:
            var.assign(init)

    def deltas(self) -> np.ndarray:
        """The state vector: each variable minus its initial value, flattened, float64."""
        if not self.entries:
            return np.zeros(0)
        return np.concatenate([(np.asarray(v.value, dtype=np.float64) - init).ravel() for v, init, _ in self.entries])

    def set(self, state: np.ndarray) -> None:
        """Each variable to its initial value plus its part of `state`.

        Args:
            state: shape (size,), float64: the changes, e.g. summed over ranks and batches.
        """
        if state.shape != (self.size,):
            raise ShapeError(f"Metric {self.owner!r} expects a state of shape ({self.size},), not {state.shape}.")
        at = 0
        for var, init, _ in self.entries:
            part = state[at:at + init.size].reshape(init.shape)
            at += init.size
            var.assign((init + part).astype(init.dtype) if init.dtype.kind == "f" else np.rint(init + part))

    def check_summed(self, metric: str) -> None:
        """Refuse a variable whose aggregation is not "sum" (ranks and batches add their states).

        Args:
            metric: the metric's name now (compile may have renamed it), for the sentence.
        """
        for var, _, aggregation in self.entries:
            if aggregation != "sum":
                raise ConfigError(
                    f"Metric {metric!r} declares variable {var.name.split('/', 1)[-1]!r} with "
                    f"aggregation={aggregation!r}, but distdl adds up metric states across ranks and batches, "
                    "so only summed states (aggregation='sum') are supported under several ranks; keep sums "
                    "(e.g. a total and a count) and compute the rest in result().")
