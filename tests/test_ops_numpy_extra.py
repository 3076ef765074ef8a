"""distdl.ops elementwise extras, bitwise, windows, whole-array utilities, joining and products
(ops/elementwise.py, bitwise.py, windows.py, arrays.py, joining.py, vector_products.py): values
against NumPy and Keras's golden numbers (keras/src/ops/numpy_test.py, cited per test),
gradients against float64 finite differences with broadcasting and negative axes, and the
conventions at undefined points (divide_no_nan at 0, hypot at the origin) pinned by value."""
import numpy as np
import pytest
from opcheck import check_grad, grad_at as grads_of_sum

from distdl import ops
from distdl.autodiff import Tape, is_tracked, recording
from distdl.errors import ConfigError, ShapeError
from distdl.special import erf

RNG = np.random.default_rng(5)


# ----- elementwise ---------------------------------------------------------------------
BINARY = [("mod", np.mod), ("hypot", np.hypot), ("logaddexp2", np.logaddexp2)]


@pytest.mark.parametrize("name,ref", BINARY)
def test_binary_values_and_gradients_with_broadcasting(name, ref):
    a = RNG.uniform(0.5, 3, size=(2, 3)) * RNG.choice([-1, 1], size=(2, 3))
    b = RNG.uniform(0.7, 2, size=(3,))
    np.testing.assert_allclose(getattr(ops, name)(a, b).numpy(), ref(a, b))
    check_grad(getattr(ops, name), a, b)
    assert getattr(ops, name)(a.astype(np.float32), 2.0).dtype == np.float32   # weak Python scalars


def test_mod_and_floor_divide_integers_and_keras_golden():
    x = np.array([[1, 2, 3], [3, 2, 1]])
    y = np.array([[4, 5, 6], [3, 2, 1]])
    np.testing.assert_array_equal(ops.mod(x, y).numpy(), np.mod(x, y))   # numpy_test.py::test_mod
    np.testing.assert_array_equal(ops.floor_divide(x, y).numpy(), np.floor_divide(x, y))
    np.testing.assert_array_equal(ops.floor_divide(np.array([-7.0, 7.0]), 2.0).numpy(), [-4.0, 3.0])
    with pytest.raises(ShapeError, match=r"ops.floor_divide: shapes \(2, 3\) and \(2,\)"):
        ops.floor_divide(x, np.ones(2))


def test_divide_no_nan_keras_golden_and_gradients():
    # keras/src/ops/numpy_test.py::test_divide_no_nan and test_divide_no_nan_gradients
    x = np.array([[2, 1, 0], [np.inf, -np.inf, np.nan], [np.inf, -np.inf, np.nan]])
    y = np.array([[2, 0, 0], [0, 0, 0], [3, 2, 1]])
    np.testing.assert_allclose(ops.divide_no_nan(x, y).numpy(),
                               [[1, 0, 0], [0, 0, 0], [np.inf, -np.inf, np.nan]])
    g1, g2 = grads_of_sum(ops.divide_no_nan, [1.0, 2.0], [0.0, 2.0])
    np.testing.assert_array_equal(g1, [0.0, 0.5])
    np.testing.assert_array_equal(g2, [0.0, -0.5])
    check_grad(ops.divide_no_nan, RNG.normal(size=(2, 3)), RNG.uniform(0.5, 2, size=(3,)))
    assert ops.divide_no_nan(np.array([1, 2]), np.array([0, 4])).dtype == np.float32


def test_hypot_gradient_is_zero_at_the_origin():
    g1, g2 = grads_of_sum(ops.hypot, [0.0, 3.0], [0.0, 4.0])
    np.testing.assert_allclose(g1, [0.0, 0.6], rtol=1e-15)
    np.testing.assert_allclose(g2, [0.0, 0.8], rtol=1e-15)


