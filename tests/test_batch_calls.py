"""Keras 3's batch calls: train_on_batch / test_on_batch / predict_on_batch / reset_metrics, with
Keras's running logs (keras/src/trainers/trainer.py: the metrics are not reset between calls),
the same step as `fit` on one batch, and the same numbers on 1, 2 and 3 ranks."""
from __future__ import annotations

import numpy as np
import pytest

from distdl import utils
from distdl.layers import Dense, Input
from distdl.models import Sequential


def _model(seed=0):
    utils.set_random_seed(seed)
    m = Sequential([Input(shape=(4,)), Dense(8, activation="tanh"), Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(n=12, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)


def test_train_on_batch_takes_the_step_fit_takes_on_one_batch():
    x, y = _data()
    a, b = _model(), _model()
    b.set_weights(a.get_weights())
    loss, acc = a.train_on_batch(x, y)
    b.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    assert loss == pytest.approx(b.history.history["loss"][0], rel=1e-6)
    assert acc == pytest.approx(b.history.history["accuracy"][0], rel=1e-6)


def test_the_logs_run_on_until_reset_metrics_as_in_keras():
    x, y = _data()
    m = _model()
    first = m.train_on_batch(x[:6], y[:6], return_dict=True)
    both = m.train_on_batch(x[6:], y[6:], return_dict=True)
    m.reset_metrics()
    alone = m.train_on_batch(x[6:], y[6:], return_dict=True)
    assert set(first) == {"loss", "accuracy"}
    assert both["loss"] != pytest.approx(alone["loss"])  # the second call's logs include the first batch
    e1 = m.test_on_batch(x[:6], y[:6], return_dict=True)
    e2 = m.test_on_batch(x[6:], y[6:], return_dict=True)
    whole = m.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    assert e2["loss"] == pytest.approx(whole["loss"], rel=1e-6) and e2["accuracy"] == pytest.approx(whole["accuracy"])
    assert e1 != e2
    m.reset_metrics()
    assert m.test_on_batch(x[:6], y[:6], return_dict=True) == pytest.approx(e1)


def test_predict_on_batch_and_the_list_return():
    x, y = _data()
    m = _model()
    np.testing.assert_array_equal(m.predict_on_batch(x), m.predict(x, verbose=0))
    out = m.test_on_batch(x, y)
    assert isinstance(out, list) and len(out) == 2


def test_train_on_batch_before_compile_says_so():
    m = Sequential([Input(shape=(4,)), Dense(2)])
    with pytest.raises(Exception, match="compile"):
        m.train_on_batch(np.ones((2, 4)), np.ones((2, 2)))


@pytest.mark.mpi
def test_batch_calls_give_the_same_numbers_on_1_2_and_3_ranks(tmp_path):
    from mpirun import run_ranks
    runs = run_ranks("batch_calls.py", tmp_path)
    ref = runs[1][0]
    for n in (2, 3):
        for r in range(n):
            for key in ("params", "train", "test", "pred"):
                np.testing.assert_allclose(runs[n][r][key], ref[key], rtol=1e-10, atol=1e-12,
                                           err_msg=f"{key} n={n} r={r}")
