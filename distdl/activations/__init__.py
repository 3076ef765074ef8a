"""Activations by Keras name, each an object with a forward pass and its derivative.

Every activation works elementwise (softmax / log_softmax over one axis, the last by default),
keeps the input's float dtype (float32 stays float32), and never overflows for |x| up to 1e4.
`forward(x, out=x)` may run in place; `backward(dy, x, y, out=dy)` may overwrite dy.
Activations whose derivative can be written in terms of the output y (`uses_input = False`)
let a layer drop its pre-activation buffer after the forward pass.

This package re-exports the whole API and holds the name registry (`get`, `serialize`, `deserialize`):
`base` (the Activation class), `elementwise`, `softmax` (softmax, log_softmax) and `functions`
(the Keras-style functions). `erf` lives in `distdl.special` and is re-exported here.
"""
from __future__ import annotations

from typing import Callable

from .. import registry
from ..errors import ConfigError, unknown_name
from ..special import erf
from .base import Activation
from .elementwise import (ELU, GELU, SELU, Exponential, HardSigmoid, HardSiLU, LeakyReLU, Linear, Mish, ReLU,
                          ReLU6, Sigmoid, SiLU, Softplus, Softsign, Tanh)
from .functions import (elu, exponential, gelu, hard_sigmoid, hard_silu, hard_swish, leaky_relu, linear,
                        log_softmax, mish, relu, relu6, selu, sigmoid, silu, softmax, softplus, softsign,
                        swish, tanh)
from .softmax import LogSoftmax, Softmax

__all__ = ["Activation", "ELU", "GELU", "SELU", "Exponential", "HardSigmoid", "HardSiLU", "LeakyReLU",
           "Linear", "Mish", "ReLU", "ReLU6", "Sigmoid", "SiLU", "Softplus", "Softsign", "Tanh", "Softmax",
           "LogSoftmax", "elu", "exponential", "gelu", "hard_sigmoid", "hard_silu", "hard_swish",
           "leaky_relu", "linear", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid", "silu",
           "softmax", "softplus", "softsign", "swish", "tanh", "erf", "get", "serialize", "deserialize"]

_CLASSES: dict[str, type[Activation]] = {
    c.name: c for c in (Linear, ReLU, ReLU6, LeakyReLU, ELU, SELU, Sigmoid, HardSigmoid,
                        HardSiLU, Tanh, Softplus, Softsign, SiLU, GELU, Mish, Exponential,
                        Softmax, LogSoftmax)
}
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
_FUNCTIONS: dict[Callable, str] = {
    linear: "linear", relu: "relu", relu6: "relu6", leaky_relu: "leaky_relu", elu: "elu",
    selu: "selu", sigmoid: "sigmoid", hard_sigmoid: "hard_sigmoid", hard_silu: "hard_silu",
    tanh: "tanh", softplus: "softplus", softsign: "softsign", silu: "silu", gelu: "gelu",
    mish: "mish", exponential: "exponential", softmax: "softmax", log_softmax: "log_softmax",
}


def get(identifier: object) -> Activation:
    """Resolve None, a Keras name, a module function, an Activation class or instance.

    Args:
        identifier: any of those (or a {'name': ...} dict); None gives Linear.
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Activation):
        return identifier()
    if isinstance(identifier, dict) and isinstance(identifier.get("name"), str):
        identifier = identifier["name"]
    if isinstance(identifier, str):  # custom_objects, then registered names, then distdl's (registry.resolve)
        key = _ALIASES.get(identifier, identifier)
        found = registry.resolve("activation", key, {**_CLASSES, **dict.fromkeys(_ALIASES)})
        return found() if _CLASSES.get(key) is found else get(found)
    if callable(identifier) and identifier in _FUNCTIONS:
        return _CLASSES[_FUNCTIONS[identifier]]()
    if callable(identifier):
        label = getattr(identifier, "__name__", repr(identifier))
        raise ConfigError(
            f"Custom activation {label!r} needs a derivative: subclass "
            "distdl.activations.Activation and implement forward and backward.")
    raise unknown_name("activation", repr(identifier), list(_CLASSES) + list(_ALIASES))


def serialize(activation: object) -> str:
    """The Keras name stored in layer configs.

    Args:
        activation: anything `get` accepts.
    """
    return get(activation).name


def deserialize(name: object) -> Activation:
    """Inverse of serialize.

    Args:
        name: a Keras activation name (or anything `get` accepts).
    """
    return get(name)
