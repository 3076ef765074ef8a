"""distdl.ops activations, one_hot/multi_hot and the cross-entropy ops.

Values are Keras's golden numbers from keras/src/ops/nn_test.py (NNOpsCorrectnessTest, Keras 3);
gradients are checked against float64 finite differences away from kinks, and the derivative
at each kink is fixed by value. A custom layer written with these ops must follow the built-in
layers' numbers, so the ops' derivatives are compared with distdl.activations' too."""
import numpy as np
import pytest
from opcheck import check_grad, grad_at

from distdl import activations, ops
from distdl.autodiff import Tape, is_tracked, recording
from distdl.errors import ConfigError, ShapeError

RNG = np.random.default_rng(5)
X = np.array([-1, 0, 1, 2, 3], dtype=np.float32)

# keras/src/ops/nn_test.py, NNOpsCorrectnessTest: f(X) for X = [-1, 0, 1, 2, 3]
GOLDEN = {
    "relu": [0, 0, 1, 2, 3],
    "sigmoid": [0.26894143, 0.5, 0.7310586, 0.880797, 0.95257413],
    "softplus": [0.31326166, 0.6931472, 1.3132616, 2.126928, 3.0485873],
    "softsign": [-0.5, 0, 0.5, 0.6666667, 0.75],
    "silu": [-0.26894143, 0, 0.7310586, 1.7615942, 2.8577223],
    "log_sigmoid": [-1.3132616, -0.6931472, -0.31326166, -0.126928, -0.04858732],
    "leaky_relu": [-0.2, 0, 1, 2, 3],
    "hard_sigmoid": [0.33333334, 0.5, 0.6666667, 0.8333334, 1.0],
    "elu": [-0.63212055, 0, 1, 2, 3],
    "selu": [-1.1113307, 0.0, 1.050701, 2.101402, 3.152103],
    "gelu": [-0.15880796, 0.0, 0.841192, 1.9545977, 2.9963627],
    "celu": [-0.63212055, 0.0, 1.0, 2.0, 3.0],
}
SMOOTH = ["sigmoid", "softplus", "softsign", "silu", "swish", "log_sigmoid", "gelu", "celu", "elu", "selu",
          "leaky_relu", "relu", "relu6", "hard_sigmoid", "hard_silu", "hard_swish"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_keras_golden_values(name):
    y = getattr(ops, name)(X).value
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, GOLDEN[name], rtol=1e-5, atol=1e-6)
    assert getattr(ops.nn, name) is getattr(ops, name)


def test_more_keras_golden_values():
    np.testing.assert_allclose(ops.relu6(np.float32([-1, 0, 1, 2, 3, 4, 5, 6, 7])).value, [0, 0, 1, 2, 3, 4, 5, 6, 6])
    np.testing.assert_allclose(ops.hard_silu(np.float32([-3, -2, -1, 0, 1, 2, 3])).value,
                               [-0.0, -0.333333, -0.333333, 0.0, 0.6666667, 1.6666667, 3.0], rtol=1e-5)
    np.testing.assert_allclose(ops.elu(X, alpha=0.5).value, [-0.31606027, 0, 1, 2, 3], rtol=1e-6)
    # the exact erf form, against x * Phi(x) from math.erf
    import math
    exact = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in X.tolist()]
    np.testing.assert_allclose(ops.gelu(X, approximate=False).value, exact, rtol=1e-6, atol=1e-7)
    assert ops.swish is ops.silu and ops.hard_swish is ops.hard_silu


@pytest.mark.parametrize("name", SMOOTH)
def test_gradient_matches_finite_differences_away_from_kinks(name):
    x = RNG.uniform(0.1, 2.5, size=(3, 4)) * RNG.choice([-1, 1], size=(3, 4))   # off 0 and +-3
    check_grad(getattr(ops, name), x)
    check_grad(lambda t: ops.gelu(t, approximate=False), x)
    check_grad(lambda t: ops.elu(t, alpha=0.5), x)
    check_grad(lambda t: ops.celu(t, alpha=2.0), x)
    check_grad(lambda t: ops.leaky_relu(t, negative_slope=0.1), x)


