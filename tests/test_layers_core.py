"""Core layers: float64 finite-difference checks and hand-computed forwards."""
import numpy as np
import pytest

from distdl.errors import ConfigError, ShapeError
from distdl.layers import Activation, Dense, Dropout, Flatten, Reshape
from distdl.layers.base import RunContext, deserialize, serialize
from gradcheck import check_layer

ACTS = ["linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "silu", "softplus"]


@pytest.mark.parametrize("activation", ACTS)
def test_dense_gradients(activation):
    rng = np.random.default_rng(1)
    layer = Dense(5, activation=activation, dtype="float64")
    check_layer(layer, rng.standard_normal((4, 3)) + 0.1)


def test_dense_on_3d_input_and_without_bias():
    rng = np.random.default_rng(2)
    check_layer(Dense(3, use_bias=False, dtype="float64"), rng.standard_normal((2, 4, 5)))


def test_dense_forward_matches_formula():
    layer = Dense(2, activation="relu", dtype="float64")
    layer.ensure_built((3,))
    layer.kernel.assign(np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 1.0]]))
    layer.bias.assign(np.array([0.5, -3.0]))
    y = layer.forward(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(y, [[max(0, 1 + 4 + 0.5), max(0, -1 + 1 + 3 - 3.0)]])


def test_dense_glorot_uniform_bounds_and_zero_bias():
    layer = Dense(300)
    layer.ensure_built((200,))
    limit = np.sqrt(6 / 500)
    assert layer.kernel.value.shape == (200, 300) and layer.kernel.value.dtype == np.float32
    assert np.abs(layer.kernel.value).max() <= limit and np.abs(layer.kernel.value).max() > 0.9 * limit
    assert not layer.bias.value.any()
    assert layer.count_params() == 200 * 300 + 300


@pytest.mark.parametrize("name", ["relu", "tanh", "softmax", "gelu"])
def test_activation_layer_gradients(name):
    check_layer(Activation(name, dtype="float64"), np.random.default_rng(3).standard_normal((3, 4)))


def test_flatten_reshape_gradients_and_shapes():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    check_layer(Flatten(dtype="float64"), x)
    r = Reshape((4, -1), dtype="float64")
    check_layer(r, x)
    assert r.output_shape == (4, 3)
    with pytest.raises(ShapeError, match="cannot reshape"):
        Reshape((5, 5)).ensure_built((3, 4))


def test_dropout_mask_statistics_and_gradient():
    layer = Dropout(0.25, dtype="float64")
    x = np.ones((400, 50))
    y = layer(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    np.testing.assert_array_equal(layer(x, training=False), x)
    check_layer(layer, np.random.default_rng(5).standard_normal((6, 7)))


def test_dropout_mask_of_a_row_slice_equals_slice_of_full_mask():
    """A rank holding rows [a, b) of the global batch draws exactly those rows' masks."""
    ctx = RunContext(seed=7)
    ctx.step = 3
    full = Dropout(0.5)
    full.ctx = ctx
    whole = full(np.ones((9, 5), dtype=np.float32), training=True)
    for a, b in [(0, 3), (3, 6), (6, 9), (1, 2), (5, 9)]:
        ctx.row_start = a
        part = full(np.ones((b - a, 5), dtype=np.float32), training=True)
        np.testing.assert_array_equal(part, whole[a:b])
    ctx.row_start, ctx.step = 0, 4
    assert not np.array_equal(full(np.ones((9, 5), dtype=np.float32), training=True), whole)


def test_layer_config_round_trip_and_errors():
    d = Dense(7, activation="tanh", use_bias=False, name="d7")
    d2 = deserialize(serialize(d))
    assert (d2.units, d2.activation.name, d2.use_bias, d2.name) == (7, "tanh", False, "d7")
    with pytest.raises(ConfigError, match="valid names"):
        Dense(3, activation="relux")
    with pytest.raises(ConfigError, match="Dropout layer .*: rate must be"):
        Dropout(1.5)
    with pytest.raises(ConfigError, match="valid names"):
        deserialize({"class_name": "Densse", "config": {}})
    with pytest.raises(ConfigError, match="valid names"):
        Dense(3, kernel_initializer="glorot_unifrom").ensure_built((2,))


def test_zero_rows_forward_and_backward():
    layer = Dense(4, activation="relu")
    y = layer(np.zeros((0, 3), dtype=np.float32), training=True)
    assert y.shape == (0, 4)
    dx = layer.backward(np.zeros((0, 4), dtype=np.float32))
    assert dx.shape == (0, 3) and not layer.kernel.grad.any()
