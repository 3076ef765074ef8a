"""Max and average pooling (1-D and 2-D, channels_last) and their global forms.

Windowed pooling loops over the pool's kernel offsets (pool_h * pool_w strided
slices, never over samples or pixels). Max pooling sends each window's gradient
to its first maximum in row-major order, as TensorFlow's MaxPoolGrad does (tiling
windows note that offset in forward, as one uint8 per output); 'same'
average pooling divides by the number of real (unpadded) values in each window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from .base import Layer
from .im2col import Geometry, _Windowed, check_data_format, normalize_padding, normalize_tuple, output_length
from .layer_utils import sized

__all__ = ["PoolCache", "window_counts", "pool_windows", "max_grad", "MaxPooling1D", "MaxPooling2D",
           "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D"]


@dataclass(slots=True)
class PoolCache:
    """What windowed pooling's backward needs from its forward.

    Args:
        geometry: the window geometry (layers/im2col.py).
        xp: the padded input (N, Hp, Wp, C); None where `winner` replaces it.
        y: the output (N, Ho, Wo, C).
        x_shape: the input's shape, for dx.
        winner: tiling max pooling: each window's first maximal offset (uint8, like y), else None."""

    geometry: Geometry
    xp: np.ndarray | None
    y: np.ndarray
    x_shape: tuple
    winner: np.ndarray | None


class _Pooling(_Windowed):
    """Shared windowed pooling of rank 1 or 2 (subclasses set `rank` and `_mode`).

    Args:
        pool_size: the window size per spatial axis (an int applies to every axis).
        strides: the step between windows per axis (None: pool_size).
        padding: "valid" (windows inside the input) or "same" (output size ceil(size / stride)).
        data_format: "channels_last" or None (the only layout implemented).
        **kwargs: the base `Layer` arguments."""

    rank = 2
    _steps = "steps"
    _mode = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format, self.name)
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size", self.name)
        self.strides = (self.pool_size if strides is None
                        else normalize_tuple(strides, self.rank, "strides", self.name))
        self.padding = normalize_padding(padding, self.name)
        self._counts = None  # (geometry, dtype, counts) of the last 'same' average pooling

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        spatial = tuple(input_shape[:-1])
        out = tuple(sized(d, lambda n, p=p, s=s: output_length(n, p, s, self.padding))
                    for d, p, s in zip(spatial, self.pool_size, self.strides))
        if min((d for d in out if d is not None), default=1) <= 0:
            raise ShapeError(f"Layer {self.name!r}: pool_size {self.pool_size} is larger than the input "
                             f"{spatial} with padding='valid' (input shape {tuple(input_shape)}).")
        return out + (input_shape[-1],)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def _window_counts(self, g: Geometry, dtype):
        """Real (unpadded) values per window: a scalar for 'valid', (Ho, Wo, 1) for 'same'."""
        if not g.padded:
            return dtype.type(np.prod(g.kernel))
        if self._counts is None or self._counts[0] is not g or self._counts[1] != dtype:
            self._counts = (g, dtype, window_counts(g, dtype))
        return self._counts[2]

    def forward(self, x, training=False):
        """x (N, [H,] W, C) -> y (N, [Ho,] Wo, C)."""
        self._check_input(x.shape[1:])
        if None in self.input_shape:  # built for a variable axis: this batch's window must fit
            self.compute_output_shape(x.shape[1:])
        n, c = x.shape[0], x.shape[-1]
        x4 = self._as_4d(x)
        g = self._geometry(x4.shape, self.pool_size, self.strides, (1,) * self.rank)
        fill = -np.inf if self._mode == "max" else 0.0
        s = self.scratch
        xp = g.pad(x4, s, "xp", fill)
        y = s.output("y", (n,) + g.out_hw + (c,), x.dtype, training)
        step = g.chunk_padded(x.itemsize)
        winner = s.get("winner", y.shape, np.uint8) if self._tiled_max(g) else None
        if winner is not None:
            scratch = (s.get("first_hit", (min(step, n),) + y.shape[1:], np.bool_),
                       s.get("first_step", (min(step, n),) + y.shape[1:], np.uint8))
        for a in range(0, n, step):  # a chunk of images stays in cache across the kernel offsets
            xs, ys = xp[a:a + step], y[a:a + step]
            pool_windows(g, xs, ys, self._mode)
            if winner is not None:
                _first_maxima(g, xs, ys, winner[a:a + step], *(b[:len(ys)] for b in scratch))
        if self._mode == "avg":
            y /= self._window_counts(g, y.dtype)
        self.cache = PoolCache(g, None if winner is not None else xp, y, x.shape, winner)  # winners replace the input
        return y.reshape((n,) + g.out_hw[2 - self.rank:] + (c,))

    def _tiled_max(self, g: Geometry) -> bool:
        """Max pooling whose windows tile the input (stride = pool size): each input value
        is in at most one window, so backward only needs each window's winning offset."""
        return self._mode == "max" and g.kernel == g.strides and g.kernel[0] * g.kernel[1] <= 255

    def backward(self, dy):
        """dy (N, [Ho,] Wo, C) -> dx (N, [H,] W, C)."""
        c = self.cache
        g = c.geometry
        dy = dy.reshape(c.y.shape)
        tiled = self._mode == "max" and g.kernel == g.strides
        dxp = self.scratch.get("dxp", g.padded_shape, dy.dtype)
        if tiled:  # the windows write every value they cover: zero only what they leave out
            hc, wc = (o * k for o, k in zip(g.out_hw, g.kernel))
            dxp[:, hc:] = 0
            dxp[:, :hc, wc:] = 0
        else:
            dxp.fill(0)
        if c.winner is not None:
            self._winner_grad(g, c.winner, dy, dxp)
        elif self._mode == "avg":
            share = dy / self._window_counts(g, dy.dtype)
            for sl in g.offset_slices():
                dxp[sl] += share
        else:
            max_grad(g, c.xp, c.y, dy, dxp, self.scratch)
        return g.unpad(dxp).reshape(c.x_shape)

    def _winner_grad(self, g: Geometry, winner, dy, dxp) -> None:
        """Tiled max pooling's backward: each window's dy goes to its winning offset."""
        step = g.chunk_padded(dy.itemsize)
        hit = self.scratch.get("winner_hit", (min(step, len(dy)),) + dy.shape[1:], np.bool_)
        for a in range(0, len(dy), step):
            w, d, dx = winner[a:a + step], dy[a:a + step], dxp[a:a + step]
            h = hit[:len(w)]
            for k, sl in enumerate(g.offset_slices()):
                np.equal(w, k, out=h)
                np.multiply(d, h, out=dx[sl])

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding,
                   data_format="channels_last")
        return cfg


