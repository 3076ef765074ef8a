"""The `Layer` base: weights, build, forward/backward, config, and symbolic calls.

Conventions (shapes exclude the batch axis unless noted): `build(input_shape)` creates weights with
`add_weight`; `compute_output_shape` maps input shape(s) to output shape(s). `forward(x, training)`
returns the output and keeps what backward needs in `self.cache`; `backward(dy)` returns dx and
*overwrites* each trainable variable's `grad` (the model accumulates for shared layers); where
`need_input_grad` is False (a layer fed only by model inputs) it may skip dx and return None.
Multi-input/-output layers take/return lists. Randomness and cross-rank sums come from `self.ctx`
(a `RunContext` shared by the model), never MPI; reused buffers from `self.scratch` (valid until the
layer's next forward in the same call slot, scratch.py). Masks (Keras 3) are bool (batch, timesteps)
arrays beside tensors: `supports_masking` passes one on via `compute_mask(inputs, mask)` (others drop
it), `creates_mask` marks sources (Embedding(mask_zero=True), Masking), `takes_mask` gets `mask=`.
"""
from __future__ import annotations

import numpy as np

from .. import backend, registry
from ..autodiff import Tensor, current_tape
from ..errors import ConfigError
from . import inner_calls, recorded, recorded_shapes
from .layer_utils import unknown_arguments
from .context import DEFAULT_CONTEXT, RunContext, reset_names, snake_case, unique_name  # noqa: F401
from .scratch import Scratch
from .weights import LayerWeights

__all__ = ["SymbolicTensor", "Layer", "layer_class", "serialize", "deserialize"]
_LAYER_CLASSES: dict[str, type] = {}


class SymbolicTensor:
    """A layer output in the functional API (`batched = False`: an op reduced the batch axis away). Args:
        shape: the tensor's shape, batch axis excluded.
        layer: the layer that produced it (an InputLayer for a model input).
        inputs: the SymbolicTensors fed to `layer`.
        index: which output of a multi-output layer this is.
        dtype: the element dtype (default: backend.floatx()).
        list_input: whether `layer` was called with a list of tensors."""

    batched = True

    def __init__(self, shape, layer=None, inputs=(), index=0, dtype=None, list_input=False):
        self.shape = tuple(shape)
        self.layer, self.inputs, self.index = layer, list(inputs), index
        self.dtype = dtype or backend.floatx()
        self.list_input = list_input
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

    def __truediv__(self, other):
        return _op("divide", self, other)

    def __rtruediv__(self, other):
        return _op("divide", other, self)

    def __pow__(self, other):
        return _op("power", self, other)

    def __rpow__(self, other):
        return _op("power", other, self)

    def __matmul__(self, other):
        return _op("matmul", self, other)

    def __rmatmul__(self, other):
        return _op("matmul", other, self)

    def __neg__(self):
        return _op("negative", self)

    def __abs__(self):
        return _op("absolute", self)

    def __getitem__(self, key):
        return _op("getitem", self, key)


def _merge(class_name: str, a, b, op: str) -> SymbolicTensor:
    """`a op b`: on two batched symbolic tensors the merge layer `class_name` (as Keras builds `x + y`),
    else an op node; both distdl's own by class name (custom_objects never replace them)."""
    if isinstance(a, SymbolicTensor) and isinstance(b, SymbolicTensor) and a.batched and b.batched:
        return _LAYER_CLASSES[class_name](dtype=a.dtype)([a, b])
    return _op({"Add": "add", "Subtract": "subtract", "Multiply": "multiply"}[class_name], a, b)


def _op(name: str, *args):
    return _LAYER_CLASSES["TensorOp"].symbolic_call(name, args, {})


