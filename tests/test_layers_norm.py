"""BatchNormalization and LayerNormalization: gradients, hand-computed values, global statistics."""
import threading

import numpy as np
import pytest

from distdl.errors import ShapeError
from distdl.layers.base import RunContext, deserialize, serialize
from distdl.layers.normalization import BatchNormalization, LayerNormalization
from gradcheck import check_layer

RNG = np.random.default_rng(99)


def rand(*shape):
    return RNG.standard_normal(shape) * 2.0 + 0.5


# ----- BatchNormalization gradients --------------------------------------------------------
@pytest.mark.parametrize("kwargs,shape", [
    (dict(), (4, 5)),                                   # dense features
    (dict(), (2, 3, 5, 3)),                             # conv channels last, non-square
    (dict(axis=1), (3, 4, 2)),                          # channel axis not last
    (dict(center=False), (5, 3)),
    (dict(scale=False, epsilon=0.1), (2, 4, 3)),
    (dict(gamma_initializer="random_normal", beta_initializer="random_normal"), (3, 2, 2, 2)),
])
def test_batchnorm_training_gradients(kwargs, shape):
    check_layer(BatchNormalization(dtype="float64", **kwargs), rand(*shape), training=True)


def test_batchnorm_inference_gradients():
    layer = BatchNormalization(gamma_initializer="random_normal", dtype="float64")
    layer(rand(6, 3), training=True)  # moves the moving statistics away from 0/1
    check_layer(layer, rand(4, 3), training=False)


# ----- BatchNormalization values -------------------------------------------------------------
def test_batchnorm_inference_formula():
    layer = BatchNormalization(epsilon=1e-3, dtype="float64")
    layer.ensure_built((2,))
    gamma, beta, mean, var = (np.array(v) for v in ([2.0, 0.5], [1.0, -1.0], [3.0, 0.0], [3.999, 0.249]))
    layer.set_weights([gamma, beta, mean, var])
    x = np.array([[5.0, 1.0], [1.0, -2.0]])
    # y = gamma * (x - mean) / sqrt(var + eps) + beta = 2 (x - 3) / 2 + 1 and 0.5 x / 0.5 - 1
    np.testing.assert_allclose(layer(x, training=False), [[3.0, 0.0], [-1.0, -3.0]], rtol=1e-12)
    np.testing.assert_array_equal(layer.moving_mean.value, mean)  # inference leaves them alone


def test_batchnorm_training_values_and_moving_update():
    layer = BatchNormalization(momentum=0.9, epsilon=1e-3, dtype="float64")
    x = np.array([[0.0, 1.0], [4.0, 1.0], [2.0, 4.0], [2.0, 2.0]])
    y = layer(x, training=True)
    # column 0: mean 2, biased var (4 + 4 + 0 + 0) / 4 = 2; column 1: mean 2, var (1+1+4+0)/4 = 1.5
    expected = (x - [2.0, 2.0]) / np.sqrt(np.array([2.0, 1.5]) + 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_mean.value, [0.2, 0.2], rtol=1e-12)        # 0*0.9 + 2*0.1
    np.testing.assert_allclose(layer.moving_variance.value, [1.1, 1.05], rtol=1e-12)   # 1*0.9 + v*0.1


def test_batchnorm_weights_order_and_param_count():
    layer = BatchNormalization()
    layer.ensure_built((7, 7, 64))
    assert layer.count_params() == 256
    assert sum(v.value.size for v in layer.trainable_weights) == 128
    names = [v.name.split("/")[-1] for v in layer.weights]
    assert names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer.moving_variance.grad is None and not layer.moving_mean.trainable


def test_batchnorm_frozen_runs_in_inference_mode():
    layer = BatchNormalization(trainable=False, dtype="float64")
    x = rand(5, 3)
    np.testing.assert_allclose(layer(x, training=True), x / np.sqrt(1 + 1e-3))
    assert not layer.moving_mean.value.any()


def test_batchnorm_zero_rows():
    layer = BatchNormalization(dtype="float64")
    layer.ensure_built((3, 2))
    layer.gamma.grad[...] = 5.0
    layer.beta.grad[...] = 5.0
    y = layer.forward(np.zeros((0, 3, 2)), training=True)
    assert y.shape == (0, 3, 2)
    assert layer.backward(np.zeros((0, 3, 2))).shape == (0, 3, 2)
    assert not layer.gamma.grad.any() and not layer.beta.grad.any()
    np.testing.assert_array_equal(layer.moving_variance.value, [1.0, 1.0])  # no rows: no update


def test_batchnorm_float32():
    layer = BatchNormalization()
    x = (rand(64, 4) * 10 + 100).astype(np.float32)
    y = layer(x, training=True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(y.var(0), x.astype(np.float64).var(0) / (x.astype(np.float64).var(0) + 1e-3),
                               rtol=1e-4)


# ----- global statistics across simulated ranks ----------------------------------------------
class PairedRanks:
    """Two threads standing in for two ranks: `sum_across_ranks` adds the other rank's buffer."""

    def __init__(self, size=2):
        self.size, self.slots, self.barrier = size, [None] * size, threading.Barrier(size, timeout=10)
        self.calls = [0] * size

    def context(self, rank):
        ctx = RunContext()

        def sum_across_ranks(buf):
            self.calls[rank] += 1
            self.slots[rank] = buf.copy()
            self.barrier.wait()
            buf[...] = sum(self.slots)  # same order on every rank, like an allreduce
            self.barrier.wait()
            return buf
        ctx.sum_across_ranks = sum_across_ranks
        return ctx

    def run(self, fn):
        results = [None] * self.size
        threads = [threading.Thread(target=lambda r=r: results.__setitem__(r, fn(r)), daemon=True)
                   for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        return results


def make_bn(seed, **kwargs):
    layer = BatchNormalization(dtype="float64", momentum=0.8, **kwargs)
    layer.ensure_built((3, 4))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(4), rng.standard_normal(4), np.zeros(4), np.ones(4)])
    return layer


