"""Keras's `keras.models`: `Sequential`, `Model` and `load_model`.

| module | its one job |
| --- | --- |
| `model` | `Model`: functional and subclassed models; build, compile, weights, summary, config, save |
| `sequential` | `Sequential`: a linear stack of layers |
| `loading` | `load_model` and `model_from_checkpoint`: models rebuilt from files |
"""
from .loading import load_model, model_from_checkpoint
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "model_from_checkpoint"]