def test_deg2rad_heaviside_ldexp():
    x = RNG.normal(size=(2, 3)) * 90
    np.testing.assert_allclose(ops.deg2rad(x).numpy(), np.deg2rad(x))
    check_grad(ops.deg2rad, x)
    assert ops.deg2rad(np.array([180])).dtype == np.float32
    # numpy_test.py::test_heaviside: integers in, floatx out, NumPy's values
    a, b = np.array([[1, 2, 3], [3, 2, 1]]), np.array(4)
    np.testing.assert_array_equal(ops.heaviside(a, b).numpy(), np.heaviside(a, b))
    x1 = np.array([-1.0, 0.0, 2.0, 0.0])
    (g2,) = grads_of_sum(lambda t: ops.heaviside(x1, t), [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(g2, [0, 1, 0, 1])   # x2 counts only where x1 == 0
    np.testing.assert_array_equal(ops.heaviside(x1, 0.5).numpy(), [0, 0.5, 1, 0.5])
    # numpy_test.py::test_ldexp
    xi, yi = np.array([[1, 2, 3], [3, 2, 1]]), np.array([[4, 5, 6], [3, 2, 1]])
    np.testing.assert_allclose(ops.ldexp(xi, yi).numpy(), np.ldexp(xi, yi))
    check_grad(lambda t: ops.ldexp(t, yi), RNG.normal(size=(2, 3)))
    with pytest.raises(ConfigError, match="ops.ldexp: the exponent x2 must be an integer"):
        ops.ldexp(1.0, 2.0)


def test_erfinv_inverts_erf_and_its_gradient():
    x = np.concatenate([np.linspace(-0.999999, 0.999999, 201), [1e-5, -1e-5, 0.0]])
    y = ops.erfinv(x).numpy()
    np.testing.assert_allclose(erf(y), x, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ops.erfinv(np.array([0.5, 0.9])).numpy(),
                               [0.4769362762044699, 1.1630871536766743], rtol=1e-13)   # tables of erfinv
    edge = ops.erfinv(np.array([1.0, -1.0, 3.0, -2.0])).numpy()   # Keras's edge values: +-inf, NaN
    assert edge[0] == np.inf and edge[1] == -np.inf and np.all(np.isnan(edge[2:]))
    x32 = ops.erfinv(np.array([0.3, -0.7], dtype=np.float32))
    assert x32.dtype == np.float32
    check_grad(ops.erfinv, RNG.uniform(-0.95, 0.95, size=(2, 3)))


def test_predicates():
    a = np.array([1.0, np.inf, -np.inf, np.nan, -0.0, -2.0])
    np.testing.assert_array_equal(ops.isneginf(a).numpy(), np.isneginf(a))
    np.testing.assert_array_equal(ops.isposinf(a).numpy(), np.isposinf(a))
    np.testing.assert_array_equal(ops.signbit(a).numpy(), [False, False, True, False, True, True])
    np.testing.assert_array_equal(ops.isreal(a).numpy(), np.ones(6, bool))
    b = a + 1e-9
    np.testing.assert_array_equal(ops.isclose(a, b).numpy(), np.isclose(a, b))
    np.testing.assert_array_equal(ops.isclose(a, a, equal_nan=True).numpy(), np.isclose(a, a, equal_nan=True))
    x = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(ops.isin(x, [2, 4]).numpy(), [[False, True], [False, True]])
    np.testing.assert_array_equal(ops.isin(x, [2, 4], invert=True).numpy(), [[True, False], [True, False]])
    np.testing.assert_array_equal(ops.logical_xor([True, False, True], [True, True, False]).numpy(),
                                  [False, True, True])
    np.testing.assert_array_equal(ops.nextafter(np.float32(1), np.float32(2)).numpy(),
                                  np.nextafter(np.float32(1), np.float32(2)))


def test_complex_parts():
    x = RNG.normal(size=(2, 3))
    np.testing.assert_array_equal(ops.real(x).numpy(), x)
    np.testing.assert_array_equal(ops.imag(x).numpy(), np.zeros_like(x))
    np.testing.assert_array_equal(ops.angle(np.array([-1.0, 2.0])).numpy(), [np.pi, 0.0])
    for name in ("real", "conj", "conjugate"):
        check_grad(getattr(ops, name), x)
    z = np.array([1 + 2j, -3j])
    np.testing.assert_array_equal(ops.conj(z).numpy(), np.conj(z))
    np.testing.assert_array_equal(ops.imag(z).numpy(), [2.0, -3.0])
    np.testing.assert_allclose(ops.angle(z).numpy(), np.angle(z))


# ----- bitwise ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,ref", [("bitwise_and", np.bitwise_and), ("bitwise_or", np.bitwise_or),
                                      ("bitwise_xor", np.bitwise_xor), ("bitwise_left_shift", np.left_shift),
                                      ("bitwise_right_shift", np.right_shift), ("left_shift", np.left_shift),
                                      ("right_shift", np.right_shift), ("gcd", np.gcd), ("lcm", np.lcm)])
