"""User-written layers (Keras 3 style: `call` over distdl.ops, no backward): weights, build,
nested layers, add_loss, the training and mask arguments, and gradients checked against finite
differences in float64. The patterns follow Keras's guide "Making new layers and models via
subclassing" (keras-team/keras-io guides/making_new_layers_and_models_via_subclassing.py)."""
from __future__ import annotations

import numpy as np
import pytest

from distdl import ops
from distdl.errors import ConfigError, ShapeError
from distdl.layers import Dense, Embedding, Input, Layer
from distdl.models import Model, Sequential
from gradcheck import check_layer, numeric_grad, rel_error
from user_layers import F64, ActivityRegularization, ComputeSum, HalfWhenTraining, LazyLinear, Linear, MLPBlock
from user_layers import sample as _x


def test_linear_with_weights_in_init_computes_x_w_plus_b_and_tracks_its_weights():
    layer = Linear(4, 3)
    x = _x(2, 3).astype("float32")
    y = layer(x)
    np.testing.assert_allclose(y, x @ layer.w.value + layer.b.value, rtol=1e-6)
    assert [v.name for v in layer.trainable_weights] == [f"{layer.name}/variable", f"{layer.name}/variable_1"]
    check_layer(Linear(4, 3, dtype=F64), _x(5, 3))


def test_build_gets_keras_shapes_with_the_batch_axis():
    layer = LazyLinear(4, dtype=F64)
    layer(_x(2, 3))
    assert layer.seen_shape == (None, 3)
    assert layer.output_shape == (4,)
    check_layer(layer, _x(4, 3))


def test_add_weight_keras_defaults_and_refusals():
    layer = Layer()
    scalar = layer.add_weight()
    assert scalar.shape == () and scalar.name.endswith("/variable")
    ints = layer.add_weight(shape=(2,), dtype="int32")
    assert ints.value.dtype == np.int32 and not ints.value.any()  # zeros for non-floats
    with pytest.raises(ConfigError, match="every size must be known"):
        layer.add_weight(shape=(None, 3), name="k")


def test_non_trainable_weight_updated_in_call_as_the_guide_shows():
    layer = ComputeSum(2)
    x = np.ones((2, 2), dtype="float32")
    np.testing.assert_array_equal(layer(x), [2.0, 2.0])
    np.testing.assert_array_equal(layer(x), [4.0, 4.0])
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 1


def test_nested_layers_are_tracked_in_keras_order_and_differentiated():
    block = MLPBlock(dtype=F64)
    x = _x(4, 3)
    block(x)
    names = [v.name for v in block.weights]
    inner = [block.linear_1, block.dense, block.linear_3]
    assert names == [v.name for layer in inner for v in layer.weights]
    assert block.count_params() == 3 * 6 + 6 + 6 * 5 + 5 + 5 * 2 + 2
    # the gradient of sum(y * r) + the added penalty, against finite differences
    r = np.random.default_rng(1).standard_normal((4, 2))

    def objective():
        out = block.forward(x, training=True)
        return float(np.sum(out * r)) + block.added_loss

    objective()
    dx = block.backward(r)
    grads = [v.grad.copy() for v in block.trainable_weights]
    assert rel_error(dx, numeric_grad(objective, x)) < 1e-6
    for v, g in zip(block.trainable_weights, grads):
        assert rel_error(g, numeric_grad(objective, v.value)) < 1e-6, v.name


def test_a_shared_layer_called_twice_inside_call_sums_its_gradients():
    class Twice(Layer):
        def __init__(self):
            super().__init__(dtype=F64)
            self.inner = Dense(3, activation="tanh", dtype=F64)
            self.lin = LazyLinear(3, dtype=F64)

        def call(self, x):
            return self.inner(self.inner(x)) + self.lin(self.lin(x))

    check_layer(Twice(), _x(4, 3))


# ----- add_loss, training, masks -----------------------------------------------------------


