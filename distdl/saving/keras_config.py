"""Keras 3 `config.json` objects <-> distdl configs, one layer (or optimizer, loss, metric) at a time.

Keras 3 writes every object as `{"module", "class_name", "config", "registered_name"}` (built layers
add `"build_config"`); distdl's configs are `{"class_name", "config"}` with the same keys for its
built-in layers. What differs, and is translated here both ways: the `module` and `registered_name`
of nested initializers, regularizers, constraints and wrapped layers, `dtype` as a `DTypePolicy`
dict, Keras-only options that distdl treats as their defaults (`quantization_config`, `renorm`,
...), and BatchNormalization's `synchronized` (Keras refuses `True` outside TensorFlow; distdl
always uses the global batch's statistics when reading an archive, what Keras computes in one
process or under JAX).

A user's class (a custom layer, or a registered initializer, loss, ...) is written as Keras writes
it: its own `module` and its `registered_name` ("package>name"). Reading never runs code from the
archive: `refuse_code` rejects the whole tree if any object names a `lambda`, or a module outside
Keras or a registered name that neither `custom_objects` nor `register_keras_serializable` supplies
(distdl.registry); only those and the classes built into distdl are made.
"""
from __future__ import annotations

import json

from .. import constraints, initializers, registry, regularizers
from ..errors import CheckpointError, DistdlError
from ..layers.base import deserialize, layer_class

__all__ = ["keras_object", "dtype_policy", "dims", "batch_shape", "layer_to_keras", "object_to_keras",
           "nested_to_keras", "refuse_code", "layer_from_keras", "strip_object", "nested_from_keras"]

# suffix of a config key -> Keras module of the object it holds, and distdl's registry of them
_NESTED_MODULES = (("_initializer", "keras.initializers"), ("_regularizer", "keras.regularizers"),
                   ("_constraint", "keras.constraints"))
_NESTED_REGISTRIES = {"_initializer": initializers, "_regularizer": regularizers, "_constraint": constraints}
_WRAPPED = ("layer", "backward_layer")
# Keras-only layer options distdl does not take: accepted at these values, which are distdl's behaviour
_INERT = {"quantization_config": None, "lora_rank": None, "lora_alpha": None, "renorm": False,
          "renorm_clipping": None, "sparse": False, "ragged": False, "optional": False}
_IGNORED = ("renorm_momentum",)  # meaningless while renorm is False


def keras_object(module: str, class_name: str, config, registered_name: str | None = None) -> dict:
    """Keras 3's serialized form of one object.

    Args:
        module: its Keras module, e.g. "keras.layers".
        class_name: its class name.
        config: its config.
        registered_name: the registered name of a custom object, or None.
    """
    return {"module": module, "class_name": class_name, "config": config, "registered_name": registered_name}


def dtype_policy(name: str) -> dict:
    """Keras 3's serialized DTypePolicy, which layer configs hold as their `dtype`.

    Args:
        name: the dtype's name, e.g. "float32".
    """
    return keras_object("keras", "DTypePolicy", {"name": name})


def dims(shape) -> list:
    """A shape's sizes as ints, a None (variable) axis kept as None (JSON null).

    Args:
        shape: a shape (a tuple or list of ints and Nones).
    """
    return [None if d is None else int(d) for d in shape]


def batch_shape(shape) -> list:
    """A distdl shape (batch axis excluded) as Keras's [None, ...]; variable axes stay None.

    Args:
        shape: a distdl sample shape.
    """
    return [None] + dims(shape)


# ---------------------------------------------------------------- distdl -> Keras

def layer_to_keras(spec: dict, build_shape=None) -> dict:
    """distdl's `serialize(layer)` as Keras writes that layer; `build_shape` (batch axis excluded,
    a list of shapes for multi-input layers) becomes its `build_config`.

    Args:
        spec: distdl's `{"class_name", "config"}` of the layer.
        build_shape: the input shape it was built for, or None.
    """
    cls, cfg = spec["class_name"], spec["config"]
    if cls == "InputLayer":
        out = {"batch_shape": batch_shape(cfg["shape"]), "dtype": cfg["dtype"], "sparse": False,
               "ragged": False, "name": cfg["name"]}
    else:
        out = {k: _value_to_keras(k, v) for k, v in cfg.items() if k != "input_shape"}
        if cls == "BatchNormalization":
            out["synchronized"] = False
    try:
        json.dumps(out)
    except (TypeError, ValueError):
        raise CheckpointError(f"Layer {cfg.get('name')!r} ({cls}) holds a Python object in its config (a custom "
                              "initializer, regularizer or constraint function), which a .keras archive cannot "
                              "hold; save the model as .h5 instead.") from None
    layer = keras_object(spec.get("module", "keras.layers"), cls, out, spec.get("registered_name"))
    if build_shape is not None:
        multi = bool(build_shape) and isinstance(build_shape[0], (list, tuple))
        layer["build_config"] = {"input_shape": [batch_shape(s) for s in build_shape] if multi
                                 else batch_shape(build_shape)}
    return layer


