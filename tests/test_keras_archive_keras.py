"""`.keras` archives against real Keras 3 (skipped where `keras` cannot be imported): distdl writes
and Keras loads, Keras writes and distdl loads, with the same predictions and training steps."""
import os

import numpy as np
import pytest
from keras_zoo import ZOO, build

from distdl import optimizers
from distdl.models import load_model

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
L = keras.layers


def _one(xs):
    return xs if len(xs) > 1 else xs[0]


def _listed(p):
    return p if isinstance(p, list) else [p]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_keras_loads_what_distdl_wrote_and_predicts_the_same(tmp_path, name):
    model, xs = build(name)
    model.save(tmp_path / "m.keras")
    k = keras.saving.load_model(tmp_path / "m.keras")
    assert {layer.name for layer in k.layers} == {layer.name for layer in model.layers}
    for p, q in zip(_listed(model.predict(_one(xs), verbose=0)), _listed(k.predict(_one(xs), verbose=0))):
        np.testing.assert_allclose(q, p, rtol=1e-5, atol=1e-6)
    assert len(k.weights) == len(model.weights)


def test_keras_loads_distdl_weights_h5_of_a_functional_model_in_keras_order(tmp_path):
    model, xs = build("merges")
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    k = keras.saving.load_model(tmp_path / "m.keras")
    for w in k.weights:
        w.assign(np.zeros(w.shape, "float32"))
    k.load_weights(tmp_path / "m.weights.h5")
    for p, q in zip(model.predict(xs, verbose=0), k.predict(xs, verbose=0)):
        np.testing.assert_allclose(q, p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opt", [optimizers.Adam(0.01, amsgrad=True), optimizers.SGD(0.05, momentum=0.9),
                                 optimizers.RMSprop(0.01, momentum=0.5, centered=True), optimizers.Adagrad(0.05)],
                         ids=lambda o: type(o).__name__)
def test_keras_continues_distdl_training_from_the_archive(tmp_path, opt):
    model, xs = build("merges")
    model.compile(optimizer=opt, loss=["mse", "mae"], loss_weights=[1.0, 0.5])
    ys = [np.full((3, 2), 0.5, "float32"), np.ones((3, 1), "float32")]
    model.fit(xs, ys, batch_size=3, epochs=3, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    k = keras.saving.load_model(tmp_path / "m.keras")
    assert int(k.optimizer.iterations) == 3
    model.fit(xs, ys, batch_size=3, epochs=1, shuffle=False, verbose=0)
    k.train_on_batch(xs, ys)
    for p, q in zip(model.predict(xs, verbose=0), k.predict(xs, verbose=0)):
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


def _keras_zoo():
    a, b = keras.Input((8, 8, 2), name="img"), keras.Input((5, 3), name="seq")
    h = L.Conv2D(3, 3, padding="same", activation="relu")(a)
    h = L.BatchNormalization()(L.MaxPooling2D()(h))
    h = L.GlobalAveragePooling2D()(L.UpSampling2D()(L.ZeroPadding2D(1)(h)))
    s = L.Masking()(b)
    s = L.Bidirectional(L.GRU(3, return_sequences=True, reset_after=False), merge_mode="ave")(s)
    s = L.TimeDistributed(L.Dense(4, activation="elu"))(s)
    s = L.SimpleRNN(2, go_backwards=True)(L.LayerNormalization()(s))
    shared = L.Dense(3, activation="tanh")
    out = L.Dense(2, kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02),
                  kernel_constraint=keras.constraints.MaxNorm(3.0))(
        L.Concatenate()([shared(h), shared(L.Dense(3)(s)), L.Dot(axes=1)([h, L.Dense(3)(s)])]))
    m = keras.Model([a, b], [out, L.Dense(1)(s)])
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((6, 8, 8, 2)).astype("float32"), rng.standard_normal((6, 5, 3)).astype("float32")]
    xs[1][2, 3:] = 0.0
    return m, xs


def test_distdl_loads_what_keras_wrote_and_trains_on_alike(tmp_path):
    keras.utils.set_random_seed(1)
    k, xs = _keras_zoo()
    k.compile(optimizer=keras.optimizers.Adam(0.01), loss=["mse", "mae"], metrics=[["mae"], []])
    ys = [np.full((6, 2), 0.3, "float32"), np.ones((6, 1), "float32")]
    k.fit(xs, ys, batch_size=3, epochs=1, shuffle=False, verbose=0)
    k.save(tmp_path / "k.keras")
    model = load_model(tmp_path / "k.keras")
    for p, q in zip(k.predict(xs, verbose=0), model.predict(xs, verbose=0)):
        np.testing.assert_allclose(q, p, rtol=1e-5, atol=1e-6)
    assert model.optimizer.iterations == 2 and model.compile_config["metrics"] == [["mae"], []]
    k.train_on_batch(xs, ys)
    model.fit(xs, ys, batch_size=6, epochs=1, shuffle=False, verbose=0)
    for p, q in zip(k.predict(xs, verbose=0), model.predict(xs, verbose=0)):
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "again.keras")  # and back to Keras once more
    k2 = keras.saving.load_model(tmp_path / "again.keras")
    for p, q in zip(model.predict(xs, verbose=0), k2.predict(xs, verbose=0)):
        np.testing.assert_allclose(q, p, rtol=1e-5, atol=1e-6)
