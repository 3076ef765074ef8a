"""distdl.ops elementwise math and trig: values against NumPy (dtype kept, integers to floatx),
gradients against float64 finite differences (with broadcasting), and the conventions at kinks
(maximum/minimum ties to the first argument, clip's closed interval) fixed by value."""
import numpy as np
import pytest
from opcheck import check_grad, grad_at

from distdl import ops
from distdl.autodiff import Tape, backward, is_tracked, recording, value_of
from distdl.errors import ConfigError, ShapeError

RNG = np.random.default_rng(7)


# name, NumPy reference, a sampler of points inside the domain
UNARY = [
    ("exp", np.exp, lambda s: RNG.normal(size=s)),
    ("exp2", np.exp2, lambda s: RNG.normal(size=s)),
    ("expm1", np.expm1, lambda s: RNG.normal(size=s)),
    ("log", np.log, lambda s: RNG.uniform(0.5, 3, size=s)),
    ("log1p", np.log1p, lambda s: RNG.uniform(-0.5, 3, size=s)),
    ("log2", np.log2, lambda s: RNG.uniform(0.5, 3, size=s)),
    ("log10", np.log10, lambda s: RNG.uniform(0.5, 3, size=s)),
    ("sqrt", np.sqrt, lambda s: RNG.uniform(0.5, 3, size=s)),
    ("rsqrt", lambda x: 1 / np.sqrt(x), lambda s: RNG.uniform(0.5, 3, size=s)),
    ("square", np.square, lambda s: RNG.normal(size=s)),
    ("cbrt", np.cbrt, lambda s: RNG.uniform(0.5, 3, size=s) * RNG.choice([-1, 1], size=s)),
    ("reciprocal", np.reciprocal, lambda s: RNG.uniform(0.5, 3, size=s)),
    ("sin", np.sin, lambda s: RNG.normal(size=s)),
    ("cos", np.cos, lambda s: RNG.normal(size=s)),
    ("tan", np.tan, lambda s: RNG.uniform(-1.2, 1.2, size=s)),
    ("arcsin", np.arcsin, lambda s: RNG.uniform(-0.9, 0.9, size=s)),
    ("arccos", np.arccos, lambda s: RNG.uniform(-0.9, 0.9, size=s)),
    ("arctan", np.arctan, lambda s: RNG.normal(size=s)),
    ("sinh", np.sinh, lambda s: RNG.normal(size=s)),
    ("cosh", np.cosh, lambda s: RNG.normal(size=s)),
    ("tanh", np.tanh, lambda s: RNG.normal(size=s)),
    ("arcsinh", np.arcsinh, lambda s: RNG.normal(size=s)),
    ("arccosh", np.arccosh, lambda s: RNG.uniform(1.2, 3, size=s)),
    ("arctanh", np.arctanh, lambda s: RNG.uniform(-0.9, 0.9, size=s)),
    ("abs", np.abs, lambda s: RNG.uniform(0.1, 2, size=s) * RNG.choice([-1, 1], size=s)),
]


@pytest.mark.parametrize("name,ref,sample", UNARY, ids=[u[0] for u in UNARY])
def test_unary_value_dtype_and_gradient(name, ref, sample):
    op = getattr(ops, name)
    x = sample((3, 4))
    x32 = x.astype(np.float32)
    y = op(x32).value
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref(x32), rtol=2e-6, atol=1e-7)
    check_grad(op, x)


def test_erf_values_and_gradient():
    # erf(0.5), erf(1), erf(-2) to 1e-12 (Abramowitz & Stegun table 7.1)
    np.testing.assert_allclose(ops.erf(np.array([0.5, 1.0, -2.0])).value,
                               [0.5204998778130465, 0.8427007929497149, -0.9953222650189527], rtol=1e-12)
    check_grad(ops.erf, RNG.normal(size=(2, 5)))


def test_integers_become_floatx_and_python_scalars_stay_weak():
    assert ops.exp(np.array([1, 2])).value.dtype == np.float32
    assert ops.sqrt([1, 4]).value.dtype == np.float32
    x = np.float32([1.0, 2.0])
    assert ops.logaddexp(x, 0.0).value.dtype == np.float32
    assert ops.maximum(x, 1.5).value.dtype == np.float32
    assert ops.clip(x, 0.5, 1.5).value.dtype == np.float32


