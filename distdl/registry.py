"""Keras-style (de)serialization shared by initializers, regularizers and constraints
(learning-rate schedules use its `deserialize` too).

Each of those modules keeps a table of class names (and snake_case aliases) and
resolves user identifiers the same way: None, a name, a {class_name, config}
dict, an instance, a class, or a plain callable.
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import ConfigError, unknown_name

__all__ = ["serialize", "deserialize", "get"]


def serialize(obj) -> dict | None:
    """{'class_name': ..., 'config': ...} as Keras writes it (None stays None).

    Args:
        obj: an initializer, regularizer, constraint or schedule (anything with `get_config`).
    """
    if obj is None:
        return None
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(kind: str, table: dict, config: dict) -> Any:
    """Build the object a `serialize` dict describes.

    Args:
        kind: what is being built, for error messages (`initializer`, `regularizer`, ...).
        table: class name (and snake_case alias) -> class; an unknown name is refused with the
            closest names ("did you mean").
        config: `{"class_name": ..., "config": {...}}`.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ConfigError(f"A {kind} config must be a dict with 'class_name', got {config!r}.")
    name = config["class_name"]
    if name not in table:
        raise unknown_name(kind, name, table)
    try:
        return table[name].from_config(dict(config.get("config") or {}))
    except TypeError as exc:
        raise ConfigError(f"Bad config for {kind} {name!r}: {exc}.") from None


def get(kind: str, table: dict, base: type, identifier: Any, wrap_callable: Callable = lambda f: f) -> Any:
    """Resolve an identifier: None, a name, a config dict, an instance, a class or a callable.

    Args:
        kind: what is being resolved, for error messages.
        table: class name (and alias) -> class, for names and config dicts.
        base: the base class whose instances and subclasses are accepted as they are.
        identifier: what the user gave.
        wrap_callable: turns a plain function into an instance (the identity by default).
    """
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
