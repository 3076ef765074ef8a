"""`load_model`: a model rebuilt from distdl's HDF5 checkpoint (architecture, weights, optimizer
state) or from Keras 3's `.keras` archive; `model_from_json` / `model_from_config`: a model from
Keras 3's JSON config alone. The model classes are needed to turn a file's configs into a model,
so this lives here and not in `distdl.saving`.

Custom layers, losses and metrics named in a file are found through `custom_objects=` (opened as
a `custom_object_scope` for the whole load) or `register_keras_serializable` (distdl.registry);
nothing in the file is run as code.
"""
from __future__ import annotations

import contextlib
import json
import os

from .. import ops  # noqa: F401 (registers the ops that a model's TensorOp nodes name)
from .. import optimizers as optimizers_mod
from ..comm import agree, world
from ..errors import CheckpointError, ConfigError, DistdlError
from ..registry import custom_object_scope
from ..saving import checkpoint as ckpt
from ..saving import keras_archive, keras_config, keras_graph, model_io
from .model import Model
from .sequential import Sequential

__all__ = ["load_model", "model_from_json", "model_from_config", "model_from_checkpoint"]


def load_model(filepath, custom_objects=None, compile=True):
    """Rebuild a model saved with `model.save` (architecture, weights, optimizer state), or Keras 3's
    `.keras`. Under MPI every rank reads the file, a failure on any rank is raised on all, and the
    ranks agree that they read the same values.

    Args:
        filepath: the `.keras` archive or distdl HDF5 checkpoint.
        custom_objects: {name: class or function} for the user's classes the file names (by class
            name or "package>name"); registered ones need not be given.
        compile: also restore the compile arguments and the optimizer state.
    """
    def load():
        with custom_object_scope(custom_objects):
            return keras_archive.load_keras_archive(filepath, _from_spec, compile)
    if keras_archive.is_keras_archive(filepath):
        return agree.on_every_rank(world(), load)
    data = model_io.read_checkpoint(world(), filepath)
    with custom_object_scope(custom_objects):
        return model_from_checkpoint(data, filepath, compile)


def model_from_json(json_string: str, custom_objects=None):
    """A model (new weights) from Keras 3's JSON model config, what `model.to_json()` gives.

    Args:
        json_string: the JSON text of `{"class_name": "Sequential" | "Functional", "config": ...}`.
        custom_objects: as `load_model`'s.
    """
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model_from_json needs the JSON text of a model config: {e}.") from None
    return model_from_config(config, custom_objects)


def model_from_config(config: dict, custom_objects=None):
    """A model (new weights) from Keras 3's model config dict (`json.loads(model.to_json())`).

    Args:
        config: `{"class_name": "Sequential" | "Functional", "config": ...}`.
        custom_objects: as `load_model`'s: a class the config names that is not built into
            distdl comes from here or the registry.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"A model config must be a dict with 'class_name' and 'config', got {type(config).__name__}.")
    with custom_object_scope(custom_objects):
        keras_config.refuse_code(config, "model config")
        spec, _ = keras_graph.model_from_keras(config, "model config")
        return _from_spec(spec)


def model_from_checkpoint(data: ckpt.CheckpointData, path, compile: bool = True):
    """`load_model` on a checkpoint already read from `path`: its model config is checked
    (`checkpoint_fields.model_spec`), and what rebuilding refuses is a CheckpointError naming the file.

    Args:
        data: the checkpoint's contents (`model_io.read_checkpoint`).
        path: the file it was read from, for messages.
        compile: also compile the model as it was and restore the optimizer state.
    """
    who = f"Checkpoint {os.fspath(path)!r}"
    class_name, config = ckpt.model_spec(data.model_config, who)
    with _rebuilding(who, "model config"):
        model = _from_spec({"class_name": class_name, "config": config})
    cc = data.compile_config
    if compile and cc and cc.get("loss") is not None:
        with _rebuilding(who, "optimizer config"):
            opt = optimizers_mod.deserialize(data.optimizer_config) if data.optimizer_config else "rmsprop"
        with _rebuilding(who, "compile config"):
            model.compile(optimizer=opt, loss=cc["loss"], metrics=cc.get("metrics"),
                          loss_weights=cc.get("loss_weights"))
    model_io.restore(model, data, path, with_optimizer=compile)
    return model


@contextlib.contextmanager
def _rebuilding(who: str, part: str):
    """What rebuilding `part` of a checkpoint refuses is a CheckpointError naming the file and the
    part (`Checkpoint 'ck.h5' cannot be rebuilt: model config, layer 1 ('dense_1'): Unknown ...`)."""
    try:
        yield
    except (DistdlError, LookupError, TypeError, ValueError, AttributeError, RecursionError) as e:
        cause = str(e).rstrip(".") if isinstance(e, DistdlError) else f"{type(e).__name__} {e}"
        raise CheckpointError(f"{who} cannot be rebuilt: {part}, {cause}.") from e


def _from_spec(spec: dict):
    """A model from {"class_name", "config"}: Sequential by name, every other class as a functional Model."""
    cls = Sequential if spec.get("class_name") == "Sequential" else Model
    return cls.from_config(spec["config"])
