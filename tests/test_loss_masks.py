"""Keras's loss masks in fit and evaluate: ignore_class and output masks (Embedding mask_zero)
make the batch loss sum(loss x mask) / valid elements, and the step follows that loss's gradient."""
import numpy as np
import pytest

from distdl import utils
from distdl.layers import Dense, Embedding, Input, SimpleRNN
from distdl.losses import SparseCategoricalCrossentropy
from distdl.models import Sequential
from distdl.optimizers import SGD
from gradcheck import numeric_grad


def _masked_mean(loss, y, pred, mask):
    per = loss.call(y, pred)
    return float(np.sum(per * mask) / np.sum(mask))


def _check_one_step(model, x, y, expected_loss, lr=0.1):
    """One full-batch SGD step: the logged loss is expected_loss(model) before the step and the
    last layer's kernel moves by -lr x its finite-difference gradient."""
    kernel = model.layers[-1].kernel.value
    before = expected_loss(model)
    k0 = kernel.copy()

    def f():
        return expected_loss(model)
    grad = numeric_grad(f, kernel)
    kernel[...] = k0
    hist = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(before, rel=1e-9)
    np.testing.assert_allclose(model.layers[-1].kernel.value - k0, -lr * grad, rtol=1e-5, atol=1e-9)


def test_ignore_class_divides_by_the_valid_labels_in_fit(float64):
    utils.set_random_seed(0)
    loss = SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    model = Sequential([Input((4,)), Dense(3)])
    model.compile(optimizer=SGD(0.1), loss=loss)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))
    y = np.array([0, -1, 2, -1, 1])
    _check_one_step(model, x, y, lambda m: float(loss(y, m.predict(x, verbose=0))))
    assert float(loss(y, model.predict(x, verbose=0))) == pytest.approx(
        _masked_mean(loss, y, model.predict(x, verbose=0), y != -1))


def _masked_sequence_model():
    utils.set_random_seed(1)
    model = Sequential([Input((6,)), Embedding(7, 4, mask_zero=True), SimpleRNN(5, return_sequences=True),
                        Dense(3)])
    model.compile(optimizer=SGD(0.1), loss=SparseCategoricalCrossentropy(from_logits=True))
    x = np.array([[3, 1, 4, 0, 0, 0], [5, 2, 6, 1, 5, 0], [0, 0, 2, 2, 3, 4], [1, 2, 3, 4, 5, 6]])
    y = np.random.default_rng(2).integers(0, 3, x.shape)
    return model, x, y


def test_an_output_mask_weights_the_loss_in_fit_and_evaluate(float64):
    model, x, y = _masked_sequence_model()
    ce = SparseCategoricalCrossentropy(from_logits=True)

    def expected(m):
        return _masked_mean(ce, y, m.predict(x, verbose=0), x != 0)
    _check_one_step(model, x, y, expected)
    # evaluate: the mean over every valid step of the data set, in one batch or several
    want = expected(model)
    assert model.evaluate(x, y, batch_size=4, verbose=0) == pytest.approx(want, rel=1e-9)
    assert model.evaluate(x, y, batch_size=1, verbose=0) == pytest.approx(want, rel=1e-9)


def test_no_mask_keeps_the_mean_over_all_elements(float64):
    utils.set_random_seed(1)
    model = Sequential([Input((6,)), Embedding(7, 4), SimpleRNN(5, return_sequences=True), Dense(3)])
    model.compile(optimizer=SGD(0.1), loss=SparseCategoricalCrossentropy(from_logits=True))
    _, x, y = _masked_sequence_model()
    ce = SparseCategoricalCrossentropy(from_logits=True)
    _check_one_step(model, x, y, lambda m: float(ce(y, m.predict(x, verbose=0))))


def test_metrics_use_the_mask_only_with_sample_weights_as_keras():
    """Keras 3: a metric sees the output mask only through sample weights (mask x weight);
    without sample weights every element counts."""
    model, x, y = _masked_sequence_model()
    model.compile(optimizer=SGD(0.0), loss=SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    hit = (model.predict(x, verbose=0).argmax(-1) == y).astype(float)
    mask = x != 0
    sw = np.array([1.0, 2.0, 0.5, 3.0])
    plain = model.evaluate(x, y, verbose=0)[1]
    weighted = model.evaluate(x, y, sample_weight=sw, verbose=0)[1]
    assert plain == pytest.approx(hit.mean())
    w = sw[:, None] * mask
    assert weighted == pytest.approx((hit * w).sum() / w.sum())