def test_binary_ops_broadcast_values_and_gradients():
    a, b = RNG.normal(size=(3, 1, 4)), RNG.normal(size=(5, 1)) + 0.01   # no ties
    for name in ("maximum", "minimum", "logaddexp", "arctan2"):
        np.testing.assert_allclose(getattr(ops, name)(a, b).value, getattr(np, name)(a, b))
        check_grad(getattr(ops, name), a, b)


def test_logaddexp_does_not_overflow():
    y = ops.logaddexp(np.float32([1000.0, -1000.0]), np.float32([1000.0, -1000.0])).value
    np.testing.assert_allclose(y, [1000 + np.log(2), -1000 + np.log(2)], rtol=1e-6)
    ga, gb = grad_at(ops.logaddexp, [800.0], [0.0])
    np.testing.assert_allclose([ga[0], gb[0]], [1.0, 0.0], atol=1e-12)


def test_maximum_minimum_ties_go_to_the_first_argument():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 3.0])
    gx, gy = grad_at(ops.maximum, x, y)
    np.testing.assert_array_equal(gx, [1, 0, 1])
    np.testing.assert_array_equal(gy, [0, 1, 0])
    gx, gy = grad_at(ops.minimum, x, y)
    np.testing.assert_array_equal(gx, [1, 1, 1])
    np.testing.assert_array_equal(gy, [0, 0, 0])
    (g,) = grad_at(lambda t: ops.maximum(t, t), x)
    np.testing.assert_array_equal(g, [1, 1, 1])


def test_clip_values_gradients_and_closed_interval():
    x = np.array([-2.0, -1.0, 0.3, 1.0, 2.0])
    np.testing.assert_allclose(ops.clip(x, -1.0, 1.0).value, [-1, -1, 0.3, 1, 1])
    (g,) = grad_at(lambda t: ops.clip(t, -1.0, 1.0), x)
    np.testing.assert_array_equal(g, [0, 1, 1, 1, 0])       # bounds included (TensorFlow)
    # tensor bounds, broadcast, points away from the bounds
    x = RNG.normal(size=(4, 3)) * 2
    lo, hi = np.array([-1.05, -0.55, -2.05]), np.array([[0.45], [1.05], [0.95], [2.05]])
    check_grad(ops.clip, x, lo, hi)
    gx, glo, ghi = grad_at(ops.clip, [0.0, 5.0], [1.0, 1.0], [3.0, 3.0])
    np.testing.assert_array_equal(np.stack([gx, glo, ghi]), [[0, 0], [1, 0], [0, 1]])
    np.testing.assert_allclose(ops.clip([0.0, 5.0], 3.0, 1.0).value, [1.0, 1.0])     # x_min > x_max: x_max
    np.testing.assert_array_equal(grad_at(ops.clip, [0.0, 5.0], [3.0, 3.0], [1.0, 1.0])[2], [1, 1])


def test_where_values_gradients_and_index_form():
    c = np.array([[True, False, True]])
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(3,))
    np.testing.assert_allclose(ops.where(c, a, b).value, np.where(c, a, b))
    check_grad(lambda x1, x2: ops.where(c, x1, x2), a, b)
    ga, gb = grad_at(lambda x1, x2: ops.where(c, x1, x2), a, b)
    np.testing.assert_array_equal(ga, [[1, 0, 1], [1, 0, 1]])
    np.testing.assert_array_equal(gb, [0, 2, 0])
    rows, cols = ops.where(np.array([[0, 1], [1, 0]]))
    np.testing.assert_array_equal(rows.value, [0, 1])
    np.testing.assert_array_equal(cols.value, [1, 0])
    with pytest.raises(ConfigError, match="ops.where: give both x1 and x2"):
        ops.where(c, a)


