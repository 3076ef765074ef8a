"""Small distdl models that together use every built-in layer (and non-default options), with inputs.

`ZOO[name]()` returns (model, inputs); the `.keras` round-trip tests and the real-Keras tests use them.
"""
import numpy as np

from distdl import constraints, initializers, regularizers, utils
from distdl import layers as L
from distdl.layers import base
from distdl.models import Model, Sequential


def _floats(rng, *shape):
    return rng.standard_normal(shape).astype("float32")


def dense_stack():
    m = Sequential([
        L.Dense(8, activation="relu", input_shape=(6,), kernel_initializer=initializers.HeNormal(seed=3),
                kernel_regularizer=regularizers.L2(0.01), bias_constraint=constraints.MaxNorm(2.0)),
        L.Activation("tanh"), L.Dropout(0.2, seed=5), L.Reshape((2, 4)),
        L.LayerNormalization(epsilon=1e-4, gamma_regularizer=regularizers.L1L2(0.001, 0.002)),
        L.Flatten(), L.RepeatVector(3), L.Permute((2, 1)), L.Flatten(),
        L.BatchNormalization(momentum=0.9, beta_constraint=constraints.NonNeg()),
        L.Dense(3, activation="softmax", use_bias=False, kernel_constraint=constraints.UnitNorm())])
    return m, [_floats(np.random.default_rng(0), 5, 6)]


def conv2d_net():
    x = L.Input((10, 10, 2), name="image")
    h = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
    h = L.Conv2D(4, 3, padding="same", activation="relu", bias_initializer=initializers.Constant(0.1))(h)
    h = L.BatchNormalization()(h)
    h = L.MaxPooling2D()(h)
    h = L.Cropping2D(((1, 0), (0, 1)))(h)
    h = L.UpSampling2D((2, 1))(h)
    h = L.AveragePooling2D(pool_size=(2, 2), strides=(1, 1), padding="same")(h)
    h = L.Conv2D(3, (2, 3), strides=(1, 2), dilation_rate=1, activation="elu")(h)
    out = L.Dense(2)(L.Concatenate()([L.GlobalAveragePooling2D()(h), L.GlobalMaxPooling2D()(h)]))
    return Model(x, out, name="conv2d_net"), [_floats(np.random.default_rng(1), 4, 10, 10, 2)]


def conv1d_net():
    x = L.Input((12, 3))
    h = L.Conv1D(4, 3, padding="causal", activation="relu")(x)
    h = L.MaxPooling1D(2)(h)
    h = L.ZeroPadding1D((1, 2))(h)
    h = L.Cropping1D((1, 0))(h)
    h = L.UpSampling1D(2)(h)
    h = L.AveragePooling1D(3, strides=2, padding="same")(h)
    out = L.Concatenate()([L.GlobalAveragePooling1D()(h), L.GlobalMaxPooling1D(keepdims=False)(h)])
    return Model(x, L.Dense(3, activation="sigmoid")(out)), [_floats(np.random.default_rng(2), 4, 12, 3)]


def recurrent_net():
    m = Sequential([
        L.Embedding(20, 4, mask_zero=True, input_shape=(7,)),
        L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
        L.TimeDistributed(L.Dense(5, activation="relu")),
        L.SimpleRNN(4, return_sequences=True, activation="tanh"),
        L.LSTM(3, recurrent_activation="hard_sigmoid", unit_forget_bias=False),
        L.Dense(1)])
    ids = np.random.default_rng(3).integers(1, 20, (5, 7))
    ids[0, 4:] = 0
    ids[2, 6:] = 0
    return m, [ids.astype("float32")]


def masked_gru():
    x = L.Input((6, 3))
    h = L.Masking(mask_value=0.0)(x)
    h = L.GRU(4, reset_after=False, return_sequences=True, go_backwards=True)(h)
    h = L.Bidirectional(L.LSTM(2))(h)
    xs = _floats(np.random.default_rng(4), 4, 6, 3)
    xs[1, 3:] = 0.0
    return Model(x, L.Dense(2)(h)), [xs]


def merges():
    a, b = L.Input((4,), name="a"), L.Input((4,), name="b")
    shared = L.Dense(4, activation="tanh", name="shared")
    sa, sb = shared(a), shared(L.Dense(4, name="deep")(L.Dense(4, name="deeper")(b)))
    parts = [L.Add()([sa, sb]), L.Subtract()([sa, sb]), L.Multiply()([sa, sb]), L.Average()([sa, sb]),
             L.Maximum()([sa, sb]), L.Minimum()([sa, sb]), L.Dot(axes=1, normalize=True)([sa, sb])]
    out1 = L.Dense(2, name="head")(L.Concatenate(axis=-1)(parts))
    out2 = L.Dense(1, name="side")(sb)
    rng = np.random.default_rng(5)
    return Model([a, b], [out1, out2], name="merges"), [_floats(rng, 3, 4), _floats(rng, 3, 4)]


ZOO = {f.__name__: f for f in (dense_stack, conv2d_net, conv1d_net, recurrent_net, masked_gru, merges)}


def build(name, seed=7):
    """A fresh zoo model (names reset, weights drawn from `seed`) and its inputs."""
    base.reset_names()
    utils.set_random_seed(seed)
    return ZOO[name]()


def layer_classes(model) -> set[str]:
    """Class names of the model's layers, wrapped layers included."""
    out, todo = set(), list(model.layers)
    while todo:
        layer = todo.pop()
        out.add(type(layer).__name__)
        todo += [getattr(layer, a) for a in ("layer", "forward_layer") if hasattr(layer, a)]
    return out


def builtin_layer_classes() -> set[str]:
    """Keras's layers that distdl builds in, but TensorOp (distdl's node for an op on symbolic tensors)
    and Lambda (its function is code, which no archive holds): tests/test_symbolic_ops.py has both."""
    return {n for n, c in base._LAYER_CLASSES.items()
            if c.__module__.startswith("distdl.layers.") and n not in ("TensorOp", "Lambda")}
