"""User-written layers in training and in files: the same trajectory as the built-in Dense, Keras's
Antirectifier example, a NumPy SGD step, saving and loading registered layers and losses, the
shape probe's refusal, a layer shared by two graph calls, and the same numbers on 1, 2 and 3
ranks (real mpirun)."""
from __future__ import annotations

import numpy as np
import pytest

from distdl import ops
from distdl.errors import ConfigError
from distdl.layers import Dense, Input, Layer
from distdl.models import Model, Sequential
from gradcheck import check_layer
from user_layers import F64, Antirectifier, CustomDense, LazyLinear, Linear, MLPBlock
from user_layers import sample as _x


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

    with pytest.raises(ConfigError, match=r"Layer 'fixed': calling it on a probe batch of 2 rows, shaped "
                                          r"\(None, 3\), to find its output shape failed: .*compute_output_shape"):
        Model(Input(shape=(3,)), FixedBatch(name="fixed")(Input(shape=(3,))))


def test_a_recorded_layer_shared_by_two_calls_of_a_graph_sums_both_gradients():
    from gradcheck import check_model
    a, b = Input(shape=(3,), dtype=F64), Input(shape=(3,), dtype=F64)
    shared = LazyLinear(4, dtype=F64)
    block = MLPBlock(dtype=F64)
    model = Model([a, b], block(ops.tanh(shared(a)) * shared(b)))
    check_model(model, [_x(5, 3), _x(5, 3, seed=1)])
