"""Sliding windows shared by convolution and pooling: padding arithmetic, im2col, col2im.

Everything works on channels-last 4-D arrays (N, H, W, C); the 1-D layers view
(N, L, C) as (N, 1, L, C), so one implementation serves both ranks.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import ConfigError, ShapeError, unknown_name
from .base import Layer
from .scratch import Scratch

__all__ = ["PADDINGS", "normalize_tuple", "normalize_padding", "check_data_format", "output_length", "pad_amounts",
           "Geometry"]

PADDINGS = ("valid", "same")
_CHUNK_BYTES = 1 << 20  # windows + outputs of one chunk of images: kept in L2 between passes


def normalize_tuple(value, n: int, arg: str, layer: str) -> tuple[int, ...]:
    """An int or a length-`n` sequence of positive ints -> tuple (Keras's `standardize_tuple`).

    Args:
        value: the argument given.
        n: the tuple's length (the layer's rank).
        arg: the argument's name, for the error.
        layer: the layer's name, for the error.
    """
    def whole(v) -> bool:  # Keras 3 takes ints only: "3", 2.5 and True are refused
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0
    t = (value,) * n if whole(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(t) != n or not all(whole(v) for v in t):
        raise ConfigError(f"Layer {layer!r}: {arg} must be a positive int or a tuple of {n} "
                          f"positive ints, got {value!r}.")
    return tuple(int(v) for v in t)


def normalize_padding(padding, layer: str, valid=PADDINGS) -> str:
    """'valid' / 'same' (any case; 'causal' where the caller allows it).

    Args:
        padding: the argument given.
        layer: the layer's name, for the error.
        valid: the paddings the layer allows.
    """
    p = str(padding).lower()
    if p not in valid:
        raise unknown_name(f"padding for layer {layer!r}:", padding, valid)
    return p


def check_data_format(data_format, layer: str) -> None:
    """Only channels_last is implemented (Keras's default); anything else is refused.

    Args:
        data_format: the argument given (None means channels_last).
        layer: the layer's name, for the error.
    """
    if data_format not in (None, "channels_last"):
        raise ConfigError(f"Layer {layer!r} supports data_format='channels_last' only, got {data_format!r}.")


def output_length(length: int, window: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Keras's output size along one axis (<= 0 means the window does not fit).

    Args:
        length: the input size along the axis.
        window: the window (kernel) size.
        stride: the step between windows.
        padding: "valid", "same" or "causal".
        dilation: the spacing between window taps.
    """
    if padding == "valid":
        return (length - dilation * (window - 1) - 1) // stride + 1
    return (length + stride - 1) // stride  # 'same' and 'causal'


def pad_amounts(length: int, window: int, stride: int, padding: str,
                dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding along one axis; TF's 'same' split puts the extra one after.

    Args:
        length: the input size along the axis.
        window: the window (kernel) size.
        stride: the step between windows.
        padding: "valid", "same" or "causal".
        dilation: the spacing between window taps.
    """
    eff = dilation * (window - 1) + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return eff - 1, 0
    total = max((output_length(length, window, stride, padding) - 1) * stride + eff - length, 0)
    return total // 2, total - total // 2


class Geometry:
    """Window arithmetic of one conv/pool call on an (N, H, W, C) input.

    kernel, strides, dilation and pads are (h, w) pairs; pads are ((top, bottom), (left, right)).

    Args:
        in_shape: the input's (N, H, W, C) shape (rank-1 layers pass H = 1).
        kernel: the window size (h, w).
        strides: the steps between windows (h, w).
        dilation: the spacing between window taps (h, w).
        padding: "valid", "same" or "causal".
        layer: the layer's name, for the error when the window does not fit.
    """

    def __init__(self, in_shape, kernel, strides, dilation, padding: str, layer: str):
        n, h, w, c = in_shape
        self.in_shape = tuple(in_shape)
        self.kernel, self.strides, self.dilation = tuple(kernel), tuple(strides), tuple(dilation)
        self.out_hw = tuple(output_length(d, k, s, padding, r)
                            for d, k, s, r in zip((h, w), kernel, strides, dilation))
        if min(self.out_hw) <= 0:
            eff = tuple(r * (k - 1) + 1 for k, r in zip(kernel, dilation))
            raise ShapeError(f"Layer {layer!r}: window {eff} is larger than the input "
                             f"{(h, w)} with padding={padding!r} (input shape {tuple(in_shape[1:])}).")
        self.pads = tuple(pad_amounts(d, k, s, padding, r)
                          for d, k, s, r in zip((h, w), kernel, strides, dilation))
        self.padded_shape = (n, h + sum(self.pads[0]), w + sum(self.pads[1]), c)

    @property
    def padded(self) -> bool:
        """Whether the padding adds any border."""
        return any(self.pads[0]) or any(self.pads[1])

    def offset_slices(self):
        """For each kernel offset (row-major), the slice of the padded input it reads."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.strides, self.dilation
        ho, wo = self.out_hw
        for i in range(kh):
            for j in range(kw):
                yield (slice(None), slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
                       slice(j * dw, j * dw + sw * (wo - 1) + 1, sw), slice(None))

    def pad(self, x: np.ndarray, scratch: Scratch, key: str, value=0.0) -> np.ndarray:
        """x with its 'same'/'causal' border filled by `value` (x itself when unpadded), in scratch `key`.

        Args:
            x: the input (N, H, W, C).
            scratch: the layer's `Scratch`.
            key: the buffer's key in it.
            value: the border's value (0, or -inf for max pooling).
        """
        if not self.padded:
            return x
        (t, b), (l, r) = self.pads
        _, h, w, _ = x.shape
        xp = scratch.get(key, self.padded_shape, x.dtype)
        xp[:, :t] = value
        xp[:, t + h:] = value
        xp[:, t:t + h, :l] = value
        xp[:, t:t + h, l + w:] = value
        xp[:, t:t + h, l:l + w] = x
        return xp

    def unpad(self, dxp: np.ndarray) -> np.ndarray:
        """The interior of a padded-input gradient (a view).

        Args:
            dxp: the gradient w.r.t. the padded input (N, Hp, Wp, C).
        """
        if not self.padded:
            return dxp
        (t, _), (l, _) = self.pads
        _, h, w, _ = self.in_shape
        return dxp[:, t:t + h, l:l + w]

    @property
    def pointwise(self) -> bool:
        """A 1x1, stride-1, unpadded window: the input rows already are the im2col rows."""
        return self.kernel == (1, 1) and self.strides == (1, 1) and not self.padded

    @property
    def transposed(self) -> bool:
        """Store windows one kernel offset per row (K, rows) rather than (rows, K).

        With one input channel a window row is only kw values long, which copies
        slowly; transposed, each copy runs along Wo contiguous values (~5x faster).
        """
        return self.in_shape[3] == 1 and self.strides[1] == 1

    @property
    def window_size(self) -> int:
        """K = kh * kw * C, the values in one window."""
        return self.kernel[0] * self.kernel[1] * self.in_shape[3]

    def chunk_images(self, width: int, itemsize: int) -> int:
        """Images per chunk so that a chunk's windows and `width` output columns stay in cache.

        Args:
            width: the output columns per window row (e.g. filters).
            itemsize: the bytes per value.
        """
        ho, wo = self.out_hw
        per_image = ho * wo * (self.window_size + width) * itemsize
        return max(1, _CHUNK_BYTES // max(per_image, 1))

    def chunk_padded(self, itemsize: int) -> int:
        """Images per chunk so that a chunk of the padded input stays in cache (pooling).

        Args:
            itemsize: the bytes per value.
        """
        _, hp, wp, c = self.padded_shape
        return max(1, _CHUNK_BYTES // max(hp * wp * c * itemsize, 1))

    def cols_buffer(self, scratch: Scratch, key: str, images: int, dtype, ones: bool = False) -> np.ndarray:
        """Scratch `key` for the windows of up to `images` images, in this geometry's layout.

        `ones` (transposed layout only) appends a row of ones, so that a GEMM adds the bias.

        Args:
            scratch: the layer's `Scratch`.
            key: the buffer's key in it.
            images: the most images a chunk holds.
            dtype: the buffer's dtype.
            ones: whether to append the row of ones.
        """
        rows = images * self.out_hw[0] * self.out_hw[1]
        if not self.transposed:
            return scratch.get(key, (rows, self.window_size), dtype)
        buf = scratch.get(key, (self.window_size + ones, rows), dtype)
        if ones:
            buf[-1] = 1
        return buf

    def cols(self, buf: np.ndarray, rows: int) -> np.ndarray:
        """The first `rows` window rows of a `cols_buffer` as a (rows, K) matrix (a view).

        Args:
            buf: a `cols_buffer`.
            rows: the number of window rows (images * Ho * Wo).
        """
        return buf[:, :rows].T if self.transposed else buf[:rows]

    def _six(self, buf: np.ndarray, images: int) -> np.ndarray:
        """A `cols_buffer` viewed as (images, Ho, Wo, kh, kw, C) (reshapes only: no as_strided per chunk)."""
        (kh, kw), (ho, wo), c = self.kernel, self.out_hw, self.in_shape[3]
        rows = images * ho * wo
        if not self.transposed:
            return buf[:rows].reshape(images, ho, wo, kh, kw, c)
        return buf[:self.window_size, :rows].reshape(kh, kw, c, images, ho, wo).transpose(3, 4, 5, 0, 1, 2)

    def windows(self, xp: np.ndarray) -> np.ndarray:
        """The windows of the padded images xp (n, Hp, Wp, C) as a read-only (n, Ho, Wo, kh, kw, C) view.

        Built once per pass and sliced per chunk: as_strided costs ~10 us a call.

        Args:
            xp: the padded images (n, Hp, Wp, C).
        """
        n, _, _, c = xp.shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.strides, self.dilation
        ho, wo = self.out_hw
        s = xp.strides
        return as_strided(xp, shape=(n, ho, wo, kh, kw, c),
                          strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
                          writeable=False)

    def im2col(self, win: np.ndarray, buf: np.ndarray) -> np.ndarray:
        """Copies some images' `windows` into `buf`; returns them as (rows, K).

        Args:
            win: the images' `windows` view.
            buf: a `cols_buffer` with room for them.
        """
        n = win.shape[0]
        np.copyto(self._six(buf, n), win)
        return self.cols(buf, n * self.out_hw[0] * self.out_hw[1])

    def col2im(self, dwin: np.ndarray, dxp: np.ndarray) -> None:
        """Window gradients per kernel offset, dwin (kh*kw, rows, C) -> padded-input gradient dxp
        (n, Hp, Wp, C), summing overlaps. Offset-major, each add runs along whole output rows.

        Args:
            dwin: the window gradients (kh*kw, rows, C).
            dxp: the padded-input gradient (n, Hp, Wp, C), overwritten.
        """
        n, _, _, c = dxp.shape
        ho, wo = self.out_hw
        wins = dwin[:, :n * ho * wo].reshape(-1, n, ho, wo, c)
        if self.strides == (1, 1):  # offset (0, 0) covers the box [:ho, :wo]: write it, zero the rest
            dxp[:, ho:] = 0
            dxp[:, :ho, wo:] = 0
            np.copyto(dxp[:, :ho, :wo], wins[0])
            first = 1
        else:
            dxp.fill(0)
            first = 0
        for k, sl in enumerate(self.offset_slices()):
            if k >= first:
                dxp[sl] += wins[k]


class _Windowed(Layer):
    """Base of the windowed layers (convolution, pooling) of rank 1 or 2.

    The 1-D layers run the 2-D code on (N, 1, L, C); the Geometry is kept while
    the input shape stays the same. Subclasses set `rank` and `_steps` (the name of
    the 1-D layers' one spatial axis in shape errors).
    """

    rank = 2
    _steps = "length"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._geom: Geometry | None = None

    def _as_2d(self, t: tuple) -> tuple:
        """A rank-1 (length,) tuple as the (1, length) pair the 2-D code uses."""
        return t if self.rank == 2 else (1,) + tuple(t)

    def _as_4d(self, x: np.ndarray) -> np.ndarray:
        """x (N, [H,] W, C) as (N, H, W, C)."""
        return x if self.rank == 2 else x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])

    def _check_input(self, shape) -> None:
        if len(shape) != self.rank + 1:
            raise ShapeError(f"Layer {self.name!r} ({type(self).__name__}) expects inputs of shape "
                             f"(batch, {self._steps if self.rank == 1 else 'height, width'}, channels), "
                             f"got input shape {tuple(shape)} (batch axis excluded).")

    def _geometry(self, x4_shape, kernel, strides, dilation) -> Geometry:
        if self._geom is None or self._geom.in_shape != tuple(x4_shape):
            self._geom = Geometry(x4_shape, self._as_2d(kernel), self._as_2d(strides),
                                  self._as_2d(dilation), self.padding, self.name)
        return self._geom
