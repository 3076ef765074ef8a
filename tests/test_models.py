"""Sequential / functional models in one process: Keras API, numbers and errors."""
import numpy as np
import pytest

from distdl import utils
from distdl.callbacks import Callback
from distdl.datasets import load_breast_cancer, load_digits
from distdl.errors import ConfigError, DataError, ShapeError
from distdl.layers import Dense, Dropout, Input
from distdl.models import Model, Sequential


def mlp(n_in=64, hidden=32, n_out=10, act="softmax", dropout=0.0):
    layers = [Dense(hidden, activation="relu", input_shape=(n_in,))]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(n_out, activation=act))
    return Sequential(layers)


def digits_flat():
    (xt, yt), (xv, yv) = load_digits()
    return xt.reshape(len(xt), -1), yt, xv.reshape(len(xv), -1), yv


def test_keras_quickstart_script_trains_on_digits():
    """The issue's script, verbatim but for imports: 10 epochs of Adam reach about 0.94."""
    utils.set_random_seed(0)
    x_train, y, x_test, yv = digits_flat()
    y_train, y_test = utils.to_categorical(y, 10), utils.to_categorical(yv, 10)
    model = Sequential()
    model.add(Dense(units=64, activation="relu", input_dim=64))
    model.add(Dense(units=10, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    assert score[1] >= 0.92, score
    assert set(history.history) == {"loss", "accuracy"} and len(history.history["loss"]) == 10
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_digits_reaches_095_with_the_default_config_settings():
    utils.set_random_seed(1)
    x_train, y, x_test, yv = digits_flat()
    model = mlp(64, 64, 10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y, epochs=20, batch_size=32, verbose=0)
    assert model.evaluate(x_test, yv, verbose=0)[1] >= 0.95


def test_breast_cancer_binary_reaches_093():
    utils.set_random_seed(1)
    (xt, yt), (xv, yv) = load_breast_cancer()
    model = mlp(30, 16, 1, "sigmoid", dropout=0.2)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(xt, yt, epochs=30, batch_size=32, verbose=0)
    loss, acc = model.evaluate(xv, yv, verbose=0)
    assert acc >= 0.93, acc


def test_history_keys_validation_and_weighted_epoch_loss():
    utils.set_random_seed(2)
    x, y, _, _ = digits_flat()
    x, y = x[:203], y[:203]   # 182 train rows with split 0.1 -> batches 64, 64, 54

    class Batches(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.rows, self.losses = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(logs["loss"])

    rec = Batches()
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=3, batch_size=64, validation_split=0.1, callbacks=[rec], verbose=0)
    assert sorted(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 3 for v in h.history.values())
    # running epoch loss after batch k is the size-weighted mean of batch losses so far
    running = rec.losses
    batch1 = running[0]
    batch2 = (running[1] * 128 - batch1 * 64) / 64
    batch3 = (running[2] * 182 - running[1] * 128) / 54
    assert h.history["loss"][-1] == pytest.approx((batch1 * 64 + batch2 * 64 + batch3 * 54) / 182)
    # validation numbers equal evaluate on the last 10% rows
    val = model.evaluate(x[182:], y[182:], verbose=0, return_dict=True)
    assert h.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-5)
    assert h.history["val_accuracy"][-1] == pytest.approx(val["accuracy"])


def test_same_seed_gives_bitwise_identical_weights():
    x, y, _, _ = digits_flat()

    def run():
        utils.set_random_seed(123)
        model = mlp(dropout=0.3)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x[:300], y[:300], epochs=2, batch_size=50, verbose=0)
        return model.get_weights()

    a, b = run(), run()
    for wa, wb in zip(a, b):
        assert wa.tobytes() == wb.tobytes()


