"""`load_model`: a model rebuilt from distdl's HDF5 checkpoint (architecture, weights, optimizer
state) or from Keras 3's `.keras` archive; the model classes are needed to turn a file's configs
into a model, so this lives here and not in `distdl.saving`."""
from __future__ import annotations

from .. import optimizers as optimizers_mod
from ..saving import checkpoint as ckpt
from ..saving import keras_archive, model_io
from .model import Model
from .sequential import Sequential


def load_model(filepath, compile=True):
    """Rebuild a model saved with `model.save` (architecture, weights, optimizer state), or Keras 3's `.keras`."""
    if keras_archive.is_keras_archive(filepath):
        return keras_archive.load_keras_archive(filepath, _from_spec, compile)
    return model_from_checkpoint(ckpt.load_checkpoint(filepath), filepath, compile)


def model_from_checkpoint(data: ckpt.CheckpointData, path, compile: bool = True):
    """`load_model` on a checkpoint already read from `path` (named in errors)."""
    model = _from_spec(data.model_config)
    cc = data.compile_config
    if compile and cc and cc.get("loss") is not None:
        opt = optimizers_mod.deserialize(data.optimizer_config) if data.optimizer_config else "rmsprop"
        model.compile(optimizer=opt, loss=cc["loss"], metrics=cc.get("metrics"),
                      loss_weights=cc.get("loss_weights"))
    model_io.restore(model, data, path, with_optimizer=compile)
    return model


def _from_spec(spec: dict):
    """A model from {"class_name", "config"}: Sequential by name, every other class as a functional Model."""
    cls = Sequential if spec.get("class_name") == "Sequential" else Model
    return cls.from_config(spec["config"])
