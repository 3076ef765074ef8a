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


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ----- weights and build ------------------------------------------------------------------
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
def test_custom_dense_relu_follows_the_built_in_dense_trajectory():
    x = _x(64, 6).astype("float32")
    y = _x(64, 1, seed=2).astype("float32")
    built_in = Sequential([Input(shape=(6,)), Dense(8, activation="relu"), Dense(1)])
    custom = Sequential([Input(shape=(6,)), CustomDense(8), Dense(1)])
    custom.set_weights(built_in.get_weights())
    for m in (built_in, custom):
        m.compile("adam", "mse")
        m.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
    for a, b in zip(built_in.get_weights(), custom.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# ----- bad input -------------------------------------------------------------------------
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


def test_the_antirectifier_example_matches_numpy_and_its_gradient_is_exact():
    layer = Antirectifier(dtype=F64)
    x = _x(6, 4)
    y = layer(x)
    c = x - x.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(y, np.concatenate([np.maximum(c, 0), np.maximum(-c, 0)], -1) @ layer.kernel.value)
    check_layer(layer, x)
    model = Sequential([Input(shape=(4,)), Dense(8), Antirectifier(), Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    labels = (x[:, 0] > 0).astype(int)
    first = model.evaluate(x.astype("float32"), labels, verbose=0)
    model.fit(x.astype("float32"), labels, epochs=20, batch_size=6, verbose=0)
    assert model.evaluate(x.astype("float32"), labels, verbose=0)[0] < first[0]


def test_a_model_with_a_registered_recorded_layer_saves_and_loads(tmp_path):
    from distdl.models import load_model
    from distdl.saving import register_keras_serializable

    @register_keras_serializable(package="CustomLayersTest")
    class Scaled(Antirectifier):
        pass

    x = _x(5, 4).astype("float32")
    model = Sequential([Input(shape=(4,)), Dense(4), Scaled(), Dense(2)])
    for name in ("m.h5", "m.keras"):
        model.save(tmp_path / name)
        back = load_model(tmp_path / name)
        assert type(back.layers[1]) is Scaled and back.layers[1].initializer == "he_normal"
        np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_an_unregistered_recorded_layer_in_a_file_is_refused_by_name(tmp_path):
    from distdl.models import load_model

    class Unlisted(Antirectifier):
        pass

    Sequential([Input(shape=(4,)), Unlisted()]).save(tmp_path / "u.h5")
    with pytest.raises(Exception, match="Unlisted.*register_keras_serializable"):
        load_model(tmp_path / "u.h5")


def test_a_custom_embedding_keeps_integer_ids():
    class Lookup(Layer):
        def build(self, input_shape):
            self.table = self.add_weight(shape=(10, 3), name="table")

        def call(self, ids):
            return ops.take(self.table, ids, axis=0)

    layer = Lookup(dtype=F64)
    ids = np.array([[1, 2], [9, 0]])
    np.testing.assert_array_equal(layer(ids), layer.table.value[ids])
    inp = Input(shape=(2,), dtype="int32")
    model = Model(inp, Lookup()(inp))
    assert model.output_shapes == [(2, 3)]


@pytest.mark.mpi
@pytest.mark.slow
def test_user_written_pieces_give_the_same_numbers_on_1_2_and_3_ranks(tmp_path):
    """A recorded layer (nested Dense, add_loss, a normal draw on the batch rows), ops on symbolic
    tensors, a Lambda, a custom loss function and a custom Metric subclass (mpi_scripts/
    custom_everything.py): 2 and 3 ranks end with the one-process weights, history and evaluate
    logs, and all ranks of a run hold bitwise the same weights."""
    from mpirun import run_ranks
    runs = run_ranks("custom_everything.py", tmp_path)
    ref = runs[1][0]
    assert set(ref) >= {"hist_loss", "hist_sign_agreement", "hist_mae", "eval_loss", "eval_sign_agreement"}
    for n in (2, 3):
        for r in range(n):
            got = runs[n][r]
            np.testing.assert_array_equal(got["params"], runs[n][0]["params"])
            for key, value in ref.items():
                np.testing.assert_allclose(got[key], value, rtol=1e-9, atol=1e-12, err_msg=f"{key} n={n} r={r}")


def test_linear_trains_as_a_hand_written_numpy_sgd_step():
    """One SGD step of mse on Linear equals the NumPy formula W -= lr * 2/(N*units) * x^T (xW + b - y)."""
    from distdl.optimizers import SGD
    x, y = _x(8, 3), _x(8, 2, seed=1)
    layer = Linear(2, 3, dtype=F64)
    model = Sequential([Input(shape=(3,), dtype=F64), layer])
    w0, b0 = layer.w.numpy(), layer.b.numpy()
    model.compile(SGD(0.1), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    err = x @ w0 + b0 - y
    np.testing.assert_allclose(layer.w.value, w0 - 0.1 * 2 / err.size * x.T @ err, rtol=1e-12)
    np.testing.assert_allclose(layer.b.value, b0 - 0.1 * 2 / err.size * err.sum(axis=0), rtol=1e-12)


def test_a_registered_loss_function_is_found_by_name_in_compile_and_on_load(tmp_path):
    from distdl.models import load_model
    from distdl.saving import custom_object_scope, register_keras_serializable

    @register_keras_serializable(package="LayersTest")
    def half_squared(y_true, y_pred):
        return ops.mean(0.5 * ops.square(y_true - y_pred), axis=-1)

    x, y = _x(6, 3).astype("float32"), _x(6, 1, seed=1).astype("float32")
    model = Sequential([Input(shape=(3,)), Dense(1)])
    model.compile("sgd", loss="LayersTest>half_squared")
    first = model.evaluate(x, y, verbose=0)
    assert first == pytest.approx(float(np.mean(0.5 * (model.predict(x, verbose=0) - y) ** 2)), rel=1e-5)
    model.save(tmp_path / "m.h5")
    assert load_model(tmp_path / "m.h5").evaluate(x, y, verbose=0) == pytest.approx(first, rel=1e-6)
    with custom_object_scope({"plain_name": half_squared}):
        model.compile("sgd", loss="plain_name")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(first, rel=1e-6)


def test_a_call_that_fails_on_the_shape_probe_says_how_to_fix_it():
    class FixedBatch(Layer):
        def call(self, inputs):
            return ops.reshape(inputs, (32, -1))

    with pytest.raises(ConfigError, match=r"Layer 'fixed': calling it on a batch of 2 rows of ones, shaped "
                                          r"\(None, 3\), to find its output shape failed: .*compute_output_shape"):
        Model(Input(shape=(3,)), FixedBatch(name="fixed")(Input(shape=(3,))))


def test_a_recorded_layer_shared_by_two_calls_of_a_graph_sums_both_gradients():
    from gradcheck import check_model
    a, b = Input(shape=(3,), dtype=F64), Input(shape=(3,), dtype=F64)
    shared = LazyLinear(4, dtype=F64)
    block = MLPBlock(dtype=F64)
    model = Model([a, b], block(ops.tanh(shared(a)) * shared(b)))
    check_model(model, [_x(5, 3), _x(5, 3, seed=1)])
