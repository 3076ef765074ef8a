"""`load_model`: a model rebuilt from distdl's HDF5 checkpoint (architecture, weights, optimizer
state) or from Keras 3's `.keras` archive; the model classes are needed to turn a file's configs
into a model, so this lives here and not in `distdl.saving`."""
from __future__ import annotations

import os

from .. import optimizers as optimizers_mod
from ..comm import agree, world
from ..errors import CheckpointError, DistdlError
from ..saving import checkpoint as ckpt
from ..saving import keras_archive, model_io
from .model import Model
from .sequential import Sequential


def load_model(filepath, compile=True):
    """Rebuild a model saved with `model.save` (architecture, weights, optimizer state), or Keras 3's
    `.keras`. Under MPI every rank reads the file, a failure on any rank is raised on all, and the
    ranks agree that they read the same values."""
    if keras_archive.is_keras_archive(filepath):
        return agree.on_every_rank(world(), lambda: keras_archive.load_keras_archive(filepath, _from_spec, compile))
    return model_from_checkpoint(model_io.read_checkpoint(world(), filepath), filepath, compile)


def model_from_checkpoint(data: ckpt.CheckpointData, path, compile: bool = True):
    """`load_model` on a checkpoint already read from `path`: its model config is checked
    (`checkpoint_fields.model_spec`), and what rebuilding refuses is a CheckpointError naming the file."""
    who = f"Checkpoint {os.fspath(path)!r}"
    class_name, config = ckpt.model_spec(data.model_config, who)
    try:
        model = _from_spec({"class_name": class_name, "config": config})
        cc = data.compile_config
        if compile and cc and cc.get("loss") is not None:
            opt = optimizers_mod.deserialize(data.optimizer_config) if data.optimizer_config else "rmsprop"
            model.compile(optimizer=opt, loss=cc["loss"], metrics=cc.get("metrics"),
                          loss_weights=cc.get("loss_weights"))
    except (DistdlError, LookupError, TypeError, ValueError, AttributeError, RecursionError) as e:
        cause = str(e).rstrip(".") if isinstance(e, DistdlError) else f"{type(e).__name__} {e}"
        raise CheckpointError(f"{who} cannot be rebuilt: {cause}.") from e
    model_io.restore(model, data, path, with_optimizer=compile)
    return model


def _from_spec(spec: dict):
    """A model from {"class_name", "config"}: Sequential by name, every other class as a functional Model."""
    cls = Sequential if spec.get("class_name") == "Sequential" else Model
    return cls.from_config(spec["config"])
