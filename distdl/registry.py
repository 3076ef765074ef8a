"""Keras-style (de)serialization: the custom-object registry, `custom_object_scope`, and the
shared lookup that initializers, regularizers, constraints, schedules, layers, losses, metrics and
activations use to turn a name from a config into a class or function.

A name resolves as Keras 3 resolves it (`keras.saving`): first the objects of the active
`custom_object_scope` (what `load_model(..., custom_objects=...)` opens), then the objects
registered with `register_keras_serializable` (by their `"package>name"` key), then distdl's
built-ins (by plain class name; a user's class is never found by its plain name). Nothing is
imported or executed from a name: a name that none of the three knows is refused.

Each module keeps a table of its built-in class names (and snake_case aliases) and resolves user
identifiers the same way: None, a name, a {class_name, config} dict, an instance, a class, or a
plain callable.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .errors import ConfigError, did_you_mean, unknown_name

__all__ = ["serialize", "deserialize", "get", "register_keras_serializable", "get_registered_name",
           "get_registered_object", "get_custom_objects", "CustomObjectScope", "custom_object_scope",
           "resolve", "not_found", "is_builtin", "REGISTER_HINT"]

_REGISTERED: dict[str, Any] = {}   # "package>name" -> class or function (Keras's GLOBAL_CUSTOM_OBJECTS)
_NAMES: dict[Any, str] = {}        # class or function -> "package>name" (Keras's GLOBAL_CUSTOM_NAMES)
_SCOPES: list[dict] = []           # the open custom_object_scope dicts, innermost last

REGISTER_HINT = ("make sure custom classes are decorated with `@keras.saving.register_keras_serializable()` "
                 "(distdl.saving.register_keras_serializable) or passed in custom_objects")


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable:
    """Decorator: register a class or function under `"package>name"` (name: its `__name__` by
    default), so that configs naming it deserialize without `custom_objects` (Keras 3's rule;
    registering the same key again replaces the earlier object). A class needs `get_config`.

    Args:
        package: the first half of the key.
        name: the second half; the decorated object's `__name__` when None.
    """
    def decorator(obj):
        key = f"{package}>{name if name is not None else obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ConfigError(f"Cannot register class {obj.__name__!r} as {key!r}: it has no get_config() "
                              "method, so it could not be saved.")
        _REGISTERED[key] = obj
        _NAMES[obj] = key
        return obj
    return decorator


def get_registered_name(obj) -> str:
    """The key `obj` was registered under, else its `__name__` (Keras 3).

    Args:
        obj: a class or function.
    """
    return _NAMES.get(obj, getattr(obj, "__name__", None))


def get_registered_object(name: str, custom_objects: dict | None = None, module_objects: dict | None = None):
    """The object `name` stands for, or None: the open custom_object_scope first, then the
    registry, then `custom_objects`, then `module_objects` (Keras 3's order).

    Args:
        name: a "package>name" key or a custom_objects key.
        custom_objects: {name: object} to look in after the registry.
        module_objects: {name: object} to look in last.
    """
    for table in (*reversed(_SCOPES), _REGISTERED, custom_objects or {}, module_objects or {}):
        if name in table:
            return table[name]
    return None


def get_custom_objects() -> dict:
    """The live registry dict, "package>name" -> object (what `register_keras_serializable` fills)."""
    return _REGISTERED


class CustomObjectScope:
    """`with custom_object_scope({"MyLayer": MyLayer}):` makes those names deserializable inside
    the block (`from_config`, `model_from_json`, `load_model`, compile's string losses and
    metrics); the keys may be plain class names or "package>name" keys. Scopes nest.

    Args:
        custom_objects: {name: class or function}; None is an empty scope.
    """

    def __init__(self, custom_objects: dict | None = None):
        if custom_objects is not None and not isinstance(custom_objects, dict):
            raise ConfigError(f"custom_objects must be a dict of name -> class or function, "
                              f"got {type(custom_objects).__name__}.")
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self):
        _SCOPES.append(self.custom_objects)
        return self

    def __exit__(self, *exc):
        for i in range(len(_SCOPES) - 1, -1, -1):
            if _SCOPES[i] is self.custom_objects:
                del _SCOPES[i]
                break
        return False


custom_object_scope = CustomObjectScope


def is_builtin(obj) -> bool:
    """Whether a class or function is distdl's own (its module is in the distdl package).

    Args:
        obj: a class or function.
    """
    return str(getattr(obj, "__module__", "") or "").startswith("distdl.")


def resolve(kind: str, class_name: Any, builtins: dict, registered_name: Any = None):
    """The class or function a config names, looked up as the module docstring says.

    Args:
        kind: what is looked up, for the refusal (`layer`, `loss`, ...).
        class_name: the config's `class_name` (or the name the user wrote).
        builtins: distdl's own names -> classes (or functions) of this kind.
        registered_name: the config's `registered_name` ("package>name"), if any. A name that is
            not the class name is looked up in custom_objects and the registry only: a file that
            names a user's class never silently gets a built-in one of the same class name.
    """
    for key in (registered_name, class_name):
        if isinstance(key, str):
            for table in (*reversed(_SCOPES), _REGISTERED):
                if key in table:
                    return table[key]
    custom = registered_name not in (None, class_name)
    if not custom and isinstance(class_name, str) and class_name in builtins:
        return builtins[class_name]
    raise not_found(kind, registered_name if custom else class_name, builtins, custom)


def not_found(kind: str, name: Any, builtins, custom: bool = False) -> ConfigError:
    """The refusal of a name found nowhere: a misspelt built-in name gets "did you mean", any other
    name the sentence saying how to register a custom class.

    Args:
        kind: what was looked up (`layer`, `loss`, ...).
        name: the name (a registered name "package>name" when `custom`).
        builtins: distdl's own names of this kind, for the suggestion.
        custom: the name came from a config's `registered_name`, so it is a user's class.
    """
    if not custom and did_you_mean(name, builtins):
        return unknown_name(kind, name, builtins)
    valid = "" if custom else f" (valid names are: {', '.join(sorted(map(str, builtins)))})"
    return ConfigError(f"Unknown {kind} {name!r}: it is not built into distdl{valid}, registered with "
                       f"register_keras_serializable, or given in custom_objects: {REGISTER_HINT}.")


def serialize(obj) -> dict | None:
    """{'class_name': ..., 'config': ...} as Keras writes it (None stays None); a class that is not
    distdl's adds its `registered_name` ("package>name", or its class name when unregistered).

    Args:
        obj: an initializer, regularizer, constraint or schedule (anything with `get_config`).
    """
    if obj is None:
        return None
    out = {"class_name": type(obj).__name__, "config": obj.get_config()}
    if not is_builtin(type(obj)):
        out["registered_name"] = get_registered_name(type(obj))
    return out


def deserialize(kind: str, table: dict, config: dict) -> Any:
    """Build the object a `serialize` dict describes (a registered function comes back as itself).

    Args:
        kind: what is being built, for error messages (`initializer`, `regularizer`, ...).
        table: built-in class name (and snake_case alias) -> class; a name found nowhere is refused
            (`resolve`).
        config: `{"class_name": ..., "config": {...}}`, optionally with `registered_name`.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ConfigError(f"A {kind} config must be a dict with 'class_name', got {config!r}.")
    name = config["class_name"]
    found = resolve(kind, name, table, config.get("registered_name"))
    if not inspect.isclass(found):
        return found
    try:
        return found.from_config(dict(config.get("config") or {}))
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
        identifier = deserialize(kind, table, {"class_name": identifier, "config": {}})
    elif isinstance(identifier, dict):
        identifier = deserialize(kind, table, identifier)
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    if callable(identifier):
        return wrap_callable(identifier)
    raise ConfigError(f"Could not interpret {kind} identifier {identifier!r}.")
