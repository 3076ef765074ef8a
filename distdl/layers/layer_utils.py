"""Helpers for layer configs: initializers, regularizers and constraints as JSON-able values."""
from __future__ import annotations

from types import ModuleType
from typing import Any


def serialize_component(module: ModuleType, obj: Any) -> Any:
    """`module.serialize(obj)` for the module's own objects; a user callable is kept as is."""
    if obj is None:
        return None
    if hasattr(obj, "get_config"):
        return module.serialize(obj)
    return obj