@pytest.mark.parametrize("split", [3, 5, 0])  # uneven halves, and a rank with no rows at all
def test_batchnorm_two_ranks_equal_whole_batch(split):
    x, dy = rand(7, 3, 4), rand(7, 3, 4)
    whole = make_bn(1)
    y_whole = whole.forward(x, training=True)
    dx_whole = whole.backward(dy)

    ranks = PairedRanks()
    layers = [make_bn(1), make_bn(1)]
    parts = [slice(0, split), slice(split, 7)]

    def step(r):
        layers[r].ctx = ranks.context(r)
        y = layers[r].forward(x[parts[r]], training=True).copy()
        return y, layers[r].backward(dy[parts[r]]).copy()

    (y0, dx0), (y1, dx1) = ranks.run(step)
    assert ranks.calls == [2, 2]  # one sum in forward, one in backward, on each rank
    np.testing.assert_allclose(np.concatenate([y0, y1]), y_whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([dx0, dx1]), dx_whole, rtol=1e-10, atol=1e-12)
    # parameter gradients are per-rank sums: the gradient allreduce adds them up
    for name in ("gamma", "beta"):
        total = getattr(layers[0], name).grad + getattr(layers[1], name).grad
        np.testing.assert_allclose(total, getattr(whole, name).grad, rtol=1e-10, atol=1e-12)
    for lay in layers:
        np.testing.assert_allclose(lay.moving_mean.value, whole.moving_mean.value, rtol=1e-12)
        np.testing.assert_allclose(lay.moving_variance.value, whole.moving_variance.value, rtol=1e-12)


def test_unsynchronized_batchnorm_uses_local_statistics():
    x = rand(8, 3, 4)
    ranks = PairedRanks()
    layers = [make_bn(2, synchronized=False), make_bn(2, synchronized=False)]

    def step(r):
        layers[r].ctx = ranks.context(r)
        return layers[r].forward(x[4 * r:4 * r + 4], training=True)

    outs = ranks.run(step)
    assert ranks.calls == [0, 0]
    for r in range(2):
        alone = make_bn(2)
        np.testing.assert_allclose(outs[r], alone.forward(x[4 * r:4 * r + 4], training=True), rtol=1e-12)


def test_batchnorm_bad_input_and_round_trip():
    layer = BatchNormalization(axis=2, name="bn")
    with pytest.raises(ShapeError, match="'bn'.*axis 2"):
        layer.ensure_built((5,))
    ok = BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, gamma_regularizer="l2", name="bn2")
    ok.ensure_built((4,))
    with pytest.raises(ShapeError, match=r"'bn2'.*\(4,\).*\(5,\)"):
        ok.forward(np.zeros((2, 5), np.float32), training=True)
    copy = deserialize(serialize(ok))
    assert copy.get_config() == ok.get_config() and copy.get_config()["synchronized"] is True


# ----- LayerNormalization --------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,shape", [
    (dict(), (3, 5)), (dict(), (2, 4, 3)), (dict(axis=[1, 2]), (2, 3, 4)), (dict(axis=1), (2, 3, 4)),
    (dict(center=False, gamma_initializer="random_normal"), (2, 6)), (dict(scale=False), (1, 4)),
])
def test_layernorm_gradients(kwargs, shape):
    check_layer(LayerNormalization(beta_initializer="random_normal", dtype="float64", **kwargs), rand(*shape))


def test_layernorm_hand_computed_and_params():
    layer = LayerNormalization(dtype="float64")
    y = layer(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]]))
    # row 0: mean 2, var 2/3; row 1: mean 2, var (4 + 4 + 16) / 3 = 8
    np.testing.assert_allclose(y[0], np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3 + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(y[1], np.array([-2.0, -2.0, 4.0]) / np.sqrt(8 + 1e-3), rtol=1e-12)
    ln = LayerNormalization(axis=[1, 2])
    ln.ensure_built((10, 16))
    assert ln.count_params() == 320 and ln.gamma.shape == (10, 16)
    assert [v.name.split("/")[-1] for v in ln.weights] == ["gamma", "beta"]


def test_layernorm_zero_rows_and_round_trip():
    layer = LayerNormalization(dtype="float64", name="ln")
    y = layer(np.zeros((0, 5)), training=True)
    assert y.shape == (0, 5)
    layer.gamma.grad[...] = 3.0
    assert layer.backward(y).shape == (0, 5) and not layer.gamma.grad.any()
    with pytest.raises(ShapeError, match=r"'ln'.*\(5,\).*\(6,\)"):
        layer.forward(np.zeros((2, 6)))
    seq = LayerNormalization(dtype="float64")
    seq.ensure_built((4, 3))
    assert seq.forward(np.ones((2, 7, 3))).shape == (2, 7, 3)  # time length may differ from the build
    assert deserialize(serialize(layer)).get_config() == layer.get_config()