def test_fused_softmax_gradient_equals_unfused():
    """A softmax output with CE gives the same gradients as a linear output + Activation."""
    from distdl.layers import Activation
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float64)
    y = rng.integers(0, 3, 8)
    fused = Sequential([Dense(3, activation="softmax", input_shape=(5,), dtype="float64")])
    plain = Sequential([Dense(3, input_shape=(5,), dtype="float64"), Activation("softmax", dtype="float64")])
    for m in (fused, plain):
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    plain.set_weights(fused.get_weights())
    assert fused.objectives[0].fused and not plain.objectives[0].fused
    fused.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    plain.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_summary_table_and_counts(capsys):
    model = Sequential([Dense(64, activation="relu", input_shape=(64,)), Dense(10, activation="softmax")])
    model.summary()
    out = capsys.readouterr().out
    assert "Layer (type)" in out and "Output Shape" in out and "Param #" in out
    assert "(None, 64)" in out and "4,160" in out and "650" in out
    assert "Total params: 4,810 (18.79 KB)" in out
    assert "Trainable params: 4,810 (18.79 KB)" in out and "Non-trainable params: 0 (0.00 B)" in out
    assert model.count_params() == 4810


def test_get_set_weights_and_predict():
    model = mlp(4, 3, 2)
    ws = [np.full(w.shape, 0.1, dtype=np.float32) for w in model.get_weights()]
    model.set_weights(ws)
    out = model.predict(np.ones((5, 4), dtype=np.float32), verbose=0)
    np.testing.assert_allclose(out, 0.5, rtol=1e-6)
    with pytest.raises(ShapeError, match="shape"):
        model.set_weights([np.zeros((2, 2))] + ws[1:])


def test_functional_two_inputs_two_outputs_trains_and_names_losses():
    utils.set_random_seed(3)
    a, b = Input(shape=(4,), name="a"), Input(shape=(3,), name="b")
    from distdl.layers.merge import Concatenate
    h = Concatenate()([Dense(8, activation="relu")(a), Dense(8, activation="relu")(b)])
    out1 = Dense(1, name="out1")(h)
    out2 = Dense(3, activation="softmax", name="out2")(h)
    model = Model([a, b], [out1, out2])
    model.compile(optimizer="adam", loss={"out1": "mse", "out2": "sparse_categorical_crossentropy"},
                  metrics={"out2": ["accuracy"]}, loss_weights=[0.5, 1.0])
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((64, 4)), rng.standard_normal((64, 3))
    y1, y2 = xa.sum(1, keepdims=True), (xb[:, 0] > 0).astype(int) + (xb[:, 1] > 0)
    h = model.fit([xa, xb], [y1, y2], epochs=30, batch_size=16, verbose=0)
    assert sorted(h.history) == ["loss", "out1_loss", "out2_accuracy", "out2_loss"]
    assert h.history["loss"][-1] < h.history["loss"][0]
    last = {k: v[-1] for k, v in h.history.items()}
    assert last["loss"] == pytest.approx(0.5 * last["out1_loss"] + last["out2_loss"], rel=1e-6)


@pytest.mark.parametrize("case, error, words", [
    ("lengths", DataError, "100 rows but y has 99"),
    ("shape", ShapeError, "expects x of shape (None, 64)"),
    ("label", DataError, "12"),
    ("onehot", DataError, "width"),
    ("nan", DataError, "row 7"),
    ("split", DataError, "validation_split"),
])
def test_bad_input_errors_name_the_culprit(case, error, words):
    model = mlp()
    loss = "categorical_crossentropy" if case == "onehot" else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    x = np.zeros((100, 64), dtype=np.float32)
    y = np.zeros(100, dtype=np.int64)
    kwargs = {}
    if case == "lengths":
        y = y[:99]
    elif case == "shape":
        x = np.zeros((100, 8, 8), dtype=np.float32)
    elif case == "label":
        y[5] = 12
    elif case == "onehot":
        y = np.zeros((100, 9), dtype=np.float32)
    elif case == "nan":
        x[7, 3] = np.nan
    elif case == "split":
        kwargs["validation_split"] = 1.0
    with pytest.raises(error) as e:
        model.fit(x, y, verbose=0, **kwargs)
    assert words in str(e.value)


def test_fit_before_compile_and_unknown_names():
    model = mlp()
    with pytest.raises(ConfigError, match="compile"):
        model.fit(np.zeros((2, 64)), np.zeros(2), verbose=0)
    for kwargs, kind in [({"loss": "msee"}, "loss"), ({"loss": "mse", "optimizer": "adamm"}, "optimizer"),
                         ({"loss": "mse", "metrics": ["acuracy"]}, "metric")]:
        with pytest.raises(ConfigError, match="valid names"):
            mlp().compile(**kwargs)


