"""Spatial nn ops of keras.ops written over recorded ops (reshape, transpose, pad, indexing,
conv, reductions), so each one's gradient is the chain of theirs: conv_transpose, separable_conv,
depth_to_space, space_to_depth, unfold, adaptive_average_pool, adaptive_max_pool.

Shapes follow Keras (channels_last unless `data_format` says otherwise):
- conv_transpose: inputs (N, [H,] W, C), kernel ([kh,] kw, F, C) -> (N, [Ho,] Wo, F), computed as
  JAX does: the input dilated by the strides, padded as Keras's padding/output_padding ask, then
  convolved with the spatially flipped kernel.
- depth_to_space: (N, H, W, C) -> (N, H b, W b, C / b^2) (TensorFlow's order); space_to_depth back.
- unfold: (N, C, H, W) -> (N, C kh kw, L), as torch.nn.functional.unfold.
- adaptive pools: output window i of an axis of length L spans [floor(i L / n), ceil((i+1) L / n)).
"""
from __future__ import annotations

import builtins

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, transpose
from ..errors import ShapeError
from .conv import conv, depthwise_conv
from .reductions import max, mean
from .shape import concatenate, expand_dims, flip, pad, reshape

__all__ = ["conv_transpose", "separable_conv", "depth_to_space", "space_to_depth", "unfold",
           "adaptive_average_pool", "adaptive_max_pool"]


def _ints(value, n: int, arg: str, op: str) -> tuple:
    out = (int(value),) * n if np.ndim(value) == 0 else tuple(int(v) for v in value)
    if len(out) != n:
        raise ShapeError(f"ops.{op}: {arg} must be an int or {n} ints, got {value!r}.")
    return out


def _to_last(x: Tensor, data_format) -> Tensor:
    if data_format == "channels_first":
        return transpose(x, (0, *range(2, x.ndim), 1))
    return x


def _from_last(x: Tensor, data_format) -> Tensor:
    if data_format == "channels_first":
        return transpose(x, (0, x.ndim - 1, *range(1, x.ndim - 1)))
    return x


def _dilate(x: Tensor, axis: int, s: int) -> Tensor:
    """s - 1 zeros inserted between neighbours along `axis` (a recorded reshape of a pad)."""
    if s == 1:
        return x
    n = x.shape[axis]
    y = expand_dims(x, axis + 1)
    y = pad(y, [(0, 0)] * (axis + 1) + [(0, s - 1)] + [(0, 0)] * (x.ndim - axis - 1))
    y = reshape(y, x.shape[:axis] + (n * s,) + x.shape[axis + 1:])
    return y[(builtins.slice(None),) * axis + (builtins.slice(0, (n - 1) * s + 1),)]


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None,
                   dilation_rate=1) -> Tensor:
    """The transpose (input gradient) of `conv`: kernel ([kh,] kw, filters, in_channels)."""
    x, k = _to_last(as_tensor(inputs), data_format), as_tensor(kernel)
    rank = x.ndim - 2
    if k.ndim != rank + 2 or k.shape[-1] != x.shape[-1] or padding not in ("valid", "same"):
        raise ShapeError(f"ops.conv_transpose: inputs of shape {x.shape} need a kernel (spatial..., filters, "
                         f"{x.shape[-1]}) of rank {rank + 2} and padding 'valid' or 'same', got {k.shape}, "
                         f"{padding!r}.")
    op = "conv_transpose"
    s, d = _ints(strides, rank, "strides", op), _ints(dilation_rate, rank, "dilation_rate", op)
    outp = (None,) * rank if output_padding is None else _ints(output_padding, rank, "output_padding", op)
    widths = [(0, 0)]
    for i in range(rank):
        x = _dilate(x, 1 + i, s[i])
        ke = (k.shape[i] - 1) * d[i] + 1
        if padding == "valid":
            op_i = builtins.max(ke, s[i]) - ke if outp[i] is None else outp[i]
            left, right = ke - 1, ke - 1 + op_i
        else:
            total = s[i] + ke - 2 if outp[i] is None else ke + ke % 2 - 2 + outp[i]
            left = builtins.min(total // 2 + total % 2, ke - 1)
            right = total - left
        widths.append((left, right))
    widths.append((0, 0))
    x = pad(x, [(a, builtins.max(b, 0)) for a, b in widths])
    cut = tuple(builtins.slice(0, n + b) if b < 0 else builtins.slice(None)
                for n, (_, b) in zip(x.shape, widths))
    x = x[cut]
    kf = transpose(flip(k, tuple(range(rank))), (*range(rank), rank + 1, rank))
    return _from_last(conv(x, kf, strides=1, padding="valid", dilation_rate=d), data_format)


def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1) -> Tensor:
    """depthwise_conv with `depthwise_kernel`, then a 1x1 conv with `pointwise_kernel`."""
    y = depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format, dilation_rate)
    return conv(y, pointwise_kernel, 1, "valid", data_format)