def test_nan_to_num_value_and_gradient_where_finite():
    x = np.array([1.5, np.nan, np.inf, -np.inf, -2.0])
    np.testing.assert_array_equal(ops.nan_to_num(x, nan=0.0, posinf=9.0, neginf=-9.0).value, [1.5, 0, 9, -9, -2])
    (g,) = grad_at(lambda t: ops.nan_to_num(t, posinf=9.0), x)
    np.testing.assert_array_equal(g, [1, 0, 0, 0, 1])


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "sign"])
def test_piecewise_constant_ops_are_not_recorded(name):
    x = np.array([-1.5, -0.2, 0.0, 0.5, 2.7])
    np.testing.assert_array_equal(getattr(ops, name)(x).value, getattr(np, name)(x))
    tape = Tape("test")
    with recording(tape):
        assert not is_tracked(getattr(ops, name)(tape.leaf(x)))
    np.testing.assert_allclose(ops.round(np.array([1.2345]), decimals=2).value, [1.23])


def test_shape_errors_name_the_op_and_both_shapes():
    with pytest.raises(ShapeError, match=r"ops.maximum: shapes \(2, 3\) and \(4,\)"):
        ops.maximum(np.zeros((2, 3)), np.zeros(4))
    with pytest.raises(ShapeError, match=r"ops.logaddexp: shapes \(2,\) and \(3,\)"):
        ops.logaddexp(np.zeros(2), np.zeros(3))
    with pytest.raises(ShapeError, match=r"ops.clip: shapes \(2,\), \(3,\)"):
        ops.clip(np.zeros(2), np.zeros(3), 1.0)


def test_isnan_isinf_isfinite():
    x = np.array([1.0, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(ops.isnan(x).value, [False, True, False, False])
    np.testing.assert_array_equal(ops.isinf(x).value, [False, False, True, True])
    np.testing.assert_array_equal(ops.isfinite(x).value, [True, False, False, False])


NO_WRITE = [getattr(ops, u[0]) for u in UNARY] + [
    ops.erf, ops.relu, ops.relu6, ops.sigmoid, ops.hard_sigmoid, ops.hard_silu, ops.silu, ops.gelu, ops.elu,
    ops.selu, ops.celu, ops.leaky_relu, ops.softplus, ops.softsign, ops.log_sigmoid, ops.softmax, ops.log_softmax,
    ops.glu, ops.tanh_shrink, ops.squareplus, ops.sparse_plus, ops.nan_to_num, ops.sum, ops.mean, ops.max,
    ops.prod, ops.logsumexp, ops.var, ops.std, ops.norm, ops.cumsum, ops.cumprod,
    lambda t: ops.clip(t, -0.5, 0.5), lambda t: ops.maximum(t, 0.1), lambda t: ops.where(t > 0, t, -t),
    lambda t: ops.logaddexp(t, t), lambda t: ops.arctan2(t, 1.5),
    lambda t: ops.categorical_crossentropy(np.full((3, 4), 0.25), t, from_logits=True),
    lambda t: ops.binary_crossentropy(np.full((3, 4), 0.5), t, from_logits=True)]


@pytest.mark.parametrize("fn", NO_WRITE)
def test_no_op_writes_into_its_input_or_the_gradient_it_is_given(fn):
    """A vjp may be handed g itself (or a view of it), and inputs are the user's arrays."""
    x = RNG.uniform(0.2, 0.9, size=(3, 4))
    x0 = x.copy()
    tape = Tape("test")
    with recording(tape), np.errstate(invalid="ignore"):   # arccosh is NaN below 1: no matter here
        leaf = tape.leaf(x)
        out = fn(leaf)
        g = RNG.normal(size=np.shape(out.value))
        g0 = g.copy()
        grads = backward(tape, [(out, g)])
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)
    assert grads[leaf._index] is not None


def test_abs_and_sqrt_at_zero():
    np.testing.assert_array_equal(grad_at(ops.abs, [0.0, -2.0, 3.0])[0], [0, -1, 1])     # sign(0) = 0
    with np.errstate(divide="ignore"):
        assert grad_at(ops.sqrt, [0.0])[0][0] == np.inf                                  # 0.5 / 0, as TF and JAX


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (2, 3, 4)), ((2, 5, 3), (3,)), ((5, 3), (4, 3, 2))])
def test_matmul_with_one_dimensional_and_batched_operands_differentiates(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose(value_of(ops.matmul(a, b)), np.matmul(a, b))
    check_grad(ops.matmul, a, b)
