"""What every layer of a model shares: Keras-style auto names and the per-step `RunContext`."""
from __future__ import annotations

import re

__all__ = ["snake_case", "unique_name", "reset_names", "RunContext"]

_NAME_COUNTS: dict[str, int] = {}


def snake_case(name: str) -> str:
    """`Conv2D` -> `conv2d`, `BatchNormalization` -> `batch_normalization` (Keras rules).

    Args:
        name: a CamelCase class name.
    """
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(prefix: str) -> str:
    """Keras-style auto names: dense, dense_1, dense_2, ...

    Args:
        prefix: the base name (a layer's snake_case class name).
    """
    n = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


def reset_names() -> None:
    """Forget auto-name counters (like `keras.backend.clear_session`)."""
    _NAME_COUNTS.clear()


class RunContext:
    """Per-step facts a layer may need: seed/step/rows for randomness, a cross-rank sum.

    `row_start` is the global index (within the global batch) of this rank's first
    row and `global_rows` the global batch size, so random masks can be drawn for
    exactly this rank's slice. `sum_across_ranks(buf)` sums a float64 buffer in
    place over all ranks (identity in one process).

    Args:
        seed: the base seed of the model's random draws (dropout masks).
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.step = 0
        self.row_start = 0
        self.global_rows = 0
        self.sum_across_ranks = _identity


def _identity(buf):
    return buf


DEFAULT_CONTEXT = RunContext()
