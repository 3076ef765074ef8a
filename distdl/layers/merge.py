"""Merge layers: combine a list of tensors (Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate, Dot). Shapes are checked at build time and a mismatch names the layer and the shapes.

Keras 3's functional helpers (`add`, `subtract`, `multiply`, `average`, `maximum`, `minimum`,
`concatenate`, `dot`) are at the end: each makes the layer and calls it on the list, so they work on
symbolic tensors (a functional model) and on arrays (an eager forward) alike."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ShapeError
from .base import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "DotCache", "Dot",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"]


def _agreed(shapes, skip=None):
    """The one shape `shapes` agree on (axis `skip` aside), or None when they differ: a None
    (variable) axis agrees with any size, and a fixed size wins over None in the result."""
    if len({len(s) for s in shapes}) != 1:
        return None
    out = []
    for k, sizes in enumerate(zip(*shapes)):
        fixed = {d for d in sizes if d is not None}
        if len(fixed) > 1 and k != skip:
            return None
        out.append(fixed.pop() if len(fixed) == 1 else None)
    return tuple(out)


def _fmt(shapes) -> str:
    return ", ".join("(None, " + ", ".join(map(str, s)) + ")" for s in shapes)


class _Merge(Layer):
    """Base of the merge layers: takes a list of arrays, returns one array."""

    _min_inputs = 1
    _max_inputs: int | None = None
    supports_masking = True

    def compute_mask(self, inputs, mask):
        """Keras 3's rule: the steps that every masked input keeps (None: no input is masked)."""
        given = [m for m in (mask or []) if m is not None]
        return np.logical_and.reduce(given) if given else None

    def _check_list(self, input_shape):
        cls = type(self).__name__
        if not isinstance(input_shape, list):
            raise ShapeError(f"{cls} layer {self.name!r} must be called on a list of inputs, "
                             f"got one input of shape (None, {', '.join(map(str, input_shape))}).")
        n = len(input_shape)
        if n < self._min_inputs or (self._max_inputs is not None and n > self._max_inputs):
            want = (f"exactly {self._max_inputs}" if self._min_inputs == self._max_inputs
                    else f"at least {self._min_inputs}")
            raise ShapeError(f"{cls} layer {self.name!r} needs {want} inputs, got {n}.")

    def build(self, input_shape):
        self._check_list(input_shape)
        if _agreed(input_shape) is None:
            raise ShapeError(f"{type(self).__name__} layer {self.name!r} needs inputs of the same shape, "
                             f"got {_fmt(input_shape)}.")

    def compute_output_shape(self, input_shape):
        return _agreed(input_shape) or tuple(input_shape[0])


class Add(_Merge):
    """Elementwise sum of the inputs."""

    def forward(self, xs, training=False):
        self.cache = len(xs)
        out = np.array(xs[0], copy=True)
        for x in xs[1:]:
            out += x
        return out

    def backward(self, dy):
        return [dy] + [dy.copy() for _ in range(self.cache - 1)]


class Subtract(_Merge):
    """x0 - x1 (exactly two inputs)."""

    _min_inputs = _max_inputs = 2

    def forward(self, xs, training=False):
        return np.subtract(xs[0], xs[1])

    def backward(self, dy):
        return [dy, -dy]


class Multiply(_Merge):
    """Elementwise product of the inputs."""

    def forward(self, xs, training=False):
        self.cache = xs
        out = np.array(xs[0], copy=True)
        for x in xs[1:]:
            out *= x
        return out

    def backward(self, dy):
        xs = self.cache
        n = len(xs)
        # d/dx_i = dy * prod_{j != i} x_j, from prefix and suffix products (no division by zero)
        grads, prefix = [], dy
        for i in range(n):
            grads.append(prefix)
            prefix = prefix * xs[i]
        suffix = None
        for i in range(n - 1, -1, -1):
            if suffix is not None:
                grads[i] = grads[i] * suffix
                suffix = suffix * xs[i]
            else:
                suffix = xs[i]
        return [g if g is not dy else dy.copy() for g in grads]


class Average(Add):
    """Elementwise mean of the inputs."""

    def forward(self, xs, training=False):
        out = super().forward(xs, training)
        out *= 1.0 / len(xs)
        return out

    def backward(self, dy):
        return super().backward(dy * (1.0 / self.cache))


class Maximum(_Merge):
    """Elementwise maximum; the gradient goes to the first input holding it (as TF/Keras)."""

    _pick = staticmethod(np.argmax)

    def forward(self, xs, training=False):
        stacked = np.stack(xs)
        idx = self._pick(stacked, axis=0)
        self.cache = (idx, len(xs))
        return np.take_along_axis(stacked, idx[None], axis=0)[0]

    def backward(self, dy):
        idx, n = self.cache
        return [np.where(idx == i, dy, 0).astype(dy.dtype, copy=False) for i in range(n)]