def depth_to_space(x, block_size, data_format="channels_last") -> Tensor:
    """Channel blocks moved into b x b spatial tiles: (N, H, W, C) -> (N, H b, W b, C / b^2)."""
    x, b = _to_last(as_tensor(x), data_format), int(block_size)
    if b < 2 or x.ndim != 4 or x.shape[-1] % (b * b):
        raise ShapeError(f"ops.depth_to_space: needs block_size >= 2 and 4-D inputs whose channels divide by "
                         f"block_size ** 2, got block_size {block_size} and shape {x.shape}.")
    n, h, w, c = x.shape
    y = transpose(reshape(x, (n, h, w, b, b, c // (b * b))), (0, 1, 3, 2, 4, 5))
    return _from_last(reshape(y, (n, h * b, w * b, c // (b * b))), data_format)


def space_to_depth(x, block_size, data_format="channels_last") -> Tensor:
    """The inverse of depth_to_space: (N, H, W, C) -> (N, H / b, W / b, C b^2)."""
    x, b = _to_last(as_tensor(x), data_format), int(block_size)
    if b < 2 or x.ndim != 4 or x.shape[1] % b or x.shape[2] % b:
        raise ShapeError(f"ops.space_to_depth: needs block_size >= 2 and 4-D inputs whose height and width "
                         f"divide by it, got block_size {block_size} and shape {x.shape}.")
    n, h, w, c = x.shape
    y = transpose(reshape(x, (n, h // b, b, w // b, b, c)), (0, 1, 3, 2, 4, 5))
    return _from_last(reshape(y, (n, h // b, w // b, c * b * b)), data_format)


def unfold(x, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding kh x kw blocks of (N, C, H, W) as columns: (N, C kh kw, L), L blocks row-major."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ShapeError(f"ops.unfold: needs (N, C, H, W) inputs, got shape {x.shape}.")
    k, d = _ints(kernel_size, 2, "kernel_size", "unfold"), _ints(dilation, 2, "dilation", "unfold")
    p, s = _ints(padding, 2, "padding", "unfold"), _ints(stride, 2, "stride", "unfold")
    if builtins.any(p):
        x = pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    oh, ow = ((x.shape[2 + i] - (k[i] - 1) * d[i] - 1) // s[i] + 1 for i in range(2))
    if oh < 1 or ow < 1:
        raise ShapeError(f"ops.unfold: a {k} kernel (dilation {d}) does not fit the padded input {x.shape}.")
    rows = (np.arange(k[0]) * d[0])[:, None, None, None] + (np.arange(oh) * s[0])[None, None, :, None]
    cols = (np.arange(k[1]) * d[1])[None, :, None, None] + (np.arange(ow) * s[1])[None, None, None, :]
    n, c = x.shape[:2]
    blocks = x[:, :, rows, cols]                     # (N, C, kh, kw, oh, ow)
    return reshape(blocks, (n, c * k[0] * k[1], oh * ow))


def _adaptive(op: str, reduce, inputs, output_size, data_format) -> Tensor:
    x = _to_last(as_tensor(inputs), data_format)
    rank = x.ndim - 2
    if rank < 1:
        raise ShapeError(f"ops.{op}: needs (N, spatial..., C) inputs, got shape {x.shape}.")
    sizes = _ints(output_size, rank, "output_size", op)
    for i, n_out in enumerate(sizes):
        axis, length = 1 + i, x.shape[1 + i]
        parts = []
        for j in range(n_out):
            lo, hi = (j * length) // n_out, -((-(j + 1) * length) // n_out)
            box = (builtins.slice(None),) * axis + (builtins.slice(lo, hi),)
            parts.append(reduce(x[box], axis=axis, keepdims=True))
        x = concatenate(parts, axis=axis)
    return _from_last(x, data_format)


def adaptive_average_pool(inputs, output_size, data_format=None) -> Tensor:
    """Mean over output_size windows per spatial axis (PyTorch's adaptive windows)."""
    return _adaptive("adaptive_average_pool", mean, inputs, output_size, data_format)


def adaptive_max_pool(inputs, output_size, data_format=None) -> Tensor:
    """Maximum over output_size windows per spatial axis (ties share the gradient, as ops.max)."""
    return _adaptive("adaptive_max_pool", max, inputs, output_size, data_format)
