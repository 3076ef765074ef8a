"""Variable (None) dimensions, as Keras 3 has them: `Input(shape=(None, 16))`, `input_shape=(None, 2)`
and `.keras` `batch_shape: [null, null, 16]`.

One model with a None axis predicts batches of two different lengths with the same weights; its
outputs equal the same layers built for each fixed length (or a NumPy computation). Training on
Input(shape=(None,)) follows the Input(shape=(12,)) trajectory; summary shows None; a None axis
that would size a weight is refused with one sentence naming the layer and the shape; saving
keeps the None axes.
"""
import json
import zipfile

import numpy as np
import pytest
from mpirun import run_ranks

from distdl import utils
from distdl.errors import DataError, ShapeError
from distdl.layers import (GRU, LSTM, Activation, Add, AveragePooling1D, BatchNormalization, Bidirectional,
                           Concatenate, Conv1D, Conv2D, Cropping1D, Dense, Dropout, Embedding, Flatten,
                           GlobalAveragePooling1D, GlobalMaxPooling1D, GlobalMaxPooling2D, Input,
                           LayerNormalization, Masking, MaxPooling1D, Multiply, Reshape, SimpleRNN,
                           TimeDistributed, UpSampling1D, ZeroPadding1D)
from distdl.models import Model, Sequential, load_model

LENGTHS = (5, 9)
RTOL, ATOL = 1e-5, 1e-6


def _data(shape, n=3, ints=False, seed=0):
    rng = np.random.default_rng(seed)
    if ints:
        return rng.integers(1, 10, (n,) + shape)
    return rng.normal(size=(n,) + shape).astype("float32")


def _concrete(shape, length):
    return tuple(length if d is None else d for d in shape)


def _model(make, shape, seed=0):
    utils.set_random_seed(seed)
    inp = Input(shape=shape)
    return Model(inp, make(inp))


# (id, input shape with None, layers on the input tensor, integer data)
CASES = [
    ("embedding-lstm", (None,), lambda t: LSTM(3)(Embedding(10, 4)(t)), True),
    ("embedding-mask-gru", (None,), lambda t: GRU(3, return_sequences=True)(Embedding(10, 4, mask_zero=True)(t)),
     True),
    ("simple-rnn-seq-dense", (None, 6), lambda t: Dense(2)(SimpleRNN(3, return_sequences=True)(t)), False),
    ("masking-lstm", (None, 6), lambda t: LSTM(3)(Masking(0.0)(t)), False),
    ("bidirectional", (None, 6), lambda t: Bidirectional(LSTM(2, return_sequences=True))(t), False),
    ("conv1d-pools", (None, 2), lambda t: GlobalAveragePooling1D()(
        AveragePooling1D(2)(MaxPooling1D(2, padding="same")(Conv1D(4, 3, padding="causal")(Conv1D(4, 2)(t))))),
     False),
    ("global-max", (None, 6), lambda t: GlobalMaxPooling1D()(t), False),
    ("conv2d", (None, None, 3), lambda t: GlobalMaxPooling2D()(Conv2D(4, 3, strides=2)(t)), False),
    ("dense-dropout-activation", (None, 6), lambda t: Activation("tanh")(Dropout(0.5)(Dense(3)(t))), False),
    ("norms", (None, 6), lambda t: LayerNormalization()(BatchNormalization()(t)), False),
    ("time-distributed", (None, 6), lambda t: TimeDistributed(Dense(2))(t), False),
    ("merges", (None, 6), lambda t: Concatenate(axis=1)([Add()([Dense(3)(t), Dense(3)(t)]),
                                                          Multiply()([Dense(3)(t), Dense(3)(t)])]), False),
    ("padding-cropping-upsampling", (None, 6), lambda t: Cropping1D((1, 2))(UpSampling1D(2)(ZeroPadding1D(1)(t))),
     False),
    ("reshape-flatten", (None, 6), lambda t: Flatten()(Reshape((-1, 3))(t)), False),
]


