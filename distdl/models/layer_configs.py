"""A model config's layers turned into layers, each refusal naming the layer's place and name in
the config: `layer 2 ('dense_1'): Unknown activation 'relu2'; ...`, so that a file's reader (a
checkpoint, a `.keras` archive, a JSON config) can say which of its layers is at fault."""
from __future__ import annotations

from ..errors import ConfigError
from ..layers.base import Layer, deserialize

__all__ = ["layers_from_config"]


def layers_from_config(specs) -> list[Layer]:
    """The layers of a model config's `layers` list, in order.

    Args:
        specs: Keras's per-layer `{"class_name", "config", ...}` dicts.
    """
    if not isinstance(specs, list):
        raise ConfigError(f"A model config's 'layers' must be a list, got {type(specs).__name__}.")
    out = []
    for i, spec in enumerate(specs):
        config = spec.get("config") if isinstance(spec, dict) else None
        name = config.get("name") if isinstance(config, dict) else None
        try:
            out.append(deserialize(spec))
        except ConfigError as e:
            raise ConfigError(f"layer {i}{f' ({name!r})' if isinstance(name, str) else ''}: {e}") from None
    return out
