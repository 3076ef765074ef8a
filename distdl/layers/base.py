"""The `Layer` base: weights, build, forward/backward, config, and symbolic calls.

Conventions every layer follows (shapes exclude the batch axis unless noted):
- `build(input_shape)` creates weights with `add_weight`; `compute_output_shape`
  maps input shape(s) to output shape(s).
- `forward(x, training)` returns the output and keeps what backward needs in
  `self.cache` (a small named record per layer family); `backward(dy)` returns dx
  and *overwrites* each trainable variable's `grad` (the model accumulates for
  shared layers). While a model's backward runs, `need_input_grad` is False on
  layers whose dx nobody uses (those fed only by model inputs); a layer may then
  skip dx and return None.
- Multi-input layers take and return lists; multi-output layers do too.
- Randomness and cross-rank sums come from `self.ctx` (a `RunContext` shared by
  the whole model), never from MPI directly.
- Buffers reused from step to step come from `self.scratch` (a `Scratch`), under its one
  lifetime rule: valid until the layer's next forward in the same call slot (scratch.py).
- Masks (Keras 3 semantics) are bool arrays (batch, timesteps) that travel beside
  tensors in the executors: a layer with `supports_masking` passes one on through
  `compute_mask(inputs, mask)` (any other layer drops it), `creates_mask` marks the
  sources (Embedding(mask_zero=True), Masking), and a layer with `takes_mask` gets
  it as `forward(x, training, mask=mask)` when one is present.
"""
from __future__ import annotations

import math
import os
import re

import numpy as np

from .. import backend, registry
from ..arena import Variable, assign_values
from ..errors import ConfigError
from .scratch import Scratch

_LAYER_CLASSES: dict[str, type] = {}
_NAME_COUNTS: dict[str, int] = {}


def snake_case(name: str) -> str:
    """`Conv2D` -> `conv2d`, `BatchNormalization` -> `batch_normalization` (Keras rules)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(prefix: str) -> str:
    """Keras-style auto names: dense, dense_1, dense_2, ..."""
    n = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


def reset_names() -> None:
    """Forget auto-name counters (like `keras.backend.clear_session`)."""
    _NAME_COUNTS.clear()


class RunContext:
    """Per-step facts a layer may need: seed/step/rows for randomness, a cross-rank sum.

    `row_start` is the global index (within the global batch) of this rank's first
    row and `global_rows` the global batch size, so random masks can be drawn for
    exactly this rank's slice. `sum_across_ranks(buf)` sums a float64 buffer in
    place over all ranks (identity in one process).
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.step = 0
        self.row_start = 0
        self.global_rows = 0
        self.sum_across_ranks = _identity


def _identity(buf):
    return buf


DEFAULT_CONTEXT = RunContext()


class SymbolicTensor:
    """A placeholder for a layer output in the functional API (shape excludes batch)."""

    def __init__(self, shape, layer=None, inputs=(), index=0, dtype=None, list_input=False):
        self.shape = tuple(shape)
        self.layer = layer          # producing layer (an InputLayer for model inputs)
        self.inputs = list(inputs)  # SymbolicTensors fed to `layer`
        self.index = index          # which output of a multi-output layer
        self.dtype = dtype or backend.floatx()
        self.list_input = list_input  # the layer was called with a list of tensors
        self.siblings = None          # all outputs of the same call, for multi-output layers

    def __repr__(self):
        return f"<SymbolicTensor shape=(None, {', '.join(map(str, self.shape))}) from {getattr(self.layer, 'name', None)}>"

    # Keras's operators on symbolic tensors make its merge layers (`x += y` too: a new tensor)
    def __add__(self, other):
        return _merge("Add", self, other, "+")

    def __radd__(self, other):
        return _merge("Add", other, self, "+")

    def __sub__(self, other):
        return _merge("Subtract", self, other, "-")

    def __rsub__(self, other):
        return _merge("Subtract", other, self, "-")

    def __mul__(self, other):
        return _merge("Multiply", self, other, "*")

    def __rmul__(self, other):
        return _merge("Multiply", other, self, "*")


def _merge(class_name: str, a, b, op: str) -> SymbolicTensor:
    """`a op b` on two symbolic tensors as a call of distdl's merge layer `class_name` (found by name:
    distdl.layers.merge imports this module; custom_objects never replace it)."""
    for t in (a, b):
        if not isinstance(t, SymbolicTensor):
            raise ConfigError(f"{op} on a symbolic tensor takes another symbolic tensor (a layer's "
                              f"output), got {type(t).__name__}; wrap constants in a layer.")
    return _LAYER_CLASSES[class_name](dtype=a.dtype)([a, b])