def test_derivatives_at_the_kinks():
    at = lambda f, v: grad_at(f, np.array(v))[0]     # noqa: E731
    np.testing.assert_array_equal(at(ops.relu, [0.0]), [0])
    np.testing.assert_array_equal(at(ops.relu6, [0.0, 6.0]), [0, 0])
    np.testing.assert_allclose(at(ops.leaky_relu, [0.0]), [0.2])          # TensorFlow: the slope at 0
    np.testing.assert_array_equal(at(ops.hard_sigmoid, [-3.0, 3.0]), [0, 0])
    np.testing.assert_allclose(at(ops.elu, [0.0]), [1.0])
    np.testing.assert_allclose(at(lambda t: ops.elu(t, alpha=0.5), [0.0]), [0.5])
    selu = activations.SELU()
    np.testing.assert_allclose(at(ops.selu, [0.0]), [selu.scale * selu.alpha])   # JAX's convention
    np.testing.assert_allclose(at(ops.celu, [0.0]), [1.0])


@pytest.mark.parametrize("name", ["relu6", "sigmoid", "hard_sigmoid", "hard_silu", "silu", "gelu", "elu",
                                  "selu", "leaky_relu", "softplus", "softsign"])
def test_same_derivative_as_the_built_in_activation(name):
    x = np.concatenate([RNG.normal(size=20) * 3, [0.0, -3.0, 3.0, 6.0]])
    act = activations.get(name) if name != "gelu" else activations.GELU(approximate=True)
    (g,) = grad_at(getattr(ops, name), x)
    np.testing.assert_allclose(g, act.backward(np.ones_like(x), x, act.forward(x)), rtol=1e-12)


def test_softmax_and_log_softmax_golden_values_and_gradients():
    x = np.array([[1, 2, 3], [1, 2, 3]], dtype=np.float32)
    for fn, gold in [(ops.softmax, {None: [0.045015, 0.122364, 0.33262], 0: [0.5, 0.5, 0.5],
                                    -1: [0.09003057, 0.24472848, 0.66524094]}),
                     (ops.log_softmax, {None: [-3.100753, -2.100753, -1.100753], 0: [-0.693147] * 3,
                                        -1: [-2.407606, -1.407606, -0.407606]})]:
        for axis, row in gold.items():
            np.testing.assert_allclose(fn(x, axis=axis).value, [row, row], rtol=1e-5)
        np.testing.assert_allclose(fn(x).value, [gold[-1], gold[-1]], rtol=1e-5)
        for axis in (None, 0, -1, 1, (0, 2), [1, 2]):
            check_grad(lambda t: fn(t, axis=axis), RNG.normal(size=(2, 3, 4)))
    np.testing.assert_allclose(np.sum(ops.softmax(RNG.normal(size=(2, 2, 2)), axis=(0, 2)).value, axis=(0, 2)), 1)
    big = ops.log_softmax(np.float32([[1000.0, 0.0]])).value
    np.testing.assert_allclose(big, [[0.0, -1000.0]])


