"""Shape-changing layers without weights: ZeroPadding, Cropping, UpSampling (1-D/2-D), Permute, RepeatVector.

All are channels_last and keep the batch axis; backward maps dy back to x's shape. A None
(variable) spatial axis stays None in the output shape.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError, unknown_name
from .base import Layer
from .im2col import check_data_format, normalize_tuple
from .layer_utils import sized

__all__ = ["ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
           "Permute", "RepeatVector"]


def _pairs(value, rank: int, arg: str, layer: str) -> tuple[tuple[int, int], ...]:
    """Keras padding/cropping spec -> one (before, after) pair per spatial axis.

    Accepts an int (all sides), `rank` ints (symmetric per axis) or `rank` pairs;
    for rank 1 a pair of ints means (before, after), as in Keras's 1-D layers.
    """
    try:
        if np.isscalar(value):
            pairs = ((int(value), int(value)),) * rank
        elif rank == 1 and len(value) == 2 and all(np.isscalar(v) for v in value):
            pairs = ((int(value[0]), int(value[1])),)
        else:
            pairs = tuple((int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1])) for v in value)
            if any(len(v) != 2 for v in value if not np.isscalar(v)):
                pairs = ()
    except (TypeError, ValueError, IndexError):
        pairs = ()
    if len(pairs) != rank or any(p < 0 for pair in pairs for p in pair):
        raise ConfigError(f"Layer {layer!r}: {arg} must be a non-negative int, {rank} ints or {rank} "
                          f"(before, after) pairs, got {value!r}.")
    return pairs


class _Spatial(Layer):
    """Base for layers acting on the `rank` spatial axes of (N, *spatial, C)."""

    rank = 2

    def _check_input(self, shape) -> None:
        if len(shape) != self.rank + 1:
            raise ShapeError(f"Layer {self.name!r} ({type(self).__name__}) expects inputs of rank "
                             f"{self.rank + 2} (batch, {self.rank} spatial axes, channels), "
                             f"got input shape {tuple(shape)} (batch axis excluded).")

    def _pairs_config(self, arg: str, pairs) -> dict:
        """The config with `pairs` as Keras writes `arg` (one pair for 1-D layers), plus data_format in 2-D."""
        cfg = super().get_config()
        cfg[arg] = [list(p) for p in pairs] if self.rank > 1 else list(pairs[0])
        if self.rank > 1:
            cfg["data_format"] = "channels_last"
        return cfg


class _ZeroPadding(_Spatial):
    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format, self.name)
        self.padding = _pairs(padding, self.rank, "padding", self.name)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        return tuple(sized(d, lambda n, b=b, a=a: n + b + a) for d, (b, a) in zip(input_shape[:-1], self.padding)) \
            + (input_shape[-1],)

    def forward(self, x, training=False):
        self._check_input(x.shape[1:])
        self.cache = x.shape
        return np.pad(x, ((0, 0),) + self.padding + ((0, 0),))

    def backward(self, dy):
        shape = self.cache
        sl = tuple(slice(b, b + d) for d, (b, _) in zip(shape[1:-1], self.padding))
        return dy[(slice(None),) + sl]

    def get_config(self):
        return self._pairs_config("padding", self.padding)


class ZeroPadding1D(_ZeroPadding):
    """Pads the steps axis of (N, steps, C) with zeros.

    Args:
        padding: zeros to add at each end (int), or (left, right).
        **kwargs: the base `Layer` arguments."""
    rank = 1

    def __init__(self, padding=1, **kwargs):
        super().__init__(padding, None, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Pads height and width with zeros.

    Args:
        padding: an int (all four sides), (h, w) (symmetric per axis) or ((top, bottom), (left, right)).
        data_format: "channels_last" (inputs (N, h, w, C)) or None; the only layout implemented.
        **kwargs: the base `Layer` arguments."""
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class _Cropping(_Spatial):
    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format, self.name)
        self.cropping = _pairs(cropping, self.rank, "cropping", self.name)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        out = tuple(sized(d, lambda n, b=b, a=a: n - b - a) for d, (b, a) in zip(input_shape[:-1], self.cropping))
        if min((d for d in out if d is not None), default=1) <= 0:
            raise ShapeError(f"Layer {self.name!r}: cropping {self.cropping} leaves nothing of input "
                             f"shape {tuple(input_shape)}.")
        return out + (input_shape[-1],)

    def forward(self, x, training=False):
        self.compute_output_shape(x.shape[1:])  # checks the rank and that something is left
        self.cache = x.shape
        sl = tuple(slice(b, d - a) for d, (b, a) in zip(x.shape[1:-1], self.cropping))
        return x[(slice(None),) + sl]

    def backward(self, dy):
        return np.pad(dy, ((0, 0),) + self.cropping + ((0, 0),))

    def get_config(self):
        return self._pairs_config("cropping", self.cropping)