def test_integer_binary_ops(name, ref):
    # numpy_test.py::test_gcd's operands, and scalars on either side
    x, y = np.array([[1, 2, 3], [3, 2, 1]]), np.array([[4, 5, 6], [3, 2, 1]])
    np.testing.assert_array_equal(getattr(ops, name)(x, y).numpy(), ref(x, y))
    np.testing.assert_array_equal(getattr(ops, name)(x, 2).numpy(), ref(x, 2))
    np.testing.assert_array_equal(getattr(ops, name)(2, x).numpy(), ref(2, x))
    with pytest.raises(ConfigError, match=f"ops.{name}: needs integer"):
        getattr(ops, name)(x, 1.5)


def test_bitwise_invert_keras_golden():
    x = np.array([2, 5, 255])   # numpy_test.py::test_bitwise_invert
    np.testing.assert_array_equal(ops.bitwise_invert(x).numpy(), np.bitwise_not(x))
    np.testing.assert_array_equal(ops.bitwise_not(np.array([True, False])).numpy(), [False, True])


# ----- windows and constants ---------------------------------------------------------
@pytest.mark.parametrize("name", ["hamming", "hanning", "blackman", "bartlett"])
def test_windows(name):
    out = getattr(ops, name)(7)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), getattr(np, name)(7), rtol=1e-6, atol=1e-7)


def test_kaiser_tri_logspace_empty():
    np.testing.assert_allclose(ops.kaiser(8, 14.0).numpy(), np.kaiser(8, 14.0), rtol=1e-6)
    np.testing.assert_allclose(ops.kaiser(1, 5.0).numpy(), [1.0])   # numpy_test.py::test_kaiser_length_1
    np.testing.assert_array_equal(ops.tri(3, 4, k=1).numpy(), np.tri(3, 4, 1))
    assert ops.tri(2).dtype == np.float32 and ops.tri(2, dtype="int32").dtype == np.int32
    np.testing.assert_allclose(ops.logspace(0, 3, num=4).numpy(), [1, 10, 100, 1000])
    np.testing.assert_allclose(ops.logspace(1, 2, num=5, base=2, endpoint=False).numpy(),
                               np.logspace(1, 2, num=5, base=2, endpoint=False), rtol=1e-6)
    assert ops.logspace(0, 1, 3).dtype == np.float32
    e = ops.empty((2, 3))
    assert e.shape == (2, 3) and e.dtype == np.float32 and not e.numpy().any()
    like = ops.empty_like(np.ones((4,), dtype=np.int32))
    assert like.shape == (4,) and like.dtype == np.int32


# ----- arrays ------------------------------------------------------------------------------
def test_array_copy_dtype_view():
    assert ops.array([1, 2]).dtype == np.int32 and ops.array([1.0, 2.0]).dtype == np.float32
    assert ops.array([1, 2], dtype="float64").dtype == np.float64
    x = RNG.normal(size=(2, 3))
    check_grad(ops.array, x)
    check_grad(ops.copy, x)
    c = ops.copy(x).numpy()
    c[0, 0] = 99.0
    assert x[0, 0] != 99.0
    assert ops.dtype(ops.zeros((8, 12))) == "float32"   # core.py's docstring example
    assert ops.dtype(np.array([1], dtype=np.int64)) == "int64" and ops.dtype(np.array(True)) == "bool"
    # numpy_test.py::test_view
    v = ops.view(np.array(1, dtype="int16"), dtype="float16")
    assert ops.dtype(v) == "float16"
    xi = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype="int16")
    np.testing.assert_array_equal(ops.view(xi, dtype="float16").numpy(), xi.view("float16"))
    with pytest.raises(ShapeError, match="ops.view"):
        ops.view(np.array(1, dtype="int16"), dtype="int32")


