"""distdl: Keras-style deep learning on plain NumPy, trained data-parallel over MPI.

`import distdl as keras` gives Keras 3's top level, as `import keras` does: `keras.Sequential`,
`keras.Model`, `keras.Input`, `keras.Layer`, `keras.Loss`, `keras.Metric`, `keras.Optimizer`,
`keras.Variable`, `keras.KerasTensor`, and the modules `keras.layers`, `keras.models`, `keras.ops`,
`keras.optimizers`, `keras.losses`, `keras.metrics`, `keras.callbacks`, `keras.activations`,
`keras.initializers`, `keras.regularizers`, `keras.constraints`, `keras.saving`, `keras.backend`,
`keras.datasets`, `keras.utils`. Each loads on first use (PEP 562), so `import distdl` itself costs
nothing: the launcher and its helpers import distdl modules without building the whole library.

`__version__` is the one place the version is written; the package metadata reads it from here.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

# Keras's top-level names -> the module that defines each (and the name there, when it differs).
_OBJECTS = {
    "Sequential": "models", "Model": "models", "Input": "layers", "Layer": "layers",
    "Loss": "losses", "Metric": "metrics", "Optimizer": "optimizers",
    "Initializer": "initializers", "Regularizer": "regularizers", "Constraint": "constraints",
    "Variable": "arena", "KerasTensor": ("layers.base", "SymbolicTensor"),
}
_MODULES = ("activations", "backend", "callbacks", "cli", "comm", "configs", "constraints", "datasets",
            "errors", "initializers", "layers", "log", "losses", "metrics", "models", "ops", "optimizers",
            "random", "regularizers", "saving", "utils")

__all__ = ["__version__", "version", *_OBJECTS, *_MODULES]


def version() -> str:
    """The distdl version, as `keras.version()` gives Keras's."""
    return __version__


def __getattr__(name: str) -> Any:
    """Load a top-level name or module the first time it is used."""
    if name in _OBJECTS:
        module, attr = _OBJECTS[name] if isinstance(_OBJECTS[name], tuple) else (_OBJECTS[name], name)
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
