"""Keras-style (de)serialization shared by initializers, regularizers and constraints
(learning-rate schedules use its `deserialize` too).

Each of those modules keeps a table of class names (and snake_case aliases) and
resolves user identifiers the same way: None, a name, a {class_name, config}
dict, an instance, a class, or a plain callable.
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import ConfigError, unknown_name


def serialize(obj) -> dict | None:
    """{'class_name': ..., 'config': ...} as Keras writes it (None stays None)."""
    if obj is None:
        return None
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(kind: str, table: dict, config: dict):
    """Build the object a `serialize` dict describes; `kind` names it in errors."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ConfigError(f"A {kind} config must be a dict with 'class_name', got {config!r}.")
    name = config["class_name"]
    if name not in table:
        raise unknown_name(kind, name, table)
    try:
        return table[name].from_config(dict(config.get("config") or {}))
    except TypeError as exc:
        raise ConfigError(f"Bad config for {kind} {name!r}: {exc}.") from None


def get(kind: str, table: dict, base: type, identifier: Any, wrap_callable: Callable = lambda f: f):
    """Resolve an identifier: None, a name, a config dict, an instance, a class or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return deserialize(kind, table, {"class_name": identifier, "config": {}})
    if isinstance(identifier, dict):
        return deserialize(kind, table, identifier)
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    if callable(identifier):
        return wrap_callable(identifier)
    raise ConfigError(f"Could not interpret {kind} identifier {identifier!r}.")
