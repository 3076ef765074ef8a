"""Helpers for layers: initializers, regularizers and constraints as JSON-able config values,
gradients summed over chunks of a batch, and the sizes of variable (None) axes."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..errors import ShapeError


def serialize_component(module: ModuleType, obj: Any) -> Any:
    """Keras's {class_name, config} for a name, dict or object of `module`; a user callable is kept as is."""
    if obj is None:
        return None
    resolved = module.get(obj) if isinstance(obj, (str, dict)) else obj
    if hasattr(resolved, "get_config"):
        return module.serialize(resolved)
    return obj


def matmul_sum(a, b, total: np.ndarray, part: np.ndarray | None, first: bool) -> None:
    """total = a @ b for a batch's first chunk, total += a @ b for the others (`part`, shaped
    like total, takes the product): a weight gradient summed chunk by chunk."""
    np.matmul(a, b, out=total if first else part)
    if not first:
        total += part


def fixed_size(layer, input_shape, axis: int, what: str) -> int:
    """`input_shape[axis]` as an int, for a weight of `layer` sized by it. A None (variable) axis
    cannot size a weight, so it is refused with one sentence naming the layer and the shape, as
    Keras refuses e.g. Dense on inputs whose last axis is None."""
    size = tuple(input_shape)[axis]
    if size is None:
        shown = ", ".join(str(d) for d in (None,) + tuple(input_shape))
        raise ShapeError(f"{type(layer).__name__} layer {layer.name!r} cannot be built on input shape "
                         f"({shown}): its weights are sized by the {what}, which must be fixed, not None.")
    return int(size)


def sized(length, size):
    """`size(length)` for a known axis length; a None (variable) axis stays None."""
    return None if length is None else size(length)
