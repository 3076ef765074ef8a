"""Conv1D and Conv2D (channels_last): one GEMM over im2col windows per pass.

Forward: windows (N*Ho*Wo, kh*kw*C) @ kernel (kh*kw*C, F). Backward: the kernel
gradient is windows.T @ dz, the input gradient dz @ kernel.T scattered back by
col2im. Conv1D runs the same code on (N, 1, L, C).
"""
from __future__ import annotations

import numpy as np

from .. import activations, constraints, initializers, regularizers
from ..errors import ConfigError, ShapeError
from .base import Layer
from .im2col import Geometry, Workspace, check_data_format, normalize_padding, normalize_tuple, output_length
from .layer_utils import serialize_component


class _Conv(Layer):
    """Shared convolution of rank 1 or 2; subclasses set `rank` and the allowed paddings."""

    rank = 2
    paddings: tuple[str, ...] = ("valid", "same")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ConfigError(f"Layer {self.name!r}: filters must be a positive int, got {filters!r}.")
        if groups != 1:
            raise ConfigError(f"Layer {self.name!r}: only groups=1 is supported, got {groups!r}.")
        check_data_format(data_format, self.name)
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", self.name)
        self.strides = normalize_tuple(strides, self.rank, "strides", self.name)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", self.name)
        self.padding = normalize_padding(padding, self.name, self.paddings)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = self.bias = None
        self._ws = Workspace()
        self._geom: Geometry | None = None

    # ----- shapes -----------------------------------------------------------
    def _as_2d(self, t: tuple) -> tuple:
        """A rank-1 (length,) tuple as the (1, length) pair the 2-D code uses."""
        return t if self.rank == 2 else (1,) + tuple(t)

    def _geometry(self, x4_shape) -> Geometry:
        if self._geom is None or self._geom.in_shape != tuple(x4_shape):
            self._geom = Geometry(x4_shape, self._as_2d(self.kernel_size), self._as_2d(self.strides),
                                  self._as_2d(self.dilation_rate), self.padding, self.name)
        return self._geom

    def _check_input(self, shape) -> None:
        if len(shape) != self.rank + 1:
            raise ShapeError(f"Layer {self.name!r} ({type(self).__name__}) expects inputs of shape "
                             f"(batch, {'length' if self.rank == 1 else 'height, width'}, channels), "
                             f"got input shape {tuple(shape)} (batch axis excluded).")

    def build(self, input_shape):
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)  # raises ShapeError if the kernel does not fit
        shape = self.kernel_size + (int(input_shape[-1]), self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        spatial = tuple(input_shape[:-1])
        out = tuple(output_length(d, k, s, self.padding, r)
                    for d, k, s, r in zip(spatial, self.kernel_size, self.strides, self.dilation_rate))
        if min(out) <= 0:
            eff = tuple(r * (k - 1) + 1 for k, r in zip(self.kernel_size, self.dilation_rate))
            raise ShapeError(f"Layer {self.name!r}: kernel {eff} (after dilation) is larger than the "
                             f"input {spatial} with padding='valid' (input shape {tuple(input_shape)}).")
        return out + (self.filters,)

    # ----- computation ----------------------------------------------------
    def forward(self, x, training=False):
        """x (N, [H,] W, C) -> y (N, [Ho,] Wo, filters)."""
        self._check_input(x.shape[1:])
        if x.shape[-1] != self.kernel.shape[-2]:
            raise ShapeError(f"Layer {self.name!r} was built for {self.kernel.shape[-2]} input channels, "
                             f"got input shape {tuple(x.shape[1:])}.")
        self.cache = None  # lets the workspace reuse last step's buffers
        n = x.shape[0]
        x4 = x if self.rank == 2 else x.reshape(n, 1, x.shape[1], x.shape[2])
        g = self._geometry(x4.shape)
        cols = g.im2col(g.pad(x4, self._ws, "xp"), self._ws)
        k2 = self.kernel.value.reshape(-1, self.filters)
        z = self._ws.get("z", (cols.shape[0], self.filters), np.result_type(cols, k2))
        np.matmul(cols, k2, out=z)
        if self.bias is not None:
            z += self.bias.value
        act = self.activation
        if act.name == "linear":
            y, zkeep = z, None
        elif act.uses_input:
            y, zkeep = act.forward(z), z
        else:
            y, zkeep = act.forward(z, out=z), None
        self.cache = (g, cols, zkeep, y, x.shape)
        return y.reshape((n,) + g.out_hw[2 - self.rank:] + (self.filters,))

    def backward(self, dy):
        """dy (N, [Ho,] Wo, filters) -> dx; writes kernel and bias gradients."""
        _, _, z, y, _ = self.cache
        dz = dy.reshape(y.shape)
        if self.activation.name != "linear":
            dz = self.activation.backward(dz, z, y)
        return self.backward_preactivation(dz)

    def backward_preactivation(self, dz):
        """Backward from the gradient w.r.t. the pre-activation (fused loss gradients)."""
        g, cols, _, _, xshape = self.cache
        dz = np.ascontiguousarray(dz.reshape(cols.shape[0], self.filters))
        kg = self.kernel.grad
        if kg is not None:
            if kg.flags.c_contiguous:
                np.matmul(cols.T, dz, out=kg.reshape(-1, self.filters))
            else:
                kg[...] = (cols.T @ dz).reshape(kg.shape)
        if self.bias is not None and self.bias.grad is not None:
            # column sums as a GEMV: ~8x faster than np.sum(axis=0) and accumulated more accurately
            ones = self._ws.get("ones", (dz.shape[0],), dz.dtype, fill=1)
            np.matmul(ones, dz, out=self.bias.grad)
        k2 = self.kernel.value.reshape(-1, self.filters)
        dcols = self._ws.get("dcols", cols.shape, np.result_type(dz, k2))
        np.matmul(dz, k2.T, out=dcols)
        return g.col2im(dcols, self._ws).reshape(xshape)

    # ----- config -----------------------------------------------------------
    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            filters=self.filters, kernel_size=list(self.kernel_size), strides=list(self.strides),
            padding=self.padding, data_format="channels_last", dilation_rate=list(self.dilation_rate),
            groups=1, activation=activations.serialize(self.activation), use_bias=self.use_bias,
            kernel_initializer=serialize_component(initializers, self.kernel_initializer),
            bias_initializer=serialize_component(initializers, self.bias_initializer),
            kernel_regularizer=serialize_component(regularizers, self.kernel_regularizer),
            bias_regularizer=serialize_component(regularizers, self.bias_regularizer),
            kernel_constraint=serialize_component(constraints, self.kernel_constraint),
            bias_constraint=serialize_component(constraints, self.bias_constraint))
        return cfg


class Conv1D(_Conv):
    """1-D convolution over (batch, length, channels); kernel (k, in_channels, filters).

    padding: 'valid', 'same' or 'causal' (left padding only, as in Keras).
    """

    rank = 1
    paddings = ("valid", "same", "causal")


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels); kernel (kh, kw, in_channels, filters)."""

    rank = 2


Convolution1D = Conv1D
Convolution2D = Conv2D