class Layer:
    """Base class for all layers (see module docstring for the contract)."""

    supports_masking = False   # passes a mask on (Keras 3's attribute of the same name)
    creates_mask = False       # compute_mask may return a mask for an unmasked input
    takes_mask = False         # forward accepts mask=(batch, timesteps) bool

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # distdl's own public classes are found by plain name; a user's class only when registered
        # (register_keras_serializable) or given in custom_objects, as in Keras 3
        if not cls.__name__.startswith("_") and registry.is_builtin(cls):
            _LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None, activity_regularizer=None, **kwargs):
        if kwargs:
            raise ConfigError(f"{type(self).__name__} got unknown argument(s): {', '.join(sorted(kwargs))}.")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = str(np.dtype(dtype or backend.floatx()))
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_dim is not None:
            input_shape = (int(input_dim),)
        self.declared_input_shape = tuple(input_shape) if input_shape is not None else None
        from .. import regularizers
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.variables: list[Variable] = []
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.cache = None
        self.ctx = DEFAULT_CONTEXT
        self.stream_id = 0
        self.scratch = Scratch()
        self.need_input_grad = True  # see the module docstring

    # ----- weights -------------------------------------------------------
    def add_weight(self, name, shape, initializer="glorot_uniform", trainable=True,
                   regularizer=None, constraint=None, rng=None) -> Variable:
        """Create, initialise and register a weight; returns its `Variable`. A shape with a negative
        size, or larger than the machine's memory (`units=10**12`), is refused before allocation."""
        from .. import constraints, initializers, regularizers, utils
        dims = tuple(int(d) for d in shape)
        nbytes = math.prod(dims) * np.dtype(self.dtype).itemsize  # Python ints: no overflow
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if min(dims, default=0) < 0 or nbytes > memory:
            raise ConfigError(f"Layer {self.name!r} cannot create weight {name!r} of shape {dims}: "
                              + ("a size is negative." if min(dims, default=0) < 0 else
                                 f"{nbytes:,} bytes exceed this machine's memory ({memory:,} bytes)."))
        init = initializers.get(initializer)
        value = np.asarray(init(tuple(shape), dtype=self.dtype, rng=rng or utils.init_rng()),
                           dtype=self.dtype)
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
        for v in self.variables:
            v.trainable = v.declared_trainable and self._trainable

    @property
    def weights(self):
        """Declared-trainable variables first, then the others (Keras order, kept when frozen)."""
        return ([v for v in self.variables if v.declared_trainable]
                + [v for v in self.variables if not v.declared_trainable])

    @property
    def trainable_weights(self):
        return [v for v in self.variables if v.trainable] if self._trainable else []

    @property
    def non_trainable_weights(self):
        if not self._trainable:
            return self.weights
        return [v for v in self.variables if not v.trainable]

    def get_weights(self):
        return [v.value.copy() for v in self.weights]

    def set_weights(self, arrays):
        assign_values(self.weights, arrays, f"Layer {self.name!r}")

    def count_params(self) -> int:
        return int(sum(v.value.size for v in self.variables))

    # ----- shapes and build ---------------------------------------------
    def build(self, input_shape):
        """Create weights for `input_shape` (batch axis excluded)."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def ensure_built(self, input_shape):
        """Build once; later calls must bring a compatible input shape."""
        if not self.built:
            self.input_shape = _freeze(input_shape)
            self.build(self.input_shape)
            self.output_shape = _freeze(self.compute_output_shape(self.input_shape))
            self.built = True
        return self.output_shape

    # ----- computation ---------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def compute_mask(self, inputs, mask):
        """The mask of this layer's output(s), given its input(s) and their mask (Keras 3's rule:
        only called when `supports_masking`; by default the input mask passes unchanged)."""
        return mask

    def select_call(self, slot: int) -> None:
        """Run the next calls in scratch call slot `slot`: a graph gives a shared layer's n-th call slot n."""
        self.scratch.select(slot)

    def call_state(self):
        """What `backward` needs from the latest call (its cache and call slot); a graph saves it
        per call of a shared layer."""
        return self.cache, self.scratch.slot

    def set_call_state(self, state) -> None:
        self.cache, slot = state
        self.scratch.select(slot)

    @property
    def input(self):
        """The input tensor(s) of the layer's first symbolic call (Keras's `layer.input`)."""
        return self._node_tensors("input")[0]

    @property
    def output(self):
        """The output tensor(s) of the layer's first symbolic call, e.g. for a feature-extraction
        model `Model(base.inputs, base.get_layer("x").output)`."""
        return self._node_tensors("output")[1]

    def _node_tensors(self, what):
        node = self.__dict__.get("_first_node")
        if node is None:
            raise ConfigError(f"Layer {self.name!r} has never been called on a symbolic tensor, "
                              f"so it has no {what} yet.")
        return node

    def set_node_tensors(self, inputs, outputs) -> None:
        """Record the tensors of a symbolic call as `input`/`output` (its first call's, or the
        call a model that rebuilds says)."""
        self.__dict__["_first_node"] = (inputs, outputs)

    def __call__(self, inputs, training=False, mask=None):
        """Symbolic call (functional API) on SymbolicTensors, else an eager forward.

        A layer whose `compute_output_shape` gives a list, tuple or dict of shapes returns that
        structure of tensors (its `forward` returns the same structure of arrays; a dict's are
        taken in key order). `mask` (batch, timesteps), eager calls only, reaches layers that take
        one (recurrent layers).
        """
        flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if flat and all(isinstance(t, SymbolicTensor) for t in flat):
            shape = [t.shape for t in flat] if isinstance(inputs, (list, tuple)) else flat[0].shape
            out_shape = self.ensure_built(shape) if not self.built else self.compute_output_shape(_freeze(shape))
            out = self._symbolic_outputs(out_shape, flat, isinstance(inputs, (list, tuple)))
            if "_first_node" not in self.__dict__:
                self.set_node_tensors(inputs, out)
            return out
        if isinstance(inputs, (list, tuple)):
            arrays = [np.asarray(a, dtype=self.dtype) for a in inputs]
            self.ensure_built([a.shape[1:] for a in arrays])
            out = self.forward(arrays, training=training)
        else:
            x = np.asarray(inputs, dtype=self.dtype)
            self.ensure_built(x.shape[1:])
            if mask is not None and self.takes_mask:
                out = self.forward(x, training=training, mask=np.asarray(mask, dtype=bool))
            else:
                out = self.forward(x, training=training)
        # a training forward may return scratch that the layer's next forward overwrites
        # (scratch.py's rule); what an eager call hands the user is the user's to keep
        return _owned(out) if training else out

    def _symbolic_outputs(self, out_shape, flat, listed):
        """The SymbolicTensor(s) of one symbolic call, in the structure of `out_shape`."""
        keys = sorted(out_shape) if isinstance(out_shape, dict) else None
        shapes = [out_shape[k] for k in keys] if keys else out_shape
        if isinstance(shapes, tuple) and shapes and isinstance(shapes[0], (tuple, list)):
            shapes = list(shapes)
            structure = tuple
        else:
            structure = dict if keys else list
        if not isinstance(shapes, list):
            return SymbolicTensor(_freeze(shapes), self, flat, 0, self.dtype, list_input=listed)
        outs = [SymbolicTensor(_freeze(s), self, flat, i, self.dtype, list_input=listed)
                for i, s in enumerate(shapes)]
        for t in outs:
            t.siblings = outs
        return dict(zip(keys, outs)) if structure is dict else structure(outs)

    # ----- config --------------------------------------------------------
    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.declared_input_shape is not None:
            cfg["input_shape"] = list(self.declared_input_shape)
        if self.activity_regularizer is not None:
            from .. import regularizers
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _freeze(shape):
    """Normalise a shape (or a list, tuple or dict of shapes) to tuples of ints."""
    if isinstance(shape, dict):
        return {k: _freeze(s) for k, s in shape.items()}
    if isinstance(shape, list):
        return [_freeze(s) for s in shape]
    if isinstance(shape, tuple) and shape and isinstance(shape[0], (tuple, list)):
        return tuple(_freeze(s) for s in shape)
    return tuple(int(d) for d in shape)