def test_add_loss_is_reported_and_joins_the_training_loss():
    x = _x(8, 3).astype("float32")
    y = _x(8, 1, seed=1).astype("float32")
    model = Sequential([Input(shape=(3,)), ActivityRegularization(0.5), Dense(1, kernel_initializer="ones")])
    model.compile("sgd", "mse")
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    mse = float(np.mean((x.sum(axis=1, keepdims=True) - y) ** 2))
    assert logs["loss"] == pytest.approx(mse + 0.5 * float(np.mean(x ** 2)), rel=1e-5)
    layer = model.layers[-2] if isinstance(model.layers[-2], ActivityRegularization) else model.layers[0]
    np.testing.assert_allclose(float(np.sum(layer.losses)), 0.5 * np.mean(x ** 2), rtol=1e-5)
    # one SGD step: the added loss's gradient reaches the weights through the inputs... and not
    # the kernel (it depends on the inputs only), so the kernel moves exactly as for plain mse
    plain = Sequential([Input(shape=(3,)), Dense(1, kernel_initializer="ones")])
    plain.compile("sgd", "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    plain.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(model.get_weights()[0], plain.get_weights()[0], rtol=1e-6)


def test_training_argument_is_passed_when_call_declares_it():
    model = Sequential([Input(shape=(2,)), HalfWhenTraining()])
    x = np.ones((3, 2), dtype="float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    layer = model.layers[-1]
    np.testing.assert_array_equal(layer.forward(x, training=True), 0.5 * x)


def test_a_custom_layer_gets_the_mask_keras_passes():
    class MaskedMean(Layer):
        def call(self, inputs, mask=None):
            if mask is None:
                return ops.mean(inputs, axis=1)
            self.got = np.array(mask)
            w = ops.cast(mask, inputs.dtype)[:, :, None]
            return ops.sum(inputs * w, axis=1) / ops.sum(w, axis=1)

    inp = Input(shape=(4,))
    emb = Embedding(10, 3, mask_zero=True)
    layer = MaskedMean()
    model = Model(inp, layer(emb(inp)))
    ids = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    out = model.predict(ids, verbose=0)
    table = emb.embeddings.value
    np.testing.assert_array_equal(layer.got, ids != 0)
    np.testing.assert_allclose(out, [table[[1, 2]].mean(axis=0), table[3]], rtol=1e-6)


# ----- the same trajectory as the built-in layer -----------------------------------------


def test_call_returning_a_numpy_array_is_refused_with_the_layer_name():
    class NumpyOut(Layer):
        def call(self, inputs):
            return np.tanh(np.asarray(inputs))

    layer = NumpyOut(name="numpy_out")
    with pytest.raises(ConfigError, match="Layer 'numpy_out': call returned a ndarray, not a distdl tensor"):
        layer(np.ones((2, 2), dtype="float32"))


def test_a_numpy_function_on_a_recorded_tensor_names_the_op_to_use():
    class NumpyInside(Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), name="w")

        def call(self, inputs):
            return np.exp(inputs * self.w)

    layer = NumpyInside(name="np_inside")
    with pytest.raises(ConfigError, match="Layer 'np_inside' applied numpy.exp .* use distdl.ops.exp"):
        layer(np.ones((2, 3), dtype="float32"))  # found as the layer is built


def test_an_op_on_incompatible_shapes_names_the_op_and_both_shapes():
    with pytest.raises(ShapeError, match=r"ops.add: shapes \(2, 3\) and \(4,\)"):
        ops.add(np.ones((2, 3)), np.ones(4))
    with pytest.raises(ShapeError, match=r"ops.matmul: shapes \(2, 3\) and \(4, 5\)"):
        ops.matmul(np.ones((2, 3)), np.ones((4, 5)))


def test_a_layer_without_call_or_forward_says_what_to_define():
    class Empty(Layer):
        pass

    with pytest.raises(ConfigError, match="defines neither call"):
        Empty(name="empty").forward(np.ones((1, 1)))


def test_add_loss_in_evaluate_is_the_batch_mean_whatever_the_batch_size():
    x = _x(10, 3).astype("float32")
    y = np.zeros((10, 1), dtype="float32")
    model = Sequential([Input(shape=(3,)), ActivityRegularization(1.0), Dense(1, kernel_initializer="zeros")])
    model.compile("sgd", "mse")
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)  # leaves the loop's batch size behind
    model.layers[-1].set_weights([np.zeros((3, 1)), np.zeros(1)])
    for batch_size in (2, 5, 10):
        logs = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
        per_batch = [np.mean(x[s:s + batch_size] ** 2) for s in range(0, 10, batch_size)]
        assert logs["loss"] == pytest.approx(float(np.mean(per_batch)), rel=1e-5)


def test_keras_activations_inside_call_are_recorded_and_nested_add_loss_shows_in_losses():
    """The subclassing guide calls `keras.activations.relu(x)` in `call`, and reads
    `layer.losses` after an eager call of an outer layer whose inner layer adds a loss."""
    import distdl as keras

    class ReluBlock(Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = LazyLinear(3, dtype=self.dtype)

        def call(self, inputs):
            return keras.activations.tanh(self.inner(keras.activations.relu(inputs)))

    check_layer(ReluBlock(dtype=F64), _x(4, 3))

    class Outer(Layer):
        def __init__(self):
            super().__init__()
            self.reg = ActivityRegularization(0.5)

        def call(self, inputs):
            return self.reg(inputs)

    outer = Outer()
    outer(ops.ones((2, 2)))
    assert len(outer.losses) == 1 and float(outer.losses[0]) == pytest.approx(0.5)
