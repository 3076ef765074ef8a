"""The `Activation` base class (forward and derivative, optionally in place) and its buffer helpers."""
from __future__ import annotations

import numpy as np

from ..special import _as_float


def _put(value: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Return value, copied into out when a destination buffer was given."""
    if out is None or out is value:
        return value
    np.copyto(out, value)
    return out


class Activation:
    """An activation and its derivative. Subclass it to add a custom activation.

    forward(x, out=None) -> y with y.shape == x.shape; backward(dy, x, y, out=None) -> dx,
    where x is None when `uses_input` is False (the derivative is a function of y alone).
    """

    name: str = ""
    uses_input: bool = False

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, x: np.ndarray | None, y: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x) -> np.ndarray:
        return self.forward(_as_float(x))

    def __repr__(self) -> str:
        return f"<Activation {self.name}>"