def layer_class(name: str, registered_name: str | None = None) -> type:
    """The layer class a config names: custom_objects, then registered classes, then distdl's
    built-in layers by class name (distdl.registry.resolve); anything else is refused."""
    found = registry.resolve("layer", name, _LAYER_CLASSES, registered_name)
    if not (isinstance(found, type) and issubclass(found, Layer)):
        raise ConfigError(f"Layer class {registered_name or name!r} resolves to {found!r}, which is not a "
                          "Layer subclass.")
    return found


def serialize(layer: Layer) -> dict:
    """{"class_name", "config"}, plus Keras's "module" and "registered_name" for a class that is not
    distdl's (what a file needs to name it; reading never imports that module)."""
    out = {"class_name": type(layer).__name__, "config": layer.get_config()}
    if not registry.is_builtin(type(layer)):
        out["module"] = type(layer).__module__
        out["registered_name"] = registry.get_registered_name(type(layer))
    return out


def deserialize(spec: dict) -> Layer:
    cls = layer_class(spec["class_name"], spec.get("registered_name"))
    return cls.from_config(dict(spec.get("config", {})))


def _owned(out):
    """A copy of a forward's output array(s), in the same structure (tuple, list or dict)."""
    if isinstance(out, np.ndarray):
        return out.copy()
    if isinstance(out, dict):
        return {k: _owned(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(_owned(v) for v in out)
    return out