class Cropping1D(_Cropping):
    """Crops the steps axis of (N, steps, C).

    Args:
        cropping: steps to remove at each end (int), or (start, end).
        **kwargs: the base `Layer` arguments."""
    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, None, **kwargs)


class Cropping2D(_Cropping):
    """Crops height and width.

    Args:
        cropping: an int (all four sides), (h, w) (symmetric per axis) or ((top, bottom), (left, right)).
        data_format: "channels_last" (inputs (N, h, w, C)) or None; the only layout implemented.
        **kwargs: the base `Layer` arguments."""
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class _UpSampling(_Spatial):
    """Nearest-neighbour upsampling: each spatial value repeated `size` times per axis."""

    def __init__(self, size, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format, self.name)
        if interpolation != "nearest":
            raise unknown_name(f"interpolation for layer {self.name!r}:", interpolation, ("nearest",))
        self.size = normalize_tuple(size, self.rank, "size", self.name)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        return tuple(sized(d, lambda n, s=s: n * s) for d, s in zip(input_shape[:-1], self.size)) + (input_shape[-1],)

    def forward(self, x, training=False):
        self._check_input(x.shape[1:])
        n, c = x.shape[0], x.shape[-1]
        spatial = x.shape[1:-1]
        self.cache = x.shape
        # (N, d1, 1, d2, 1, C) broadcast to (N, d1, s1, d2, s2, C), one copy
        inter = (n,) + sum(((d, 1) for d in spatial), ()) + (c,)
        full = (n,) + sum(((d, s) for d, s in zip(spatial, self.size)), ()) + (c,)
        out = np.broadcast_to(x.reshape(inter), full).reshape(
            (n,) + tuple(d * s for d, s in zip(spatial, self.size)) + (c,))
        return np.ascontiguousarray(out)

    def backward(self, dy):
        shape = self.cache
        full = (shape[0],) + sum(((d, s) for d, s in zip(shape[1:-1], self.size)), ()) + (shape[-1],)
        return dy.reshape(full).sum(axis=tuple(range(2, 2 * self.rank + 1, 2)))

    def get_config(self):
        cfg = super().get_config()
        cfg["size"] = list(self.size) if self.rank > 1 else self.size[0]
        if self.rank > 1:
            cfg.update(data_format="channels_last", interpolation="nearest")
        return cfg


class UpSampling1D(_UpSampling):
    """Repeats each step `size` times: (N, steps, C) -> (N, steps * size, C).

    Args:
        size: the repeat factor.
        **kwargs: the base `Layer` arguments."""
    rank = 1

    def __init__(self, size=2, **kwargs):
        super().__init__(size, None, "nearest", **kwargs)


class UpSampling2D(_UpSampling):
    """Repeats rows and columns: (N, h, w, C) -> (N, h * sh, w * sw, C).

    Args:
        size: the factors (sh, sw), or one int for both.
        data_format: "channels_last" (inputs (N, h, w, C)) or None; the only layout implemented.
        interpolation: "nearest" (the only one supported).
        **kwargs: the base `Layer` arguments."""
    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format, interpolation, **kwargs)


class Permute(Layer):
    """Permutes the non-batch axes.

    Args:
        dims: the new order of the non-batch axes, 1-based: (2, 1) swaps the two axes.
        **kwargs: the base `Layer` arguments."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            self.dims = tuple(int(d) for d in dims)
        except (TypeError, ValueError):
            self.dims = ()
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ConfigError(f"Layer {self.name!r}: dims must be a permutation of 1..n, got {dims!r}.")
        self._inverse = (0,) + tuple(int(i) + 1 for i in np.argsort(self.dims))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ShapeError(f"Layer {self.name!r}: dims {self.dims} do not fit input shape "
                             f"{tuple(input_shape)} (batch axis excluded).")
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x, training=False):
        self.compute_output_shape(x.shape[1:])
        return x.transpose((0,) + self.dims)

    def backward(self, dy):
        return dy.transpose(self._inverse)

    def get_config(self):
        cfg = super().get_config()
        cfg["dims"] = list(self.dims)
        return cfg


class RepeatVector(Layer):
    """Repeats a (N, features) input n times: -> (N, n, features).

    Args:
        n: the number of repetitions.
        **kwargs: the base `Layer` arguments."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ConfigError(f"Layer {self.name!r}: n must be a positive int, got {n!r}.")
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ShapeError(f"Layer {self.name!r} (RepeatVector) expects inputs of shape (batch, features), "
                             f"got input shape {tuple(input_shape)} (batch axis excluded).")
        return (self.n, input_shape[0])

    def forward(self, x, training=False):
        self.compute_output_shape(x.shape[1:])
        return np.repeat(x[:, None, :], self.n, axis=1)

    def backward(self, dy):
        return dy.sum(axis=1)

    def get_config(self):
        cfg = super().get_config()
        cfg["n"] = self.n
        return cfg
