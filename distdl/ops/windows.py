"""Constant tensors of keras.ops made from sizes, not from data: the window functions
(`hamming`, `hanning`, `blackman`, `bartlett`, `kaiser`), `tri`, `logspace`, `empty` and
`empty_like`. None is recorded, so no gradient flows through them.

Windows come in floatx (as Keras). `empty` gives zeros rather than NumPy's uninitialised
memory, as JAX and TensorFlow do: every rank then holds the same values.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autodiff.tensor import Tensor, as_tensor, value_of

__all__ = ["hamming", "hanning", "blackman", "bartlett", "kaiser", "tri", "logspace", "empty", "empty_like"]


def _window(fn, x, *args) -> Tensor:
    return Tensor(fn(int(value_of(x)), *args).astype(backend.floatx()))


def hamming(x) -> Tensor:
    """The Hamming window of length x: 0.54 - 0.46 cos(2 pi n / (x - 1))."""
    return _window(np.hamming, x)


def hanning(x) -> Tensor:
    """The Hann window of length x: 0.5 - 0.5 cos(2 pi n / (x - 1))."""
    return _window(np.hanning, x)


def blackman(x) -> Tensor:
    """The Blackman window of length x: 0.42 - 0.5 cos(2 pi n / (x-1)) + 0.08 cos(4 pi n / (x-1))."""
    return _window(np.blackman, x)


def bartlett(x) -> Tensor:
    """The Bartlett (triangular) window of length x, 0 at both ends."""
    return _window(np.bartlett, x)


def kaiser(x, beta) -> Tensor:
    """The Kaiser window of length x and shape `beta` (I0(beta sqrt(1 - r^2)) / I0(beta))."""
    return _window(np.kaiser, x, float(value_of(beta)))


def tri(N, M=None, k=0, dtype=None) -> Tensor:  # noqa: N803 (Keras's names)
    """The N x M matrix with ones at and below the k-th diagonal (dtype: floatx)."""
    return Tensor(np.tri(int(N), None if M is None else int(M), int(k), dtype=dtype or backend.floatx()))


def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0) -> Tensor:
    """`num` numbers base**t for t evenly spaced from start to stop (NumPy's logspace). dtype:
    that of start/stop joined with float (Python numbers: floatx)."""
    s, e = value_of(start), value_of(stop)
    if dtype is None:
        kinds = [np.result_type(v) for v in (s, e) if not isinstance(v, (int, float))]
        dtype = np.result_type(*kinds, backend.floatx()) if kinds else backend.floatx()
    return Tensor(np.logspace(s, e, num=int(num), endpoint=endpoint, base=value_of(base), axis=axis).astype(dtype))


def empty(shape, dtype=None) -> Tensor:
    """A tensor of `shape` (dtype: floatx), filled with zeros (see the module docstring)."""
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(d) for d in shape)
    return Tensor(np.zeros(shape, dtype=dtype or backend.floatx()))


def empty_like(x, dtype=None) -> Tensor:
    """A tensor of x's shape (and x's dtype unless `dtype`), filled with zeros."""
    return Tensor(np.zeros_like(np.asarray(value_of(as_tensor(x))), dtype=dtype))
