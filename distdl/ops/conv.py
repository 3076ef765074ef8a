"""Convolution and pooling ops of keras.ops.nn (1-D and 2-D), recorded with the window kernels
of distdl.layers: `Geometry` (padding, strided window views, col2im) from layers/im2col.py and
the pooling passes of layers/pooling.py, and Conv2D's Winograd plan where it applies, so the ops
and the built-in layers compute alike. Each call takes a fresh `Scratch`: its buffers belong to
that call and its vjp only (layers/scratch.py's rule with one call per owner).

Shapes (channels_last; channels_first inputs are transposed in and out):
- conv: inputs (N, [H,] W, C), kernel ([kh,] kw, C // groups, F) -> (N, [Ho,] Wo, F); a kernel
  with fewer input channels than the inputs makes a grouped convolution, as in Keras.
- depthwise_conv: kernel ([kh,] kw, C, M) -> (N, [Ho,] Wo, C * M), output channel c * M + m.
- max_pool / average_pool: (N, [H,] W, C) -> (N, [Ho,] Wo, C). Max pooling sends a window's
  gradient to its first maximum (row-major), as TensorFlow does; 'same' average pooling divides
  by the number of real (unpadded) values in each window.
3-D windows (inputs of rank 5) are not implemented and refused.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, is_tracked, result, transpose
from ..errors import ConfigError, ShapeError
from ..layers.im2col import Geometry, output_length
from ..layers.pooling import max_grad, pool_windows, window_counts
from ..layers.scratch import Scratch
from ..layers.winograd import Winograd, winograd_applies
from .shape import reshape

__all__ = ["conv", "depthwise_conv", "max_pool", "average_pool"]


def _tuple(value, n: int, arg: str, op: str) -> tuple:
    """An int or n positive ints as an n-tuple."""
    try:
        t = (int(value),) * n if np.isscalar(value) else tuple(int(v) for v in value)
    except (TypeError, ValueError):
        t = ()
    if len(t) != n or min(t) <= 0:
        raise ConfigError(f"ops.{op}: {arg} must be a positive int or a tuple of {n} positive ints, got {value!r}.")
    return t


def _channels_last(op: str, inputs, data_format):
    """(inputs as a channels_last Tensor, spatial rank, whether the output goes back to channels_first)."""
    x = as_tensor(inputs)
    nd = np.ndim(x.value)
    if nd not in (3, 4):
        more = " (3-D windows are not implemented)" if nd == 5 else ""
        raise ShapeError(f"ops.{op}: expects inputs of rank 3 (batch, steps, channels) or 4 (batch, height, "
                         f"width, channels), got shape {np.shape(x.value)}{more}.")
    fmt = "channels_last" if data_format is None else data_format
    if fmt not in ("channels_last", "channels_first"):
        raise ConfigError(f"ops.{op}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}.")
    first = fmt == "channels_first"
    return (transpose(x, (0, *range(2, nd), 1)) if first else x), nd - 2, first


def _restore(y: Tensor, first: bool) -> Tensor:
    nd = y.ndim
    return transpose(y, (0, nd - 1, *range(1, nd - 1))) if first else y


def _geometry(op: str, x4_shape, window, strides, dilation, padding, rank) -> Geometry:
    """The window arithmetic of one call on the (N, H, W, C) view; a window that does not fit
    names the op and the shapes."""
    pad = str(padding).lower()
    if pad not in ("valid", "same"):
        raise ConfigError(f"ops.{op}: padding must be 'valid' or 'same', got {padding!r}.")
    as2 = (lambda t: t) if rank == 2 else (lambda t: (1,) + tuple(t))
    window, strides, dilation = as2(window), as2(strides), as2(dilation)
    out = [output_length(d, k, s, pad, r) for d, k, s, r in zip(x4_shape[1:3], window, strides, dilation)]
    if min(out) <= 0:
        eff = tuple(r * (k - 1) + 1 for k, r in zip(window, dilation))[2 - rank:]
        shape = x4_shape if rank == 2 else (x4_shape[0],) + tuple(x4_shape[2:])
        raise ShapeError(f"ops.{op}: window {eff} is larger than the input {tuple(x4_shape[1:3])[2 - rank:]} "
                         f"with padding={padding!r} (input shape {shape}).")
    return Geometry(x4_shape, window, strides, dilation, pad, f"ops.{op}")


def _cols(g: Geometry, xp: np.ndarray, groups: int) -> np.ndarray:
    """im2col per group: the windows of xp as (groups, rows, kh * kw * C // groups) (one copy)."""
    n, (ho, wo), c = xp.shape[0], g.out_hw, xp.shape[3]
    win = g.windows(xp)   # (n, Ho, Wo, kh, kw, C), a view
    k = g.kernel[0] * g.kernel[1]
    win = win.reshape(n * ho * wo, k, groups, c // groups)
    return np.ascontiguousarray(win.transpose(2, 0, 1, 3)).reshape(groups, n * ho * wo, k * (c // groups))


def _grouped_conv(op: str, x: Tensor, k: Tensor, strides, padding, dilation_rate, rank: int) -> Tensor:
    """conv on channels_last x with a ([kh,] kw, C // groups, F) kernel."""
    xv, kv = np.asarray(x.value), np.asarray(k.value)
    if kv.ndim != rank + 2:
        raise ShapeError(f"ops.{op}: a kernel for inputs of shape {xv.shape} needs rank {rank + 2} "
                         f"(spatial..., in_channels, out_channels), got shape {kv.shape}.")
    c, (cg, f) = xv.shape[-1], kv.shape[-2:]
    if cg == 0 or c % cg or f % (c // cg):
        raise ShapeError(f"ops.{op}: inputs of shape {xv.shape} have {c} channels, which a kernel of shape "
                         f"{kv.shape} ({cg} input channels per group, {f} filters) cannot split into equal groups.")
    groups = c // cg
    x4 = xv if rank == 2 else xv[:, None]
    g = _geometry(op, x4.shape, kv.shape[:rank], _tuple(strides, rank, "strides", op),
                  _tuple(dilation_rate, rank, "dilation_rate", op), padding, rank)
    scratch = Scratch()   # this call's own buffers: the vjp may use them until the tape is dropped
    xp = g.pad(x4, scratch, "xp")
    need_x, need_k = is_tracked(x), is_tracked(k)
    y_shape = xv.shape[:1] + g.out_hw[2 - rank:] + (f,)
    if (groups == 1 and rank == 2 and xv.shape[0] and xv.dtype == kv.dtype and xv.dtype.itemsize >= 4
            and winograd_applies(g.kernel, g.strides, g.dilation, c, f)):
        y, vjp = _winograd(g, xp, kv, scratch, need_x, need_k, xv.shape)
    else:
        y, vjp = _im2col(g, xp, kv, groups, need_x, need_k, xv.shape)
    return result(y.reshape(y_shape), (x, k), vjp)


def _im2col(g: Geometry, xp, kv, groups: int, need_x: bool, need_k: bool, x_shape):
    """(output (N, Ho, Wo, F), vjp): the windows times the kernel, one GEMM per group; backward,
    the kernel gradient by GEMM and the input's by one GEMM per kernel offset and col2im."""
    n, (ho, wo), taps, c = xp.shape[0], g.out_hw, g.kernel[0] * g.kernel[1], xp.shape[3]
    cg, f = kv.shape[-2:]
    fg = f // groups
    kmat = kv.reshape(taps, cg, groups, fg).transpose(2, 0, 1, 3).reshape(groups, taps * cg, fg)
    z = np.matmul(_cols(g, xp, groups), kmat)   # (groups, rows, fg)
    y = z[0] if groups == 1 else z.transpose(1, 0, 2)

    def vjp(gy):
        dz = np.ascontiguousarray(np.reshape(gy, (n * ho * wo, groups, fg)).transpose(1, 0, 2))
        gx = gk = None
        if need_k:   # windows rebuilt from the padded input rather than kept from the forward
            gk = np.matmul(_cols(g, xp, groups).transpose(0, 2, 1), dz)   # (groups, taps * cg, fg)
            gk = gk.reshape(groups, taps, cg, fg).transpose(1, 2, 0, 3).reshape(kv.shape)
        if need_x:   # per kernel offset a (rows, C) window gradient, summed back by col2im
            kt = kv.reshape(taps, cg, groups, fg).transpose(2, 0, 3, 1)          # (groups, taps, fg, cg)
            dwin = np.matmul(dz[:, None], kt)                                      # (groups, taps, rows, cg)
            dwin = dwin[0] if groups == 1 else dwin.transpose(1, 2, 0, 3).reshape(taps, n * ho * wo, c)
            dxp = np.empty(g.padded_shape, dtype=dwin.dtype)
            g.col2im(dwin, dxp)
            gx = g.unpad(dxp).reshape(x_shape)
        return gx, gk
    return y, vjp


def _winograd(g: Geometry, xp, kv, scratch: Scratch, need_x: bool, need_k: bool, x_shape):
    """(output, vjp) by the layers' Winograd F(2x2, 3x3) plan, where it applies (as Conv2D uses
    it: 3x3, stride 1, >= 16 channels and 8 filters, float32/float64)."""
    plan = Winograd(g.padded_shape, kv.shape[-1], scratch)
    y = np.empty((xp.shape[0],) + g.out_hw + kv.shape[-1:], dtype=xp.dtype)
    state = plan.forward(xp, kv, y, training=need_x or need_k)

    def vjp(gy):
        dy = np.ascontiguousarray(np.reshape(gy, y.shape), dtype=y.dtype)
        gk = np.empty(kv.shape, dtype=y.dtype) if need_k else None
        dxp = plan.backward(state, lambda a, b: dy[a:b], gk, need_x, y.dtype)
        return (None if dxp is None else np.array(g.unpad(dxp)).reshape(x_shape)), gk
    return y, vjp


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1) -> Tensor:
    """N-D convolution (cross-correlation, as Keras) of inputs (N, [H,] W, C) with kernel
    ([kh,] kw, C // groups, F); padding 'valid' or 'same' (TensorFlow's split)."""
    x, rank, first = _channels_last("conv", inputs, data_format)
    return _restore(_grouped_conv("conv", x, as_tensor(kernel), strides, padding, dilation_rate, rank), first)


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1) -> Tensor:
    """Each input channel convolved with its own M filters: kernel ([kh,] kw, C, M) gives
    C * M output channels (channel c * M + m) — a grouped convolution with C groups."""
    x, rank, first = _channels_last("depthwise_conv", inputs, data_format)
    k = as_tensor(kernel)
    ks, c = np.shape(k.value), np.shape(x.value)[-1]
    if len(ks) != rank + 2 or ks[-2] != c:
        raise ShapeError(f"ops.depthwise_conv: inputs of shape {np.shape(x.value)} need a kernel of shape "
                         f"(spatial..., {c}, depth_multiplier) of rank {rank + 2}, got {ks}.")
    k = reshape(k, ks[:rank] + (1, c * ks[-1]))
    return _restore(_grouped_conv("depthwise_conv", x, k, strides, padding, dilation_rate, rank), first)


def _pool(op: str, mode: str, inputs, pool_size, strides, padding, data_format) -> Tensor:
    x, rank, first = _channels_last(op, inputs, data_format)
    xv = np.asarray(x.value)
    window = _tuple(pool_size, rank, "pool_size", op)
    steps = window if strides is None else _tuple(strides, rank, "strides", op)
    x4 = xv if rank == 2 else xv[:, None]
    g = _geometry(op, x4.shape, window, steps, (1,) * rank, padding, rank)
    low = -np.inf if xv.dtype.kind == "f" else np.iinfo(xv.dtype).min if xv.dtype.kind in "iu" else False
    xp = g.pad(x4, Scratch(), "xp", low if mode == "max" else 0)
    y = np.empty(x4.shape[:1] + g.out_hw + x4.shape[3:], dtype=xv.dtype)
    pool_windows(g, xp, y, mode)
    counts = None
    if mode == "avg":
        counts = window_counts(g, y.dtype) if g.padded else y.dtype.type(np.prod(window))
        y /= counts

    def vjp(gy):
        dy = np.reshape(gy, y.shape)
        dxp = np.zeros(g.padded_shape, dtype=dy.dtype)
        if mode == "max":
            max_grad(g, xp, y, dy, dxp, Scratch())
        else:
            share = dy / counts
            for sl in g.offset_slices():
                dxp[sl] += share
        return (g.unpad(dxp).reshape(xv.shape),)
    out = result(y.reshape(xv.shape[:1] + g.out_hw[2 - rank:] + xv.shape[-1:]), (x,), vjp)
    return _restore(out, first)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None) -> Tensor:
    """The maximum of each `pool_size` window (strides default to pool_size)."""
    return _pool("max_pool", "max", inputs, pool_size, strides, padding, data_format)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None) -> Tensor:
    """The mean of each `pool_size` window (strides default to pool_size)."""
    return _pool("average_pool", "avg", inputs, pool_size, strides, padding, data_format)
