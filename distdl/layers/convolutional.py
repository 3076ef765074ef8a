"""Conv1D and Conv2D (channels_last): one GEMM over im2col windows per pass.

Forward: windows (N*Ho*Wo, kh*kw*C) @ kernel (kh*kw*C, F). Backward: the kernel
gradient is windows.T @ dz, the input gradient dz @ kernel.T scattered back by
col2im. Conv1D runs the same code on (N, 1, L, C). 3x3 stride-1 Conv2D layers
with at least 16 input channels and 8 filters run Winograd F(2x2, 3x3) instead (winograd.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import activations, constraints, initializers, regularizers
from ..errors import ConfigError, ShapeError
from ..special import constant
from .im2col import Geometry, _Windowed, check_data_format, normalize_padding, normalize_tuple, output_length
from .layer_utils import fixed_size, matmul_sum, positive_int, serialize_component, sized
from .winograd import Winograd, WinogradState, winograd_applies

__all__ = ["ConvCache", "Conv1D", "Conv2D", "Convolution1D", "Convolution2D"]


@dataclass(slots=True)
class ConvCache:
    """What a convolution's backward needs from its forward (rows = N * Ho * Wo).

    Args:
        geometry: the window geometry (layers/im2col.py).
        xp: the padded input (N, Hp, Wp, C).
        z: the pre-activation (rows, F), kept when the activation's derivative needs it, else None.
        y: the output (rows, F).
        x_shape: the input's shape, for dx.
        winograd: the plan, when forward ran Winograd (else None: im2col).
        winograd_state: what the Winograd backward needs, or None."""

    geometry: Geometry
    xp: np.ndarray
    z: np.ndarray | None
    y: np.ndarray
    x_shape: tuple
    winograd: Winograd | None
    winograd_state: WinogradState | None


class _Conv(_Windowed):
    """Shared convolution of rank 1 or 2; subclasses set `rank` and the allowed paddings.

    Args:
        filters: the number of output channels.
        kernel_size: the window size per spatial axis (an int applies to every axis).
        strides: the step between windows per axis.
        padding: "valid" (no padding), "same" (output size ceil(size / stride)), or for Conv1D
            "causal" (left padding only, as in Keras).
        data_format: "channels_last" or None (the only layout implemented).
        dilation_rate: the spacing between kernel taps per axis.
        groups: Keras's grouped convolution; only 1 is supported.
        activation: the activation's name or function (None: linear).
        use_bias: whether to add a bias per filter.
        kernel_initializer: initializer of the kernel.
        bias_initializer: initializer of the bias.
        kernel_regularizer: regularizer of the kernel.
        bias_regularizer: regularizer of the bias.
        kernel_constraint: constraint on the kernel.
        bias_constraint: constraint on the bias.
        **kwargs: the base `Layer` arguments.
    """

    rank = 2
    paddings: tuple[str, ...] = ("valid", "same")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if groups != 1:
            raise ConfigError(f"Layer {self.name!r}: only groups=1 is supported, got {groups!r}.")
        check_data_format(data_format, self.name)
        self.filters = positive_int(self, "filters", filters)
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
        self._wino: Winograd | None = None

    # ----- shapes -----------------------------------------------------------
    def build(self, input_shape):
        self._check_input(input_shape)
        self.compute_output_shape(input_shape)  # raises ShapeError if the kernel does not fit
        shape = self.kernel_size + (fixed_size(self, input_shape, -1, "channels axis"), self.filters)
        self.kernel = self.add_weight(shape=shape, initializer=self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), initializer=self.bias_initializer, name="bias",
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        spatial = tuple(input_shape[:-1])
        out = tuple(sized(d, lambda n, k=k, s=s, r=r: output_length(n, k, s, self.padding, r))
                    for d, k, s, r in zip(spatial, self.kernel_size, self.strides, self.dilation_rate))
        if min((d for d in out if d is not None), default=1) <= 0:
            eff = tuple(r * (k - 1) + 1 for k, r in zip(self.kernel_size, self.dilation_rate))
            raise ShapeError(f"Layer {self.name!r}: kernel {eff} (after dilation) is larger than the "
                             f"input {spatial} with padding='valid' (input shape {tuple(input_shape)}).")
        return out + (self.filters,)

    # ----- computation ----------------------------------------------------
    def forward(self, x, training=False):
        """x (N, [H,] W, C) -> y (N, [Ho,] Wo, filters)."""
        self._check_input(x.shape[1:])
        if None in self.input_shape:  # built for a variable axis: this batch's kernel must fit
            self.compute_output_shape(x.shape[1:])
        if x.shape[-1] != self.kernel.shape[-2]:
            raise ShapeError(f"Layer {self.name!r} was built for {self.kernel.shape[-2]} input channels, "
                             f"got input shape {tuple(x.shape[1:])}.")
        n = x.shape[0]
        x4 = self._as_4d(x)
        g = self._geometry(x4.shape, self.kernel_size, self.strides, self.dilation_rate)
        scratch = self.scratch
        xp = g.pad(x4, scratch, "xp")
        if g.pointwise:
            xp = np.ascontiguousarray(xp)
        k2 = self.kernel.value.reshape(-1, self.filters)
        dtype = np.result_type(xp, k2)
        per = g.out_hw[0] * g.out_hw[1]
        z = scratch.output("z", (n * per, self.filters), dtype, training)
        act = self.activation
        linear = act.name == "linear"
        y = scratch.output("y", z.shape, dtype, training) if act.uses_input and not linear else z
        # chunks of images: windows, GEMM, bias and activation run while the chunk is in cache
        step = g.chunk_images(self.filters, z.itemsize)
        wino = self._winograd(g, n, dtype)
        ones = self._bias_in_gemm(g) and wino is None
        relu = isinstance(act, activations.ReLU)
        if wino is not None:
            step = wino.step
        btile, zeros = self._epilogue_tiles(min(step, n) * per, dtype, ones, relu)

        def epilogue(a, b):  # bias and activation of images a..b
            zc, yc = z[a * per:b * per], y[a * per:b * per]
            if btile is not None:
                np.add(zc, btile[:len(zc)], out=zc)
            if relu:
                np.maximum(zc, zeros[:len(zc)], out=yc)
            elif not linear:
                act.forward(zc, out=yc)

        wino_state = None
        if wino is not None:
            wino_state = wino.forward(xp, self.kernel.value, z.reshape((n,) + g.out_hw + (self.filters,)),
                                      epilogue, training)
        else:
            buf = None if g.pointwise else g.cols_buffer(scratch, "cols", min(step, n), dtype, ones)
            src = xp if g.pointwise else g.windows(xp)
            if ones:
                k2 = np.concatenate([k2, self.bias.value.reshape(1, -1)]).astype(dtype, copy=False)
            for a in range(0, n, step):
                b = min(a + step, n)
                np.matmul(self._cols(g, src[a:b], buf), k2, out=z[a * per:b * per])
                epilogue(a, b)
        self.cache = ConvCache(g, xp, z if y is not z else None, y, x.shape, wino, wino_state)
        return y.reshape((n,) + g.out_hw[2 - self.rank:] + (self.filters,))

    def _winograd(self, g: Geometry, n: int, dtype) -> Winograd | None:
        """The Winograd plan for this geometry where it applies (3x3, stride 1, float32 or
        float64: its transforms round more than im2col, too much for float16), else None."""
        if (n == 0 or self.rank != 2 or np.dtype(dtype).itemsize < 4
                or not winograd_applies(g.kernel, g.strides, g.dilation, g.in_shape[3], self.filters)):
            return None
        if self._wino is None or self._wino.padded_shape != g.padded_shape:
            self._wino = Winograd(g.padded_shape, self.filters, self.scratch)
        return self._wino

    def _epilogue_tiles(self, rows: int, dtype, bias_in_gemm: bool, relu: bool):
        """(rows, filters) copies of the bias and of zero, for the bias add and ReLU of each chunk.

        NumPy's add and maximum run 2-3x faster on two same-shape arrays than against
        a broadcast row or a scalar (no SIMD loop for those), so one tile per pass pays.
        """
        btile = zeros = None
        if self.bias is not None and not bias_in_gemm:
            btile = self.scratch.get("btile", (rows, self.filters), dtype)
            btile[...] = self.bias.value
        if relu:
            zeros = constant((rows, self.filters), dtype, 0.0)
        return btile, zeros

    def _bias_in_gemm(self, g: Geometry) -> bool:
        """Transposed windows carry a row of ones: the GEMM adds the bias and sums its gradient.

        Saves a pass over the output each way, where each output row is only `filters` long.
        """
        return g.transposed and not g.pointwise and self.bias is not None

    @staticmethod
    def _cols(g: Geometry, src: np.ndarray, buf) -> np.ndarray:
        """The (rows, K) windows of a chunk: `src` is the padded images for pointwise kernels
        (their rows already are the windows, buf is None), else their `Geometry.windows`."""
        if buf is None:
            return src.reshape(-1, src.shape[-1])
        return g.im2col(src, buf)

    def backward(self, dy):
        """dy (N, [Ho,] Wo, filters) -> dx; writes kernel and bias gradients."""
        return self._backward(dy, None if self.activation.name == "linear" else self.activation)

    def backward_preactivation(self, dz):
        """Backward from the gradient w.r.t. the pre-activation (fused loss gradients)."""
        return self._backward(dz, None)

    def _backward(self, d, act):
        """Per chunk of images: activation gradient, kernel/bias gradient GEMMs, input gradient.

        The windows are rebuilt from the cached input (cheaper than keeping them: they
        stay in cache for both GEMMs); dx is skipped when `need_input_grad` is False.
        """
        c = self.cache
        g, xp, z, y, xshape = c.geometry, c.xp, c.z, c.y, c.x_shape
        f = self.filters
        n, per = xshape[0], g.out_hw[0] * g.out_hw[1]
        d = np.ascontiguousarray(d.reshape(n * per, f))
        if c.winograd is not None:
            return self._winograd_backward(c, d, act)
        k2 = self.kernel.value.reshape(-1, f)
        dtype = np.result_type(d, k2)
        need_dx = self.need_input_grad
        kg, bg = self.kernel.grad, (self.bias.grad if self.bias is not None else None)
        ones_row = self._bias_in_gemm(g)
        scratch_kg = kg is not None and not kg.flags.c_contiguous
        scratch = self.scratch
        if ones_row:  # kernel and bias gradients as one (K+1, filters) GEMM output
            kg2 = None if kg is None and bg is None else scratch.get("kg", (k2.shape[0] + 1, f), dtype)
            bg = None
        elif kg is not None:
            kg2 = scratch.get("kg", k2.shape, dtype) if scratch_kg else kg.reshape(k2.shape)
        else:
            kg2 = None
        step = g.chunk_images(f, d.itemsize)
        m = min(step, n) * per
        buf = None if g.pointwise else g.cols_buffer(scratch, "cols", min(step, n), dtype, ones_row)
        src = xp if g.pointwise else g.windows(xp)
        offsets = g.kernel[0] * g.kernel[1]
        dwin = None if g.pointwise or not need_dx else scratch.get("dwin", (offsets, m, xp.shape[-1]), dtype)
        kts = None if dwin is None else np.ascontiguousarray(k2.reshape(offsets, -1, f).transpose(0, 2, 1))
        dzbuf = None if act is None else scratch.get("dz", (m, f), dtype)
        kpart = scratch.get("kpart", kg2.shape, dtype) if kg2 is not None and n > step else None
        bpart = scratch.get("bpart", (f,), dtype) if bg is not None and n > step else None
        ones = constant((m,), dtype, 1.0) if bg is not None else None
        dxp = scratch.get("dxp", g.padded_shape, dtype) if need_dx else None
        for a in range(0, n, step):
            b = min(a + step, n)
            r0, r1 = a * per, b * per
            dzc = d[r0:r1]
            if act is not None:
                dzc = act.backward(dzc, None if z is None else z[r0:r1], y[r0:r1], out=dzbuf[:r1 - r0])
            cols = self._cols(g, src[a:b], buf)
            if kg2 is not None:
                matmul_sum(cols.T, dzc, kg2, kpart, a == 0)
            if bg is not None:
                # column sums as a GEMV: ~8x faster than np.sum(axis=0) and accumulated more accurately
                matmul_sum(ones[:r1 - r0], dzc, bg, bpart, a == 0)
            if not need_dx:
                continue
            if dwin is None:
                np.matmul(dzc, k2.T, out=dxp[a:b].reshape(-1, dxp.shape[-1]))
            else:  # one (rows, C) GEMM per kernel offset, so that col2im adds whole rows
                np.matmul(dzc, kts, out=dwin[:, :r1 - r0])
                g.col2im(dwin, dxp[a:b])
        if n == 0 and kg2 is not None:
            kg2.fill(0)
        if n == 0 and bg is not None:
            bg.fill(0)
        if ones_row and kg2 is not None:
            if self.bias.grad is not None:
                self.bias.grad[...] = kg2[-1]
            if kg is not None:
                kg[...] = kg2[:-1].reshape(kg.shape)
        elif scratch_kg:
            kg[...] = kg2.reshape(kg.shape)
        if not need_dx:
            return None
        return g.unpad(dxp).reshape(xshape)

    def _winograd_backward(self, c: ConvCache, d, act):
        """`_backward` for a forward that ran Winograd: per chunk of images, the activation
        and bias gradients, then the transposed transforms give the kernel and input gradients."""
        plan, z, y, xshape = c.winograd, c.z, c.y, c.x_shape
        f, per = self.filters, plan.out_hw[0] * plan.out_hw[1]
        rows = min(plan.step, xshape[0]) * per
        dzbuf = None if act is None else self.scratch.get("dz", (rows, f), d.dtype)
        bg = self.bias.grad if self.bias is not None else None
        ones = constant((rows,), d.dtype, 1.0) if bg is not None else None
        bpart = self.scratch.get("bpart", (f,), d.dtype) if bg is not None else None

        def chunk_grad(a, b):  # images a..b: gradient of the pre-activation, bias gradient summed
            r = slice(a * per, b * per)
            dc = d[r] if act is None else act.backward(d[r], None if z is None else z[r], y[r],
                                                       out=dzbuf[:(b - a) * per])
            if bg is not None:
                matmul_sum(ones[:len(dc)], dc, bg, bpart, a == 0)
            return dc.reshape((b - a,) + plan.out_hw + (f,))

        dxp = plan.backward(c.winograd_state, chunk_grad, self.kernel.grad, self.need_input_grad, d.dtype)
        return None if dxp is None else c.geometry.unpad(dxp).reshape(xshape)

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