@pytest.mark.parametrize("shape, make, ints", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_model_predicts_two_lengths_as_the_fixed_length_models_do(shape, make, ints):
    model = _model(make, shape)
    assert None in model.output_shapes[0] or None in shape
    for length in LENGTHS:
        x = _data(_concrete(shape, length), ints=ints, seed=length)
        fixed = _model(make, _concrete(shape, length), seed=1)
        fixed.set_weights(model.get_weights())
        got = model.predict(x, verbose=0)
        want = fixed.predict(x, verbose=0)
        assert got.shape == want.shape and got.shape[1:] == tuple(
            d if d is not None else want.shape[1 + i] for i, d in enumerate(model.output_shapes[0]))
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_numpy_reference_embedding_dense_and_simple_rnn():
    """The same weights on both lengths against hand-written NumPy: a table lookup, x @ W + b on
    the last axis, and h_t = tanh(x_t W + h_{t-1} U + b) over however many steps there are."""
    inp = Input(shape=(None,))
    emb = Embedding(10, 4)
    rnn = SimpleRNN(3, return_sequences=True)
    dense = Dense(2)
    model = Model(inp, dense(rnn(emb(inp))))
    assert model.output_shapes == [(None, 2)]
    table = emb.get_weights()[0]
    w, u, b = rnn.get_weights()
    k, c = dense.get_weights()
    for length in LENGTHS:
        idx = _data((length,), ints=True, seed=length)
        e = table[idx]
        h = np.zeros((len(idx), 3), "float32")
        hs = []
        for t in range(length):
            h = np.tanh(e[:, t] @ w + h @ u + b)
            hs.append(h)
        want = np.stack(hs, axis=1) @ k + c
        np.testing.assert_allclose(model.predict(idx, verbose=0), want, rtol=RTOL, atol=ATOL)


def test_first_layer_input_shape_with_none_in_sequential():
    seq = Sequential([Conv1D(4, 3, input_shape=(None, 2)), GlobalAveragePooling1D(), Dense(1)])
    seq.build()
    assert seq.input_shapes == [(None, 2)] and seq.layers[0].output_shape == (None, 4)
    seq.add(Dense(2))      # rebuilding keeps the None axis (batch axis added before `build`)
    assert seq.input_shapes == [(None, 2)]
    conv, _, d1, d2 = seq.layers
    kernel, bias = conv.get_weights()
    for length in LENGTHS:
        x = _data((length, 2), seed=length)
        z = sum(x[:, j:length - 2 + j] @ kernel[j] for j in range(3)) + bias
        want = (z.mean(axis=1) @ d1.kernel.value + d1.bias.value) @ d2.kernel.value + d2.bias.value
        np.testing.assert_allclose(seq.predict(x, verbose=0), want, rtol=RTOL, atol=ATOL)


def _lstm_model(shape, seed=3):
    utils.set_random_seed(seed)
    inp = Input(shape=shape)
    return Model(inp, Dense(2)(LSTM(4)(Embedding(12, 5)(inp))))


def test_fit_on_none_length_follows_the_fixed_length_trajectory():
    x = _data((12,), n=24, ints=True, seed=7)
    y = np.random.default_rng(8).normal(size=(24, 2)).astype("float32")
    runs = []
    for shape in ((None,), (12,)):
        model = _lstm_model(shape)
        model.compile("adam", "mse")
        utils.set_random_seed(5)   # the same data order
        hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        runs.append((model.get_weights(), hist.history["loss"]))
    (w_var, loss_var), (w_fix, loss_fix) = runs
    assert loss_var[-1] < loss_var[0]   # it trained
    np.testing.assert_allclose(loss_var, loss_fix, rtol=1e-6)
    for a, b in zip(w_var, w_fix):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_evaluate_and_fit_on_another_length_after_training():
    model = _lstm_model((None,))
    model.compile("sgd", "mse")
    for length in LENGTHS:
        x = _data((length,), n=6, ints=True, seed=length)
        y = np.zeros((6, 2), "float32")
        model.fit(x, y, batch_size=3, epochs=1, verbose=0)
        loss = model.evaluate(x, y, verbose=0)
        assert np.isclose(loss, np.mean(model.predict(x, verbose=0) ** 2), rtol=1e-5)


def test_sequence_targets_with_a_none_axis_are_checked_per_batch():
    model = _model(lambda t: Dense(2)(SimpleRNN(3, return_sequences=True)(t)), (None, 4))
    model.compile("sgd", "mse")
    x = _data((7, 4), n=4)
    model.fit(x, np.zeros((4, 7, 2), "float32"), verbose=0)
    with pytest.raises(DataError, match=r"Targets for loss .* have shape \(4, 7, 3\), which does not match the "
                                        r"model output shape \(7, 2\)"):
        model.fit(x, np.zeros((4, 7, 3), "float32"), verbose=0)


def test_summary_shows_none():
    model = _model(lambda t: Dense(2)(SimpleRNN(3, return_sequences=True)(t)), (None, 16))
    text = []
    model.summary(print_fn=text.append)
    text = "\n".join(text)
    assert "(None, None, 16)" in text and "(None, None, 3)" in text and "(None, None, 2)" in text
    assert repr(model.outputs[0]).startswith("<SymbolicTensor shape=(None, None, 2)")


def test_data_checks_a_none_axis_takes_any_size_but_rank_and_fixed_sizes_are_checked():
    model = _model(lambda t: Dense(2)(t), (None, 16))
    assert model.predict(np.ones((2, 37, 16), "float32"), verbose=0).shape == (2, 37, 2)
    with pytest.raises(ShapeError, match=r"expects x of shape \(None, None, 16\), got an array of shape "
                                         r"\(2, 37, 15\)"):
        model.predict(np.ones((2, 37, 15), "float32"), verbose=0)
    with pytest.raises(ShapeError, match=r"expects x of shape \(None, None, 16\), got an array of shape \(2, 16\)"):
        model.predict(np.ones((2, 16), "float32"), verbose=0)


@pytest.mark.parametrize("build, message", [
    (lambda: Dense(3)(Input(shape=(16, None))),
     r"^Dense layer 'dense(_\d+)?' cannot be built on input shape \(None, 16, None\): its weights are sized by "
     r"the last axis, which must be fixed, not None\.$"),
    (lambda: Dense(3)(Flatten(name="fl")(Input(shape=(None, 4)))),   # Keras 3: Flatten gives (None, None)
     r"^Dense layer 'dense(_\d+)?' cannot be built on input shape \(None, None\): "),
    (lambda: LSTM(3)(Input(shape=(5, None))),
     r"^LSTM layer 'lstm(_\d+)?' cannot be built on input shape \(None, 5, None\): .* features axis"),
    (lambda: Conv1D(2, 3)(Input(shape=(None, None))),
     r"^Conv1D layer 'conv1d(_\d+)?' cannot be built on input shape \(None, None, None\): .* channels axis"),
    (lambda: BatchNormalization()(Input(shape=(4, None))),
     r"^BatchNormalization layer 'batch_normalization(_\d+)?' cannot be built on input shape \(None, 4, None\)"),
])
def test_a_none_axis_that_sizes_a_weight_is_refused_naming_layer_and_shape(build, message):
    with pytest.raises(ShapeError, match=message) as err:
        build()
    assert str(err.value).count(". ") == 0


def test_flatten_and_reshape_on_a_none_axis_follow_keras():
    """Keras 3's flatten_test.py (test_flatten_symbolic_with_dynamic_dimension: (5, 2, None) ->
    (5, None)) and reshape_test.py (test_reshape_with_dynamic_dim_and_minus_one: -1 over a None
    axis -> None; test_reshape_sets_static_shape: (None,) -> Reshape((3, 5)) -> (3, 5))."""
    inp = Input(shape=(2, None))
    assert Flatten()(inp).shape == (None,)
    assert Reshape((-1, 2))(inp).shape == (None, 2)
    seq_in = Input(shape=(None,))
    fixed = Reshape((3, 5))(seq_in)
    assert fixed.shape == (3, 5)
    model = Model(seq_in, fixed)
    x = np.arange(30, dtype="float32").reshape(2, 15)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x.reshape(2, 3, 5))
    with pytest.raises(ShapeError, match=r"Reshape layer 'reshape(_\d+)?' cannot reshape \(14,\) \(14 values\) "
                                         r"to \(3, 5\) \(15 values\)"):
        model.predict(np.ones((2, 14), "float32"), verbose=0)


