"""`Lambda`: a function of the inputs as a layer, as Keras's (differentiated by recording).

The function is written with distdl.ops (or Python's operators) and gets the input tensor(s),
plus `arguments` as keywords. A file never holds its code: the config names the function, and
loading finds it only among registered objects or the `custom_objects` given to `load_model`
(distdl.registry), so nothing from a file runs.
"""
from __future__ import annotations

from .. import registry
from ..errors import ConfigError
from . import recorded_shapes
from .base import Layer

__all__ = ["Lambda"]


class Lambda(Layer):
    """Wraps `function(inputs, **arguments)` as a layer.

    Args:
        function: a callable written with distdl.ops; its gradient is recorded.
        output_shape: the output shape without the batch axis, or a callable of the Keras
            input shape (batch axis first); None: found by calling the function once.
        mask: unused (Keras's argument; a Lambda passes no mask on).
        arguments: keyword arguments for `function`.
        **kwargs: the base `Layer` arguments.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(function, str):  # from a config: only a registered or supplied function
            function = registry.get_registered_object(function) or function
        if not callable(function):
            raise ConfigError(f"Lambda layer {self.name!r} needs a function, got {type(function).__name__} "
                              f"{function!r}; a function saved by name must be registered "
                              f"(distdl.saving.register_keras_serializable) or passed in custom_objects.")
        self.function = function
        self.arguments = dict(arguments or {})
        self.given_output_shape = output_shape

    def call(self, inputs):
        """`function(inputs, **arguments)`.

        Args:
            inputs: the input tensor(s).
        """
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        """Keras's rule: a tuple is the shape without the batch axis, a callable gets the Keras
        input shape; without either, the function's output on a small batch says.

        Args:
            input_shape: the input shape(s), batch axis excluded.
        """
        given = self.given_output_shape
        if callable(given):
            return given(input_shape)
        if given is not None:
            return (None,) + tuple(given)
        shape = [tuple(s)[1:] for s in input_shape] if isinstance(input_shape, list) else tuple(input_shape)[1:]
        return _with_batch(recorded_shapes.symbolic_shape(self, recorded_shapes.infer_output_shape(self, shape)))

    def get_config(self) -> dict:
        name = registry.get_registered_name(self.function) or ""
        if not name or name == "<lambda>":
            raise ConfigError(f"Lambda layer {self.name!r} wraps an anonymous function, which distdl does not save "
                              f"as code; use a named function registered with "
                              f"distdl.saving.register_keras_serializable, or a Layer subclass.")
        cfg = super().get_config()
        cfg.update(function=name, arguments=self.arguments,
                   output_shape=None if callable(self.given_output_shape) or self.given_output_shape is None
                   else list(self.given_output_shape))
        return cfg


def _with_batch(shape):
    """A distdl shape (or a list or tuple of them) with Keras's batch axis put first."""
    if shape and isinstance(shape[0], (list, tuple)):
        return type(shape)(_with_batch(s) for s in shape)
    return (None,) + tuple(shape)