def test_nonzero_unravel_index_vectorize():
    x = np.array([[0, 3], [4, 0]])
    rows, cols = ops.nonzero(x)
    assert rows.dtype == np.int32
    np.testing.assert_array_equal(rows.numpy(), [0, 1])
    np.testing.assert_array_equal(cols.numpy(), [1, 0])
    # numpy_test.py::test_unravel_index
    for idx, shape in [(np.array([0, 1, 2, 3]), (2, 2)), (np.array([[0, 1], [2, 3]]), (2, 2)),
                       (np.array(100), (4, 5, 6))]:
        for a, b in zip(ops.unravel_index(idx, shape), np.unravel_index(idx, shape)):
            np.testing.assert_array_equal(a.numpy(), b)
    with pytest.raises(ShapeError, match="ops.unravel_index"):
        ops.unravel_index(np.array([4]), (2, 2))
    f = ops.vectorize(lambda a, b: a + b if a > b else a - b)
    np.testing.assert_array_equal(f(np.array([1, 4, 3]), 2).numpy(), [-1, 6, 5])
    tape = Tape("test")
    with recording(tape):
        leaf = tape.leaf(np.array([1.0, 2.0]))
        assert not is_tracked(f(leaf, 1.0))   # documented: not differentiated


# ----- joining and splitting ------------------------------------------------------------------
def test_stacks_and_append_match_numpy_with_gradients():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    v, w = RNG.normal(size=3), RNG.normal(size=4)
    for name in ("hstack", "vstack", "dstack"):
        np.testing.assert_array_equal(getattr(ops, name)([a, b]).numpy(), getattr(np, name)([a, b]))
        check_grad(lambda p, q, name=name: getattr(ops, name)([p, q]), a, b)
    np.testing.assert_array_equal(ops.hstack([v, w]).numpy(), np.hstack([v, w]))
    np.testing.assert_array_equal(ops.vstack([v, v]).numpy(), np.vstack([v, v]))
    np.testing.assert_array_equal(ops.dstack([v, v]).numpy(), np.dstack([v, v]))
    np.testing.assert_array_equal(ops.append(a, w).numpy(), np.append(a, w))
    np.testing.assert_array_equal(ops.append(a, b, axis=-1).numpy(), np.append(a, b, axis=-1))
    check_grad(lambda p, q: ops.append(p, q), a, w)


def test_unstack_and_splits():
    x = RNG.normal(size=(2, 3, 4))
    parts = ops.unstack(x, axis=-1)
    assert len(parts) == 4
    for i, p in enumerate(parts):
        np.testing.assert_array_equal(p.numpy(), x[..., i])
    check_grad(lambda t: ops.unstack(t, axis=1)[2], x)
    with pytest.raises(ShapeError, match="ops.unstack: num=5"):
        ops.unstack(x, num=5, axis=0)
    # numpy_test.py::test_array_split: even and uneven, along both axes
    m = np.array([[1, 2, 3], [4, 5, 6]])
    for n, axis in [(2, 0), (3, 1), (2, 1)]:
        ours, ref = ops.array_split(m, n, axis=axis), np.array_split(m, n, axis=axis)
        assert len(ours) == len(ref)
        for a, b in zip(ours, ref):
            np.testing.assert_array_equal(a.numpy(), b)
    y = RNG.normal(size=(7, 2))
    for a, b in zip(ops.array_split(y, 3), np.array_split(y, 3)):
        np.testing.assert_array_equal(a.numpy(), b)
    check_grad(lambda t: ops.array_split(t, 3)[1], y)
    for a, b in zip(ops.vsplit(RNG.normal(size=(4, 2)), 2), np.vsplit(np.zeros((4, 2)), 2)):
        assert a.shape == b.shape
    with pytest.raises(ShapeError, match="ops.vsplit"):
        ops.vsplit(np.ones(4), 2)