def test_a_kernel_longer_than_a_batch_is_refused_naming_the_layer():
    model = _model(lambda t: Conv1D(2, 5, name="wide")(t), (None, 3))
    assert model.predict(np.ones((1, 5, 3), "float32"), verbose=0).shape == (1, 1, 2)
    with pytest.raises(ShapeError, match=r"Layer 'wide': kernel \(5,\) .* larger than the input \(4,\)"):
        model.predict(np.ones((1, 4, 3), "float32"), verbose=0)


@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_save_and_load_keep_none_axes(tmp_path, ext):
    functional = _lstm_model((None,))
    functional.compile("adam", "mse")
    seq = Sequential([Input(shape=(None, 16)), SimpleRNN(3, return_sequences=True), Dense(2)])
    seq.compile("sgd", "mse")
    for model, x in ((functional, _data((7,), ints=True)), (seq, _data((6, 16)))):
        path = tmp_path / f"{model.name}.{ext}"
        model.save(path)
        loaded = load_model(path)
        assert loaded.input_shapes == model.input_shapes and loaded.output_shapes == model.output_shapes
        assert None in loaded.input_shapes[0]
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    if ext == "keras":   # Keras's own spelling of a None axis in config.json
        config = json.loads(zipfile.ZipFile(tmp_path / f"{seq.name}.keras").read("config.json"))
        first = config["config"]["layers"][0]
        assert first["class_name"] == "InputLayer" and first["config"]["batch_shape"] == [None, None, 16]