def _value_to_keras(key: str, value):
    if key == "dtype" and isinstance(value, str):
        return dtype_policy(value)
    if key in _WRAPPED and isinstance(value, dict):
        return layer_to_keras(value)
    if isinstance(value, dict) and "class_name" in value:
        for suffix, module in _NESTED_MODULES:
            if key.endswith(suffix):
                return keras_object(module, value["class_name"], value.get("config", {}),
                                    value.get("registered_name"))
    return value


def object_to_keras(module: str, value):
    """A loss, metric or optimizer config (a name, or a {class_name, config} dict) in Keras's form;
    an optimizer's learning-rate schedule is nested under `keras.optimizers.schedules`.

    Args:
        module: the Keras module of the kind, e.g. "keras.losses".
        value: distdl's serialized object.
    """
    if not isinstance(value, dict) or "class_name" not in value:
        return value
    cfg = dict(value.get("config") or {})
    lr = cfg.get("learning_rate")
    if isinstance(lr, dict) and "class_name" in lr:
        cfg["learning_rate"] = keras_object("keras.optimizers.schedules", lr["class_name"], lr.get("config", {}))
    return keras_object(module, value["class_name"], cfg, value.get("registered_name"))


def nested_to_keras(module: str, value):
    """`object_to_keras` through compile's lists and per-output dicts.

    Args:
        module: the Keras module of the kind, e.g. "keras.metrics".
        value: a serialized object, or lists and dicts of them.
    """
    if isinstance(value, (list, tuple)):
        return [nested_to_keras(module, v) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {k: nested_to_keras(module, v) for k, v in value.items()}
    return object_to_keras(module, value)


# ---------------------------------------------------------------- Keras -> distdl

def refuse_code(tree, where: str) -> None:
    """Refuse `tree` (any JSON from the archive) if an object in it points at code: a `lambda`, or a
    module that is not Keras's or a registered custom name, unless the open custom_object_scope or
    the registry supplies that object (then the user's own class or function is used, never code
    from the file).

    Args:
        tree: the JSON to check.
        where: the file and part in messages, e.g. "Keras archive 'm.keras' config".
    """
    if isinstance(tree, list):
        for v in tree:
            refuse_code(v, where)
        return
    if not isinstance(tree, dict):
        return
    cls = tree.get("class_name")
    if isinstance(cls, str) and cls != "__keras_tensor__":
        name = _describe(tree)
        module, registered = tree.get("module"), tree.get("registered_name")
        supplied = _supplied(tree)
        if cls == "__lambda__" or (cls == "Lambda" and not _supplied_function(tree)):
            raise CheckpointError(f"Keras archive {where!r} holds {name}, Python code that distdl never runs "
                                  "from an archive.")
        if not supplied and module is not None and not (module == "keras" or str(module).startswith("keras.")):
            raise CheckpointError(f"Keras archive {where!r} names class {cls!r} from module {module!r}, which is "
                                  f"not built into distdl (distdl runs no code from an archive): "
                                  f"{registry.REGISTER_HINT}.")
        if not supplied and registered not in (None, cls):
            raise CheckpointError(f"Keras archive {where!r} names class {cls!r} registered as {registered!r}, "
                                  f"user code that distdl does not have (distdl runs no code from an archive): "
                                  f"{registry.REGISTER_HINT}.")
    for v in tree.values():
        refuse_code(v, where)


def _supplied(obj: dict) -> bool:
    """Whether custom_objects or the registry supplies the object `obj` names (by its registered
    name, its class name, or, for a function, the function's name)."""
    keys = [obj.get("registered_name"), obj.get("class_name")]
    if obj.get("class_name") == "function":
        keys = [obj.get("registered_name"), obj.get("config")]
    return any(isinstance(k, str) and registry.get_registered_object(k) is not None for k in keys)


def _supplied_function(lam: dict) -> bool:
    """A Lambda layer's function is never read from the file: it must be a named function that
    custom_objects or the registry supplies."""
    fn = (lam.get("config") or {}).get("function") if isinstance(lam.get("config"), dict) else None
    if isinstance(fn, str):
        return registry.get_registered_object(fn) is not None
    return isinstance(fn, dict) and fn.get("class_name") == "function" and _supplied(fn)


def _describe(obj: dict) -> str:
    if obj.get("class_name") == "Lambda":
        return f"Lambda layer {(obj.get('config') or {}).get('name')!r}"
    return "a lambda function"


def layer_from_keras(spec: dict, where: str) -> dict:
    """One layer of Keras's config as distdl's `{"class_name", "config"}`, after checking that distdl
    has the class built in and can make the layer from it (CheckpointError names the archive,
    the layer and what is wrong).

    Args:
        spec: the layer's Keras config.
        where: the file in messages.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise CheckpointError(f"Keras archive {where!r} has a layer entry without a config: {str(spec)[:80]}.")
    cls, cfg = spec.get("class_name"), spec["config"]
    name = cfg.get("name", spec.get("name"))
    registered = spec.get("registered_name")
    registered = None if registered == cls else registered
    try:
        found = layer_class(str(cls), registered)
    except DistdlError:
        found = None
    if found is None or (registry.is_builtin(found) and not found.__module__.startswith("distdl.layers.")):
        raise CheckpointError(f"Keras archive {where!r}: layer {name!r} is of class {registered or cls!r}, which is "
                              "not a layer built into distdl, registered, or in custom_objects (distdl runs no code "
                              f"from an archive): {registry.REGISTER_HINT}.")
    out = {}
    for key, value in cfg.items():
        if key in _IGNORED:
            continue
        if key in _INERT or (key == "data_format" and cls in ("Flatten", "ZeroPadding1D")):
            inert = _INERT.get(key, "channels_last")
            if value != inert:
                raise CheckpointError(f"Keras archive {where!r}: layer {name!r} ({cls}) sets {key}={value!r}, "
                                      "which distdl does not support.")
            continue
        out[key] = _value_from_keras(key, value, where, name)
    if cls == "InputLayer":
        out = _input_from_keras(out, where, name)
    elif cls == "BatchNormalization":
        out["synchronized"] = True  # global-batch statistics: what one Keras process computes
    result = {"class_name": cls, "config": out}
    if registered is not None:
        result["registered_name"] = registered
    try:
        deserialize(result)  # made once here, so that a bad option is named with its layer
    except DistdlError as e:
        raise CheckpointError(f"Keras archive {where!r}: layer {name!r} ({cls}) cannot be built in distdl: "
                              f"{e}") from None
    return result


def _value_from_keras(key: str, value, where: str, layer_name):
    if key == "dtype" and isinstance(value, dict):
        return _policy_name(value, where, layer_name)
    if key in _WRAPPED and isinstance(value, dict):
        return layer_from_keras(value, where)
    if isinstance(value, dict) and "class_name" in value:
        value = strip_object(value)
        registry = next((r for suffix, r in _NESTED_REGISTRIES.items() if key.endswith(suffix)), None)
        try:
            if registry is not None:
                registry.get(value)  # layers resolve these when built: name an unknown class now
        except DistdlError as e:
            raise CheckpointError(f"Keras archive {where!r}: layer {layer_name!r} has a {key} distdl cannot "
                                  f"build: {e}") from None
    return value


def _policy_name(policy: dict, where: str, layer_name) -> str:
    name = (policy.get("config") or {}).get("name")
    if policy.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy") or not isinstance(name, str) \
            or name.startswith("mixed_"):
        raise CheckpointError(f"Keras archive {where!r}: layer {layer_name!r} has dtype policy "
                              f"{policy.get('class_name')!r} {name!r}; distdl runs one float dtype per layer.")
    return name


def _input_from_keras(cfg: dict, where: str, name) -> dict:
    shape = cfg.pop("batch_shape", None) or cfg.pop("batch_input_shape", None)
    shape = shape[1:] if shape is not None else cfg.get("shape")
    if shape is None:
        raise CheckpointError(f"Keras archive {where!r}: input {name!r} has no shape (batch_shape or shape).")
    return {"shape": dims(shape), "name": cfg.get("name", name), "dtype": cfg.get("dtype")}


def strip_object(value):
    """A Keras object dict as distdl's {class_name, config}; Keras's `function` wrapper around a
    built-in function becomes the function's name.

    Args:
        value: a Keras serialized object (or a plain value, returned as it is).
    """
    if not isinstance(value, dict) or "class_name" not in value:
        return value
    if value["class_name"] == "function" and isinstance(value.get("config"), str):
        return value["config"]
    if value["class_name"] == "function" and isinstance(value.get("registered_name"), str):
        return value["registered_name"]  # a registered function: found by its "package>name"
    cfg = value.get("config")
    if isinstance(cfg, dict):
        cfg = {k: strip_object(v) if k == "learning_rate" else v for k, v in cfg.items()}
    out = {"class_name": value["class_name"], "config": cfg if cfg is not None else {}}
    if value.get("registered_name") not in (None, value["class_name"]):
        out["registered_name"] = value["registered_name"]
    return out


def nested_from_keras(value):
    """`strip_object` through compile's lists and per-output dicts.

    Args:
        value: a Keras serialized object, or lists and dicts of them.
    """
    if isinstance(value, (list, tuple)):
        return [nested_from_keras(v) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {k: nested_from_keras(v) for k, v in value.items()}
    return strip_object(value)
