"""`clone_model`: the same architecture with new layers and so fresh weights, as Keras 3's.

A Sequential gets its layers cloned in order; a functional model is called again, layer by layer,
on new `Input`s (or the `input_tensors` given), each layer replaced by its clone (a layer called
twice is cloned once and called twice, as in Keras); a subclassed model is rebuilt from its
config. A compiled model's clone is compiled with the same loss, metrics and a new optimizer from
the same config, as Keras does. Weights are new draws of the initializers, not copies: use
`clone.set_weights(model.get_weights())` to copy them.
"""
from __future__ import annotations

from .. import optimizers as optimizers_mod
from ..errors import ConfigError
from ..layers.base import SymbolicTensor
from ..layers.core import Input, InputLayer
from .model import Model
from .sequential import Sequential

__all__ = ["clone_model"]


def _default_clone(layer):
    """Keras's default: `layer.__class__.from_config(layer.get_config())`."""
    return layer.__class__.from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False):
    """A new model of the same architecture and config with new weights.

    Args:
        model: a Sequential, functional or subclassed model.
        input_tensors: symbolic tensors (from `Input`) to build the clone on, one per model input
            (a single tensor for one input); default: new Inputs of the same shapes, dtypes and names.
        clone_function: `fn(layer) -> layer` used for every layer but the Inputs; default
            `layer.__class__.from_config(layer.get_config())` (fresh weights). `lambda l: l` reuses them.
        call_function: `fn(layer, inputs) -> outputs` to call each cloned layer of a functional
            model (to insert layers around it); default: `layer(inputs)`.
        recursive: clone nested Sequential and functional models with `clone_model` too, rather
            than with `clone_function`.
    """
    if not isinstance(model, Model):
        raise ConfigError(f"clone_model takes a distdl Model or Sequential; got {type(model).__name__}.")
    if clone_function is not None and not callable(clone_function):
        raise ConfigError(f"clone_model's clone_function must be callable; got {clone_function!r}.")
    cache: dict[int, object] = {}
    base = clone_function or _default_clone

    def clone_layer(layer):
        if id(layer) not in cache:
            nested = isinstance(layer, Model) and (isinstance(layer, Sequential) or _is_functional(layer))
            cache[id(layer)] = (clone_model(layer, clone_function=clone_function, recursive=True,
                                            call_function=None if isinstance(layer, Sequential) else call_function)
                                if recursive and nested else base(layer))
        return cache[id(layer)]

    if isinstance(model, Sequential):
        if call_function is not None:
            raise ConfigError("clone_model's call_function works on functional models only: a Sequential's "
                              "layers are listed, not called.")
        clone = _clone_sequential(model, clone_layer, input_tensors)
    elif _is_functional(model):
        clone = _clone_functional(model, clone_layer, input_tensors, call_function)
    else:
        if clone_function is not None or input_tensors is not None or call_function is not None:
            raise ConfigError(f"clone_model's clone_function, input_tensors and call_function work on Sequential "
                              f"and functional models only; {type(model).__name__} is subclassed: it is "
                              f"rebuilt from its config.")
        clone = _clone_subclassed(model)
    if model.compiled:
        config = model.compile_config
        clone.compile(optimizer=optimizers_mod.deserialize(config["optimizer"]), loss=config.get("loss"),
                      metrics=config.get("metrics"), loss_weights=config.get("loss_weights"))
    return clone


def _is_functional(model) -> bool:
    """Built from Inputs and layer calls: a plain `Model`, not a Sequential or a subclass."""
    return type(model) is Model and getattr(model, "_inputs", None) is not None


def _clone_subclassed(model):
    """A subclass with its own `get_config` through `from_config`; otherwise, as Keras's default
    config holds only the name, `type(model)(name=...)`."""
    cls = type(model)
    try:
        if any("get_config" in vars(c) for c in cls.__mro__[:cls.__mro__.index(Model)]):
            return cls.from_config(model.get_config())
        return cls(name=model.name)
    except TypeError as e:
        raise ConfigError(f"clone_model cannot rebuild {cls.__name__} ({e}); give it get_config() and "
                          f"from_config() that rebuild it.") from e


def _one_input(input_tensors, owner: str):
    tensors = list(input_tensors) if isinstance(input_tensors, (list, tuple)) else [input_tensors]
    if len(tensors) != 1 or not isinstance(tensors[0], SymbolicTensor):
        raise ConfigError(f"clone_model's input_tensors for {owner} must be one symbolic tensor from Input; "
                          f"got {input_tensors!r}.")
    return tensors[0]


def _clone_sequential(model, clone_layer, input_tensors):
    layers = [clone_layer(layer) for layer in model.layers]
    clone = Sequential(name=model.name)
    if input_tensors is not None:
        shape = _one_input(input_tensors, f"Sequential {model.name!r}").shape
    else:
        shape = model._input_shape if model.built else model.declared_input_shape
    if shape is not None:
        clone.add(InputLayer(shape=tuple(shape)))
    for layer in layers:
        clone.add(layer)
    return clone


def _clone_functional(model, clone_layer, input_tensors, call_function):
    originals = model._inputs
    if input_tensors is None:
        inputs = [Input(shape=t.shape, name=t.layer.name, dtype=t.dtype) for t in originals]
    else:
        inputs = list(input_tensors) if isinstance(input_tensors, (list, tuple)) else [input_tensors]
        if len(inputs) != len(originals) or not all(isinstance(t, SymbolicTensor) for t in inputs):
            raise ConfigError(f"clone_model's input_tensors must be {len(originals)} symbolic tensor(s) from Input, "
                              f"one per input of model {model.name!r}; got {input_tensors!r}.")
        for new, old in zip(inputs, originals):
            if tuple(new.shape) != tuple(old.shape):
                raise ConfigError(f"clone_model's input_tensors: model {model.name!r} takes an input of shape "
                                  f"{(None,) + tuple(old.shape)}, got one of {(None,) + tuple(new.shape)}.")
    made = {id(old): new for old, new in zip(originals, inputs)}
    for node in model.executor.nodes:
        layer = clone_layer(node.layer)
        args = [made[id(t)] for t in node.inputs]
        arg = args if node.list_input else args[0]
        out = call_function(layer, arg) if call_function is not None else layer(arg)
        outs = out if isinstance(out, (list, tuple)) else [out]
        if len(outs) != len(node.outputs):
            raise ConfigError(f"clone_model: the clone of layer {node.layer.name!r} gave {len(outs)} outputs "
                              f"where the original gave {len(node.outputs)}.")
        made.update({id(old): new for old, new in zip(node.outputs, outs)})
    return Model(inputs, [made[id(t)] for t in model._outputs], name=model.name)