def test_keras_batch_shape_with_null_axes_loads(tmp_path):
    """A Keras 3 archive whose InputLayer says batch_shape [null, null, 16] (what Keras writes for
    Input(shape=(None, 16))) loads with that shape."""
    seq = Sequential([Input(shape=(8, 16)), LSTM(3), Dense(2)])
    path = tmp_path / "fixed.keras"
    seq.save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, None, 16]
    members["config.json"] = json.dumps(config).encode()
    edited = tmp_path / "variable.keras"
    with zipfile.ZipFile(edited, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    loaded = load_model(edited)
    assert loaded.input_shapes == [(None, 16)]
    for length in LENGTHS:
        x = _data((length, 16), seed=length)
        fixed = Sequential([Input(shape=(length, 16)), LSTM(3), Dense(2)])
        fixed.set_weights(seq.get_weights())
        np.testing.assert_allclose(loaded.predict(x, verbose=0), fixed.predict(x, verbose=0), rtol=RTOL, atol=ATOL)


@pytest.mark.mpi
def test_ranks_train_and_predict_a_none_axis_as_one_process(tmp_path):
    """2 and 3 ranks follow the one-process trajectory, and predict (rows of 9 and 13 steps, and one
    row, where the ranks without rows gather empty parts of the real length) on every rank."""
    runs = run_ranks("variable_dims.py", tmp_path)
    ref = runs[1][0]
    assert ref["one"].shape == (1, 4, 2) and ref["pred13"].shape == (21, 6, 2)
    for n in (2, 3):
        for r in range(n):
            got = runs[n][r]
            np.testing.assert_allclose(got["params"], ref["params"], rtol=1e-5, atol=1e-6, err_msg=f"n={n} r={r}")
            np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5, err_msg=f"n={n} r={r}")
            for key in ("one", "pred13"):
                np.testing.assert_allclose(got[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=f"{key} n={n} r={r}")
