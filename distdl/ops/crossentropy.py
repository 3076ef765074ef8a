"""The cross-entropy ops of keras.ops.nn (what custom losses are written with) and the one-hot
encodings of integer labels.

Probabilities are renormalised over `axis` (categorical) and clipped to [EPSILON, 1 - EPSILON]
before the log, as Keras does, so the gradient is 0 where an output was clipped; logits go
through log_softmax, or for binary_crossentropy the stable max(x, 0) - x t + log1p(exp(-|x|))
(TensorFlow's sigmoid_cross_entropy_with_logits). The result has the shape of `output` without
`axis` (binary: the shape of `output`); nothing is averaged.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..activations import Sigmoid
from ..autodiff.tensor import Tensor, as_tensor, is_tracked, multiply, result, subtract, value_of
from ..errors import ConfigError, ShapeError
from ..losses.base import EPSILON
from ..special import _as_float
from .activations import log_softmax
from .math import clip, log
from .reductions import sum as _sum

__all__ = ["one_hot", "multi_hot", "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy"]


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False) -> Tensor:
    """Integer labels x as one-hot vectors of length `num_classes` along a new axis `axis`
    (default last); labels outside [0, num_classes) give all zeros (not differentiated)."""
    if sparse:
        raise ConfigError("ops.one_hot: sparse=True is not supported (distdl tensors are dense).")
    xv = np.asarray(value_of(as_tensor(x)))
    if xv.dtype.kind not in "iub" and not np.all(np.mod(xv, 1) == 0):
        raise ConfigError(f"ops.one_hot: labels must be integers, got dtype {xv.dtype} with fractions.")
    code = np.expand_dims(xv.astype(np.int64), -1) == np.arange(int(num_classes))
    out = code.astype(dtype or backend.floatx())
    return Tensor(np.moveaxis(out, -1, int(axis) % out.ndim) if axis != -1 else out)


def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs) -> Tensor:
    """Integer labels as multi-hot vectors: a 1-D x gives one vector marking every label in
    it; a batch (n, k) gives one vector per row (`num_tokens` is Keras's old name for
    num_classes). Not differentiated."""
    num_classes = kwargs.pop("num_tokens", None) if num_classes is None else num_classes
    if num_classes is None:
        raise ConfigError("ops.multi_hot: give num_classes.")
    codes = one_hot(inputs, num_classes, axis=axis, dtype=dtype, sparse=sparse).value
    return Tensor(np.max(codes, axis=1 if codes.ndim > 2 else 0))


def _same_shape(name: str, target: Tensor, output: Tensor) -> None:
    if np.shape(target.value) != np.shape(output.value):
        raise ShapeError(f"ops.{name}: target shape {np.shape(target.value)} and output shape "
                         f"{np.shape(output.value)} must be equal.")


def _log_probs(output: Tensor, from_logits: bool, axis) -> Tensor:
    """log of the class probabilities over `axis`: log_softmax of logits, or the log of the
    renormalised, clipped probabilities."""
    if from_logits:
        return log_softmax(output, axis=axis)
    p = output / _sum(output, axis=axis, keepdims=True)
    return log(clip(p, EPSILON, 1.0 - EPSILON))


def categorical_crossentropy(target, output, from_logits=False, axis=-1) -> Tensor:
    """-sum(target * log(p)) over `axis`, p the probabilities `output` holds (or softmax of it
    when from_logits); target and output have the same shape."""
    target, output = as_tensor(target), as_tensor(output)
    _same_shape("categorical_crossentropy", target, output)
    if np.ndim(output.value) < 1:
        raise ShapeError("ops.categorical_crossentropy: target and output must have at least one axis.")
    return -_sum(multiply(target, _log_probs(output, from_logits, axis)), axis=axis)


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1) -> Tensor:
    """-log(p[target]) with integer class labels `target` (output's shape without `axis`; a
    trailing axis of size 1 is dropped, as Keras does)."""
    output = as_tensor(output)
    labels = np.asarray(value_of(as_tensor(target)))
    shape = np.shape(output.value)
    if len(shape) < 1:
        raise ShapeError("ops.sparse_categorical_crossentropy: output must have at least one axis.")
    if labels.ndim == len(shape) and labels.shape[-1:] == (1,):
        labels = labels[..., 0]
    ax = int(axis) % len(shape)
    if labels.shape != shape[:ax] + shape[ax + 1:]:
        raise ShapeError(f"ops.sparse_categorical_crossentropy: target shape {labels.shape} must be output "
                         f"shape {shape} without axis {axis}.")
    code = one_hot(labels, shape[ax], axis=ax, dtype=np.result_type(_as_float(output.value)))
    return -_sum(multiply(code, _log_probs(output, from_logits, ax)), axis=ax)


def binary_crossentropy(target, output, from_logits=False) -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) elementwise, p = output clipped to [EPSILON, 1 - EPSILON]
    (or sigmoid(output) when from_logits, computed without clipping or overflow)."""
    target, output = as_tensor(target), as_tensor(output)
    _same_shape("binary_crossentropy", target, output)
    if not from_logits:
        p = clip(output, EPSILON, 1.0 - EPSILON)
        return -(multiply(target, log(p)) + multiply(subtract(1.0, target), log(subtract(1.0, p))))
    t, z = _as_float(target.value), _as_float(output.value)
    y = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    need_target = is_tracked(target)

    def vjp(g):
        return (g * -z if need_target else None), g * (Sigmoid().forward(z) - t)
    return result(y, (target, output), vjp)
