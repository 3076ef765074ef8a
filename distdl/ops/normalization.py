"""Normalization and related nn ops of keras.ops: layer_normalization, batch_normalization,
rms_normalization, normalize, sparsemax, psnr. Each is written over recorded ops (mean, var,
rsqrt...), so its gradient is their chain; sparsemax records its own (the projection's Jacobian:
the centred upstream gradient on the support). `epsilon` None is Keras's backend.epsilon(), 1e-7.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result
from ..errors import ShapeError
from ..special import _as_float
from .math import log, maximum, rsqrt, square
from .reductions import mean, norm, sum, var
from .shape import reshape

__all__ = ["layer_normalization", "batch_normalization", "rms_normalization", "normalize", "sparsemax", "psnr"]

EPSILON = 1e-7   # keras.config.epsilon()'s default


def _axes(axis, ndim: int, op: str) -> list:
    axes = [axis] if isinstance(axis, int) else list(axis)
    if any(not -ndim <= a < ndim for a in axes):
        raise ShapeError(f"ops.{op}: axis {axis} is out of range for an input of rank {ndim}.")
    return sorted(a % ndim for a in axes)


def _along(v, shape: tuple, axes: list):
    """A parameter over `axes` (shaped as those axes, or already broadcastable) reshaped to
    broadcast against an input of `shape`."""
    if v is None:
        return None
    v = as_tensor(v)
    if v.ndim == len(shape) or axes == [len(shape) - 1]:
        return v
    return reshape(v, tuple(shape[i] if i in axes else 1 for i in range(len(shape))))


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs) -> Tensor:
    """(x - mean) / sqrt(var + epsilon) over `axis` (int or list), then * gamma + beta."""
    x = as_tensor(x)
    if kwargs.get("rms_scaling"):
        raise ShapeError("ops.layer_normalization: rms_scaling is deprecated in Keras; use ops.rms_normalization.")
    eps = EPSILON if epsilon is None else epsilon
    axes = _axes(axis, x.ndim, "layer_normalization")
    out = (x - mean(x, axis=axes, keepdims=True)) * rsqrt(var(x, axis=axes, keepdims=True) + eps)
    g, b = _along(gamma, x.shape, axes), _along(beta, x.shape, axes)
    if g is not None:
        out = out * g
    return out if b is None else out + b


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3) -> Tensor:
    """(x - mean) / sqrt(variance + epsilon) * scale + offset, the 1-D statistics and parameters
    laid along `axis` of x (the op, not the layer: nothing is updated)."""
    x = as_tensor(x)
    axes = _axes(axis, x.ndim, "batch_normalization")
    m, v = _along(mean, x.shape, axes), _along(variance, x.shape, axes)
    out = (x - m) * rsqrt(v + epsilon)
    if scale is not None:
        out = out * _along(scale, x.shape, axes)
    return out if offset is None else out + _along(offset, x.shape, axes)


def rms_normalization(x, scale=None, axis=-1, epsilon=None) -> Tensor:
    """x * rsqrt(mean(x ** 2 over axis) + epsilon), times `scale` when given."""
    x = as_tensor(x)
    eps = EPSILON if epsilon is None else epsilon
    axes = _axes(axis, max(x.ndim, 1), "rms_normalization")
    out = x * rsqrt(mean(square(x), axis=axes, keepdims=True) + eps)
    return out if scale is None else out * as_tensor(scale)


def normalize(x, axis=-1, order=2, epsilon=None) -> Tensor:
    """x divided by its `order`-norm over `axis` (the norm floored at epsilon; order 2 as
    x * rsqrt(max(sum(x ** 2), epsilon ** 2)), so a zero vector has a finite gradient)."""
    if not isinstance(order, int) or order < 1:
        raise ShapeError(f"ops.normalize: order must be an int >= 1, got {order!r}.")
    x = as_tensor(x)
    eps = EPSILON if epsilon is None else epsilon
    if order == 2:
        return x * rsqrt(maximum(sum(square(x), axis=axis, keepdims=True), eps * eps))
    return x / maximum(norm(x, ord=order, axis=axis, keepdims=True), eps)


def sparsemax(x, axis=-1) -> Tensor:
    """The Euclidean projection of x onto the probability simplex along `axis` (sparse softmax):
    max(x - tau, 0) with tau chosen so the outputs sum to 1. Gradient on the support S:
    g - mean_S(g); zero off it."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    z = np.moveaxis(xv, axis, -1)
    srt = -np.sort(-z, axis=-1)
    csum = np.cumsum(srt, axis=-1)
    r = np.arange(1, z.shape[-1] + 1, dtype=xv.dtype)
    support = srt - (csum - 1) / r > 0
    k = np.sum(support, axis=-1, keepdims=True)
    size = k.astype(xv.dtype)
    tau = (np.take_along_axis(csum, k - 1, axis=-1) - 1) / size
    y = np.moveaxis(np.maximum(z - tau, 0), -1, axis)
    on = y > 0

    def vjp(g):
        share = np.sum(g * on, axis=axis, keepdims=True) / np.sum(on, axis=axis, keepdims=True, dtype=g.dtype)
        return (np.where(on, g - share, 0).astype(xv.dtype),)
    return result(y, (x,), vjp)


def psnr(x1, x2, max_val) -> Tensor:
    """Peak signal-to-noise ratio 20 log10(max_val) - 10 log10(mean((x1 - x2) ** 2)), a scalar."""
    a, b = as_tensor(x1), as_tensor(x2)
    if a.shape != b.shape:
        raise ShapeError(f"ops.psnr: x1 of shape {a.shape} and x2 of shape {b.shape} must match.")
    return 20.0 * float(np.log10(max_val)) - float(10.0 / np.log(10.0)) * log(mean(square(a - b)))
