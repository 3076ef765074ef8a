"""Layers users write, as Keras's guides and examples write them (imports changed only): the
tests of recorded layers share them. From Keras's guide "Making new layers and models via
subclassing" (keras-io guides/making_new_layers_and_models_via_subclassing.py) and the Antirectifier
example (keras-io examples/keras_recipes/antirectifier.py)."""
from __future__ import annotations

import numpy as np

from distdl import ops
from distdl.layers import Dense, Layer

F64 = "float64"


class Linear(Layer):
    """The guide's first layer: weights made in __init__."""

    def __init__(self, units=32, input_dim=32, **kwargs):
        super().__init__(**kwargs)
        self.w = self.add_weight(shape=(input_dim, units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


class LazyLinear(Layer):
    """Weights made in build, from the input shape (Keras passes it with the batch axis)."""

    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.seen_shape = None

    def build(self, input_shape):
        self.seen_shape = input_shape
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", name="b")

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


class ComputeSum(Layer):
    """A non-trainable weight updated in call (the guide's running total)."""

    def __init__(self, input_dim, **kwargs):
        super().__init__(**kwargs)
        self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

    def call(self, inputs):
        self.total.assign_add(ops.sum(inputs, axis=0))
        return self.total


class MLPBlock(Layer):
    """Nested layers, recorded and built-in, with a weight penalty through add_loss."""

    def __init__(self, dtype=None):
        super().__init__(dtype=dtype)
        self.linear_1 = LazyLinear(6, dtype=dtype)
        self.dense = Dense(5, activation="tanh", dtype=dtype)
        self.linear_3 = LazyLinear(2, dtype=dtype)

    def call(self, inputs):
        x = ops.relu(self.linear_1(inputs))
        y = self.linear_3(self.dense(x))
        self.add_loss(1e-2 * ops.sum(ops.square(self.linear_3.w)))
        return y


class ActivityRegularization(Layer):
    """The guide's add_loss example: rate x mean of the inputs."""

    def __init__(self, rate=1e-2, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(ops.square(inputs)))
        return inputs


class HalfWhenTraining(Layer):
    """Declares `training`: halves its input when training."""

    def call(self, inputs, training=None):
        return inputs * 0.5 if training else inputs


class CustomDense(Layer):
    """Dense + ReLU written with ops: the same math as the built-in Dense(units, 'relu')."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        return ops.relu(ops.matmul(inputs, self.kernel) + self.bias)


class Antirectifier(Layer):
    """Keras's example (keras-io examples/keras_recipes/antirectifier.py), imports changed only."""

    def __init__(self, initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.initializer = initializer

    def build(self, input_shape):
        output_dim = input_shape[-1]
        self.kernel = self.add_weight(shape=(output_dim * 2, output_dim), initializer=self.initializer,
                                      name="kernel", trainable=True)

    def call(self, inputs):
        inputs -= ops.mean(inputs, axis=-1, keepdims=True)
        pos = ops.relu(inputs)
        neg = ops.relu(-inputs)
        concatenated = ops.concatenate([pos, neg], axis=-1)
        return ops.matmul(concatenated, self.kernel)

    def get_config(self):
        return {**super().get_config(), "initializer": self.initializer}


def sample(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ----- weights and build ------------------------------------------------------------------