def window_counts(g: Geometry, dtype) -> np.ndarray:
    """Real (unpadded) input values in each window of a padded geometry, (Ho, Wo, 1) of `dtype`.

    Args:
        g: the pooling geometry.
        dtype: the result's dtype."""
    per_axis = []
    for size, k, s, (before, _), o in zip(g.in_shape[1:3], g.kernel, g.strides, g.pads, g.out_hw):
        start = np.arange(o) * s - before
        per_axis.append(np.minimum(start + k, size) - np.maximum(start, 0))
    return np.multiply.outer(*per_axis).astype(dtype)[:, :, None]


def pool_windows(g: Geometry, xs, ys, mode: str) -> None:
    """ys = the max ("max") or the sum ("avg") of each window of the padded images xs.

    Args:
        g: the pooling geometry.
        xs: the padded images (N, Hp, Wp, C).
        ys: the output (N, Ho, Wo, C), written in place.
        mode: "max" or "avg"."""
    for k, sl in enumerate(g.offset_slices()):
        if k == 0:
            np.copyto(ys, xs[sl])
        elif mode == "max":
            np.maximum(ys, xs[sl], out=ys)
        else:
            ys += xs[sl]


def max_grad(g: Geometry, xp, y, dy, dxp, scratch) -> None:
    """Adds (or, for disjoint windows, writes) each window's dy at its first maximum into dxp.

    Runs per chunk of images, so that y, dy and the masks stay in cache across the offsets.

    Args:
        g: the pooling geometry.
        xp: the padded input (N, Hp, Wp, C).
        y: the forward's output (N, Ho, Wo, C).
        dy: the loss gradient w.r.t. y.
        dxp: the gradient w.r.t. xp (zeros from the caller), filled in place.
        scratch: the `Scratch` that lends the boolean masks.
    """
    # windows that do not overlap write disjoint slices: no accumulation needed
    overlap = any(k > s for k, s in zip(g.kernel, g.strides))
    taken = scratch.get("taken", y.shape, np.bool_)
    hit = scratch.get("hit", y.shape, np.bool_)
    part = scratch.get("part", y.shape, dy.dtype) if overlap else None
    last = g.kernel[0] * g.kernel[1] - 1
    step = g.chunk_padded(dy.itemsize)
    for a in range(0, y.shape[0], step):
        c = slice(a, a + step)
        xs, ys, dys, dxs, tk, ht = xp[c], y[c], dy[c], dxp[c], taken[c], hit[c]
        for k, sl in enumerate(g.offset_slices()):
            if k == 0:
                mask = np.equal(xs[sl], ys, out=tk)
            else:
                mask = np.equal(xs[sl], ys, out=ht)
                np.greater(mask, tk, out=mask)  # not taken by an earlier offset: first maximum wins
                if k < last:
                    tk |= mask
            if overlap:
                np.multiply(dys, mask, out=part[c])
                dxs[sl] += part[c]
            else:
                np.multiply(dys, mask, out=dxs[sl])