def test_one_hot_and_multi_hot_as_keras():
    # keras/src/ops/nn_test.py test_one_hot / test_multi_hot
    i2 = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(ops.one_hot(i2, 4).value, np.eye(4)[i2])
    np.testing.assert_array_equal(ops.one_hot(i2, 4, axis=1).value, np.transpose(np.eye(4)[i2], (0, 2, 1)))
    np.testing.assert_array_equal(ops.one_hot([0, 1, 2, 3], 4, axis=0).value, np.eye(4))
    np.testing.assert_array_equal(ops.one_hot(np.array([0, -1, -1, 3]), 4).value,
                                  [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    assert ops.one_hot(i2, 4).value.dtype == np.float32 and ops.one_hot(i2, 4, dtype="int32").value.dtype == np.int32
    np.testing.assert_array_equal(ops.multi_hot(np.array([0, 1, 2, 3]), 4).value, [1, 1, 1, 1])
    np.testing.assert_array_equal(ops.multi_hot(i2, 4).value, [[1, 1, 0, 0], [0, 0, 1, 1]])
    np.testing.assert_array_equal(ops.multi_hot(np.array([0, -1, -1, 3]), num_tokens=4).value, [1, 0, 0, 1])
    with pytest.raises(ConfigError, match="ops.one_hot: labels must be integers"):
        ops.one_hot(np.array([0.5]), 3)
    with pytest.raises(ConfigError, match="sparse=True is not supported"):
        ops.one_hot(i2, 4, sparse=True)


def test_binary_crossentropy_keras_golden_values_and_gradients():
    # keras/src/ops/nn_test.py test_binary_crossentropy
    t = np.array([[0.1], [0.9], [0.2], [1.0]])
    o = np.array([[0.1], [0.2], [0.3], [0.4]])
    np.testing.assert_allclose(ops.binary_crossentropy(t, o).value,
                               [[0.32508277], [1.47080801], [0.52613434], [0.91629048]], rtol=1e-6)
    np.testing.assert_allclose(ops.nn.binary_crossentropy(t, o, from_logits=True).value,
                               [[0.73439666], [0.61813887], [0.79435524], [0.51301525]], rtol=1e-6)
    o2 = np.array([[0.99], [-0.2], [0.9], [-0.4]])
    np.testing.assert_allclose(ops.binary_crossentropy(t, o2, from_logits=True).value,
                               [[1.206961], [0.778139], [1.061154], [0.913015]], rtol=1e-6)
    check_grad(ops.binary_crossentropy, t, o)
    check_grad(lambda a, b: ops.binary_crossentropy(a, b, from_logits=True), t, o2 * 5)
    assert np.isfinite(ops.binary_crossentropy([1.0, 0.0], [1e4, -1e4], from_logits=True).value).all()
    # outputs clipped to [1e-7, 1 - 1e-7] get no gradient (as Keras's clip)
    (_, g) = grad_at(ops.binary_crossentropy, [1.0, 1.0], [0.0, 0.5])
    assert g[0] == 0 and g[1] == pytest.approx(-2.0)
    with pytest.raises(ShapeError, match=r"ops.binary_crossentropy: target shape \(4, 1\) and output shape \(4,\)"):
        ops.binary_crossentropy(t, o[:, 0])


def test_categorical_crossentropy_keras_golden_values_and_gradients():
    # keras/src/ops/nn_test.py test_categorical_crossentropy
    t = np.array([[0.33008796, 0.0391289, 0.9503603], [0.80376694, 0.92363342, 0.19147756]])
    o = np.array([[0.23446431, 0.35822914, 0.06683268], [0.3413979, 0.05420256, 0.81619654]])
    np.testing.assert_allclose(ops.categorical_crossentropy(t, o).value, [2.54095299, 3.96374412], rtol=1e-6)
    np.testing.assert_allclose(ops.categorical_crossentropy(t, o, axis=0).value,
                               [0.71683073, 1.87988172, 2.46810762], rtol=1e-6)
    np.testing.assert_allclose(ops.categorical_crossentropy(t, o, from_logits=True).value,
                               [1.59419954, 2.49880593], rtol=1e-6)
    o2 = np.array([[1.23446431, -0.35822914, 1.06683268], [0.3413979, -0.05420256, 0.81619654]])
    np.testing.assert_allclose(ops.nn.categorical_crossentropy(t, o2, from_logits=True).value,
                               [1.16825923, 2.55436813], rtol=1e-6)
    for axis in (-1, 0):
        check_grad(lambda a, b: ops.categorical_crossentropy(a, b, axis=axis), t, o)
        check_grad(lambda a, b: ops.categorical_crossentropy(a, b, from_logits=True, axis=axis), t, o2)
    with pytest.raises(ShapeError, match="ops.categorical_crossentropy: target shape"):
        ops.categorical_crossentropy(t, o[:, :2])


def test_sparse_categorical_crossentropy_keras_golden_values_and_gradients():
    # keras/src/ops/nn_test.py test_sparse_categorical_crossentropy
    t = np.array([0, 1, 2])
    o = np.array([[0.9, 0.05, 0.05], [0.05, 0.89, 0.06], [0.05, 0.01, 0.94]])
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy(t, o).value, [0.105361, 0.116534, 0.061875],
                               rtol=1e-5)
    logits = np.array([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]])
    np.testing.assert_allclose(ops.nn.sparse_categorical_crossentropy(t, logits, from_logits=True).value,
                               [0.001822, 0.000459, 0.169846], rtol=1e-3)
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy(t[:, None], logits, from_logits=True).value,
                               ops.sparse_categorical_crossentropy(t, logits, from_logits=True).value)
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy(t, logits.T, from_logits=True, axis=0).value,
                               ops.sparse_categorical_crossentropy(t, logits, from_logits=True).value)
    check_grad(lambda b: ops.sparse_categorical_crossentropy(t, b), o)
    check_grad(lambda b: ops.sparse_categorical_crossentropy(t, b, from_logits=True, axis=0), logits)
    tape = Tape("test")
    with recording(tape):
        assert is_tracked(ops.sparse_categorical_crossentropy(t, tape.leaf(logits), from_logits=True))
    with pytest.raises(ShapeError, match=r"target shape \(2,\) must be output shape \(3, 3\) without axis -1"):
        ops.sparse_categorical_crossentropy(t[:2], o)


