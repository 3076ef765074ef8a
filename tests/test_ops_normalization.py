"""distdl.ops layer/batch/rms normalization, normalize, sparsemax, psnr: values from
keras/src/ops/nn_test.py and hand-written NumPy formulas, gradients against float64 finite
differences (axes lists, negative axes, broadcast parameters)."""
import numpy as np
import pytest

import distdl.ops as ops
from distdl.errors import ShapeError
from opcheck import check_grad

RNG = np.random.default_rng(8)


def rand(*shape):
    return RNG.standard_normal(shape)


@pytest.mark.parametrize("axis", [-1, [1, 2], 1])
def test_layer_normalization(axis):
    x = rand(2, 3, 4)
    axes = tuple(np.atleast_1d(axis) % 3)
    shape = tuple(x.shape[i] if i in axes else 1 for i in range(3))
    gamma, beta = rand(*[x.shape[i] for i in axes]), rand(*[x.shape[i] for i in axes])
    m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    want = (x - m) / np.sqrt(v + 1e-7) * gamma.reshape(shape) + beta.reshape(shape)
    np.testing.assert_allclose(ops.layer_normalization(x, gamma, beta, axis=axis).value, want, rtol=1e-10)
    check_grad(lambda a, g, b: ops.layer_normalization(a, g, b, axis=axis, epsilon=1e-3), x, gamma, beta)


def test_batch_normalization_keras_golden_and_gradient():
    # nn_test.py test_batch_normalization
    x = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    mean, variance = np.array([0.2, 0.3, 0.4]), np.array([4.0, 16.0, 64.0])
    out = ops.batch_normalization(x, mean, variance, axis=-1, offset=np.array([5.0, 10.0, 15.0]),
                                  scale=np.array([10.0, 20.0, 30.0]), epsilon=1e-7)
    np.testing.assert_allclose(out.value, [[4.5, 9.5, 14.625], [6.0, 11.0, 15.75]])
    np.testing.assert_allclose(ops.batch_normalization(x, mean, variance, axis=1, epsilon=1e-7).value,
                               [[-0.05, -0.025, -0.0125], [0.1, 0.05, 0.025]])
    x4 = rand(2, 3, 2)
    stats = [rand(3), np.abs(rand(3)) + 0.5, rand(3), rand(3)]
    check_grad(lambda a, m, v, o, s: ops.batch_normalization(a, m, v, axis=1, offset=o, scale=s), x4, *stats)


def test_rms_normalization():
    x, scale = rand(2, 5), rand(5)
    want = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-7) * scale
    np.testing.assert_allclose(ops.rms_normalization(x, scale).value, want, rtol=1e-10)
    check_grad(lambda a, s: ops.rms_normalization(a, s, axis=-1, epsilon=1e-3), x, scale)
    check_grad(lambda a: ops.rms_normalization(a, axis=0), x)


def test_normalize_keras_docstring_and_orders():
    # the example in keras.ops.normalize's docstring
    out = ops.normalize(np.array([[1.0, 2, 3], [4, 5, 6]]))
    np.testing.assert_allclose(out.value, [[0.26726124, 0.5345225, 0.8017837], [0.45584232, 0.5698029, 0.68376344]],
                               rtol=1e-6)
    x = rand(3, 4)
    np.testing.assert_allclose(ops.normalize(x, axis=0, order=1).value, x / np.abs(x).sum(0))
    check_grad(lambda a: ops.normalize(a, axis=0), x)
    check_grad(lambda a: ops.normalize(a, order=3), x)
    np.testing.assert_array_equal(ops.normalize(np.zeros(3)).value, np.zeros(3))
    with pytest.raises(ShapeError, match="ops.normalize: order must be an int >= 1"):
        ops.normalize(x, order=0)


def test_sparsemax():
    # nn_test.py test_sparsemax
    np.testing.assert_allclose(ops.sparsemax(np.array([-0.5, 0, 1, 2, 3])).value, [0, 0, 0, 0, 1])
    x = rand(3, 5)
    y = ops.sparsemax(x, axis=0).value
    np.testing.assert_allclose(y.sum(0), 1.0)
    for j in range(5):   # the projection: y = max(x - tau, 0) with one tau per column
        tau = (x - y)[:, j][y[:, j] > 0]
        np.testing.assert_allclose(tau, tau[0])
        np.testing.assert_allclose(y[:, j], np.maximum(x[:, j] - tau[0], 0), atol=1e-12)
    check_grad(lambda a: ops.sparsemax(a), rand(4, 6) * 0.3)
    check_grad(lambda a: ops.sparsemax(a, axis=0), rand(5, 3) * 0.3)


def test_psnr():
    # nn_test.py test_psnr
    x1 = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    x2 = np.array([[0.2, 0.2, 0.3], [0.4, 0.6, 0.6]])
    want = 20 * np.log10(1.0) - 10 * np.log10(np.mean(np.square(x1 - x2)))
    np.testing.assert_allclose(float(ops.psnr(x1, x2, 1.0)), want)
    check_grad(lambda a, b: ops.psnr(a, b, 255.0), rand(2, 3), rand(2, 3))
    with pytest.raises(ShapeError, match="ops.psnr: x1 of shape \\(2, 3\\) and x2 of shape \\(3,\\)"):
        ops.psnr(x1, x2[0], 1.0)


def test_float32_stays_float32():
    x = rand(2, 3).astype(np.float32)
    for out in (ops.sparsemax(x), ops.psnr(x, x * 0.5, 1.0), ops.layer_normalization(x), ops.normalize(x, order=1),
                ops.rms_normalization(x), ops.batch_normalization(x, x[0], x[1] ** 2, axis=-1)):
        assert out.dtype == np.float32
