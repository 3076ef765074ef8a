"""What makes a model a layer (Keras 3: a `Model` is a `Layer`): called on symbolic tensors or
arrays, nested in a `Sequential`, a functional or a subclassed model, shared when called twice.

A nested model runs its own executor inside the outer one's: `forward` runs it, `backward`
runs it back to its inputs (the outer graph needs that dx unless nothing upstream has weights),
and `call_state` keeps each call's caches when it is shared. Its weights are packed into the
outer model's arenas (each Variable views one arena at a time; the model that packed last owns
them, and a later `compile` of the other re-packs, see `Model._repack`). Its layers share the
outer run context, and its `trainable` flag sets every layer inside.
"""
from __future__ import annotations

from .. import backend
from ..errors import ConfigError
from ..layers.base import Layer, SymbolicTensor, _freeze

__all__ = ["batchless", "is_symbolic"]


def batchless(input_shape) -> tuple:
    """Keras 3's `build((None, 128))` includes the batch axis; distdl's shapes exclude it. A
    leading None is the batch axis; a shape without one is taken as distdl's (no batch axis).

    Args:
        input_shape: a sample shape, with or without the leading None batch axis.
    """
    shape = tuple(input_shape)
    return shape[1:] if shape and shape[0] is None else shape


class _NestedLayer(Layer):
    """The Layer side of `Model` (see the module docstring); Model supplies `layers`, `executor`,
    `_inputs`/`_outputs`, `build` and the rest."""

    activity_regularizer = None
    declared_input_shape = None
    cache = None
    need_input_grad = True

    # ----- state the outer model hands down ---------------------------------
    @property
    def ctx(self):
        return self._ctx

    @ctx.setter
    def ctx(self, value) -> None:
        self._ctx = value
        for layer in getattr(self, "layers", []):
            layer.ctx = value

    @property
    def stream_id(self) -> int:
        return getattr(self, "_stream_id", 0)

    @stream_id.setter
    def stream_id(self, value) -> None:
        """Random streams of the layers inside, apart from the calling model's own layers'
        (0, 1, ...) and from another nested model's: (value + 1) * 2**20 + their index."""
        self._stream_id = int(value)
        for j, layer in enumerate(getattr(self, "layers", [])):
            layer.stream_id = ((int(value) + 1) << 20) + j

    def select_call(self, slot: int) -> None:
        """A model called twice per step runs its layers in the caller's call slot, so each call
        keeps its own scratch buffers (layers/scratch.py's rule). Layers shared inside the nested
        model take their own slots from its graph as it runs."""
        for layer in getattr(self, "layers", []):
            layer.select_call(slot)

    @property
    def trainable(self) -> bool:
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value) -> None:
        """Sets every layer inside (Keras 3); takes effect at the next compile, as for a layer."""
        self._trainable = bool(value)
        for layer in getattr(self, "layers", []):
            layer.trainable = value

    @property
    def dtype(self) -> str:
        layers = getattr(self, "layers", [])
        return layers[-1].dtype if layers else backend.floatx()

    @property
    def variables(self) -> list:
        """Every variable inside, once, in layer order."""
        return self._variables()

    # ----- symbolic structure ---------------------------------------------------
    @property
    def inputs(self) -> list:
        """The model's input tensors (a Sequential's once it is built)."""
        self._require_built("inputs")
        return list(self._inputs)

    @property
    def outputs(self) -> list:
        self._require_built("outputs")
        return list(self._outputs)

    # ----- as a layer -------------------------------------------------------------
    def ensure_built(self, input_shape):
        """Build for samples of `input_shape` (batch axis excluded) if not built; the outputs' shapes."""
        self.input_shape = _freeze(input_shape)
        if not self.built:
            self.build(input_shape)
        self.output_shape = self.compute_output_shape(input_shape)
        return self.output_shape

    def compute_output_shape(self, input_shape):
        if _freeze(input_shape) != _freeze(self.input_shapes if len(self.input_shapes) > 1 else self.input_shapes[0]):
            raise ConfigError(f"Model {self.name!r} takes inputs of shape {self.input_shapes}, "
                              f"called on {input_shape}.")
        shapes = [tuple(s) for s in self.output_shapes]
        return shapes if len(shapes) > 1 else shapes[0]

    def forward(self, x, training=False):
        outs = self.executor.forward(list(x) if len(self.input_shapes) > 1 else [x], training)
        return outs if len(outs) > 1 else outs[0]

    def backward(self, dy):
        """Weights' gradients inside (overwritten, as every layer does) and dx of the inputs,
        unless the outer model said nobody uses it."""
        douts = list(dy) if len(self.output_shapes) > 1 else [dy]
        dxs = self.executor.backward(douts, input_grads=self.need_input_grad)
        if not self.need_input_grad:
            return None
        return dxs if len(self.input_shapes) > 1 else dxs[0]

    def call_state(self):
        """Every layer's caches and the executor's per-call ones, for a model called twice."""
        nodes = getattr(self.executor, "nodes", [])
        return ([layer.call_state() for layer in self.layers], [n.cache for n in nodes])

    def set_call_state(self, state) -> None:
        per_layer, per_node = state
        for layer, s in zip(self.layers, per_layer):
            layer.set_call_state(s)
        for n, c in zip(getattr(self.executor, "nodes", []), per_node):
            n.cache = c

    def symbolic_call(self, inputs):
        """A call on SymbolicTensors: one node of the calling graph."""
        return Layer.__call__(self, inputs)


def is_symbolic(inputs) -> bool:
    """Whether `inputs` (a tensor or a list of them) are all symbolic, so a call on them is a
    layer call in a model being defined rather than an eager forward.

    Args:
        inputs: what a model was called on.
    """
    flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return bool(flat) and all(isinstance(t, SymbolicTensor) for t in flat)