class Minimum(Maximum):
    """Elementwise minimum; the gradient goes to the first input holding it."""

    _pick = staticmethod(np.argmin)


class Concatenate(_Merge):
    """Joins the inputs along `axis`; the other axes must agree.

    Args:
        axis: the axis to join along, of the full tensor (batch included; default -1).
        **kwargs: the base `Layer` arguments."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _local_axis(self, rank: int) -> int:
        a = self.axis + rank + 1 if self.axis < 0 else self.axis
        if not 1 <= a <= rank:
            raise ShapeError(f"Concatenate layer {self.name!r}: axis {self.axis} is not a non-batch axis "
                             f"of inputs of rank {rank + 1}.")
        return a - 1

    def build(self, input_shape):
        self._check_list(input_shape)
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            raise ShapeError(f"Concatenate layer {self.name!r} needs inputs of the same rank, "
                             f"got {_fmt(input_shape)}.")
        ax = self._local_axis(ranks.pop())
        drop = [tuple(d for k, d in enumerate(s) if k != ax) for s in input_shape]
        if _agreed(drop) is None:
            raise ShapeError(f"Concatenate layer {self.name!r} needs inputs that match except on axis "
                             f"{self.axis}, got {_fmt(input_shape)}.")

    def compute_output_shape(self, input_shape):
        ax = self._local_axis(len(input_shape[0]))
        out = list(_agreed(input_shape, skip=ax) or input_shape[0])
        sizes = [s[ax] for s in input_shape]
        out[ax] = None if None in sizes else sum(sizes)
        return tuple(out)

    def forward(self, xs, training=False):
        ax = self._local_axis(xs[0].ndim - 1) + 1
        self.cache = (ax, np.cumsum([x.shape[ax] for x in xs])[:-1])
        return np.concatenate(xs, axis=ax)

    def compute_mask(self, inputs, mask):
        """Keras 3's rule: each input's mask spread over its shape (all True when unmasked),
        concatenated like the inputs, then any() over the last axis.
        Args:
            inputs: the input arrays.
            mask: one mask (or None) per input."""
        if mask is None or all(m is None for m in mask):
            return None
        full = [np.ones(x.shape, bool) if m is None else
                np.broadcast_to(m[..., None], x.shape) if m.ndim < x.ndim else m for x, m in zip(inputs, mask)]
        return np.any(np.concatenate(full, axis=self._local_axis(inputs[0].ndim - 1) + 1), axis=-1)

    def backward(self, dy):
        ax, splits = self.cache
        return [np.ascontiguousarray(d) for d in np.split(dy, splits, axis=ax)]

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


@dataclass(slots=True)
class DotCache:
    """What Dot's backward needs: the batched product's operands and how to undo their reshapes.

    Args:
        a: the first input as (B, m, k), contracted axis last.
        b: the second input as (B, k, n), contracted axis first.
        a_shape: the first input's shape with its contracted axis moved last.
        b_shape: the second input's shape with its contracted axis moved to 1.
        axis_a: the first input's contracted axis (batch axis counted).
        axis_b: the second input's contracted axis.
        norm_a: with normalize=True, (x / |x|, |x|, |x|^2 > 1e-12) of the first input along its axis.
        norm_b: the same for the second input."""

    a: np.ndarray
    b: np.ndarray
    a_shape: tuple
    b_shape: tuple
    axis_a: int
    axis_b: int
    norm_a: tuple | None
    norm_b: tuple | None


class Dot(_Merge):
    """Batched dot product of two inputs over `axes` (full-tensor axes), optionally of
    L2-normalised inputs (cosine proximity). (B, d) . (B, d) -> (B, 1).

    Args:
        axes: the axis to contract (full-tensor, batch counted), or a pair: one per input.
        normalize: whether to L2-normalise each input along its axis first (cosine similarity).
        **kwargs: the base `Layer` arguments."""

    _min_inputs = _max_inputs = 2

    supports_masking = False  # Keras 3: a dot product has no steps left to mask

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2:
                raise ConfigError(f"Dot axes must be an int or a pair of ints, got {axes!r}.")
            self.axes = (int(axes[0]), int(axes[1]))
        else:
            self.axes = (int(axes), int(axes))
        self.normalize = bool(normalize)

    def _local_axes(self, shapes):
        out = []
        for a, s in zip(self.axes, shapes):
            full = a + len(s) + 1 if a < 0 else a
            if not 1 <= full <= len(s):
                raise ShapeError(f"Dot layer {self.name!r}: axis {a} is not a non-batch axis of an input "
                                 f"of shape (None, {', '.join(map(str, s))}).")
            out.append(full - 1)
        return out

    def build(self, input_shape):
        self._check_list(input_shape)
        a0, a1 = self._local_axes(input_shape)
        if None not in (input_shape[0][a0], input_shape[1][a1]) and input_shape[0][a0] != input_shape[1][a1]:
            raise ShapeError(f"Dot layer {self.name!r} cannot contract axis {self.axes[0]} with axis "
                             f"{self.axes[1]} of inputs of shapes {_fmt(input_shape)}.")

    def compute_output_shape(self, input_shape):
        a0, a1 = self._local_axes(input_shape)
        out = [d for k, d in enumerate(input_shape[0]) if k != a0] + \
              [d for k, d in enumerate(input_shape[1]) if k != a1]
        return tuple(out) if out else (1,)

    @staticmethod
    def _l2n(x, axis):
        ss = np.sum(x * x, axis=axis, keepdims=True)
        n = np.sqrt(np.maximum(ss, 1e-12))
        return x / n, n, ss > 1e-12

    def forward(self, xs, training=False):
        x, y = xs
        a0, a1 = [a + 1 for a in self._local_axes([x.shape[1:], y.shape[1:]])]
        norm_x = norm_y = None
        if self.normalize:
            norm_x, norm_y = self._l2n(x, a0), self._l2n(y, a1)
            x, y = norm_x[0], norm_y[0]
        xm = np.moveaxis(x, a0, -1)                      # (B, ..., k)
        ym = np.moveaxis(y, a1, 1)                       # (B, k, ...)
        B, k = x.shape[0], x.shape[a0]
        A = xm.reshape(B, int(np.prod(xm.shape[1:-1], dtype=np.int64)), k)
        Bm = ym.reshape(B, k, int(np.prod(ym.shape[2:], dtype=np.int64)))
        self.cache = DotCache(A, Bm, xm.shape, ym.shape, a0, a1, norm_x, norm_y)
        out = np.matmul(A, Bm)
        return out.reshape((B,) + self.compute_output_shape([x.shape[1:], y.shape[1:]]))

    def backward(self, dy):
        c = self.cache
        A, Bm, a0, a1 = c.a, c.b, c.axis_a, c.axis_b
        d = dy.reshape(A.shape[0], A.shape[1], Bm.shape[2])
        dx = np.moveaxis(np.matmul(d, Bm.transpose(0, 2, 1)).reshape(c.a_shape), -1, a0)
        dyy = np.moveaxis(np.matmul(A.transpose(0, 2, 1), d).reshape(c.b_shape), 1, a1)
        if c.norm_a is not None:
            (x, nx, kx), (y, ny, ky) = c.norm_a, c.norm_b
            dx = (dx - np.where(kx, x * np.sum(dx * x, axis=a0, keepdims=True), 0)) / nx
            dyy = (dyy - np.where(ky, y * np.sum(dyy * y, axis=a1, keepdims=True), 0)) / ny
        return [np.ascontiguousarray(dx), np.ascontiguousarray(dyy)]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axes=list(self.axes), normalize=self.normalize)
        return cfg


# ---------------------------------------------------------------- Keras 3's functional helpers

def add(inputs, **kwargs):
    """`Add(**kwargs)(inputs)`: the elementwise sum of a list of tensors or arrays of one shape.
    Args:
        inputs: the tensors or arrays to add, all of one shape.
        **kwargs: the layer's constructor arguments (name, dtype, ...)."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """`Subtract(**kwargs)(inputs)`: inputs[0] - inputs[1] (exactly two).
    Args:
        inputs: exactly two tensors or arrays of one shape.
        **kwargs: the layer's constructor arguments (name, dtype, ...)."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """`Multiply(**kwargs)(inputs)`: the elementwise product.
    Args:
        inputs: the tensors or arrays to multiply, all of one shape.
        **kwargs: the layer's constructor arguments (name, dtype, ...)."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """`Average(**kwargs)(inputs)`: the elementwise mean.
    Args:
        inputs: the tensors or arrays to average, all of one shape.
        **kwargs: the layer's constructor arguments (name, dtype, ...)."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """`Maximum(**kwargs)(inputs)`: the elementwise maximum.
    Args:
        inputs: the tensors or arrays to compare, all of one shape.
        **kwargs: the layer's constructor arguments (name, dtype, ...)."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """`Minimum(**kwargs)(inputs)`: the elementwise minimum.
    Args:
        inputs: the tensors or arrays to compare, all of one shape.
        **kwargs: the layer's constructor arguments (name, dtype, ...)."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """`Concatenate(axis, **kwargs)(inputs)`: the inputs joined along `axis`.
    Args:
        inputs: the tensors or arrays to join.
        axis: the axis to join along (batch axis counted; default -1).
        **kwargs: the layer's constructor arguments."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """`Dot(axes, normalize, **kwargs)(inputs)`: the batched dot product of two inputs over `axes`
    (Keras 3's default -1: the last axis of each; (B, d), (B, d) -> (B, 1)).
    Args:
        inputs: exactly two tensors or arrays.
        axes: the axis to contract, or a pair: one per input.
        normalize: whether to L2-normalise each input along its axis first.
        **kwargs: the layer's constructor arguments."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
