"""distdl.ops reductions, scans and norms: values against NumPy over None/int/negative/tuple axes
with and without keepdims, gradients against float64 finite differences, and the tie rule of
max/min (the gradient shared evenly, as TensorFlow and JAX) fixed by value."""
import numpy as np
import pytest
from opcheck import check_grad, grad_at

from distdl import ops
from distdl.autodiff import Tape, is_tracked, recording
from distdl.errors import ConfigError

RNG = np.random.default_rng(11)
AXES = [None, 0, -1, (0, 2), (-1, 1)]


def _logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis)


REFS = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "amax": np.amax, "amin": np.amin,
        "prod": np.prod, "var": np.var, "std": np.std, "logsumexp": _logsumexp}


@pytest.mark.parametrize("name", sorted(REFS))
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_value_and_gradient(name, axis, keepdims):
    x = RNG.normal(size=(2, 3, 4)) + 0.1     # continuous draws: no ties, no zeros
    op = getattr(ops, name)
    y = op(x.astype(np.float32), axis=axis, keepdims=keepdims).value
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, REFS[name](x.astype(np.float32), axis=axis, keepdims=keepdims), rtol=1e-5)
    check_grad(lambda t: op(t, axis=axis, keepdims=keepdims), x)


def test_max_min_ties_share_the_gradient_evenly():
    x = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    (g,) = grad_at(lambda t: ops.max(t, axis=1), x)
    np.testing.assert_allclose(g, [[0.5, 0, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    (g,) = grad_at(lambda t: ops.min(t), x)
    np.testing.assert_allclose(g, [[0, 1, 0], [0, 0, 0]])
    # `initial` above every element: the value is initial, no gradient reaches x
    np.testing.assert_allclose(ops.max(x, axis=1, initial=10.0).value, [10, 10])
    (g,) = grad_at(lambda t: ops.max(t, axis=1, initial=10.0), x)
    np.testing.assert_array_equal(g, np.zeros_like(x))


def test_prod_gradient_is_exact_at_zeros():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.5, -2.0, 4.0]])
    (g,) = grad_at(lambda t: ops.prod(t, axis=-1), x)
    np.testing.assert_allclose(g, [[0, 6, 0], [0, 0, 0], [-8, 6, -3]])
    check_grad(lambda t: ops.prod(t, axis=0), x)


def test_logsumexp_is_stable_and_its_gradient_is_softmax():
    x = np.float32([[1000.0, 1000.0], [-1000.0, -1001.0]])
    np.testing.assert_allclose(ops.logsumexp(x, axis=1).value, [1000 + np.log(2), -1000 + np.log1p(np.exp(-1))])
    (g,) = grad_at(lambda t: ops.logsumexp(t, axis=1), x)
    np.testing.assert_allclose(g, [[0.5, 0.5], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))]])


def test_std_gradient_is_zero_where_std_is_zero():
    x = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    (g,) = grad_at(lambda t: ops.std(t, axis=1), x)
    np.testing.assert_array_equal(g[0], [0, 0, 0])
    check_grad(lambda t: ops.std(t, axis=1), x[1:])


def test_integer_mean_var_std_are_float():
    x = np.array([1, 2, 3, 4])
    assert ops.var(x).value == pytest.approx(1.25)
    assert ops.std(x).value.dtype == np.float32
    assert ops.mean(x).value.dtype == np.float32 and ops.mean(x).value == 2.5


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("axis", [None, 0, -1, 1])
def test_scans_value_and_gradient(name, axis):
    x = RNG.normal(size=(3, 4))
    np.testing.assert_allclose(getattr(ops, name)(x, axis=axis).value, getattr(np, name)(x, axis=axis))
    check_grad(lambda t: getattr(ops, name)(t, axis=axis), x)


def test_cumprod_gradient_is_exact_at_zeros():
    x = np.array([[2.0, 0.0, 3.0, 0.5], [1.0, 3.0, 0.0, 0.0]])
    check_grad(lambda t: ops.cumprod(t, axis=1), x)     # the products are polynomials: the check is exact
    (g,) = grad_at(lambda t: ops.cumprod(t, axis=1), x)
    # row 0: y = [2, 0, 0, 0]; dy/dx0 = 1, dy/dx1 = 2 + 2*3 + 2*3*0.5, the rest 0
    np.testing.assert_allclose(g[0], [1, 11, 0, 0])


def test_cumsum_of_integers_keeps_them_and_is_not_recorded():
    tape = Tape("test")
    with recording(tape):
        y = ops.cumsum(tape.leaf(np.array([1, 2, 3])))
    assert not is_tracked(y) and y.value.tolist() == [1, 3, 6]


@pytest.mark.parametrize("ord,axis", [(None, None), (None, 1), (2, -1), (1, 0), (np.inf, 1), (-np.inf, 1),
                                      (3, 1), (0.5, 0), ("fro", None), (None, (0, 1)), ("fro", (1, 0))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_norm_value_and_gradient(ord, axis, keepdims):
    x = RNG.normal(size=(3, 4)) + 0.05
    y = ops.norm(x, ord=ord, axis=axis, keepdims=keepdims).value
    np.testing.assert_allclose(y, np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims), rtol=1e-12)
    check_grad(lambda t: ops.norm(t, ord=ord, axis=axis, keepdims=keepdims), x)


def test_norm_of_3d_flattens_and_zero_norm_has_zero_gradient():
    x = RNG.normal(size=(2, 2, 3))
    np.testing.assert_allclose(ops.norm(x).value, np.sqrt(np.sum(x * x)))
    (g,) = grad_at(lambda t: ops.norm(t, axis=-1), np.zeros((2, 3)))
    np.testing.assert_array_equal(g, np.zeros((2, 3)))
    assert ops.norm(np.array([0.0, 2.0, -1.0]), ord=0).value == 2


def test_norm_refuses_unsupported_matrix_norms():
    with pytest.raises(ConfigError, match="ops.norm: the matrix norm ord='nuc' is not supported"):
        ops.norm(np.ones((2, 2)), ord="nuc")
    with pytest.raises(ConfigError, match="ops.norm: ord=2 with axis=None needs a 1-D or 2-D x"):
        ops.norm(np.ones((2, 2, 2)), ord=2)


def test_argmax_argmin_all_any_count_nonzero():
    x = np.array([[1.0, 5.0, 5.0], [0.0, -2.0, 0.0]])
    for name in ("argmax", "argmin"):
        for axis in (None, 0, -1):
            for keepdims in (False, True):
                got = getattr(ops, name)(x, axis=axis, keepdims=keepdims).value
                np.testing.assert_array_equal(got, getattr(np, name)(x, axis=axis, keepdims=keepdims))
                assert got.dtype == np.int32
    assert ops.argmax(x, axis=1).value.tolist() == [1, 0]      # the first of tied maxima
    np.testing.assert_array_equal(ops.all(x, axis=1).value, [True, False])
    np.testing.assert_array_equal(ops.any(x, axis=-1, keepdims=True).value, [[True], [True]])
    np.testing.assert_array_equal(ops.count_nonzero(x, axis=0).value, [1, 2, 1])
    assert ops.count_nonzero(x).value == 4
    tape = Tape("test")
    with recording(tape):
        assert not is_tracked(ops.argmax(tape.leaf(x)))