class Layer(LayerWeights):
    """Base class for all layers (see module docstring for the contract). A subclass that
    defines `call` instead of `forward`/`backward` is recorded (layers/recorded.py). Args:
        name: the layer's name (default: a unique snake_case name from the class name).
        trainable: whether its weights are updated by training.
        dtype: the dtype of its weights and computations (default: backend.floatx()).
        input_shape: the input shape, batch axis excluded (builds the layer in a Sequential).
        input_dim: shorthand for `input_shape=(input_dim,)`.
        batch_input_shape: the input shape with the batch axis first (that axis is dropped).
        activity_regularizer: a regularizer applied to the layer's output."""

    supports_masking = False   # passes a mask on (Keras 3's attribute of the same name)
    creates_mask = False       # compute_mask may return a mask for an unmasked input
    takes_mask = False         # forward accepts mask=(batch, timesteps) bool
    _is_layer = True
    _recorded = False          # `call` over distdl.ops, differentiated by recording
    _sublayers = ()            # a recorded layer's tracked sublayers
    _cast_outputs = True       # a recorded layer's float outputs come in its dtype
    added_loss = 0.0           # what add_loss added in the latest call (weighted; recorded.py)
    losses = ()                # the add_loss values of the latest call (Keras's `layer.losses`)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # distdl's own public classes are found by plain name; a user's class only when registered
        # (register_keras_serializable) or given in custom_objects, as in Keras 3
        if not cls.__name__.startswith("_") and registry.is_builtin(cls):
            _LAYER_CLASSES[cls.__name__] = cls
        cls._recorded = callable(getattr(cls, "call", None)) and cls.forward is Layer.forward
        if cls._recorded:
            cls._call_params = recorded.call_parameters(cls)
            cls._own_build = cls.build is not Layer.build
            cls._own_output_shape = cls.compute_output_shape is not Layer.compute_output_shape
            cls.takes_mask = cls.takes_mask or "mask" in cls._call_params

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None, activity_regularizer=None, **kwargs):
        if kwargs:
            raise unknown_arguments(type(self), kwargs)
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
        self.variables: list = []  # this layer's Variables (layers/weights.py)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.cache = None
        self.ctx = DEFAULT_CONTEXT
        self.stream_id = 0
        self.scratch = Scratch()
        self.need_input_grad = True  # see the module docstring

    # ----- shapes and build ---------------------------------------------
    def build(self, input_shape):
        """Create weights. Args:
            input_shape: the input shape(s), batch axis excluded."""

    def compute_output_shape(self, input_shape):
        """The output shape(s), batch axis excluded. Args:
            input_shape: the input shape(s), batch axis excluded."""
        return input_shape

    def ensure_built(self, input_shape):
        """Build once and return the output shape. Args:
            input_shape: the input shape(s), batch axis excluded."""
        if not self.built:
            self.input_shape = _freeze(input_shape)
            if self._recorded:
                self.output_shape = _freeze(recorded_shapes.build(self, self.input_shape))
            else:
                self.build(self.input_shape)
                self.output_shape = _freeze(self.compute_output_shape(self.input_shape))
            self.built = True
        return self.output_shape

    # ----- computation ---------------------------------------------------
    def forward(self, x, training=False, mask=None):
        """The output for `x`; a layer with `call` runs it
        (recorded when training). Args:
            x: the input array (batch first), or a list of arrays for a multi-input layer.
            xs: (merge layers' name for x) the list of input arrays.
            training: whether this is a training call (dropout, batch statistics).
            mask: a (batch, timesteps) bool mask, for layers that take one."""
        if not self._recorded:
            raise ConfigError(f"Layer {self.name!r} ({type(self).__name__}) defines neither call(inputs) "
                              f"nor forward(x, training); define call, as in Keras.")
        return recorded.forward(self, x, training, mask)

    def backward(self, dy):
        """dx for the output gradient; a layer with `call` runs its recording back. Args:
            dy: the gradient of the loss with respect to the latest forward's output."""
        if not self._recorded:
            raise ConfigError(f"Layer {self.name!r} ({type(self).__name__}) has a forward but no backward; "
                              f"define call(inputs) with distdl.ops instead, and the gradient is recorded.")
        return recorded.backward(self, dy)

    def add_loss(self, loss) -> None:
        """Keras's `add_loss`, from inside `call` (how N ranks weigh it: layers/recorded.py). Args:
            loss: a tensor added to the training loss (summed if not a scalar)."""
        recorded.add_loss(self, loss)

    def compute_mask(self, inputs, mask):
        """The output mask (Keras 3: only called when
        `supports_masking`; default: unchanged). Args:
            inputs: the layer's input(s).
            mask: their (batch, timesteps) bool mask, or None."""
        return mask

    def select_call(self, slot: int) -> None:
        """Run the next calls in a scratch call slot. Args:
            slot: the slot; a graph gives a shared layer's n-th call slot n."""
        self.scratch.select(slot)

    def call_state(self):
        """What `backward` needs from the latest call (cache, call slot); saved per shared-layer call."""
        return self.cache, self.scratch.slot

    def set_call_state(self, state) -> None:
        """Restore a call's state before its backward. Args:
            state: what `call_state` returned."""
        self.cache, slot = state
        self.scratch.select(slot)

    @property
    def input(self):
        """The input tensor(s) of the layer's first symbolic call (Keras's `layer.input`)."""
        return self._node_tensors("input")[0]

    @property
    def output(self):
        """The output tensor(s) of the layer's first symbolic call (Keras's `layer.output`)."""
        return self._node_tensors("output")[1]

    def _node_tensors(self, what):
        node = self.__dict__.get("_first_node")
        if node is None:
            raise ConfigError(f"Layer {self.name!r} has never been called on a symbolic tensor, "
                              f"so it has no {what} yet.")
        return node

    def set_node_tensors(self, inputs, outputs) -> None:
        """Record a symbolic call's tensors as `input`/`output`
        (its first call's, or a rebuild's). Args:
            inputs: the call's input tensor(s).
            outputs: its output tensor(s)."""
        self.__dict__["_first_node"] = (inputs, outputs)

    def __call__(self, inputs, training=None, mask=None):
        """Symbolic call (functional API) on SymbolicTensors, else an eager forward. A list, tuple or
        dict (key order) of output shapes gives that structure of tensors (and of forward's arrays);
        `mask` (batch, timesteps), eager calls only, reaches layers that take one."""
        flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if flat and all(isinstance(t, SymbolicTensor) for t in flat):
            if not all(t.batched for t in flat):
                raise ConfigError(f"Layer {self.name!r} was called on a tensor without the batch axis "
                                  f"(an op reduced it away); only ops and add_loss take such tensors.")
            self._input_dtypes = [t.dtype for t in flat]
            shape = [t.shape for t in flat] if isinstance(inputs, (list, tuple)) else flat[0].shape
            if self._recorded:
                out_shape = recorded_shapes.symbolic_shape(self, self.ensure_built(shape) if not self.built else
                                                    recorded_shapes.output_shape_for(self, _freeze(shape)))
            else:
                out_shape = self.ensure_built(shape) if not self.built else self.compute_output_shape(_freeze(shape))
            out = self._symbolic_outputs(out_shape, flat, isinstance(inputs, (list, tuple)))
            if "_first_node" not in self.__dict__:
                self.set_node_tensors(inputs, out)
            return out
        if current_tape() is not None or any(isinstance(t, Tensor) for t in flat):
            return inner_calls.call_on_tensors(self, inputs, training, mask)
        training = bool(training)
        if isinstance(inputs, (list, tuple)):
            arrays = [self._eager_input(a) for a in inputs]
            self._input_dtypes = [a.dtype for a in arrays]
            self.ensure_built([a.shape[1:] for a in arrays])
            out = self.forward(arrays, training=training)
        else:
            x = self._eager_input(inputs)
            self._input_dtypes = [x.dtype]
            self.ensure_built(x.shape[1:])
            if mask is not None and self.takes_mask:
                out = self.forward(x, training=training, mask=np.asarray(mask, dtype=bool))
            else:
                out = self.forward(x, training=training)
        # a training forward may return scratch that the layer's next forward overwrites
        # (scratch.py's rule); what an eager call hands the user is the user's to keep
        return _owned(out) if training else out

    def _eager_input(self, a) -> np.ndarray:
        """An eager input in the layer's dtype; a recorded layer keeps integers (ids, as Keras)."""
        a = np.asarray(a)
        if self._recorded and a.dtype.kind in "iub":
            return a
        return a.astype(self.dtype, copy=False)

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
        """The constructor arguments that rebuild this layer (Keras's `get_config`)."""
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.declared_input_shape is not None:
            cfg["input_shape"] = list(self.declared_input_shape)
        if self.activity_regularizer is not None:
            from .. import regularizers
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        """A new layer from `get_config`'s dict. Args:
            config: the constructor arguments."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _freeze(shape):
    """A shape (or list, tuple or dict of shapes) as tuples of ints; None (variable) stays None."""
    if isinstance(shape, dict):
        return {k: _freeze(s) for k, s in shape.items()}
    if isinstance(shape, list):
        return [_freeze(s) for s in shape]
    if isinstance(shape, tuple) and shape and isinstance(shape[0], (tuple, list)):
        return tuple(_freeze(s) for s in shape)
    return tuple(None if d is None else int(d) for d in shape)


def layer_class(name: str, registered_name: str | None = None) -> type:
    """The layer class a config names: custom_objects, then registered classes, then distdl's
    built-in layers by class name (distdl.registry.resolve); anything else is refused. Args:
        name: the config's "class_name".
        registered_name: its "registered_name", if any."""
    found = registry.resolve("layer", name, _LAYER_CLASSES, registered_name)
    if not (isinstance(found, type) and issubclass(found, Layer)):
        raise ConfigError(f"Layer class {registered_name or name!r} resolves to {found!r}, which is not a "
                          "Layer subclass.")
    return found


def serialize(layer: Layer) -> dict:
    """{"class_name", "config"}, plus Keras's "module" and "registered_name" for a non-distdl class
    (reading never imports that module). Args:
        layer: the layer to describe."""
    out = {"class_name": type(layer).__name__, "config": layer.get_config()}
    if not registry.is_builtin(type(layer)):
        out["module"] = type(layer).__module__
        out["registered_name"] = registry.get_registered_name(type(layer))
    return out


def deserialize(spec: dict) -> Layer:
    """The layer `serialize` described. Args:
        spec: {"class_name", "config"} and optionally "registered_name"."""
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
