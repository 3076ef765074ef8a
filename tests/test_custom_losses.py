"""Custom losses (issue 13 item 4): a function or a `Loss` subclass defining only `call`, written
with distdl.ops, trains with its recorded gradient; Keras 3's reductions and sample weights; the
scalar-loss rule under N ranks; save/load records the name; 1, 2 and 3 real ranks agree."""
import numpy as np
import pytest

from distdl import losses as L
from distdl import ops, utils
from distdl.errors import CheckpointError, ConfigError
from distdl.layers import Dense, Embedding, Input, SimpleRNN
from distdl.models import Sequential, load_model
from distdl.optimizers import SGD
from mpirun import run_ranks
from opcheck import check_grad


def custom_mean_squared_error(y_true, y_pred):
    """The Keras guide's custom loss ("Training & evaluation with the built-in methods")."""
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


class CustomMSE(L.Loss):
    """The Keras guide's Loss subclass with a parameter."""

    def __init__(self, regularization_factor=0.1, name="custom_mse"):
        super().__init__(name=name)
        self.regularization_factor = regularization_factor

    def call(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
        reg = ops.mean(ops.square(0.5 - y_pred), axis=-1)
        return mse + reg * self.regularization_factor


class ExampleLoss(L.Loss):
    """keras/src/losses/loss_test.py's ExampleLoss: elementwise, no reduction of its own."""

    def call(self, y_true, y_pred):
        return (y_true - y_pred) ** 2


def _data(rows=50, dtype="float32"):
    rng = np.random.default_rng(0)
    return rng.standard_normal((rows, 4)).astype(dtype), rng.standard_normal((rows, 2)).astype(dtype)


def _fit(loss, x, y, epochs=3, **kw):
    utils.set_random_seed(1)
    model = Sequential([Dense(8, activation="tanh", input_shape=(4,)), Dense(2)])
    model.compile(optimizer="adam", loss=loss, metrics=["mae"])
    hist = model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, **kw)
    return model, hist.history


def _close(a, b, tol=1e-6):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b))), np.max(np.abs(a - b))


# ----------------------------------------------------------------- training
def test_guide_function_loss_trains_exactly_like_mse(float32):
    x, y = _data()
    ref, ref_hist = _fit("mse", x, y)
    got, got_hist = _fit(custom_mean_squared_error, x, y)
    assert got.objectives[0].loss.name == "custom_mean_squared_error"
    _close(got_hist["loss"], ref_hist["loss"])
    _close(got_hist["mae"], ref_hist["mae"])
    _close(got.params, ref.params)
    _close(got.evaluate(x, y, verbose=0), ref.evaluate(x, y, verbose=0))


def test_function_loss_with_sample_weight_trains_like_mse(float32):
    x, y = _data()
    sw = np.random.default_rng(3).uniform(0, 2, len(x)).astype("float32")
    ref, ref_hist = _fit("mse", x, y, sample_weight=sw)
    got, got_hist = _fit(custom_mean_squared_error, x, y, sample_weight=sw)
    _close(got_hist["loss"], ref_hist["loss"])
    _close(got.params, ref.params)


