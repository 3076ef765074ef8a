"""Helpers for layers: initializers, regularizers and constraints as JSON-able config values,
and gradients summed over chunks of a batch."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


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
