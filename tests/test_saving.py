"""Model-level saving: model.save / load_model, save_weights / load_weights, ModelCheckpoint."""
import os

import h5py
import numpy as np
import pytest
from mpirun import run_serial

from distdl import utils
from distdl.callbacks import ModelCheckpoint
from distdl.errors import CheckpointError
from distdl.layers import (GRU, LSTM, BatchNormalization, Concatenate, Conv2D, Dense, Dropout, Embedding,
                           Flatten, Input)
from distdl.models import Model, Sequential, load_model
from distdl.saving import atomic
from distdl.saving import checkpoint as ckpt


def _sequential(seed=1):
    utils.set_random_seed(seed)
    m = Sequential([Conv2D(3, 3, activation="relu", input_shape=(6, 6, 2)), BatchNormalization(), Flatten(),
                    Dense(8, activation="relu"), Dropout(0.3), Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    return m, [rng.standard_normal((23, 6, 6, 2)).astype("float32")], rng.integers(0, 3, 23)


def _functional(seed=1):
    utils.set_random_seed(seed)
    a, b = Input((5,)), Input((4, 3))
    z = Concatenate()([Dense(4, activation="tanh")(a), LSTM(3)(b)])
    out = Dense(2)(Dropout(0.2)(BatchNormalization()(z)))
    m = Model([a, b], out)
    from distdl.optimizers import SGD
    m.compile(optimizer=SGD(learning_rate=0.05, momentum=0.9), loss="mse", metrics=["mae"])
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((19, 5)).astype("float32"), rng.standard_normal((19, 4, 3)).astype("float32")]
    return m, xs, rng.standard_normal((19, 2)).astype("float32")


def _x(xs):
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("make", [_sequential, _functional])
def test_save_and_load_model_round_trip_then_continue_in_a_fresh_process(tmp_path, make):
    model, xs, y = make()
    utils.set_random_seed(4)
    model.fit(_x(xs), y, batch_size=5, epochs=2, verbose=0)
    assert np.any(model.state != np.concatenate([np.zeros(model.state.size // 2), np.ones(model.state.size // 2)]))
    path = tmp_path / "model.h5"
    model.save(path)

    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]
    assert np.array_equal(loaded.params, model.params) and np.array_equal(loaded.state, model.state)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 2 * -(-len(y) // 5)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    want, got = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert sorted(got) == sorted(want) and len(want) >= 1
    for k in want:
        assert np.array_equal(got[k], want[k]) and np.any(want[k] != 0), k
    assert np.array_equal(loaded.predict(_x(xs), verbose=0), model.predict(_x(xs), verbose=0))
    assert loaded.evaluate(_x(xs), y, verbose=0) == model.evaluate(_x(xs), y, verbose=0)

    # the original process and a fresh one continue identically (same seed: same order and dropout)
    data = tmp_path / "data.npz"
    np.savez(data, y=y, **{f"x{i}": a for i, a in enumerate(xs)})
    p = run_serial("ckpt_continue.py", path, data, tmp_path / "out.npz", 21)
    assert p.returncode == 0, p.stderr
    before = model.params.copy()
    utils.set_random_seed(21)
    model.fit(_x(xs), y, batch_size=7, epochs=2, verbose=0)
    fresh = np.load(tmp_path / "out.npz")
    assert np.max(np.abs(model.params - before)) > 1e-3  # training moved the weights
    assert np.max(np.abs(fresh["params"] - model.params)) <= 1e-6 * np.max(np.abs(model.params))
    np.testing.assert_allclose(fresh["state"], model.state, rtol=1e-6, atol=1e-7)
    assert int(fresh["iterations"]) == model.optimizer.iterations
    for k, v in model.optimizer.get_state().items():
        np.testing.assert_allclose(fresh[f"slot_{k}"], v, rtol=1e-5, atol=1e-9)


def test_load_model_without_compile_has_weights_but_no_optimizer(tmp_path):
    model, xs, y = _sequential()
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5", compile=False)
    assert loaded.optimizer is None and np.array_equal(loaded.params, model.params)


def _zoo(seed):
    """Every layer the Keras layout covers: Embedding, LSTM, GRU, Conv2D, BatchNormalization, Dense."""
    utils.set_random_seed(seed)
    tokens, image = Input((6,), dtype="int32"), Input((5, 5, 2))
    seq = GRU(3)(LSTM(5, return_sequences=True)(Embedding(20, 4)(tokens)))
    img = Dense(6, activation="relu")(Flatten()(BatchNormalization()(Conv2D(4, 3)(image))))
    model = Model([tokens, image], Dense(2)(Concatenate()([seq, img])))
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, 20, (9, 6)), rng.standard_normal((9, 5, 5, 2)).astype("float32")]
    return model, xs, rng.standard_normal((9, 2)).astype("float32")


KERAS_LAYOUT = {  # Keras 3 `.weights.h5` datasets and shapes for _zoo
    "layers/embedding/vars/0": (20, 4),
    "layers/lstm/cell/vars/0": (4, 20), "layers/lstm/cell/vars/1": (5, 20), "layers/lstm/cell/vars/2": (20,),
    "layers/gru/cell/vars/0": (5, 9), "layers/gru/cell/vars/1": (3, 9), "layers/gru/cell/vars/2": (2, 9),
    "layers/conv2d/vars/0": (3, 3, 2, 4), "layers/conv2d/vars/1": (4,),
    **{f"layers/batch_normalization/vars/{i}": (4,) for i in range(4)},
    "layers/dense/vars/0": (36, 6), "layers/dense/vars/1": (6,),
    "layers/dense_1/vars/0": (9, 2), "layers/dense_1/vars/1": (2,),
}


def test_save_weights_writes_the_keras_3_layout_and_loads_into_a_fresh_model(tmp_path):
    model, xs, y = _zoo(1)
    model.fit(xs, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "zoo.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as f:
        found = {}
        f.visititems(lambda n, o: found.__setitem__(n, o.shape) if isinstance(o, h5py.Dataset) else None)
        groups = set(f["layers"])
        bn = model.get_layer(name=[l.name for l in model.layers if isinstance(l, BatchNormalization)][0])
        assert np.array_equal(f["layers/batch_normalization/vars/2"][()], bn.moving_mean.value)
        assert np.array_equal(f["layers/batch_normalization/vars/3"][()], bn.moving_variance.value)
        assert len(f["layers/lstm/vars"]) == 0 and isinstance(f["vars"], h5py.Group)
    assert found == KERAS_LAYOUT
    assert {"input_layer", "input_layer_1", "flatten", "concatenate"} <= groups

    fresh, _, _ = _zoo(2)
    assert not np.array_equal(fresh.params, model.params)
    fresh.load_weights(path)
    assert np.array_equal(fresh.params, model.params) and np.array_equal(fresh.state, model.state)
    assert np.array_equal(fresh.predict(xs, verbose=0), model.predict(xs, verbose=0))


def test_load_weights_reads_a_hand_built_keras_file_and_predicts_by_hand(tmp_path):
    rng = np.random.default_rng(3)
    k, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    gamma, beta, mean, var = rng.random(3) + 0.5, rng.standard_normal(3), rng.standard_normal(3), rng.random(3) + 0.1
    path = tmp_path / "hand.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        for i, a in enumerate([k, b]):
            f.create_dataset(f"layers/dense/vars/{i}", data=a.astype("float32"))
        for i, a in enumerate([gamma, beta, mean, var]):
            f.create_dataset(f"layers/batch_normalization/vars/{i}", data=a.astype("float32"))
    model = Sequential([Dense(3, input_shape=(4,)), BatchNormalization()])
    model.load_weights(path)
    x = rng.standard_normal((5, 4)).astype("float32")
    f32 = lambda a: a.astype("float32")
    want = f32(gamma) * ((x @ f32(k) + f32(b)) - f32(mean)) / np.sqrt(f32(var) + np.float32(1e-3)) + f32(beta)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_load_weights_takes_the_weights_of_a_distdl_checkpoint(tmp_path):
    model, xs, y = _sequential(1)
    utils.set_random_seed(4)
    model.fit(_x(xs), y, batch_size=5, epochs=1, verbose=0)
    model.save(tmp_path / "full.h5")
    model.save_weights(tmp_path / "w.h5")
    assert ckpt.inspect_checkpoint(tmp_path / "w.h5")["optimizer"] is None
    for name in ("full.h5", "w.h5"):
        fresh, _, _ = _sequential(9)
        slots = {k: v.copy() for k, v in fresh.optimizer.get_state().items()}
        fresh.load_weights(tmp_path / name)
        assert np.array_equal(fresh.params, model.params) and np.array_equal(fresh.state, model.state)
        assert fresh.optimizer.iterations == 0  # weights only
        assert all(np.array_equal(v, slots[k]) for k, v in fresh.optimizer.get_state().items())


def test_load_weights_architecture_mismatch_names_the_layer_and_both_shapes(tmp_path):
    small = Sequential([Dense(4, input_shape=(3,), name="hidden"), Dense(2, name="out")])
    small.save_weights(tmp_path / "s.h5")
    small.save_weights(tmp_path / "s.weights.h5")
    wide = Sequential([Dense(5, input_shape=(3,), name="hidden"), Dense(2, name="out")])
    with pytest.raises(CheckpointError) as e:
        wide.load_weights(tmp_path / "s.h5")
    msg = str(e.value)
    assert "s.h5" in msg and "'hidden'" in msg and "(3, 5)" in msg and "(3, 4)" in msg
    with pytest.raises(CheckpointError) as e:
        wide.load_weights(tmp_path / "s.weights.h5")
    msg = str(e.value)
    assert "s.weights.h5" in msg and "layers/dense/vars" in msg and "(3, 5)" in msg and "(3, 4)" in msg
    deeper = Sequential([Dense(4, input_shape=(3,)), Dense(2), Dense(2, name="extra")])
    with pytest.raises(CheckpointError, match=r"4 weight arrays and the model 6.*'extra/kernel' \(2, 2\)"):
        deeper.load_weights(tmp_path / "s.h5")
    with pytest.raises(CheckpointError, match="does not exist"):
        wide.load_weights(tmp_path / "missing.h5")


def test_failed_save_raises_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, xs, y = _sequential()
    path = tmp_path / "m.h5"
    model.save(path)
    saved = model.params.copy()
    model.params += 1.0
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="Could not write checkpoint"):
        model.save(blocker / "m.h5")  # a folder under a regular file

    def disk_full(tmp, data):  # the disk fills half way through the file's bytes
        with open(tmp, "wb") as f:
            f.write(bytes(data[:len(data) // 2]))
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(atomic, "_write_bytes", disk_full)
    with pytest.raises(CheckpointError, match=r"m\.h5.*No space left on device"):
        model.save(path)
    monkeypatch.undo()
    assert np.array_equal(load_model(path).params, saved)
    assert sorted(os.listdir(tmp_path)) == ["file", "m.h5"]  # no temp file left behind


# ---------------------------------------------------------------- ModelCheckpoint

def _fit_with(cb, epochs=3, **kw):
    model, xs, y = _sequential()
    utils.set_random_seed(4)
    hist = model.fit(_x(xs), y, batch_size=8, epochs=epochs, verbose=0, validation_split=0.2, callbacks=[cb], **kw)
    return model, hist


def test_model_checkpoint_formats_epoch_and_val_loss(tmp_path):
    model, hist = _fit_with(ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.3f}.h5")))
    want = [f"m-{e + 1:02d}-{v:.3f}.h5" for e, v in enumerate(hist.history["val_loss"])]
    assert sorted(os.listdir(tmp_path)) == want and len(want) == 3
    last = load_model(tmp_path / want[-1])
    assert np.array_equal(last.params, model.params)


class _Script:
    """Drive a callback with chosen logs, changing the weights between epochs."""

    def __init__(self, cb):
        self.model, _, _ = _sequential()
        self.cb = cb
        cb.set_model(self.model)
        self.params = []

    def run(self, values, key):
        for epoch, v in enumerate(values):
            self.model.params[...] = epoch
            self.params.append(self.model.params.copy())
            self.cb.on_epoch_end(epoch, {key: v})


@pytest.mark.parametrize("mode,key,values,kept,best", [
    ("min", "val_loss", [0.5, 0.7, 0.3, 0.4], ["b-01.h5", "b-03.h5"], 2),
    ("max", "val_loss", [0.5, 0.7, 0.3, 0.4], ["b-01.h5", "b-02.h5"], 1),
    ("auto", "val_accuracy", [0.5, 0.4, 0.6, 0.6], ["b-01.h5", "b-03.h5"], 2),
])
def test_model_checkpoint_save_best_only(tmp_path, mode, key, values, kept, best):
    s = _Script(ModelCheckpoint(str(tmp_path / "b-{epoch:02d}.h5"), monitor=key, save_best_only=True, mode=mode))
    s.run(values, key)
    assert sorted(os.listdir(tmp_path)) == kept
    assert np.array_equal(load_model(tmp_path / kept[-1]).params, s.params[best])


def test_model_checkpoint_save_best_only_with_one_file_keeps_the_best_weights(tmp_path):
    s = _Script(ModelCheckpoint(str(tmp_path / "best.h5"), save_best_only=True))
    s.run([0.9, 0.2, 0.5], "val_loss")
    assert np.array_equal(load_model(tmp_path / "best.h5").params, s.params[1])


def test_model_checkpoint_save_weights_only(tmp_path):
    model, _ = _fit_with(ModelCheckpoint(str(tmp_path / "w-{epoch}.h5"), save_weights_only=True), epochs=1)
    _fit_with(ModelCheckpoint(str(tmp_path / "k-{epoch}.weights.h5"), save_weights_only=True), epochs=1)
    assert sorted(os.listdir(tmp_path)) == ["k-1.weights.h5", "w-1.h5"]
    info = ckpt.inspect_checkpoint(tmp_path / "w-1.h5")
    assert info["optimizer"] is None and info["optimizer_slots"] == []
    with h5py.File(tmp_path / "k-1.weights.h5", "r") as f:
        assert f["layers/dense_1/vars/0"].shape == (8, 3) and "model" not in f
    fresh, _, _ = _sequential(5)
    fresh.load_weights(tmp_path / "k-1.weights.h5")
    assert np.array_equal(fresh.params, model.params)


def test_model_checkpoint_save_freq_in_steps(tmp_path):
    # 23 rows, validation 0.2 -> 18 training rows in batches of 8: 3 steps per epoch, 9 in all
    _fit_with(ModelCheckpoint(str(tmp_path / "s-{epoch:02d}-{batch}.h5"), save_freq=4))
    assert sorted(os.listdir(tmp_path)) == ["s-02-1.h5", "s-03-2.h5"]  # steps 4 and 8, batches from 1
    assert ckpt.inspect_checkpoint(tmp_path / "s-03-2.h5")["optimizer_iterations"] == 8


def test_overwrite_false_keeps_an_existing_file_and_says_so(tmp_path):
    from distdl.errors import ConfigError
    m, xs, y = _sequential()
    path, wpath = tmp_path / "m.h5", tmp_path / "m.weights.h5"
    m.save(path)
    m.save_weights(wpath)
    before = path.read_bytes(), wpath.read_bytes()
    m.fit(_x(xs), y, epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="m.h5 already exists and overwrite=False"):
        m.save(path, overwrite=False)
    with pytest.raises(ConfigError, match="m.weights.h5 already exists"):
        m.save_weights(wpath, overwrite=False)
    assert (path.read_bytes(), wpath.read_bytes()) == before
    m.save(tmp_path / "new.h5", overwrite=False)  # a new file is fine
    m.save(path)  # the default replaces
    assert path.read_bytes() != before[0]