def test_more_keras_activations_golden_values_gradients_and_kinks():
    # keras/src/ops/nn_test.py NNOpsCorrectnessTest: tanh_shrink, hard_tanh, hard_shrink, threshold,
    # squareplus, soft_shrink, sparse_plus, sparse_sigmoid, glu
    w = np.array([-0.5, 0, 1, 2, 3], dtype=np.float32)
    for got, gold in [(ops.tanh_shrink(X), [-0.238406, 0.0, 0.238406, 1.035972, 2.004945]),
                      (ops.hard_tanh(X), [-1.0, 0.0, 1.0, 1.0, 1.0]),
                      (ops.hard_shrink(w), [0.0, 0.0, 1.0, 2.0, 3.0]),
                      (ops.threshold(w, 0, 0), [0.0, 0.0, 1.0, 2.0, 3.0]),
                      (ops.squareplus(w), [0.780776, 1.0, 1.618034, 2.414214, 3.302776]),
                      (ops.soft_shrink(w), [0.0, 0.0, 0.5, 1.5, 2.5]),
                      (ops.sparse_plus(w), [0.0625, 0.25, 1.0, 2.0, 3.0]),
                      (ops.sparse_sigmoid(X), [0.0, 0.5, 1.0, 1.0, 1.0]),
                      (ops.nn.glu(np.float32([-1, 0, 1, 2, 3, 4])), [-0.8807971, 0.0, 0.98201376])]:
        assert got.value.dtype == np.float32
        np.testing.assert_allclose(got.value, gold, rtol=1e-5, atol=1e-6)
    x = RNG.uniform(0.1, 2.5, size=(3, 4)) * RNG.choice([-1, 1], size=(3, 4))
    x[np.abs(np.abs(x) - 1) < 0.05] += 0.1        # off the kinks at +-1
    x[np.abs(np.abs(x) - 0.5) < 0.05] += 0.1      # and at +-0.5
    for fn in (ops.tanh_shrink, ops.hard_tanh, ops.hard_shrink, ops.soft_shrink, ops.squareplus,
               ops.sparse_plus, ops.sparse_sigmoid, lambda t: ops.threshold(t, 0.3, -2.0),
               lambda t: ops.glu(t, axis=0), ops.glu):
        check_grad(fn, x[:2])
    at = lambda f, v: grad_at(f, np.array(v))[0]     # noqa: E731
    np.testing.assert_array_equal(at(ops.hard_tanh, [-1.0, 1.0]), [1, 1])          # closed interval, as clip
    np.testing.assert_array_equal(at(ops.sparse_sigmoid, [-1.0, 1.0]), [0, 0])
    np.testing.assert_array_equal(at(ops.soft_shrink, [-0.5, 0.5]), [0, 0])
    np.testing.assert_allclose(at(ops.sparse_plus, [-1.0, 1.0]), [0, 1])            # continuous there
    with pytest.raises(ShapeError, match=r"ops.glu: x of shape \(3,\) must have an even size along axis -1"):
        ops.glu(np.ones(3))


def test_moments_are_mean_and_variance_and_refuse_synchronized():
    # keras/src/ops/nn_test.py test_moments: the mean and variance NumPy gives
    x = np.array([0, 1, 2, 3, 4, 100, -200], dtype=np.float32)
    m, v = ops.nn.moments(x, axes=[0])
    np.testing.assert_allclose([m.value, v.value], [np.mean(x), np.var(x)], rtol=1e-5)
    y = RNG.normal(size=(2, 3, 4))
    check_grad(lambda t: ops.moments(t, axes=[0, 1], keepdims=True)[1], y)
    with pytest.raises(ConfigError, match="ops.moments: synchronized=True is not supported"):
        ops.moments(x, axes=[0], synchronized=True)
