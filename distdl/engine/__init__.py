"""The training engine: how a model runs, trains and evaluates, whatever the number of ranks.

| module | its one job |
| --- | --- |
| `graph` | the executors: a chain of layers or a functional graph, forward and backward |
| `inputs` | user data to checked lists of arrays (inputs, targets, row weights, validation split) |
| `objectives` | compile's losses, loss weights and metrics, per output |
| `data_order` | the global permutation of each epoch and every rank's rows of a global batch |
| `step` | one train or evaluation step on this rank's rows, and the sums that make it global |
| `train_state` | the loop's position and totals, which callbacks and checkpoints read |
| `loops` | `fit`, `evaluate` and `predict` |
| `summary` | the text of `Model.summary()` |
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["graph", "inputs", "objectives", "data_order", "step", "train_state", "loops", "batch_calls", "summary"]


def __getattr__(name: str) -> ModuleType:
    """Load a submodule the first time `distdl.engine.<name>` is used (PEP 562): importing the
    package alone must not import the loops, which import most of distdl."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