def test_rot90_diag_diagflat_meshgrid():
    x = RNG.normal(size=(2, 3, 4))
    for k, axes in [(1, (0, 1)), (2, (1, 2)), (-1, (-1, 0)), (3, (0, 2))]:
        np.testing.assert_array_equal(ops.rot90(x, k, axes).numpy(), np.rot90(x, k, axes))
        check_grad(lambda t, k=k, axes=axes: ops.rot90(t, k, axes), x)
    m = RNG.normal(size=(3, 4))
    for k in (-2, 0, 1):
        np.testing.assert_array_equal(ops.diag(m, k).numpy(), np.diag(m, k))
        check_grad(lambda t, k=k: ops.diag(t, k), m)
        np.testing.assert_array_equal(ops.diag(m[0], k).numpy(), np.diag(m[0], k))
        check_grad(lambda t, k=k: ops.diag(t, k), m[0])
        np.testing.assert_array_equal(ops.diagflat(m[:2, :2], k).numpy(), np.diagflat(m[:2, :2], k))
    check_grad(lambda t: ops.diagflat(t, -1), m[:2, :2])
    a, b, c = RNG.normal(size=2), RNG.normal(size=3), RNG.normal(size=4)
    for indexing in ("xy", "ij"):
        for ours, ref in zip(ops.meshgrid(a, b, c, indexing=indexing), np.meshgrid(a, b, c, indexing=indexing)):
            np.testing.assert_array_equal(ours.numpy(), ref)
        check_grad(lambda p, q, indexing=indexing: ops.meshgrid(p, q, indexing=indexing)[0] *
                   ops.meshgrid(p, q, indexing=indexing)[1], a, b)


def test_diff_select_get_item():
    x = RNG.normal(size=(3, 5))
    for n, axis in [(1, -1), (2, -1), (1, 0), (3, 1)]:
        np.testing.assert_allclose(ops.diff(x, n=n, axis=axis).numpy(), np.diff(x, n=n, axis=axis))
        check_grad(lambda t, n=n, axis=axis: ops.diff(t, n=n, axis=axis), x)
    # numpy_test.py::test_select
    v = np.arange(6)
    np.testing.assert_array_equal(ops.select([v < 3, v > 3], [v, v ** 2], 42).numpy(), [0, 1, 2, 42, 16, 25])
    np.testing.assert_array_equal(ops.select((v < 3, v > 3), (v, v ** 2), 42).numpy(), [0, 1, 2, 42, 16, 25])
    conds = [x > 0.5, x > 0]   # overlapping: the first one wins
    d = RNG.normal(size=(5,))
    np.testing.assert_array_equal(ops.select(conds, [x, 2 * x], d).numpy(), np.select(conds, [x, 2 * x], d))
    check_grad(lambda p, q, r: ops.select(conds, [p, q], r), x, RNG.normal(size=(3, 5)), d)
    np.testing.assert_array_equal(ops.get_item(x, (slice(None), -1)).numpy(), x[:, -1])
    check_grad(lambda t: ops.get_item(t, (np.array([0, 0, 2]),)), x)