def _first_maxima(g: Geometry, xs, ys, winner, hit, step) -> None:
    """winner (uint8, like ys) = the first kernel offset (row-major) where xs holds ys, the
    window's max, as TF's MaxPoolGrad picks it. Forward runs this while xs is in cache, so
    backward never reads x again. hit (bool) and step (uint8) are scratch like ys."""
    slices = list(g.offset_slices())
    winner.fill(len(slices) - 1)
    for k in range(len(slices) - 2, -1, -1):  # later offsets first: the earliest maximum wins
        np.equal(xs[slices[k]], ys, out=hit)
        np.subtract(winner, k, out=step)       # winner > k here: no wrap-around
        step *= hit.view(np.uint8)
        winner -= step


class MaxPooling1D(_Pooling):
    """Max over windows of `pool_size` steps; input (batch, steps, channels)."""
    rank, _mode = 1, "max"


class MaxPooling2D(_Pooling):
    """Max over `pool_size` windows; input (batch, height, width, channels).

    Args:
        pool_size: the window size per spatial axis (an int applies to every axis).
        strides: the step between windows per axis (None: pool_size).
        padding: "valid" (windows inside the input) or "same" (output size ceil(size / stride)).
        data_format: "channels_last" or None (the only layout implemented).
        **kwargs: the base `Layer` arguments."""
    rank, _mode = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """Mean over windows of `pool_size` steps; input (batch, steps, channels)."""
    rank, _mode = 1, "avg"


class AveragePooling2D(_Pooling):
    """Mean over `pool_size` windows; input (batch, height, width, channels).

    Args:
        pool_size: the window size per spatial axis (an int applies to every axis).
        strides: the step between windows per axis (None: pool_size).
        padding: "valid" (windows inside the input) or "same" (output size ceil(size / stride)).
        data_format: "channels_last" or None (the only layout implemented).
        **kwargs: the base `Layer` arguments."""
    rank, _mode = 2, "avg"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling(Layer):
    """Reduce all spatial axes: (N, *spatial, C) -> (N, C), or (N, 1.., C) with keepdims.

    Args:
        data_format: "channels_last" or None (the only layout implemented).
        keepdims: whether to keep the spatial axes, with size 1.
        **kwargs: the base `Layer` arguments."""

    rank = 2
    _mode = "avg"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format, self.name)
        self.keepdims = bool(keepdims)

    def _check_input(self, shape) -> None:
        if len(shape) != self.rank + 1:
            raise ShapeError(f"Layer {self.name!r} ({type(self).__name__}) expects inputs of rank "
                             f"{self.rank + 2} (batch axis included), got input shape {tuple(shape)} "
                             f"(batch axis excluded).")

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        c = input_shape[-1]
        return (1,) * self.rank + (c,) if self.keepdims else (c,)

    def forward(self, x, training=False):
        self._check_input(x.shape[1:])
        axes = tuple(range(1, self.rank + 1))
        if self._mode == "avg":
            y = np.mean(x, axis=axes, keepdims=True)
            self.cache = x.shape
        else:
            y = np.max(x, axis=axes, keepdims=True)
            self.cache = (x, y)
        return y if self.keepdims else y.reshape(x.shape[0], x.shape[-1])

    def backward(self, dy):
        if self._mode == "avg":
            shape = self.cache
            scale = 1.0 / np.prod(shape[1:-1])
            dy = dy.reshape((shape[0],) + (1,) * self.rank + shape[-1:])
            return np.broadcast_to(dy * dy.dtype.type(scale), shape).copy()
        x, y = self.cache
        dy = dy.reshape(y.shape)
        # tf.reduce_max's gradient: split equally among tied maxima
        hit = (x == y).astype(dy.dtype)
        ties = np.sum(hit, axis=tuple(range(1, self.rank + 1)), keepdims=True)
        hit *= dy / np.maximum(ties, 1)
        return hit

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(data_format="channels_last", keepdims=self.keepdims)
        return cfg


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over steps: (batch, steps, channels) -> (batch, channels); with a (batch, steps)
    mask, the mean over the unmasked steps (Keras; a sample with no step unmasked gives 0)."""
    rank, _mode = 1, "avg"
    takes_mask = True

    def forward(self, x, training=False, mask=None):
        if mask is None:
            return super().forward(x, training)
        self._check_input(x.shape[1:])
        keep = mask.astype(x.dtype)[:, :, None]                       # (batch, steps, 1)
        weights = keep / np.maximum(keep.sum(axis=1, keepdims=True), 1)
        self.cache = ("masked", weights)  # in the cache, so a layer called twice keeps both
        y = np.sum(x * weights, axis=1, keepdims=True)
        return y if self.keepdims else y[:, 0]

    def backward(self, dy):
        if self.cache[0] != "masked":
            return super().backward(dy)
        return dy.reshape(dy.shape[0], 1, -1) * self.cache[1]


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width: (batch, h, w, channels) -> (batch, channels)."""
    rank, _mode = 2, "avg"


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over steps: (batch, steps, channels) -> (batch, channels)."""
    rank, _mode = 1, "max"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over height and width: (batch, h, w, channels) -> (batch, channels)."""
    rank, _mode = 2, "max"


MaxPool1D, MaxPool2D = MaxPooling1D, MaxPooling2D
AvgPool1D, AvgPool2D = AveragePooling1D, AveragePooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