def test_loss_subclass_with_a_parameter_matches_a_numpy_step(float64):
    """One full-batch SGD step of a linear model under CustomMSE(0.1), against the gradient
    written out by hand: dL/dp = 2 ((p - y) + 0.1 (p - 0.5)) / (rows x width)."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    model = Sequential([Dense(2, input_shape=(3,))])
    model.compile(optimizer=SGD(learning_rate=0.1), loss=CustomMSE(regularization_factor=0.1))
    w, b = [a.copy() for a in model.get_weights()]
    p = x @ w + b
    expected_loss = np.mean(np.mean((y - p) ** 2, -1) + 0.1 * np.mean((0.5 - p) ** 2, -1))
    g = 2 * ((p - y) + 0.1 * (p - 0.5)) / p.size
    hist = model.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(expected_loss, rel=1e-12)
    got_w, got_b = model.get_weights()
    np.testing.assert_allclose(got_w, w - 0.1 * x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(got_b, b - 0.1 * g.sum(0), rtol=1e-12)
    assert CustomMSE()(y, p) == pytest.approx(expected_loss, rel=1e-12)
    assert ExampleLoss().name == "example_loss" and L.MeanSquaredError().name == "mean_squared_error"


def test_sparse_integer_labels_reach_the_loss(float64):
    """A custom sparse cross-entropy on int labels (cast back, as with Keras, which passes y_true
    as floats) follows the built-in one."""
    def sparse_ce(y_true, y_pred):
        labels = ops.cast(y_true, "int32")[:, 0]
        return -ops.log(y_pred[np.arange(len(labels)), labels])

    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, (40, 1))

    def fit(loss):
        utils.set_random_seed(2)
        model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
        model.compile(optimizer="sgd", loss=loss)
        return model.fit(x, y, batch_size=8, epochs=2, verbose=0).history["loss"], model.params

    ref, got = fit("sparse_categorical_crossentropy"), fit(sparse_ce)
    _close(got[0], ref[0], 1e-10)
    _close(got[1], ref[1], 1e-10)


def test_output_mask_weights_a_custom_loss_as_a_built_in_one(float64):
    """Embedding(mask_zero=True) masks the per-timestep loss: the guide's function follows "mse"
    (sum over valid steps / valid steps, in fit and evaluate)."""
    x = np.array([[3, 1, 4, 0, 0, 0], [5, 2, 6, 1, 5, 0], [0, 0, 2, 2, 3, 4], [1, 2, 3, 4, 5, 6]])
    y = np.random.default_rng(2).standard_normal(x.shape + (3,))

    def fit(loss):
        utils.set_random_seed(1)
        model = Sequential([Input((6,)), Embedding(7, 4, mask_zero=True), SimpleRNN(5, return_sequences=True),
                            Dense(3)])
        model.compile(optimizer=SGD(0.1), loss=loss)
        hist = model.fit(x, y, batch_size=3, epochs=2, verbose=0).history["loss"]
        return hist, model.evaluate(x, y, verbose=0), model.params, model.predict(x, verbose=0)

    ref, got = fit("mse"), fit(custom_mean_squared_error)
    for a, b in zip(got, ref):
        _close(a, b, 1e-12)
    per_step = np.mean((got[3] - y) ** 2, axis=-1)
    assert got[1] == pytest.approx(np.sum(per_step * (x != 0)) / np.sum(x != 0), rel=1e-12)


# ----------------------------------------------------------------- Keras's numbers
def test_keras_reductions_and_sample_weights():
    """keras/src/losses/loss_test.py: test_reduction, test_sample_weight, test_mixed_dtypes."""
    y_true = np.array([1.0, 0.0, 1.0, 0.0])
    y_pred = np.array([0.1, 0.2, 0.3, 0.4], dtype="float32")
    sq = (y_true - y_pred) ** 2
    np.testing.assert_allclose(ExampleLoss(reduction=None)(y_true, y_pred), sq, rtol=1e-6)
    assert ExampleLoss(reduction="sum")(y_true, y_pred) == pytest.approx(np.sum(sq), rel=1e-6)
    assert ExampleLoss()(y_true, y_pred) == pytest.approx(np.sum(sq) / 4, rel=1e-6)
    sw = np.array([0.4, 0.3, 0.2, 0.1])
    assert ExampleLoss()(y_true, y_pred, sample_weight=sw) == pytest.approx(np.sum(sw * sq) / 4, rel=1e-6)
    assert ExampleLoss()(y_true, y_pred, sample_weight=np.zeros(4)) == 0.0
    loss = ExampleLoss()(y_true.astype("int32"), y_pred, sample_weight=sw.astype("float64"))
    assert loss.dtype == np.float32 and loss == pytest.approx(np.sum(sw * sq) / 4, rel=1e-6)
    assert ExampleLoss(reduction="mean_with_sample_weight")(y_true, y_pred, sample_weight=sw) == \
        pytest.approx(np.sum(sw * sq) / np.sum(sw), rel=1e-6)


def test_function_wrapper_as_keras():
    """LossFunctionWrapper(fn, reduction, name, **kwargs): name from fn, kwargs to fn, Keras's
    rank matching of a trailing 1 (keras/src/losses/loss_test.py test_squeeze_or_expand)."""
    def scaled(y_true, y_pred, scale=1.0):
        assert y_true.shape == y_pred.shape
        return scale * ops.sum(ops.square(y_true - y_pred), axis=-1)

    loss = L.LossFunctionWrapper(scaled, reduction="sum", scale=2.0)
    assert loss.name == "scaled" and L.get(scaled).name == "scaled"
    yt, yp = np.array([[1.0], [2.0]]), np.array([0.5, 2.5])
    assert loss(yt, yp) == pytest.approx(2.0 * 0.5)              # (2, 1) against (2,): expanded
    assert loss(yt, yp[:, None]) == pytest.approx(2.0 * 0.5)
    g = loss.gradient(yt, yp, np.ones(2))
    np.testing.assert_allclose(g, 2.0 * 2 * (yp - yt[:, 0]))     # back to y_pred's own shape


# ----------------------------------------------------------------- gradients
def _numeric(loss, yt, yp, w, eps=1e-6):
    num = np.zeros_like(yp)
    for i in np.ndindex(yp.shape):
        d = np.zeros_like(yp)
        d[i] = eps
        num[i] = (np.sum(loss.values(yt, yp + d) * w) - np.sum(loss.values(yt, yp - d) * w)) / (2 * eps)
    return num


@pytest.mark.parametrize("case", ["guide", "subclass", "per_element", "keepdims_negative_axis", "scalar"])
def test_recorded_gradient_against_finite_differences(case):
    """dL/dy_pred for L = sum(values * weights), float64, against central differences."""
    rng = np.random.default_rng(7)
    yt, yp = rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 3, 4))
    loss = {
        "guide": L.get(custom_mean_squared_error),
        "subclass": CustomMSE(0.3),
        "per_element": ExampleLoss(),
        "keepdims_negative_axis": L.get(lambda t, p: ops.sum(ops.tanh(p) * t, axis=(-2, -1), keepdims=True)
                                        + ops.mean(ops.exp(p - t), axis=-2, keepdims=True)),
        "scalar": L.get(lambda t, p: ops.mean(ops.square(p - t) * ops.sqrt(ops.exp(p)))),
    }[case]
    w = rng.uniform(0.1, 2.0, loss.values(yt, yp).shape)
    got = loss.gradient(yt, yp, w)
    assert got.shape == yp.shape and got.dtype == yp.dtype
    np.testing.assert_allclose(got, _numeric(loss, yt, yp, w), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight", None])
@pytest.mark.parametrize("scalar", [False, True])
def test_loss_called_inside_a_recording_is_differentiated(reduction, scalar):
    """A custom loss called on tracked tensors (as a custom layer's add_loss would) records its
    reduction too: gradients w.r.t. y_true and y_pred against finite differences, float64."""
    fn = (lambda t, p: ops.mean(ops.square(t - p) * ops.exp(p))) if scalar else custom_mean_squared_error
    loss = L.LossFunctionWrapper(fn, reduction=reduction)
    rng = np.random.default_rng(5)
    yt, yp, sw = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.uniform(0.5, 2, 4)
    check_grad(lambda t, p: loss(t, p, sample_weight=sw), yt, yp)
    untracked = loss(yt, yp, sample_weight=sw)
    assert isinstance(untracked, np.ndarray if reduction is None else np.floating)


def test_loss_independent_of_y_pred_has_zero_gradient():
    loss = L.get(lambda t, p: ops.sum(t, axis=-1))
    np.testing.assert_array_equal(loss.gradient(np.ones((2, 3)), np.ones((2, 3)), np.ones(2)), 0.0)


def test_scalar_loss_is_a_batch_mean_weighted_by_rows():
    """A scalar loss on 3 rank-like shares of 7 rows (3, 2, 2) sums to the one-process loss and
    gradient: each share's mean counts once per row it holds."""
    loss = L.get(lambda t, p: ops.mean(ops.square(p - t)))
    rng = np.random.default_rng(1)
    yt, yp = rng.standard_normal((7, 2)), rng.standard_normal((7, 2))
    value, grad = loss.value_and_gradient(yt, yp, 1.0, 7)
    parts = [loss.value_and_gradient(yt[a:b], yp[a:b], 1.0, 7) for a, b in ((0, 3), (3, 5), (5, 7))]
    assert value == pytest.approx(7 * np.mean((yp - yt) ** 2), rel=1e-12)
    assert sum(v for v, _ in parts) / 7 == pytest.approx(value / 7, rel=1e-12)
    np.testing.assert_allclose(np.concatenate([g for _, g in parts]), grad, rtol=1e-12)
    np.testing.assert_allclose(grad, 2 * (yp - yt) / yp.size, rtol=1e-12)


# ----------------------------------------------------------------- errors and saving
def test_bad_custom_losses_get_a_sentence():
    with pytest.raises(ConfigError, match="Loss 'nothing': call returned NoneType; it must return a tensor"):
        L.LossFunctionWrapper(lambda t, p: None, name="nothing")(np.ones((2, 1)), np.ones((2, 1)))
    with pytest.raises(ConfigError, match="Loss 'np_loss' applied numpy.exp .* use distdl.ops.exp"):
        L.LossFunctionWrapper(lambda t, p: np.exp(p), name="np_loss").gradient(np.ones((2, 1)), np.ones((2, 1)),
                                                                            np.ones(2))


def test_saved_config_records_the_name_and_loading_unregistered_says_so(tmp_path, float32):
    model = Sequential([Dense(2, input_shape=(4,))])
    model.compile(optimizer="sgd", loss=custom_mean_squared_error)
    assert model.compile_config["loss"] == {
        "class_name": "LossFunctionWrapper",
        "config": {"name": "custom_mean_squared_error", "reduction": "sum_over_batch_size",
                   "fn": "custom_mean_squared_error"}}
    assert L.deserialize(L.serialize("mse")).name == "mean_squared_error"
    path = str(tmp_path / "m.h5")
    model.save(path)
    with pytest.raises(CheckpointError, match="Unknown loss 'custom_mean_squared_error'"):
        load_model(path)
    assert load_model(path, compile=False).count_params() == model.count_params()


# ----------------------------------------------------------------- real ranks
@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["per_sample", "scalar"])
def test_custom_loss_and_metrics_agree_on_1_2_3_ranks(tmp_path, kind):
    """tests/mpi_scripts/custom_objectives.py: a function loss (per sample, or its batch mean), a
    Metric subclass, a per-sample and a scalar function metric; 101 rows in batches of 10 (the last
    batch leaves ranks empty): the same weights, history and scores on 1, 2 and 3 ranks."""
    runs = run_ranks("custom_objectives.py", tmp_path, kind)
    ref = runs[1][0]
    for n in (2, 3):
        for r in range(n):
            for key in ("params", "loss", "ctp", "abs_err", "scalar_mse", "scores"):
                _close(runs[n][r][key], ref[key], 1e-5)
    assert ref["ctp"][-1] > 0 and np.all(ref["scores"] > 0)
