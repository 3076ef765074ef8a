"""`ModelWeights`, a part of `Model`: its weights, the two arenas they are packed into, and
Keras's weight API on them (`weights`, `get_weights`, `set_weights`, `count_params`, `get_layer`).

Every variable of a model's layers views one of two flat arrays (distdl.arena): the trainable
arena, which the optimizer updates and the allreduce sums, and the state arena (frozen weights,
BatchNormalization's moving statistics). Which arena a variable is in follows the layers'
`trainable` flags when the model is packed; `compile` and the saving calls re-pack a stale model.

The class is a mixin: it reads the model's `layers`, `built`, `build`, `name`, `compiled` and
`_compiled_arena`, which `Model` sets.
"""
from __future__ import annotations

import numpy as np

from ..arena import Arena, assign_values
from ..errors import ConfigError
from ..layers.base import Layer

__all__ = ["ModelWeights"]


def _arena_array(name: str, doc: str) -> property:
    """`model.params` / `model.grads`: the trainable arena's own flat array (None before build).
    In-place operations (`model.params += x`) work; rebinding it is refused, as the layers'
    weights and the optimizer view the arena wherever the update strategy put it."""
    def get(model):
        arena = model.trainable_arena
        return None if arena is None else getattr(arena, name)

    def put(model, value):
        if value is not get(model):
            raise AttributeError(f"model.{name} is the arena itself and cannot be replaced; "
                                 f"assign into it instead (model.{name}[...] = values).")
    return property(get, put, doc=doc)


class ModelWeights:
    """The weights of a `Model` (mixed into it): the packed arenas and Keras's weight methods."""

    params = _arena_array("params", "The trainable weights, flat (P,), that every weight views.")
    grads = _arena_array("grads", "The gradient arena, flat (P,), that backward writes.")

    def _maybe_build(self):
        """Build a Sequential whose input shape is known (Keras builds it eagerly too)."""
        if not self.built and getattr(self, "_pending_input", None) is not None:
            self.build()

    def _variables(self) -> list:
        """Every variable of the model's layers once, in layer order (nested models' included)."""
        seen, out = set(), []
        for layer in self.layers:
            for v in layer.variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    def _trainable_ids(self) -> set:
        """The variables the layers call trainable now (a frozen layer or model: none of its)."""
        return {id(v) for layer in self.layers for v in layer.trainable_weights}

    def _pack(self) -> None:
        """Put the trainable variables (as `trainable` says now) in the trainable arena and the
        rest in the state arena, keeping their values. A frozen weight gets a private gradient
        buffer: its layer's backward may still write one, and nothing reads it."""
        variables, train = self._variables(), self._trainable_ids()
        dtype = self.layers[-1].dtype if self.layers else "float32"
        self.trainable_arena = Arena([v for v in variables if id(v) in train], dtype)
        self.state_arena = Arena([v for v in variables if id(v) not in train], dtype, with_grads=False)
        for v in self.state_arena.variables:
            if v.declared_trainable:
                v.grad = np.zeros_like(v.value)
        self.state = self.state_arena.params
        self.regularized = [v for v in self.trainable_arena.variables if v.regularizer is not None]
        self.constrained = [v for v in self.trainable_arena.variables if v.constraint is not None]

    def _pack_stale(self) -> bool:
        """Whether the arenas no longer say what is trainable (a `trainable` set since the pack),
        or another model (one this model is nested in) packed the same weights since."""
        variables, train = self._variables(), self._trainable_ids()
        for arena, want in ((self.trainable_arena, True), (self.state_arena, False)):
            if [id(v) for v in variables if (id(v) in train) == want] != [id(v) for v in arena.variables]:
                return True
            if not all(np.may_share_memory(v.value, arena.params) for v in arena.variables):
                return True
        return False

    def _repack(self) -> None:
        """Re-pack the arenas if they are stale (values kept); `compile` does it, and so do the
        calls that map the arenas onto files, so a file always matches the flags it records."""
        if self.built and self._pack_stale():
            self._pack()

    def _check_packed(self) -> None:
        """`fit` trains the arena `compile` prepared the optimizer for; refuse a changed one."""
        if self.built and self.compiled and (self._pack_stale() or self.trainable_arena is not self._compiled_arena):
            raise ConfigError(f"The trainable weights of model {self.name!r} changed since compile() "
                              f"(a layer's trainable flag was set); call compile() again, as Keras "
                              f"requires, for the change to take effect.")

    @property
    def weights(self) -> list:
        """Every weight (Variable) of the model's layers, trainable first within each layer."""
        self._maybe_build()
        return [v for layer in self.layers for v in layer.weights]

    @property
    def trainable_weights(self) -> list:
        """The weights the optimizer updates (none of a frozen layer's)."""
        self._maybe_build()
        return [v for layer in self.layers for v in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list:
        """The weights the optimizer leaves alone: frozen layers', and statistics such as
        BatchNormalization's moving mean and variance."""
        self._maybe_build()
        return [v for layer in self.layers for v in layer.non_trainable_weights]

    def get_weights(self) -> list:
        """Copies of every weight's array, in the order of `weights`."""
        return [v.value.copy() for v in self.weights]

    def set_weights(self, arrays) -> None:
        """Set every weight's values, as `get_weights` returns them.

        Args:
            arrays: one array per weight, in the order of `weights`, each of that weight's shape.
        """
        assign_values(self.weights, arrays, f"Model {self.name!r}")

    def count_params(self) -> int:
        """The number of scalars in all the model's weights (trainable and not)."""
        self._maybe_build()
        return int(sum(layer.count_params() for layer in self.layers))

    def dtype_itemsize(self) -> int:
        """Bytes per weight scalar (4 for float32; 4 too before the model is built)."""
        return np.dtype(self.params.dtype).itemsize if self.params is not None else 4

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer of the model, by name or by position (Keras's `get_layer`).

        Args:
            name: the layer's name; used when `index` is None.
            index: the layer's position in `layers` (the Input layer first in a functional model).
        """
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ConfigError(f"No layer named {name!r}; layers are: {', '.join(l.name for l in self.layers)}.")
