"""`Sequential`: a linear stack of layers, built when its input shape is known."""
from __future__ import annotations

from ..engine.graph import Chain
from ..errors import ConfigError
from ..layers.base import Layer, SymbolicTensor, serialize, unique_name
from ..layers.core import InputLayer
from .layer_configs import layers_from_config
from .model import Model
from .nested import batchless

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers (`add` them, or pass a list), each taking the one before's output.

    Args:
        layers: the layers in order; the first may be an `Input` tensor.
        name: the model's name (default: a unique "sequential" name).
    """

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or unique_name("sequential"))
        self.layers = []
        self._pending_input = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer, a model, or an `Input` tensor as the first element. A built model is
        rebuilt with the new layer (as Keras does; weights kept, a compiled one recompiled).

        Args:
            layer: a `Layer` (a model is one), or the tensor `Input(shape=...)` returns.
        """
        if isinstance(layer, SymbolicTensor):
            layer = layer.layer
        if not isinstance(layer, Layer):
            raise ConfigError(f"Sequential.add takes a Layer, got {type(layer).__name__}.")
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ConfigError("An Input can only be the first element of a Sequential model.")
            self._pending_input = layer.declared_input_shape
            return
        if not self.layers and self._pending_input is None and layer.declared_input_shape is not None:
            self._pending_input = layer.declared_input_shape
        self.layers.append(layer)
        self._rebuild()

    def pop(self):
        """Remove and return the last layer; a built model is rebuilt without it."""
        if not self.layers:
            raise ConfigError(f"Sequential model {self.name!r} has no layers to pop.")
        layer = self.layers.pop()
        self._rebuild()
        return layer

    def _rebuild(self):
        if self.built:
            self.built = False
            if self.layers:
                self.build((None,) + tuple(self._input_shape))  # batch axis first: a None axis stays

    @property
    def declared_input_shape(self):
        """The input shape given to its first layer or Input (so it can lead another Sequential)."""
        return getattr(self, "_pending_input", None)

    @declared_input_shape.setter
    def declared_input_shape(self, value):
        pass  # a Sequential's input shape comes from its layers

    def build(self, input_shape=None) -> None:
        """Build every layer for samples of `input_shape` (a no-op once built).

        Args:
            input_shape: one sample's shape, as Keras's `(None, ...)` with the batch axis or
                distdl's without it; None takes the first layer's `input_shape` or the Input's.
        """
        if self.built:
            return
        if input_shape is not None:
            input_shape = batchless(input_shape)
        if input_shape is None and self._pending_input is None:
            raise ConfigError(f"Sequential model {self.name!r} does not know its input shape: give the first "
                              f"layer input_shape=... or add an Input.")
        shape = tuple(input_shape if input_shape is not None else self._pending_input)
        if not self.layers:
            raise ConfigError(f"Sequential model {self.name!r} has no layers.")
        self._input_shape = shape
        first = InputLayer(shape=shape, name=f"{self.name}_input", dtype=self.layers[0].dtype)
        x = inp = SymbolicTensor(first.output_shape, first, [], 0, first.dtype)
        for layer in self.layers:  # symbolic calls: build each layer and give it input/output
            x = layer(x)
            if not isinstance(x, SymbolicTensor):
                raise ConfigError(f"Layer {layer.name!r} of Sequential model {self.name!r} has "
                                  f"{len(x)} outputs; a Sequential's layers have one.")
            layer.set_node_tensors(x.inputs[0], x)
        self._ends = ([inp], [x])  # not `_inputs`: that marks a functional model
        self.executor = Chain(self.layers)
        self._finish_build()

    @property
    def inputs(self) -> list:
        """[the Input tensor its layers were built on] (Keras's `Sequential.inputs`)."""
        self._require_built("inputs")
        return list(self._ends[0])

    @property
    def outputs(self) -> list:
        """[the output tensor of its last layer] (Keras's `Sequential.outputs`)."""
        self._require_built("outputs")
        return list(self._ends[1])

    @property
    def input_shapes(self) -> list:
        """[the sample shape (no batch axis) it was built for]."""
        return [self._input_shape]

    @property
    def output_layers(self) -> list:
        """[its last layer]."""
        return [self.layers[-1]]

    @property
    def output_shapes(self) -> list:
        """[the last layer's sample output shape (no batch axis)]."""
        return [self.layers[-1].output_shape]

    def get_config(self):
        cfg = {"name": self.name, "layers": [serialize(layer) for layer in self.layers]}
        if self.built:
            cfg["input_shape"] = list(self._input_shape)
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        if custom_objects:  # users' layer classes by name (distdl.registry)
            return super().from_config(config, custom_objects)
        model = cls(layers_from_config(config["layers"]), name=config.get("name"))
        if config.get("input_shape") is not None:
            model.build((None,) + tuple(config["input_shape"]))  # distdl's shape, batch axis added
        return model
