"""The flat parameter arena: every weight of a model is a view into one array.

One contiguous `params` buffer and its twin `grads` make the allreduce one call,
the optimizer a few vectorised NumPy calls, and the checkpoint one dataset.
"""
from __future__ import annotations

import numpy as np

from .autodiff import VariableBase, value_of

__all__ = ["Variable", "Arena", "assign_values"]


class Variable(VariableBase):
    """A named weight. `value` and `grad` are arrays (views into an arena once built). In
    `distdl.ops` code and with Python's operators it acts as a tensor (Keras's `Variable`).

    Args:
        name: the weight's name, e.g. "dense/kernel".
        value: its initial array (the variable keeps this array until an Arena packs it).
        trainable: whether it gets a gradient buffer and optimizer updates.
        regularizer: a penalty on the weight (distdl.regularizers), or None.
        constraint: a projection applied after each update (distdl.constraints), or None.
        declared_trainable: what the layer declared (default: `trainable`); `trainable` follows
            the layer's `trainable` flag, and unfreezing restores only what was declared.
    """

    __slots__ = ("name", "value", "grad", "trainable", "declared_trainable", "regularizer", "constraint")

    def __init__(self, name: str, value: np.ndarray, trainable: bool = True, regularizer=None,
                 constraint=None, declared_trainable: bool | None = None) -> None:
        self.name = name
        self.value = value
        self.grad = np.zeros_like(value) if trainable else None
        self.trainable = trainable  # what the next pack uses: declared and the layer not frozen
        # what add_weight asked for (BatchNormalization's moving statistics: False); unfreezing
        # the layer makes a variable trainable again only where this holds
        self.declared_trainable = trainable if declared_trainable is None else declared_trainable
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def shape(self) -> tuple:
        """The weight's shape."""
        return self.value.shape

    @property
    def dtype(self):
        """The weight's dtype."""
        return self.value.dtype

    @property
    def ndim(self) -> int:
        """The weight's number of axes."""
        return self.value.ndim

    def assign(self, array) -> None:
        """Copy `array` (an array or a tensor) into the weight in place (keeps arena views valid).
        Not differentiated: Keras's way for running statistics a layer keeps in `call`.

        Args:
            array: values of the weight's shape (broadcastable).
        """
        self.value[...] = value_of(array)

    def assign_add(self, delta) -> None:
        """value += delta, in place (Keras's `assign_add`).

        Args:
            delta: an array or tensor broadcastable to the weight's shape.
        """
        self.value[...] += value_of(delta)

    def assign_sub(self, delta) -> None:
        """value -= delta, in place (Keras's `assign_sub`).

        Args:
            delta: an array or tensor broadcastable to the weight's shape.
        """
        self.value[...] -= value_of(delta)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype=dtype)

    def numpy(self) -> np.ndarray:
        """A copy of the weight's value, as Keras's `Variable.numpy()`."""
        return self.value.copy()

    def __repr__(self):
        return f"<Variable {self.name} shape={self.shape} dtype={self.value.dtype}>"


def assign_values(variables: list, arrays: list, owner: str) -> None:
    """Copy `arrays` into `variables`, checking every count and shape first (nothing changes on error).

    Args:
        variables: the Variables to write, in order.
        arrays: one array per variable, each of its variable's shape.
        owner: names the model or layer in the error, e.g. "Model 'mlp'".
    """
    from .errors import ShapeError
    if len(arrays) != len(variables):
        raise ShapeError(f"{owner} has {len(variables)} weight arrays, got {len(arrays)}.")
    arrays = [np.asarray(a) for a in arrays]
    for v, a in zip(variables, arrays):
        if a.shape != v.shape:
            raise ShapeError(f"{owner}: weight {v.name!r} has shape {v.shape}, got an array of shape {a.shape}.")
    for v, a in zip(variables, arrays):
        v.assign(a)


class Arena:
    """Packs variables into one flat `params` array (and `grads` when trainable).

    After construction each variable's `value` (and `grad`) is a view into the
    flat arrays, so writing a layer's gradient writes the arena.

    Args:
        variables: the Variables to pack, in arena order.
        dtype: dtype of the flat arrays (the values are cast to it).
        with_grads: whether to allocate the `grads` twin as well.
    """

    def __init__(self, variables, dtype, with_grads: bool = True) -> None:
        self.variables = list(variables)
        self.dtype = np.dtype(dtype)
        sizes = [int(v.value.size) for v in self.variables]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        total = int(self.offsets[-1])
        self.params = np.empty(total, dtype=self.dtype)
        self.grads = None
        for v, start, size in zip(self.variables, self.offsets[:-1], sizes):
            view = self.params[start:start + size].reshape(v.value.shape)
            view[...] = v.value
            v.value = view
        if with_grads:
            self.move_grads(np.zeros(total, dtype=self.dtype))

    def move_params(self, buf: np.ndarray, copy: bool = True) -> None:
        """Put the weights in `buf` and re-point every variable's `value` view there, e.g. memory a
        node shares.

        Args:
            buf: flat array of the arena's size and dtype.
            copy: whether to copy the current values into `buf` first.
        """
        self._move("params", "value", buf, copy)

    def move_grads(self, buf: np.ndarray) -> None:
        """Put the gradients in `buf` and re-point every variable's `grad` view there, e.g. so
        that backward writes into shared memory.

        Args:
            buf: flat array of the arena's size and dtype.
        """
        self._move("grads", "grad", buf, self.grads is not None)

    def _move(self, flat: str, view: str, buf: np.ndarray, copy: bool) -> None:
        """Make `buf` the arena's `flat` array ("params"/"grads") and each variable's `view` a
        reshaped slice of it; copy the old values in first when `copy`."""
        if buf.shape != (self.size,) or buf.dtype != self.dtype:
            raise ValueError(f"{flat} buffer must be ({self.size},) {self.dtype}, got {buf.shape} {buf.dtype}")
        if copy:
            buf[...] = getattr(self, flat)
        setattr(self, flat, buf)
        for v, (start, stop) in zip(self.variables, self.segments()):
            setattr(v, view, buf[start:stop].reshape(v.value.shape))

    @property
    def size(self) -> int:
        """Number of elements in the flat arrays."""
        return int(self.params.size)

    def segments(self) -> list[tuple[int, int]]:
        """(start, stop) of each variable in the flat arrays, in arena order."""
        return list(zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist()))