def test_functional_graph_errors():
    a, b = Input(shape=(4,)), Input(shape=(4,))
    out = Dense(2)(a)
    with pytest.raises(ConfigError, match="not connected"):
        Model([a, b], out)
    with pytest.raises(ConfigError, match="not among the model's inputs"):
        Model(b, out)


def test_shared_layer_accumulates_gradients():
    """One Dense applied to two inputs gets the sum of both calls' gradients."""
    from distdl.layers.merge import Add
    a, b = Input(shape=(3,), dtype="float64"), Input(shape=(3,), dtype="float64")
    shared = Dense(2, dtype="float64")
    out = Add(dtype="float64")([shared(a), shared(b)])
    model = Model([a, b], out)
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 2))
    w0 = shared.kernel.value.copy()
    b0 = shared.bias.value.copy()
    model.fit([xa, xb], y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    pred = xa @ w0 + xb @ w0 + 2 * b0
    dpred = 2 * (pred - y) / y.size
    expected = w0 - 0.01 * (xa.T @ dpred + xb.T @ dpred)
    np.testing.assert_allclose(shared.kernel.value, expected, rtol=1e-6)
    assert len(model.layers) == 4  # two inputs, the shared Dense once, Add


def test_two_outputs_of_one_call_share_one_backward():
    """LSTM(return_state=True): using both the output and the cell state must not double gradients."""
    from distdl.layers import LSTM, Concatenate
    from gradcheck import numeric_grad, rel_error
    rng = np.random.default_rng(4)
    inp = Input(shape=(3, 2), dtype="float64")
    lstm = LSTM(4, return_state=True, dtype="float64")
    out, h, c = lstm(inp)
    model = Model(inp, Concatenate(dtype="float64")([out, c]))
    x = rng.standard_normal((2, 3, 2))
    r = rng.standard_normal((2, 8))

    def loss():
        return float(np.sum(model.executor.forward([x], training=True)[0] * r))

    loss()
    model.executor.backward([r])
    analytic = lstm.trainable_weights[0].grad.copy()
    numeric = numeric_grad(loss, lstm.trainable_weights[0].value)
    assert rel_error(analytic, numeric) < 1e-6


def test_subclassed_model_with_call_trains():
    """Keras's subclassing pattern: layers in __init__, composition in call()."""
    class TwoLayer(Model):
        def __init__(self):
            super().__init__()
            self.hidden = Dense(16, activation="relu")
            self.out = Dense(3, activation="softmax")

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    model = TwoLayer()
    from distdl.optimizers import Adam
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.get_weights() == []  # built by the first call, as in Keras
    model(x[:1])
    # the same layers as a Sequential, from the same weights, follow the same trajectory bitwise
    seq = Sequential([Dense(16, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
    seq.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seq.set_weights(model.get_weights())
    utils.set_random_seed(5)
    h = model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    utils.set_random_seed(5)
    assert seq.fit(x, y, epochs=40, batch_size=16, verbose=0).history == h.history
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), seq.get_weights()))
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.7
    assert model.count_params() == 4 * 16 + 16 + 16 * 3 + 3
    assert model.predict(x[:5], verbose=0).shape == (5, 3)


def test_first_layer_skips_its_unused_input_gradient_only_inside_model_backward():
    model = mlp(4, 3, 2)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    first, second = model.layers[0], model.layers[1]
    seen = {}
    original = first.backward_preactivation

    def spy(dz):
        seen["dx"] = original(dz)
        seen["flag"] = first.need_input_grad
        return seen["dx"]

    first.backward_preactivation = spy
    model.fit(np.ones((4, 4), dtype=np.float32), np.zeros(4), batch_size=4, verbose=0)
    assert seen["flag"] is False and seen["dx"] is None
    assert first.need_input_grad and second.need_input_grad  # restored after backward
    first.backward_preactivation = original
    first.forward(np.ones((2, 4), dtype=np.float32), training=True)
    assert first.backward(np.ones((2, 3), dtype=np.float32)).shape == (2, 4)


def test_non_trainable_weights_of_a_sequential_with_a_known_input_shape():
    """Like weights and trainable_weights, non_trainable_weights builds the model first (Keras builds eagerly)."""
    from distdl.layers import BatchNormalization
    m = Sequential([Dense(3, input_shape=(4,)), BatchNormalization()])
    assert [v.name.rsplit("/", 1)[1] for v in m.non_trainable_weights] == ["moving_mean", "moving_variance"]


def test_compile_takes_keras3_argument_order_and_refuses_weighted_metrics():
    model = mlp(4, 3, 2)
    model.compile("sgd", "sparse_categorical_crossentropy", None, ["accuracy"])
    assert model.metrics_names == ["loss", "accuracy"]
    with pytest.raises(ConfigError, match="weighted_metrics"):
        mlp(4, 3, 2).compile("sgd", "mse", weighted_metrics=["mae"])


def test_lazy_hdf5_inputs_are_read_as_the_model_float_type(tmp_path):
    import h5py
    from distdl.datasets import load_hdf5
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 4)), rng.integers(0, 2, 40)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = x, y   # float64 on disk
    hx, hy = load_hdf5(tmp_path / "d.h5")
    utils.set_random_seed(0)
    lazy = mlp(4, 3, 2)
    lazy.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    eager = mlp(4, 3, 2)
    eager.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    eager.set_weights(lazy.get_weights())
    lazy.fit(hx, hy, batch_size=8, epochs=2, verbose=0)
    eager.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert lazy.predict(hx, verbose=0).dtype == np.float32
    for a, b in zip(lazy.get_weights(), eager.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_unbuilt_subclassed_model_has_no_weights_yet():
    class Empty(Model):
        def call(self, inputs):
            return Dense(2)(inputs)
    m = Empty()
    assert m.weights == [] and m.count_params() == 0


def test_shared_wrapper_keeps_each_calls_inner_cache():
    """A TimeDistributed layer called on two inputs backpropagates each call with its own inputs."""
    from distdl.layers import Add, TimeDistributed
    from gradcheck import numeric_grad, rel_error
    rng = np.random.default_rng(5)
    a, b = Input(shape=(3, 2), dtype="float64"), Input(shape=(3, 2), dtype="float64")
    shared = TimeDistributed(Dense(4, activation="tanh", dtype="float64"), dtype="float64")
    model = Model([a, b], Add(dtype="float64")([shared(a), shared(b)]))
    xa, xb = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))
    r = rng.standard_normal((2, 3, 4))

    def loss():
        return float(np.sum(model.executor.forward([xa, xb], training=True)[0] * r))

    kernel, bias = shared.trainable_weights
    y = model.executor.forward([xa, xb], training=True)[0]
    np.testing.assert_allclose(y, np.tanh(xa @ kernel.value + bias.value) + np.tanh(xb @ kernel.value + bias.value))
    model.executor.backward([r])
    analytic = kernel.grad.copy()
    assert rel_error(analytic, numeric_grad(loss, kernel.value)) < 1e-6


def test_plain_python_lists_are_accepted_as_data():
    """Labels as a list, and x as a list of the model's one input, train, evaluate and predict
    exactly as arrays do."""
    x, y = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], np.float32), [0, 1, 1, 0]
    runs = []
    for xs, ys in (([x], y), (x, np.array(y))):
        utils.set_random_seed(0)
        model = mlp(2, 3, 2)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        h = model.fit(xs, ys, batch_size=2, verbose=0)
        assert len(h.history["loss"]) == 1
        runs.append((model.get_weights(), h.history["loss"], model.evaluate(xs, ys, verbose=0),
                     model.predict(xs, verbose=0)))
    (w_list, loss_list, score_list, pred_list), (w_arr, loss_arr, score_arr, pred_arr) = runs
    assert all(np.array_equal(a, b) for a, b in zip(w_list, w_arr))
    assert loss_list == loss_arr and score_list == score_arr > 0
    assert np.array_equal(pred_list, pred_arr)
