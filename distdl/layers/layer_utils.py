"""Helpers for layer configs: initializers, regularizers and constraints as JSON-able values."""
from __future__ import annotations

from types import ModuleType
from typing import Any


def serialize_component(module: ModuleType, obj: Any) -> Any:
    """Keras's {class_name, config} for a name, dict or object of `module`; a user callable is kept as is."""
    if obj is None:
        return None
    resolved = module.get(obj) if isinstance(obj, (str, dict)) else obj
    if hasattr(resolved, "get_config"):
        return module.serialize(resolved)
    return obj
