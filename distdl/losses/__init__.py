"""Losses by Keras name: per-element values, Keras reductions, and the exact gradient.

`call(y_true, y_pred)` gives one value per sample (the last axis reduced, shape y_pred.shape[:-1]).
`gradient(y_true, y_pred, weights)` is dL/dy_pred for L = sum(call(...) * weights); the training
loop passes weights that already hold 1/global_count and any sample weights, so the ranks' gradient
sums add up to the global-batch gradient. Cross-entropies from probabilities also offer
`gradient_logits`, the cheap fused gradient through the output layer's softmax / sigmoid.

This package re-exports the whole API and holds the name registry (`get`, `serialize`, `deserialize`):
`base` (Loss, reductions, helpers), `elementwise` (regression, Poisson, KL, hinge), `crossentropy`,
`focal` (binary and categorical focal cross-entropies), `overlap` (cosine similarity, categorical
hinge, Dice, Tversky), `functions` (the Keras-style per-sample functions and aliases), `recorded` (how a loss with only
`call`, a user's, is differentiated) and `custom` (a user's function as a loss).
"""
from __future__ import annotations

from .. import registry
from ..errors import ConfigError, unknown_name
from .base import EPSILON, Loss
from .custom import LossFunctionWrapper
from .crossentropy import BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy
from .focal import BinaryFocalCrossentropy, CategoricalFocalCrossentropy
from .overlap import CategoricalHinge, CosineSimilarity, Dice, Tversky
from .elementwise import (Hinge, Huber, KLDivergence, LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError,
                          MeanSquaredError, MeanSquaredLogarithmicError, Poisson, SquaredHinge)
from .functions import (KLD, MAE, MAPE, MSE, MSLE, binary_crossentropy, binary_focal_crossentropy,
                        categorical_crossentropy, categorical_focal_crossentropy, categorical_hinge,
                        cosine_similarity, dice, tversky,
                        hinge, huber, kl_divergence, kld, log_cosh, mae, mape, mean_absolute_error,
                        mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error, mse,
                        msle, poisson, sparse_categorical_crossentropy, squared_hinge)

__all__ = ["EPSILON", "Loss", "LossFunctionWrapper", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "Hinge", "Huber", "KLDivergence", "LogCosh", "MeanAbsoluteError",
           "MeanAbsolutePercentageError", "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson",
           "SquaredHinge", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy", "CategoricalHinge",
           "CosineSimilarity", "Dice", "Tversky", "binary_focal_crossentropy", "categorical_focal_crossentropy",
           "categorical_hinge", "cosine_similarity", "dice", "tversky", "KLD", "MAE", "MAPE", "MSE", "MSLE",
           "binary_crossentropy",
           "categorical_crossentropy", "hinge", "huber", "kl_divergence", "kld", "log_cosh", "mae", "mape",
           "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
           "mean_squared_logarithmic_error", "mse", "msle", "poisson", "sparse_categorical_crossentropy",
           "squared_hinge", "get", "serialize", "deserialize"]

_FUNCTIONS = {
    mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError, huber: Huber, log_cosh: LogCosh,
    poisson: Poisson, kl_divergence: KLDivergence, hinge: Hinge, squared_hinge: SquaredHinge,
    binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_focal_crossentropy: BinaryFocalCrossentropy,
    categorical_focal_crossentropy: CategoricalFocalCrossentropy, categorical_hinge: CategoricalHinge,
    cosine_similarity: CosineSimilarity, dice: Dice, tversky: Tversky,
}
_CLASSES = {c.__name__: c for c in _FUNCTIONS.values()}
_NAMES = {f.__name__: c for f, c in _FUNCTIONS.items()}
_NAMES.update({a: _NAMES[f] for f, aliases in {
    "mean_squared_error": ("mse", "MSE"), "mean_absolute_error": ("mae", "MAE"),
    "mean_absolute_percentage_error": ("mape", "MAPE"),
    "mean_squared_logarithmic_error": ("msle", "MSLE"), "huber": ("huber_loss",),
    "log_cosh": ("logcosh",), "kl_divergence": ("kld", "KLD", "kullback_leibler_divergence"),
    "binary_crossentropy": ("bce", "BCE"), "categorical_crossentropy": ("cce", "CCE"),
}.items() for a in aliases})
_NAMES.update(_CLASSES)


def get(identifier: object) -> Loss | None:
    """Resolve a Keras loss name or alias, a Loss class or instance, a module function, or a config dict.

    Args:
        identifier: any of those; None gives None.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):  # custom_objects, then registered names, then distdl's (registry.resolve)
        found = registry.resolve("loss", identifier, _NAMES)
        return found() if _NAMES.get(identifier) is found else get(found)
    if callable(identifier) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if callable(identifier):  # a user's fn(y_true, y_pred) written with distdl.ops: recorded
        return LossFunctionWrapper(identifier)
    raise unknown_name("loss", repr(identifier), _NAMES)


def serialize(loss: object) -> dict:
    """{'class_name': ..., 'config': ...} for model configs.

    Args:
        loss: anything `get` accepts.
    """
    loss = get(loss)
    return registry.serialize(loss)


def deserialize(config: dict | str) -> Loss:
    """Inverse of serialize; also accepts a plain name.

    Args:
        config: a dict from `serialize`, or a loss name.
    """
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict):
        raise unknown_name("loss class", None, _CLASSES)
    if config.get("class_name") == "LossFunctionWrapper":  # a function loss: its function by name
        cfg = dict(config.get("config") or {})
        fn = cfg.pop("fn", None)
        if not isinstance(fn, str):
            raise ConfigError(f"A LossFunctionWrapper config needs its function's name under 'fn', got {fn!r}.")
        loss = get(fn)  # built in, registered or in custom_objects
        if isinstance(loss, LossFunctionWrapper):
            loss._fn_kwargs.update({k: v for k, v in cfg.items() if k not in ("name", "reduction", "dtype")})
        loss.name, loss.reduction = cfg.get("name", loss.name), cfg.get("reduction", loss.reduction)
        return loss
    found = registry.resolve("loss class", config.get("class_name"), _CLASSES, config.get("registered_name"))
    return found.from_config(dict(config.get("config") or {})) if isinstance(found, type) else get(found)
