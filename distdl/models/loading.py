"""`load_model`: a model rebuilt from distdl's HDF5 checkpoint (architecture, weights, optimizer
state), the model classes being needed to turn a file's configs into a model."""
from __future__ import annotations

from .. import optimizers as optimizers_mod
from ..comm import world
from ..saving import checkpoint as ckpt
from ..saving import model_io
from .model import Model
from .sequential import Sequential


def load_model(filepath, compile=True):
    """Rebuild a model saved with `model.save` (architecture, weights, optimizer state).
    Under MPI every rank reads the file, and the ranks agree that they read the same values."""
    return model_from_checkpoint(model_io.read_checkpoint(world(), filepath), filepath, compile)


def model_from_checkpoint(data: ckpt.CheckpointData, path, compile: bool = True):
    """`load_model` on a checkpoint already read from `path` (named in errors)."""
    spec = data.model_config
    cls = Sequential if spec.get("class_name") == "Sequential" else Model
    model = cls.from_config(spec["config"])
    cc = data.compile_config
    if compile and cc and cc.get("loss") is not None:
        opt = optimizers_mod.deserialize(data.optimizer_config) if data.optimizer_config else "rmsprop"
        model.compile(optimizer=opt, loss=cc["loss"], metrics=cc.get("metrics"),
                      loss_weights=cc.get("loss_weights"))
    model_io.restore(model, data, path, with_optimizer=compile)
    return model
