"""Recurrent layers: SimpleRNN, LSTM and GRU with Keras 3 weights, gate orders and defaults.

Inputs are (batch, timesteps, features). Each layer owns `kernel` (features, G*units),
`recurrent_kernel` (units, G*units) and `bias`, created in that order (Keras's
`cell/vars` order). The input projection of every step is one GEMM before the
time loop (time loops live in `rnn_cells`), and the kernel gradient one GEMM after it;
an LSTM with the default activations instead does [h_{t-1} | x_t] @ [U; W] per step.
A mask (batch, timesteps) from Embedding(mask_zero=True) or Masking makes the layer skip the
masked steps exactly as Keras 3 does (rules in `rnn_masking`).
"""
from __future__ import annotations

import numpy as np

from .. import activations, constraints, initializers, regularizers
from ..errors import ConfigError, ShapeError
from . import rnn_cells, rnn_masking
from .base import Layer
from .layer_utils import fixed_size, optional_seed, positive_int, serialize_component, unit_rate

__all__ = ["SimpleRNN", "LSTM", "GRU"]


class _RNN(Layer):
    """Shared machinery: config, input checks, time-major projection, outputs and upstream gradients."""

    _gates = 1         # gate blocks in the kernel (LSTM 4, GRU 3)
    _n_states = 1      # states returned with return_state (LSTM 2: h and c)
    supports_masking = True
    takes_mask = True

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, seed=None, use_cudnn="auto", implementation=2, zero_output_for_mask=False,
                 **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        units = positive_int(self, "units", units)
        if stateful:
            raise ConfigError(f"{cls} layer {self.name!r}: stateful=True is not supported.")
        self.dropout = unit_rate(self, "dropout", dropout)
        self.recurrent_dropout = unit_rate(self, "recurrent_dropout", recurrent_dropout)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        # unroll, use_cudnn and implementation only choose Keras kernels: accepted, same math here
        self.unroll = bool(unroll)
        self.seed = optional_seed(self, seed)
        self.init = dict(kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint)
        self.bias = None

    # ----- weights and shapes ---------------------------------------------
    def _bias_shape(self):
        return (self._gates * self.units,)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ShapeError(f"{type(self).__name__} layer {self.name!r} expects inputs of shape "
                             f"(batch, timesteps, features), got (batch, {', '.join(map(str, input_shape))}).")
        i, g = self.init, self._gates * self.units
        features = fixed_size(self, input_shape, -1, "features axis")
        self.kernel = self.add_weight(shape=(features, g), initializer=i["kernel_initializer"], name="kernel",
                                      regularizer=i["kernel_regularizer"], constraint=i["kernel_constraint"])
        self.recurrent_kernel = self.add_weight(shape=(self.units, g), name="recurrent_kernel",
                                                initializer=i["recurrent_initializer"],
                                                regularizer=i["recurrent_regularizer"],
                                                constraint=i["recurrent_constraint"])
        if self.use_bias:
            self.bias = self.add_weight(shape=self._bias_shape(), initializer=i["bias_initializer"], name="bias",
                                        regularizer=i["bias_regularizer"], constraint=i["bias_constraint"])

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return [out] + [(self.units,)] * self._n_states
        return out

    def _input_bias(self, grad=False):
        """The bias (or its gradient) added to the input projection; None without bias."""
        if self.bias is None:
            return None
        return self.bias.grad if grad else self.bias.value

    def _project(self, X, T, B):
        """The input projections of all steps, X W + b, as one GEMM: (T, B, G*u)."""
        g = self._gates * self.units
        z = self.scratch.get("xz", (T * B, g), X.dtype)
        np.matmul(X, self.kernel.value, out=z)
        b = self._input_bias()
        if b is not None:
            z += b
        return z.reshape(T, B, g)

    # ----- forward -----------------------------------------------------------
    def compute_mask(self, inputs, mask):
        return rnn_masking.output_masks(self, mask)

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x, dtype=self.dtype)
        feat = self.kernel.shape[0]
        if x.ndim != 3 or x.shape[2] != feat:
            raise ShapeError(f"{type(self).__name__} layer {self.name!r} expects inputs of shape "
                             f"(batch, timesteps, {feat}), got {x.shape}.")
        B, T, _ = x.shape
        self._skip = rnn_masking.steps_to_skip(self, mask, B, T)
        xt = x.transpose(1, 0, 2)
        X = np.ascontiguousarray(xt[::-1] if self.go_backwards else xt).reshape(T * B, feat)
        in_mask = self._dropout_mask(1, self.dropout, B, feat) if training and self.dropout else None
        if in_mask is not None:
            X = X * np.tile(in_mask, (T, 1))    # one mask per sample, shared by all steps (Keras)
        self._rec_mask = (self._dropout_mask(2, self.recurrent_dropout, B, self.units)
                          if training and self.recurrent_dropout else None)
        # states: [H] or [H, C], each (T+1, B, u); extra: the gates "z" and what backward needs
        states, extra = self._recur(X, T, B)
        self.cache = {"X": X, "states": states, "B": B, "T": T, "in_mask": in_mask,
                      "rec_mask": self._rec_mask, "skip": self._skip, **extra}
        H = states[0]
        # copies: outputs outlive the scratch states (predict keeps them), and masking zeroes them in place
        out = H[1:].transpose(1, 0, 2).copy() if self.return_sequences else H[T].copy()
        if self._skip is not None and self.zero_output_for_mask:
            rnn_masking.zero_masked_outputs(out, self._skip, self.return_sequences)
        if self.return_state:
            return [out] + [s[T].copy() for s in states]
        return out

    def _state_arrays(self, n, T, B, dtype):
        """n zero-initialised (T+1, B, u) state sequences."""
        out = []
        for k in range(n):
            a = self.scratch.get(f"state{k}", (T + 1, B, self.units), dtype)
            a[0] = 0
            out.append(a)
        return out

    # ----- backward ----------------------------------------------------------
    def backward(self, dy):
        c = self.cache
        B, T, u = c["B"], c["T"], self.units
        dtype = c["z"].dtype
        if self.return_state:
            dy = list(dy)
            d_out, d_states = dy[0], dy[1:]
        else:
            d_out, d_states = dy, []
        d_last = [np.zeros((B, u), dtype) for _ in range(self._n_states)]
        dh_seq = None
        if d_out is not None and c["skip"] is not None and self.zero_output_for_mask:
            d_out = rnn_masking.output_grads(d_out, c["skip"], self.return_sequences)
        if d_out is not None:
            if self.return_sequences:
                dh_seq = np.ascontiguousarray(np.asarray(d_out, dtype).transpose(1, 0, 2))
            else:
                d_last[0] += d_out
        for acc, d in zip(d_last, d_states):
            if d is not None:
                acc += d
        dxz = self._bptt(dh_seq, d_last)
        dxz = dxz.reshape(T * B, dxz.shape[-1])
        self._weight_grads(dxz)
        if not self.need_input_grad:
            return None
        dx = (dxz @ self.kernel.value.T).reshape(T, B, self.kernel.shape[0])
        if c["in_mask"] is not None:
            dx *= c["in_mask"]
        if self.go_backwards:
            dx = dx[::-1]
        return np.ascontiguousarray(dx.transpose(1, 0, 2))

    def _dropout_mask(self, lane: int, rate: float, rows: int, width: int) -> np.ndarray:
        """Keep-mask scaled by 1/(1-rate), shape (rows, width), a function of (seed, layer, step,
        global row) as in `Dropout`: each rank draws exactly its slice of the global batch."""
        ctx = self.ctx
        first = ctx.row_start * width
        key = (int(ctx.seed) & (2 ** 64 - 1)) | ((int(self.seed or 0) & (2 ** 64 - 1)) << 64)
        lane += getattr(self, "lane_offset", 0)   # Bidirectional gives its backward copy other lanes
        bits = np.random.Philox(key=key, counter=[0, ctx.step, self.stream_id, lane])
        bits.advance(first // 4)
        u = np.random.Generator(bits).random(first % 4 + rows * width)[first % 4:]
        keep = (u >= rate).reshape(rows, width).astype(self.dtype)
        keep *= 1.0 / (1.0 - rate)
        return keep

    def _weight_grads(self, dxz):
        """kernel grad = X^T dxz, the input bias grad its column sums (`_bptt` does the recurrent kernel's)."""
        if self.kernel.trainable:
            np.matmul(self.cache["X"].T, dxz, out=self.kernel.grad)
        bg = self._input_bias(grad=True) if (self.bias is not None and self.bias.trainable) else None
        if bg is not None:
            np.sum(dxz, axis=0, out=bg)

    def _recurrent_grad(self, H, dpre):
        """recurrent_kernel grad = sum_t (m * h_{t-1})^T dpre_t as one GEMM over all steps
        (m the recurrent dropout mask, if any)."""
        if self.recurrent_kernel.trainable:
            T, B, u = dpre.shape[0], H.shape[1], self.units
            Hp = self._seen_states(H, T)
            np.matmul(Hp.reshape(T * B, u).T, dpre.reshape(T * B, dpre.shape[-1]), out=self.recurrent_kernel.grad)

    def _seen_states(self, H, T):
        """h_0 .. h_{T-1} as the recurrent kernel saw them (times the recurrent dropout mask, if any)."""
        return H[:T] if self.cache["rec_mask"] is None else H[:T] * self.cache["rec_mask"]

    # ----- config ------------------------------------------------------------
    def get_config(self):
        cfg = super().get_config()
        i = self.init
        cfg.update(units=self.units, activation=activations.serialize(self.activation), use_bias=self.use_bias)
        for k in ("kernel", "recurrent", "bias"):
            cfg[f"{k}_initializer"] = serialize_component(initializers, i[f"{k}_initializer"])
            cfg[f"{k}_regularizer"] = serialize_component(regularizers, i[f"{k}_regularizer"])
            cfg[f"{k}_constraint"] = serialize_component(constraints, i[f"{k}_constraint"])
        cfg.update(dropout=self.dropout, recurrent_dropout=self.recurrent_dropout, return_sequences=self.return_sequences,
                   return_state=self.return_state, go_backwards=self.go_backwards, stateful=False,
                   unroll=self.unroll, zero_output_for_mask=self.zero_output_for_mask, seed=self.seed)
        return cfg


class SimpleRNN(_RNN):
    """Fully-connected RNN: h_t = activation(x_t W + h_{t-1} U + b)."""

    def _recur(self, X, T, B):
        z = self._project(X, T, B)
        (H,) = self._state_arrays(1, T, B, z.dtype)
        pre = rnn_cells.simple_forward(z, self.recurrent_kernel.value, self.activation, H, self.scratch,
                                       self._rec_mask, self._skip)
        return [H], {"z": z, "pre": pre}

    def _bptt(self, dh_seq, d_last):
        H = self.cache["states"][0]
        dpre = rnn_cells.simple_backward(dh_seq, d_last[0], self.recurrent_kernel.value, self.activation,
                                         self.cache["pre"], H, self.scratch,
                                         self.cache["rec_mask"], self.cache["skip"])
        self._recurrent_grad(H, dpre)
        return dpre


class LSTM(_RNN):
    """Long short-term memory, Keras gate order i, f, c, o; forget-gate bias starts at 1."""

    _gates = 4
    _n_states = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def build(self, input_shape):
        super().build(input_shape)
        if self.bias is not None and self.unit_forget_bias:
            self.bias.value[self.units:2 * self.units] = 1

    def _recur(self, X, T, B):
        fused = rnn_cells.lstm_fused(self.activation, self.recurrent_activation, self.units, X.dtype)
        if fused is None:
            z = self._project(X, T, B)
            H, C = self._state_arrays(2, T, B, z.dtype)
            TC = self.scratch.get("tc", (T, B, self.units), z.dtype)
            pre = rnn_cells.lstm_forward(z, self.recurrent_kernel.value, self.activation,
                                         self.recurrent_activation, H, C, TC, self.scratch, self._rec_mask, self._skip)
            return [H, C], {"z": z, "pre": pre, "tc": TC, "fused": None}
        # one GEMM per step, [m * h_{t-1} | x_t | 1] @ [U; W; b] * scale, writes the gates directly
        u, feat = self.units, X.shape[1]
        b = self._input_bias()
        ones = int(b is not None)  # a column of ones: the GEMM adds the bias, and its gradient sums dz
        HX = self.scratch.get("hx", (T + 1, B, u + feat + ones), X.dtype)
        HX[:T, :, u:u + feat] = X.reshape(T, B, feat)
        HX[:, :, u + feat:] = 1
        HX[0, :, :u] = 0
        states = self._state_arrays(1 if self._rec_mask is None else 2, T, B, X.dtype)
        C = states[0]
        H = HX[:, :, :u] if self._rec_mask is None else states[1]
        z = self.scratch.get("gates", (T, B, 4 * u), X.dtype)
        TC = self.scratch.get("tc", (T, B, u), X.dtype)
        UW = self.scratch.get("uw", (u + feat + ones, 4 * u), X.dtype)
        np.multiply(self.recurrent_kernel.value, fused[0], out=UW[:u])
        np.multiply(self.kernel.value, fused[0], out=UW[u:u + feat])
        if ones:
            np.multiply(b, fused[0], out=UW[-1])
        rnn_cells.lstm_forward_fused(z, HX, H, UW, C, TC, self.scratch, fused, self._rec_mask, self._skip)
        return [H, C], {"z": z, "pre": None, "tc": TC, "fused": fused, "hx": HX}

    def _bptt(self, dh_seq, d_last):
        H, C = self.cache["states"]
        c, U = self.cache, self.recurrent_kernel.value
        if c["fused"] is not None:
            return rnn_cells.lstm_backward_fused(dh_seq, d_last[0], d_last[1], U, c["z"], H, C, c["tc"],
                                                 self.scratch, c["fused"], c["rec_mask"], c["skip"])
        dz = rnn_cells.lstm_backward(dh_seq, d_last[0], d_last[1], U, self.activation,
                                     self.recurrent_activation, c["z"], c["pre"], H, C, c["tc"],
                                     self.scratch, c["rec_mask"], c["skip"])
        self._recurrent_grad(H, dz)
        return dz

    def _weight_grads(self, dxz):
        """With the fused step, [U; W; b] grads = [m * h_{t-1} | x_t | 1]^T dz as one GEMM."""
        if self.cache["fused"] is None:
            return super()._weight_grads(dxz)
        u, feat = self.units, self.kernel.shape[0]
        wanted = [(v, sl) for v, sl in ((self.recurrent_kernel, slice(0, u)), (self.kernel, slice(u, u + feat)),
                                        (self.bias, slice(u + feat, None))) if v is not None and v.trainable]
        if wanted:
            hx = self.cache["hx"]
            hx = hx[:-1].reshape(-1, hx.shape[-1])
            g = self.scratch.get("uw_grad", (hx.shape[1], dxz.shape[1]), dxz.dtype)
            np.matmul(hx.T, dxz, out=g)
            for v, sl in wanted:
                v.grad[...] = g[sl].reshape(v.grad.shape)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(recurrent_activation=activations.serialize(self.recurrent_activation),
                   unit_forget_bias=self.unit_forget_bias)
        return cfg


class GRU(_RNN):
    """Gated recurrent unit, Keras gate order z, r, h; `reset_after=True` has bias (2, 3u)."""

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", reset_after=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        g = 3 * self.units
        return (2, g) if self.reset_after else (g,)

    def _input_bias(self, grad=False):
        arr = super()._input_bias(grad)
        return arr[0] if (arr is not None and self.reset_after) else arr

    def _recur(self, X, T, B):
        z = self._project(X, T, B)
        (H,) = self._state_arrays(1, T, B, z.dtype)
        HR = self.scratch.get("hr", (T, B, self.units), z.dtype)
        b_rec = self.bias.value[1] if (self.bias is not None and self.reset_after) else None
        pre = rnn_cells.gru_forward(z, self.recurrent_kernel.value, b_rec, self.activation,
                                    self.recurrent_activation, H, HR, self.reset_after, self.scratch, self._rec_mask,
                                    self._skip)
        return [H], {"z": z, "pre": pre, "hr": HR}

    def _bptt(self, dh_seq, d_last):
        H = self.cache["states"][0]
        U = self.recurrent_kernel.value
        dxz, drec = rnn_cells.gru_backward(dh_seq, d_last[0], U, self.activation, self.recurrent_activation,
                                           self.cache["z"], self.cache["pre"], H, self.cache["hr"], self.reset_after,
                                           self.scratch, self.cache["rec_mask"], self.cache["skip"])
        if self.reset_after:
            self._recurrent_grad(H, drec)
            if self.bias is not None and self.bias.trainable:
                np.sum(drec.reshape(-1, drec.shape[-1]), axis=0, out=self.bias.grad[1])
        elif self.recurrent_kernel.trainable:
            T, B, u = dxz.shape[0], H.shape[1], self.units
            g = self.recurrent_kernel.grad
            Hp = self._seen_states(H, T)
            g[:, :2 * u] = Hp.reshape(T * B, u).T @ dxz[:, :, :2 * u].reshape(T * B, 2 * u)
            g[:, 2 * u:] = self.cache["hr"].reshape(T * B, u).T @ dxz[:, :, 2 * u:].reshape(T * B, u)
        return dxz

    def get_config(self):
        cfg = super().get_config()
        cfg.update(recurrent_activation=activations.serialize(self.recurrent_activation),
                   reset_after=self.reset_after)
        return cfg
