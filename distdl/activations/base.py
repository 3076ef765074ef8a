"""The `Activation` base class (forward and derivative, optionally in place) and its buffer helpers."""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, VariableBase, as_tensor, result
from ..special import _as_float

__all__ = ["Activation"]


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
        """y = f(x), elementwise (or over one axis), in x's float dtype.

        Args:
            x: the pre-activation, a float array.
            out: array of x's shape to write y into (may be x itself), or None for a new one.
        """
        raise NotImplementedError

    def backward(self, dy: np.ndarray, x: np.ndarray | None, y: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
        """dx = dy * f'(x): the gradient through the activation.

        Args:
            dy: gradient of the loss with respect to y.
            x: the forward pass's input, or None when `uses_input` is False.
            y: the forward pass's output.
            out: array of dy's shape to write dx into (may be dy itself), or None for a new one.
        """
        raise NotImplementedError

    def __call__(self, x):
        """f(x): an array for an array; for a tensor (inside a layer's `call`, as
        `keras.activations.relu(x)`) a tensor recorded with this activation's derivative."""
        if isinstance(x, (Tensor, VariableBase)):
            t = as_tensor(x)
            xv = _as_float(t.value)
            y = self.forward(xv)
            return result(y, (t,), lambda g: (self.backward(g, xv if self.uses_input else None, y),))
        return self.forward(_as_float(x))

    def __repr__(self) -> str:
        return f"<Activation {self.name}>"
