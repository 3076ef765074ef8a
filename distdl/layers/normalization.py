"""BatchNormalization (global-batch statistics across ranks) and LayerNormalization.

BatchNormalization works on a (rows, channels) view of its input. In training its
mean and biased variance come from float64 sums (shifted by the moving mean, for
accuracy) that `ctx.sum_across_ranks` adds over all ranks, so N ranks normalise
with the statistics of the whole global batch, exactly as one process would.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import constraints, initializers, regularizers
from ..errors import ConfigError, ShapeError
from .base import Layer
from .layer_utils import fixed_size, serialize_component

__all__ = ["BatchNormTrainCache", "BatchNormInferCache", "BatchNormalization", "LayerNormalization"]


def _sum_ranks(ctx, buf: np.ndarray) -> np.ndarray:
    """Sum a float64 buffer over ranks in place (tolerates a reducer that returns a new array)."""
    out = ctx.sum_across_ranks(buf)
    return buf if out is None else out


class _NormBase(Layer):
    """Shared gamma/beta arguments, creation and config of the two normalization layers."""

    def __init__(self, center=True, scale=True, beta_initializer="zeros", gamma_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None

    def _add_gamma_beta(self, shape) -> None:
        if self.scale:
            self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer, name="gamma",
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer, name="beta",
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def _axes(self, axis, ndim: int) -> tuple[int, ...]:
        """Axis argument (int or list, counting the batch axis) -> sorted positive axes >= 1."""
        raw = [axis] if np.isscalar(axis) else list(axis)
        axes = []
        for a in raw:
            a = int(a)
            if not -ndim <= a < ndim or a % ndim == 0:
                raise ShapeError(f"Layer {self.name!r}: axis {a} is out of range (or the batch axis) "
                                 f"for inputs of rank {ndim}.")
            axes.append(a % ndim)
        return tuple(sorted(set(axes)))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            center=self.center, scale=self.scale,
            beta_initializer=serialize_component(initializers, self.beta_initializer),
            gamma_initializer=serialize_component(initializers, self.gamma_initializer),
            beta_regularizer=serialize_component(regularizers, self.beta_regularizer),
            gamma_regularizer=serialize_component(regularizers, self.gamma_regularizer),
            beta_constraint=serialize_component(constraints, self.beta_constraint),
            gamma_constraint=serialize_component(constraints, self.gamma_constraint))
        return cfg


@dataclass(slots=True)
class BatchNormTrainCache:
    """What backward needs after a forward with batch statistics (rows = all axes but the channel's).

    Args:
        xhat: the normalised input (rows, C).
        inv: 1 / sqrt(var + epsilon) (C,), float64.
        count: the number of rows in the global batch's moments.
        keep: (rows, 1) 0/1 weights of the rows in the moments, or None (all)."""

    xhat: np.ndarray
    inv: np.ndarray
    count: float
    keep: np.ndarray | None


@dataclass(slots=True)
class BatchNormInferCache:
    """What backward needs after a forward with the moving statistics (frozen or inference).

    Args:
        x2: the input (rows, C).
        scale: gamma / sqrt(moving_variance + epsilon) (C,), in the input's dtype.
        inv: 1 / sqrt(moving_variance + epsilon) (C,), in the input's dtype."""

    x2: np.ndarray
    scale: np.ndarray
    inv: np.ndarray


class BatchNormalization(_NormBase):
    """Normalise each channel (`axis`) over the batch and all other axes; gamma, beta per channel.

    Weights in Keras's order: gamma, beta (trainable), moving_mean, moving_variance.
    Training uses global-batch statistics (`synchronized=False`: this rank's only);
    inference, or `trainable=False`, uses the moving statistics.

    Args:
        axis: the channel axis (counting the batch axis; default -1, the last).
        momentum: the moving statistics' decay: new = momentum * old + (1 - momentum) * batch.
        epsilon: a small float added to the variance before the square root.
        center: whether to add the learned offset beta.
        scale: whether to multiply by the learned scale gamma.
        beta_initializer: initializer of beta.
        gamma_initializer: initializer of gamma.
        moving_mean_initializer: initializer of the moving mean.
        moving_variance_initializer: initializer of the moving variance.
        beta_regularizer: regularizer of beta.
        gamma_regularizer: regularizer of gamma.
        beta_constraint: constraint on beta.
        gamma_constraint: constraint on gamma.
        synchronized: whether training statistics are over the global batch (all ranks) or this rank's.
        **kwargs: the base `Layer` arguments.
    """

    # a mask passes through, and training moments leave masked steps out (Keras 3)
    supports_masking = True
    takes_mask = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=True, **kwargs):
        super().__init__(center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if not np.isscalar(axis):
            raise ConfigError(f"Layer {self.name!r}: BatchNormalization axis must be an int, got {axis!r}.")
        if not 0.0 <= float(momentum) <= 1.0 or float(epsilon) <= 0:
            raise ConfigError(f"Layer {self.name!r}: need 0 <= momentum <= 1 and epsilon > 0, "
                              f"got momentum={momentum!r}, epsilon={epsilon!r}.")
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.synchronized = bool(synchronized)

    def build(self, input_shape):
        ndim = len(input_shape) + 1
        (self._ax,) = self._axes(self.axis, ndim)
        c = (fixed_size(self, input_shape, self._ax - 1, "normalised axis"),)
        self._add_gamma_beta(c)
        self.moving_mean = self.add_weight(shape=c, initializer=self.moving_mean_initializer,
                                           name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(shape=c, initializer=self.moving_variance_initializer,
                                               name="moving_variance",
                                               trainable=False)

    def _rows(self, x: np.ndarray) -> np.ndarray:
        """x as (rows, channels): a view when the channel axis is last."""
        if x.ndim != len(self.input_shape) + 1 or x.shape[self._ax] != self.moving_mean.shape[0]:
            raise ShapeError(f"Layer {self.name!r} was built for inputs of shape {self.input_shape}, "
                             f"got {tuple(x.shape[1:])}.")
        xm = x if self._ax == x.ndim - 1 else np.moveaxis(x, self._ax, -1)
        return xm.reshape(-1, xm.shape[-1])

    def _unrows(self, y2: np.ndarray, shape) -> np.ndarray:
        if self._ax == len(shape) - 1:
            return y2.reshape(shape)
        moved = tuple(np.delete(np.array(shape), self._ax)) + (shape[self._ax],)
        return np.moveaxis(y2.reshape(moved), -1, self._ax)

    def _gamma_beta(self, dtype):
        c = self.moving_mean.shape[0]
        g = self.gamma.value if self.gamma is not None else np.ones(c, dtype)
        b = self.beta.value if self.beta is not None else np.zeros(c, dtype)
        return g, b

    def forward(self, x, training=False, mask=None):
        """x (N, ..., C, ...) -> y of the same shape; a (N, T) mask of (N, T, C) inputs keeps the
        masked steps out of the training moments (every step is still normalised).

        Args:
            x: the input.
            training: whether to use (and update from) batch statistics.
            mask: an optional (N, T) bool mask of (N, T, C) inputs.
        """
        x2 = self._rows(x)
        gamma, beta = self._gamma_beta(x2.dtype)
        if training and self.trainable:
            keep = None
            if mask is not None and self._ax == x.ndim - 1 and np.size(mask) == x2.shape[0]:
                keep = np.reshape(mask, (-1, 1)).astype(x2.dtype)
            return self._unrows(self._forward_train(x2, gamma, beta, keep), x.shape)
        inv = 1.0 / np.sqrt(self.moving_variance.value.astype(np.float64) + self.epsilon)
        a = (gamma * inv).astype(x2.dtype)
        b = (beta - self.moving_mean.value * a).astype(x2.dtype)
        y2 = self.scratch.output("y", x2.shape, x2.dtype, training)
        np.multiply(x2, a, out=y2)
        y2 += b
        self.cache = BatchNormInferCache(x2, a, inv.astype(x2.dtype))
        return self._unrows(y2, x.shape)

    def _forward_train(self, x2, gamma, beta, keep=None):
        """keep: (rows, 1) 0/1 weights of the rows that enter the moments, or None (all)."""
        c = x2.shape[1]
        shift = self.moving_mean.value.astype(x2.dtype)
        xhat = self.scratch.get("xhat", x2.shape, x2.dtype)
        np.subtract(x2, shift, out=xhat)  # shifted data: better-conditioned sums
        kept = xhat if keep is None else xhat * keep
        buf = np.empty(2 * c + 1, dtype=np.float64)
        np.sum(kept, axis=0, dtype=np.float64, out=buf[:c])
        buf[c:2 * c] = np.einsum("ij,ij->j", kept, xhat, dtype=np.float64)
        buf[2 * c] = x2.shape[0] if keep is None else keep.sum(dtype=np.float64)
        if self.synchronized:
            buf = _sum_ranks(self.ctx, buf)
        n = buf[2 * c]
        dmean = buf[:c] / max(n, 1.0)
        var = np.maximum(buf[c:2 * c] / max(n, 1.0) - dmean * dmean, 0.0)
        inv = 1.0 / np.sqrt(var + self.epsilon)
        xhat -= dmean.astype(x2.dtype)
        xhat *= inv.astype(x2.dtype)
        y2 = self.scratch.get("y", x2.shape, x2.dtype)
        np.multiply(xhat, gamma, out=y2)
        y2 += beta
        if n > 0:
            m = self.momentum
            mean = self.moving_mean.value + dmean
            self.moving_mean.value[...] = self.moving_mean.value * m + mean * (1.0 - m)
            self.moving_variance.value[...] = self.moving_variance.value * m + var * (1.0 - m)
        self.cache = BatchNormTrainCache(xhat, inv, n, keep)
        return y2

    def backward(self, dy):
        """dy like x -> dx; gamma/beta gradients are this rank's sums (the allreduce adds them).

        Args:
            dy: the loss gradient w.r.t. the output.
        """
        cache = self.cache
        dy2 = self._rows(dy)
        gamma, _ = self._gamma_beta(dy2.dtype)
        c = dy2.shape[1]
        if isinstance(cache, BatchNormInferCache):
            if self.gamma is not None and self.gamma.grad is not None:
                self.gamma.grad[...] = np.einsum("ij,ij->j", dy2, cache.x2 - self.moving_mean.value) * cache.inv
            if self.beta is not None and self.beta.grad is not None:
                np.sum(dy2, axis=0, out=self.beta.grad)
            return self._unrows(dy2 * cache.scale, dy.shape)
        xhat, inv, n, keep = cache.xhat, cache.inv, cache.count, cache.keep
        buf = np.empty(2 * c, dtype=np.float64)
        np.sum(dy2, axis=0, dtype=np.float64, out=buf[:c])
        buf[c:] = np.einsum("ij,ij->j", dy2, xhat, dtype=np.float64)
        if self.gamma is not None and self.gamma.grad is not None:
            self.gamma.grad[...] = buf[c:]
        if self.beta is not None and self.beta.grad is not None:
            self.beta.grad[...] = buf[:c]
        if self.synchronized:
            buf = _sum_ranks(self.ctx, buf)
        n = max(n, 1.0)
        # dx = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat)), means over the global batch;
        # with masked steps, only the kept rows move the moments, so only they get the two means
        dx = self.scratch.get("dx", dy2.shape, dy2.dtype)
        np.multiply(xhat, (buf[c:] / n).astype(dy2.dtype), out=dx)
        dx += (buf[:c] / n).astype(dy2.dtype)
        if keep is not None:
            dx *= keep
        np.subtract(dy2, dx, out=dx)
        dx *= (gamma * inv).astype(dy2.dtype)
        return self._unrows(dx, dy.shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                   moving_mean_initializer=serialize_component(initializers, self.moving_mean_initializer),
                   moving_variance_initializer=serialize_component(initializers,
                                                                   self.moving_variance_initializer),
                   synchronized=self.synchronized)
        return cfg


class LayerNormalization(_NormBase):
    """Normalise each sample over `axis` (int or list); gamma and beta have the shape of those axes.

    Args:
        axis: the axis or axes to normalise over (counting the batch axis; default -1).
        epsilon: a small float added to the variance before the square root.
        center: whether to add the learned offset beta.
        scale: whether to multiply by the learned scale gamma.
        beta_initializer: initializer of beta.
        gamma_initializer: initializer of gamma.
        rms_scaling: Keras's RMS-normalisation switch; only False is supported.
        beta_regularizer: regularizer of beta.
        gamma_regularizer: regularizer of gamma.
        beta_constraint: constraint on beta.
        gamma_constraint: constraint on gamma.
        **kwargs: the base `Layer` arguments.
    """

    supports_masking = True   # as in Keras 3: a mask passes through

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if rms_scaling:
            raise ConfigError(f"Layer {self.name!r}: rms_scaling=True is not supported.")
        if float(epsilon) <= 0:
            raise ConfigError(f"Layer {self.name!r}: epsilon must be positive, got {epsilon!r}.")
        self.axis = int(axis) if np.isscalar(axis) else [int(a) for a in axis]
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        ndim = len(input_shape) + 1
        self._norm_axes = self._axes(self.axis, ndim)
        self._other_axes = tuple(a for a in range(ndim) if a not in self._norm_axes)
        sizes = {a: fixed_size(self, input_shape, a - 1, "normalised axes") for a in self._norm_axes}
        self._bshape = tuple(sizes.get(a, 1) for a in range(1, ndim))
        self._add_gamma_beta(tuple(sizes[a] for a in self._norm_axes))

    def _check(self, x) -> None:
        """Rank and normalised dims must match the build; other dims (e.g. time) may vary."""
        if x.ndim != len(self.input_shape) + 1 or any(
                x.shape[a] != self.input_shape[a - 1] for a in self._norm_axes):
            raise ShapeError(f"Layer {self.name!r} was built for inputs of shape {self.input_shape} "
                             f"(normalising axes {list(self._norm_axes)}), got {tuple(x.shape[1:])}.")

    def forward(self, x, training=False):
        """x (N, ...) -> y of the same shape, normalised per sample over `axis`.

        Args:
            x: the input.
            training: unused (the same in training and inference).
        """
        self._check(x)
        ax = self._norm_axes
        mean = np.mean(x, axis=ax, keepdims=True)
        xhat = x - mean
        var = np.mean(np.square(xhat), axis=ax, keepdims=True)
        inv = 1.0 / np.sqrt(var + x.dtype.type(self.epsilon))
        xhat *= inv
        y = xhat * self.gamma.value.reshape(self._bshape) if self.gamma is not None else xhat.copy()
        if self.beta is not None:
            y += self.beta.value.reshape(self._bshape)
        self.cache = (xhat, inv)
        return y

    def backward(self, dy):
        """dy like x -> dx; gamma/beta gradients summed over the batch and non-normalised axes.

        Args:
            dy: the loss gradient w.r.t. the output.
        """
        xhat, inv = self.cache
        others = self._other_axes
        if self.gamma is not None and self.gamma.grad is not None:
            self.gamma.grad[...] = np.sum(dy * xhat, axis=others).reshape(self.gamma.shape)
        if self.beta is not None and self.beta.grad is not None:
            self.beta.grad[...] = np.sum(dy, axis=others).reshape(self.beta.shape)
        g = dy * self.gamma.value.reshape(self._bshape) if self.gamma is not None else dy.copy()
        ax = self._norm_axes
        proj = np.mean(g * xhat, axis=ax, keepdims=True)
        g -= np.mean(g, axis=ax, keepdims=True)
        g -= xhat * proj
        g *= inv
        return g

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(axis=self.axis, epsilon=self.epsilon, rms_scaling=False)
        return cfg
