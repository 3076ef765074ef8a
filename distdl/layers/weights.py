"""A layer's weights: creating them (Keras 3's `add_weight`), the trainable flag, and the
weight lists and arrays Keras shows. `Layer` extends `LayerWeights`; a layer keeps its
`Variable`s in `self.variables` (a recorded layer adds its tracked sublayers' there)."""
from __future__ import annotations

import math
import os

import numpy as np

from ..arena import Variable, assign_values
from ..errors import ConfigError

__all__ = ["LayerWeights"]


class LayerWeights:
    """The weight half of `Layer` (distdl.layers.base): needs `name`, `dtype`, `variables`,
    `_trainable` and `_sublayers` from it."""

    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True, autocast=True,
                   regularizer=None, constraint=None, aggregation="none", name=None, rng=None) -> Variable:
        """Create, initialise and register a weight; returns its `Variable` (Keras 3's signature:
        shape () by default, initializer glorot_uniform for floats and zeros otherwise, auto names
        `variable`, `variable_1`, ...). A shape with a negative size, or larger than the machine's
        memory (`units=10**12`), is refused before allocation.

        Args:
            shape: the weight's shape (an int for 1-D; default ()).
            initializer: an initializer name, instance or callable.
            dtype: the weight's dtype (default: the layer's).
            trainable: whether training updates it (e.g. False for moving statistics).
            autocast: Keras's mixed-precision flag, accepted for compatibility.
            regularizer: a regularizer whose penalty joins the loss.
            constraint: a constraint applied after each optimizer update.
            aggregation: Keras's distributed-aggregation mode, accepted for compatibility.
            name: the weight's name within the layer (default: variable, variable_1, ...).
            rng: the numpy Generator to initialise from (default: distdl.utils.init_rng()).
        """
        from .. import constraints, initializers, regularizers, utils
        shape = () if shape is None else (shape,) if isinstance(shape, (int, np.integer)) else shape
        dtype = str(np.dtype(dtype or self.dtype))
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype).kind == "f" else "zeros"
        if name is None:
            taken = {v.name.rsplit("/", 1)[-1] for v in self.variables}
            name = next(n for n in ("variable", *(f"variable_{i}" for i in range(1, len(taken) + 2)))
                        if n not in taken)
        if any(d is None for d in shape):
            raise ConfigError(f"Layer {self.name!r} cannot create weight {name!r} of shape {tuple(shape)}: "
                              f"every size must be known (None is not).")
        dims = tuple(int(d) for d in shape)
        nbytes = math.prod(dims) * np.dtype(self.dtype).itemsize  # Python ints: no overflow
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if min(dims, default=0) < 0 or nbytes > memory:
            raise ConfigError(f"Layer {self.name!r} cannot create weight {name!r} of shape {dims}: "
                              + ("a size is negative." if min(dims, default=0) < 0 else
                                 f"{nbytes:,} bytes exceed this machine's memory ({memory:,} bytes)."))
        init = initializers.get(initializer)
        value = np.asarray(init(dims, dtype=dtype, rng=rng or utils.init_rng()), dtype=dtype)
        var = Variable(f"{self.name}/{name}", value, trainable=trainable and self.trainable,
                       regularizer=regularizers.get(regularizer),
                       constraint=constraints.get(constraint), declared_trainable=trainable)
        self.variables.append(var)
        return var

    @property
    def trainable(self) -> bool:
        """Keras 3's flag. Setting it marks every weight the layer declared trainable (not e.g.
        BatchNormalization's moving statistics) trainable or frozen at once, as `trainable_weights`
        shows; a model's training picks the change up at its next `compile` (as Keras requires),
        which re-packs its arenas. A frozen BatchNormalization normalises in inference mode."""
        return self._trainable

    @trainable.setter
    def trainable(self, value) -> None:
        self._trainable = bool(value)
        for sub in self._sublayers:
            sub.trainable = value
        for v in self.variables:
            v.trainable = v.declared_trainable and self._trainable

    @property
    def weights(self):
        """Declared-trainable variables first, then the others (Keras order, kept when frozen)."""
        return ([v for v in self.variables if v.declared_trainable]
                + [v for v in self.variables if not v.declared_trainable])

    @property
    def trainable_weights(self):
        """The variables training updates (none while the layer is frozen)."""
        return [v for v in self.variables if v.trainable] if self._trainable else []

    @property
    def non_trainable_weights(self):
        """The variables training leaves alone (all of them while the layer is frozen)."""
        if not self._trainable:
            return self.weights
        return [v for v in self.variables if not v.trainable]

    def get_weights(self):
        """Copies of the weights' values, in `weights` order."""
        return [v.value.copy() for v in self.weights]

    def set_weights(self, arrays):
        """Assign the weights' values.

        Args:
            arrays: one array per weight, in `weights` order, each of that weight's shape.
        """
        assign_values(self.weights, arrays, f"Layer {self.name!r}")

    def count_params(self) -> int:
        """The number of scalars in the layer's weights."""
        return int(sum(v.value.size for v in self.variables))