# ----- products ------------------------------------------------------------------------------
def test_cross_keras_cases_and_gradients():
    # numpy_test.py::test_cross: 3-3, broadcast, 3-2, 2-2, and axis
    x1, x2 = np.ones([2, 1, 4, 3]), np.ones([2, 1, 4, 2])
    y1, y2, y3 = np.ones([2, 1, 4, 3]), np.ones([1, 5, 4, 3]), np.ones([1, 5, 4, 2])
    for a, b in [(x1, y1), (x1, y2)]:
        np.testing.assert_array_equal(ops.cross(a, b).numpy(), np.cross(a, b))
    a, b2 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))   # Keras's cross_3d_2d / cross_2d_2d helpers
    np.testing.assert_allclose(ops.cross(a, b2).numpy(), np.stack(
        [-a[:, 2] * b2[:, 1], a[:, 2] * b2[:, 0], a[:, 0] * b2[:, 1] - a[:, 1] * b2[:, 0]], axis=-1))
    np.testing.assert_allclose(ops.cross(a[:, :2], b2).numpy(), a[:, 0] * b2[:, 1] - a[:, 1] * b2[:, 0])
    assert ops.cross(x2, y3).shape == (2, 5, 4)
    a3, b3 = RNG.normal(size=(4, 3)), RNG.normal(size=(2, 1, 3))
    np.testing.assert_allclose(ops.cross(a3, b3).numpy(), np.cross(a3, b3))
    check_grad(ops.cross, a3, b3)
    check_grad(ops.cross, RNG.normal(size=(4, 2)), RNG.normal(size=(4, 3)))
    check_grad(ops.cross, RNG.normal(size=(4, 2)), RNG.normal(size=(2,)))
    p, q = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    np.testing.assert_allclose(ops.cross(p, q, axis=0).numpy(), np.cross(p, q, axis=0))
    np.testing.assert_allclose(ops.cross(p.T, q, axisa=-1, axisb=0, axisc=0).numpy(),
                               np.cross(p.T, q, axisa=-1, axisb=0, axisc=0))
    check_grad(lambda s, t: ops.cross(s, t, axisa=-1, axisb=0, axisc=0), np.ascontiguousarray(p.T), q)
    with pytest.raises(ShapeError, match="ops.cross: the vector axes must have length 2 or 3"):
        ops.cross(np.ones(4), np.ones(3))


def test_kron():
    for sa, sb in [((2, 3), (3, 2)), ((2,), (3, 2)), ((2, 2, 1), (1, 3))]:
        a, b = RNG.normal(size=sa), RNG.normal(size=sb)
        np.testing.assert_allclose(ops.kron(a, b).numpy(), np.kron(a, b))
        check_grad(ops.kron, a, b)


@pytest.mark.parametrize("la,lb", [(5, 3), (3, 5), (4, 4), (6, 1)])
@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_correlate(mode, la, lb):
    a, b = RNG.normal(size=la), RNG.normal(size=lb)
    np.testing.assert_allclose(ops.correlate(a, b, mode).numpy(), np.correlate(a, b, mode))
    check_grad(lambda p, q: ops.correlate(p, q, mode), a, b)


def test_correlate_keras_golden_and_dtype():
    # numpy_test.py::test_correlate and test_correlate_different_size
    for x, y in [(np.array([1, 2, 3]), np.array([0, 1, 0.5])), (np.array([1, 3, 5]), np.array([7, 9]))]:
        for mode in ("valid", "same", "full"):
            np.testing.assert_allclose(ops.correlate(x, y, mode=mode).numpy(), np.correlate(x, y, mode=mode))
    assert ops.correlate(np.array([1, 2], dtype=np.int32), np.array([1], dtype=np.int32)).dtype == np.float32
    with pytest.raises(ConfigError, match="ops.correlate: mode"):
        ops.correlate([1.0], [1.0], mode="circular")


def test_vander():
    x = RNG.normal(size=4)
    for n, inc in [(None, False), (3, True), (5, False)]:
        np.testing.assert_allclose(ops.vander(x, n, inc).numpy(), np.vander(x, n, inc))
        check_grad(lambda t, n=n, inc=inc: ops.vander(t, n, inc), x)
    (g,) = grads_of_sum(lambda t: ops.vander(t, 3), [0.0, 2.0])   # d/dx (x^2 + x + 1) = 2x + 1, finite at 0
    np.testing.assert_array_equal(g, [1.0, 5.0])
    assert ops.vander(np.array([1, 2, 3])).dtype == np.int64
