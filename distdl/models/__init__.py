"""Keras's `keras.models`: `Sequential`, `Model` and `load_model`.

| module | its one job |
| --- | --- |
| `model` | `Model`: functional and subclassed models; build, fit, summary, config, save |
| `compiling` | `ModelCompile`, a part of `Model`: `compile`, the optimizer, losses and metrics |
| `weights` | `ModelWeights`, a part of `Model`: the weights, their arenas, `get_weights`/`set_weights` |
| `nested` | what makes a model a layer: nested in other models, shared, frozen |
| `sequential` | `Sequential`: a linear stack of layers |
| `loading` | `load_model`, `model_from_checkpoint`, `model_from_json`: models rebuilt from files and configs |
| `cloning` | `clone_model`: the same architecture with new layers and fresh weights |
"""
from .cloning import clone_model
from .loading import load_model, model_from_checkpoint, model_from_config, model_from_json
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "clone_model", "load_model", "model_from_checkpoint", "model_from_config", "model_from_json"]
