"""Regularization and constraints enter training exactly as in Keras."""
import numpy as np
import pytest

from distdl.layers import Dense
from distdl.models import Sequential


def _model(**dense_kwargs):
    m = Sequential([Dense(3, input_shape=(4,), dtype="float64", **dense_kwargs)])
    m.compile(optimizer="sgd", loss="mse")
    return m


def test_l2_kernel_penalty_is_added_to_the_loss_and_its_gradient():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    m = _model(kernel_regularizer={"class_name": "L2", "config": {"l2": 0.1}})
    w0, b0 = m.get_weights()
    h = m.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    pred = x @ w0 + b0
    expected_loss = np.mean((pred - y) ** 2) + 0.1 * np.sum(w0 ** 2)
    assert h.history["loss"][0] == pytest.approx(expected_loss, rel=1e-12)
    grad_w = x.T @ (2 * (pred - y) / y.size) + 2 * 0.1 * w0
    np.testing.assert_allclose(m.get_weights()[0], w0 - 0.01 * grad_w, rtol=1e-12)


def test_activity_regularizer_penalises_the_output():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    m = _model(activity_regularizer="l1")
    w0, b0 = m.get_weights()
    h = m.fit(x, y, batch_size=5, epochs=1, shuffle=False, verbose=0)
    pred = x @ w0 + b0
    assert h.history["loss"][0] == pytest.approx(np.mean((pred - y) ** 2) + 0.01 * np.abs(pred).sum(), rel=1e-12)
    dpred = 2 * (pred - y) / y.size + 0.01 * np.sign(pred)
    np.testing.assert_allclose(m.get_weights()[0], w0 - 0.01 * x.T @ dpred, rtol=1e-12)


def _column_norms_after_each_update(**dense_kwargs):
    from distdl.callbacks import LambdaCallback
    from distdl.optimizers import SGD
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 4))
    y = x @ np.full((4, 3), 2.0)  # the best kernel's columns have norm 4
    m = Sequential([Dense(3, input_shape=(4,), dtype="float64", **dense_kwargs)])
    m.compile(optimizer=SGD(0.1), loss="mse")
    norms = []
    log = LambdaCallback(on_train_batch_end=lambda batch, logs: norms.append(
        np.sqrt((m.get_weights()[0] ** 2).sum(axis=0)).max()))
    m.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[log])
    return np.array(norms)


def test_max_norm_constraint_holds_after_each_update():
    norms = _column_norms_after_each_update(kernel_constraint="max_norm")
    assert len(norms) == 20 and norms.max() <= 2.0 + 1e-9
    assert np.sum(norms > 2.0 - 1e-6) >= 5  # it binds: the kernel presses against the bound
    free = _column_norms_after_each_update()
    assert free.max() > 2.5  # without the constraint the same training leaves the ball


@pytest.mark.parametrize("functional", [False, True])
def test_activity_regularizer_on_a_softmax_output_with_crossentropy(functional):
    """The softmax + crossentropy shortcut (gradient w.r.t. the pre-activation) must not
    drop or misapply the activity penalty's gradient, which is w.r.t. the softmax output."""
    from distdl.layers import Input
    from distdl.models import Model
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 4)), np.eye(3)[rng.integers(0, 3, 6)]
    kw = dict(activation="softmax", activity_regularizer="l2", dtype="float64")
    if functional:
        inp = Input((4,), dtype="float64")
        m = Model(inp, Dense(3, **kw)(inp))
    else:
        m = Sequential([Dense(3, input_shape=(4,), **kw)])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    w0, b0 = m.get_weights()
    m.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    z = x @ w0 + b0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = 2 * 0.01 * p  # d(0.01 * sum(p**2)) / dp
    dz = (p - y) / len(x) + p * (g - (g * p).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(m.get_weights()[0], w0 - 0.01 * x.T @ dz, rtol=1e-10)
