"""Keras's `keras.utils`: `to_categorical`, `normalize`, `set_random_seed` and the seeded generators here;
the rest in submodules, re-exported.

| module | its one job |
| --- | --- |
| `progbar` | `Progbar`, the progress bar (`callbacks.ProgbarLogger` draws with it) |
| `sequences` | `pad_sequences`, `timeseries_dataset_from_array` (windows of a series as batches) |
| `plot` | `plot_model`, `model_to_dot`: a model's graph as Graphviz text and a picture through `dot` |
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from ..registry import (CustomObjectScope, custom_object_scope, get_custom_objects, get_registered_name,
                       get_registered_object, register_keras_serializable)
from .plot import model_to_dot, plot_model
from .progbar import Progbar
from .sequences import TimeseriesDataset, pad_sequences, timeseries_dataset_from_array

# the custom-object API is in keras.utils too (Keras 3 exports it from both places)
__all__ = ["set_random_seed", "init_rng", "training_seed", "to_categorical", "normalize", "pad_sequences",
           "timeseries_dataset_from_array", "TimeseriesDataset", "Progbar", "plot_model", "model_to_dot",
           "register_keras_serializable",
           "get_registered_name", "get_registered_object", "get_custom_objects", "custom_object_scope",
           "CustomObjectScope"]

_state = {"seed": None, "init_rng": np.random.default_rng()}


def set_random_seed(seed: int) -> None:
    """Make initialization, shuffling and dropout reproducible (bitwise, run after run).

    Args:
        seed: an integer >= 0 (Keras 3 refuses what is not an int, and NumPy a negative seed);
            NumPy's global generator gets it modulo 2**32.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}.")
    seed = int(seed)
    _state["seed"] = seed
    _state["init_rng"] = np.random.default_rng(seed)
    np.random.seed(seed % (2 ** 32))


def init_rng() -> np.random.Generator:
    """The generator that weight initializers draw from."""
    return _state["init_rng"]


def training_seed() -> int:
    """Seed for data order and dropout: the one given to `set_random_seed`, else a fresh one."""
    if _state["seed"] is None:
        _state["seed"] = int(np.random.default_rng().integers(2 ** 31))
    return _state["seed"]


def to_categorical(y, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot encode integer labels: shape (n,) -> (n, num_classes).

    Args:
        y: integer class labels (a trailing axis of size 1 is dropped); floats must be whole.
        num_classes: number of classes; None takes the largest label + 1.
        dtype: dtype of the returned array.
    """
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.size and (not np.issubdtype(y.dtype, np.integer)):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise DataError("to_categorical needs integer labels; got non-integer values.")
        y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y[(y < 0) | (y >= num_classes)].flat[0])
        raise DataError(f"Label {bad} is outside [0, {num_classes}).")
    out = np.zeros(y.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, y[..., None].astype(np.int64), 1, axis=-1)
    return out


def normalize(x, axis: int | None = -1, order: int = 2) -> np.ndarray:
    """`x` divided by its `order`-norm along `axis` (a zero norm divides by 1), as Keras's
    NumPy path: `normalize([[3, 0], [4, 5]], axis=0)` is `[[0.6, 0], [0.8, 1]]`.

    Args:
        x: an array (or anything `np.asarray` takes).
        axis: the axis the norms run along.
        order: the norm's order (`np.linalg.norm`'s `ord`): 2 for L2, 1 for L1.
    """
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, -1 if axis is None else axis)
