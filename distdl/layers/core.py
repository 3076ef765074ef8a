"""Core layers: Input, Dense, Activation, Dropout, Flatten, Reshape."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import activations
from ..errors import ConfigError, ShapeError
from ..special import constant
from .base import Layer, SymbolicTensor
from .layer_utils import fixed_size, optional_seed, positive_int, unit_rate

__all__ = ["InputLayer", "Input", "DenseCache", "Dense", "Activation", "Dropout", "Flatten", "Reshape"]


class InputLayer(Layer):
    """The source of a model input; passes data through unchanged.

    Args:
        shape: the input shape, batch axis excluded (None for a variable axis).
        batch_size: Keras's fixed batch size, accepted and ignored (batches are split across ranks).
        name: the layer's name.
        dtype: the input's dtype (default: backend.floatx()).
        input_shape: Keras 2's name for `shape`.
        **kw: other base `Layer` arguments.
    """

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, input_shape=None, **kw):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ConfigError("Input needs a shape, e.g. Input(shape=(64,)).")
        super().__init__(name=name, dtype=dtype, input_shape=tuple(shape), **kw)
        self.ensure_built(self.declared_input_shape)

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.declared_input_shape)}


def Input(shape=None, batch_size=None, name=None, dtype=None) -> SymbolicTensor:
    """A symbolic model input, as `keras.Input`.

    Args:
        shape: the input shape, batch axis excluded (None for a variable axis).
        batch_size: Keras's fixed batch size, accepted and ignored.
        name: the input layer's name.
        dtype: the input's dtype (default: backend.floatx()).
    """
    if shape is None:
        raise ConfigError("Input needs a shape, e.g. Input(shape=(64,)).")
    layer = InputLayer(shape=tuple(shape), name=name, dtype=dtype)
    return SymbolicTensor(layer.output_shape, layer, [], 0, layer.dtype)


@dataclass(slots=True)
class DenseCache:
    """What Dense's backward needs from its forward (rows = the input's leading axes, flattened).

    Args:
        x2: the input as (rows, in).
        z: the pre-activation (rows, units), kept when the activation's derivative needs it, else None.
        y: the output (rows, units).
        shape: the input's shape, for dx.
    """

    x2: np.ndarray
    z: np.ndarray | None
    y: np.ndarray
    shape: tuple


class Dense(Layer):
    """`y = activation(x @ kernel + bias)` on the last axis; kernel (in, units).

    Args:
        units: the output size (last axis), a positive int.
        activation: the activation's name or function (None: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer: initializer of the (in, units) kernel.
        bias_initializer: initializer of the (units,) bias.
        kernel_regularizer: regularizer of the kernel.
        bias_regularizer: regularizer of the bias.
        kernel_constraint: constraint on the kernel.
        bias_constraint: constraint on the bias.
        **kwargs: the base `Layer` arguments (name, dtype, input_shape, ...).
    """

    supports_masking = True   # as in Keras 3: a mask passes through

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int(self, "units", units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.init = dict(kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def build(self, input_shape):
        if len(input_shape) < 1:
            raise ShapeError(f"Dense layer {self.name!r} needs inputs with a feature axis, got shape {input_shape}.")
        i = self.init
        features = fixed_size(self, input_shape, -1, "last axis")
        self.kernel = self.add_weight(shape=(features, self.units), initializer=i["kernel_initializer"],
                                      name="kernel",
                                      regularizer=i["kernel_regularizer"], constraint=i["kernel_constraint"])
        self.bias = (self.add_weight(shape=(self.units,), initializer=i["bias_initializer"], name="bias",
                                     regularizer=i["bias_regularizer"], constraint=i["bias_constraint"])
                     if self.use_bias else None)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        rows = x2.shape[0]
        kernel = self.kernel.value
        if training:
            z = np.matmul(x2, kernel, out=self.scratch.get("z", (rows, self.units), kernel.dtype))
        else:  # an inference output is the caller's to keep
            z = x2 @ kernel
        if self.bias is not None:
            z += self.bias.value
        y, zkeep = self._activate(z)
        self.cache = DenseCache(x2, zkeep, y, shape)
        return y.reshape(shape[:-1] + (self.units,))

    def _activate(self, z):
        """Apply the activation (in place when its derivative needs only the output)."""
        act = self.activation
        if act.name == "linear":
            return z, None
        y = act.forward(z, out=None if act.uses_input else z)
        return y, (z if act.uses_input else None)

    def backward(self, dy):
        dz = dy.reshape(-1, self.units)
        if self.activation.name != "linear":
            c = self.cache
            dz = self.activation.backward(dz, c.z, c.y, out=self.scratch.get("dz", dz.shape, dz.dtype))
        return self.backward_preactivation(dz)

    def backward_preactivation(self, dz):
        """Backward from the gradient w.r.t. the pre-activation (fused loss gradients).

        Args:
            dz: the loss gradient w.r.t. the pre-activation, shaped like the output.
        """
        c = self.cache
        dz = dz.reshape(-1, self.units)
        np.matmul(c.x2.T, dz, out=self.kernel.grad)
        if self.bias is not None:  # column sums as a GEMV: 2-4x faster than dz.sum(axis=0)
            np.dot(constant((dz.shape[0],), dz.dtype, 1.0), dz, out=self.bias.grad)
        if not self.need_input_grad:
            return None
        kernel = self.kernel.value
        dx = np.matmul(dz, kernel.T, out=self.scratch.get("dx", (dz.shape[0], kernel.shape[0]), kernel.dtype))
        return dx.reshape(c.shape)

    def get_config(self):
        from .. import constraints, initializers, regularizers
        from .layer_utils import serialize_component as ser
        cfg = super().get_config()
        i = self.init
        cfg.update(units=self.units, activation=activations.serialize(self.activation), use_bias=self.use_bias,
                   kernel_initializer=ser(initializers, i["kernel_initializer"]),
                   bias_initializer=ser(initializers, i["bias_initializer"]),
                   kernel_regularizer=ser(regularizers, i["kernel_regularizer"]),
                   bias_regularizer=ser(regularizers, i["bias_regularizer"]),
                   kernel_constraint=ser(constraints, i["kernel_constraint"]),
                   bias_constraint=ser(constraints, i["bias_constraint"]))
        return cfg


class Activation(Layer):
    """Applies an activation function by Keras name.

    Args:
        activation: the activation's name (e.g. "relu") or function.
        **kwargs: the base `Layer` arguments.
    """

    supports_masking = True   # as in Keras 3: a mask passes through

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        act = self.activation
        y = act.forward(x)
        self.cache = (x if act.uses_input else None, y)
        return y

    def backward(self, dy):
        x, y = self.cache
        return self.activation.backward(dy, x, y)

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = activations.serialize(self.activation)
        return cfg


class Dropout(Layer):
    """Zeroes a `rate` fraction of inputs in training and scales the rest by 1/(1-rate).

    The mask is a function of (seed, layer, step, global row), drawn with a
    counter-based Philox generator advanced to this rank's first row, so every
    rank count gives the same masks (design decision 3).

    Args:
        rate: the fraction of inputs to drop, in [0, 1).
        noise_shape: the shape of the drop mask, broadcast over the input (None: the input's).
        seed: the seed of the masks (None: the model's).
        **kwargs: the base `Layer` arguments.
    """

    supports_masking = True   # as in Keras 3: a mask passes through

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = unit_rate(self, "rate", rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = optional_seed(self, seed)

    def _mask(self, shape, dtype):
        ctx = self.ctx
        row = int(np.prod(shape[1:], dtype=np.int64))
        first = ctx.row_start * row
        key = (int(ctx.seed) & (2 ** 64 - 1)) | ((int(self.seed or 0) & (2 ** 64 - 1)) << 64)
        bits = np.random.Philox(key=key, counter=[0, ctx.step, self.stream_id, 0])
        bits.advance(first // 4)
        u = np.random.Generator(bits).random(first % 4 + shape[0] * row)[first % 4:]
        keep = (u >= self.rate).reshape(shape)
        return keep.astype(dtype) * dtype.type(1.0 / (1.0 - self.rate))

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self.cache = None
            return x
        shape = x.shape if self.noise_shape is None else (x.shape[0],) + tuple(
            x.shape[i + 1] if d is None else d for i, d in enumerate(self.noise_shape[1:]))
        self.cache = self._mask(shape, x.dtype)
        return x * self.cache

    def backward(self, dy):
        return dy if self.cache is None else dy * self.cache

    def get_config(self):
        cfg = super().get_config()
        cfg.update(rate=self.rate, noise_shape=list(self.noise_shape) if self.noise_shape else None, seed=self.seed)
        return cfg


class Flatten(Layer):
    """Reshapes (batch, ...) to (batch, prod(...)). With a None (variable) axis the output is
    (batch, None), as in Keras 3 (its flatten_test.py, test_flatten_symbolic_with_dynamic_dimension);
    a layer whose weights that axis would size (Dense) then refuses it."""

    def compute_output_shape(self, input_shape):
        if None in tuple(input_shape):
            return (None,)
        return (int(np.prod(input_shape, dtype=np.int64)),)

    def forward(self, x, training=False):
        self.cache = x.shape
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))

    def backward(self, dy):
        return dy.reshape(self.cache)


class Reshape(Layer):
    """Reshapes the non-batch axes to `target_shape` (one entry may be -1). On an input with a None
    (variable) axis the -1 becomes None and the sizes are checked per batch (Keras 3's rule,
    reshape_test.py: `test_reshape_with_dynamic_dim_and_minus_one`, `test_reshape_sets_static_shape`).

    Args:
        target_shape: the output shape, batch axis excluded.
        **kwargs: the base `Layer` arguments.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        target = list(self.target_shape)
        if target.count(-1) > 1:
            raise ShapeError(f"Reshape layer {self.name!r}: at most one -1 in target_shape {self.target_shape}.")
        if None in tuple(input_shape):
            return tuple(None if d == -1 else d for d in target)
        size = int(np.prod(input_shape, dtype=np.int64))
        known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        if -1 in target:
            if known == 0 or size % known:
                raise ShapeError(f"Reshape layer {self.name!r} cannot reshape {tuple(input_shape)} to {self.target_shape}.")
            target[target.index(-1)] = size // known
        elif known != size:
            raise ShapeError(f"Reshape layer {self.name!r} cannot reshape {tuple(input_shape)} "
                             f"({size} values) to {self.target_shape} ({known} values).")
        return tuple(target)

    def forward(self, x, training=False):
        self.cache = x.shape
        shape = self.output_shape
        if None in self.input_shape:  # this batch's sizes: resolves -1, refuses a size mismatch
            shape = self.compute_output_shape(x.shape[1:])
        return x.reshape((x.shape[0],) + shape)

    def backward(self, dy):
        return dy.reshape(self.cache)

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = list(self.target_shape)
        return cfg


