"""Global numeric settings, as in `keras.backend`: the default float type."""
import numpy as np

__all__ = ["floatx", "set_floatx"]

_FLOATX = "float32"


def floatx() -> str:
    """The dtype new layers, weights and data conversions use (default float32)."""
    return _FLOATX


def set_floatx(dtype: str) -> None:
    """Set the default float type ('float32' or 'float64', the latter for gradient checks).

    Args:
        dtype: 'float16', 'float32' or 'float64'; anything else raises ConfigError.
    """
    global _FLOATX
    if dtype not in ("float16", "float32", "float64"):
        from .errors import ConfigError
        raise ConfigError(f"floatx must be 'float16', 'float32' or 'float64', not {dtype!r}.")
    _FLOATX = str(np.dtype(dtype))
