"""`Sequential`: a linear stack of layers, built when its input shape is known."""
from __future__ import annotations

from ..engine.graph import Chain
from ..errors import ConfigError
from ..layers.base import Layer, SymbolicTensor, deserialize, serialize, unique_name
from ..layers.core import InputLayer
from .model import Model


class Sequential(Model):
    """A linear stack of layers (`add` them, or pass a list)."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or unique_name("sequential"))
        self.layers = []
        self._pending_input = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or an `Input` tensor as the first element)."""
        if self.built:
            raise ConfigError(f"Sequential model {self.name!r} is already built; add layers before "
                              f"compiling or training it.")
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

    def pop(self):
        if self.built:
            raise ConfigError("Cannot pop layers from a built Sequential model.")
        return self.layers.pop()

    def build(self, input_shape=None):
        """Build every layer for samples of `input_shape` (batch axis excluded)."""
        if self.built:
            return
        if input_shape is None and self._pending_input is None:
            raise ConfigError(f"Sequential model {self.name!r} does not know its input shape: give the first "
                              f"layer input_shape=... or add an Input.")
        shape = tuple(input_shape if input_shape is not None else self._pending_input)
        if not self.layers:
            raise ConfigError(f"Sequential model {self.name!r} has no layers.")
        self._input_shape = shape
        for layer in self.layers:
            shape = layer.ensure_built(shape)
        self.executor = Chain(self.layers)
        self._finish_build()

    @property
    def input_shapes(self):
        return [self._input_shape]

    @property
    def output_layers(self):
        return [self.layers[-1]]

    @property
    def output_shapes(self):
        return [self.layers[-1].output_shape]

    def get_config(self):
        cfg = {"name": self.name, "layers": [serialize(layer) for layer in self.layers]}
        if self.built:
            cfg["input_shape"] = list(self._input_shape)
        return cfg

    @classmethod
    def from_config(cls, config: dict):
        model = cls([deserialize(spec) for spec in config["layers"]], name=config.get("name"))
        if config.get("input_shape") is not None:
            model.build(tuple(config["input_shape"]))
        return model
