"""distdl.ops sorting and statistics (ops/sorting.py, ops/statistics.py): values against NumPy
and Keras's own golden numbers (keras/src/ops/math_test.py for top_k/in_top_k,
keras/src/ops/numpy_test.py for quantile/bincount), gradients against float64 finite differences
(negative axes, keepdims, several axes), and the tie conventions pinned by value."""
import numpy as np
import pytest
from opcheck import check_grad

from distdl import ops
from distdl.autodiff import Tape, backward, recording, value_of
from distdl.errors import ConfigError, ShapeError

RNG = np.random.default_rng(11)


def grad_of_sum(fn, x):
    """The recorded gradient of sum(fn(x)) with respect to x (float64)."""
    tape = Tape("test")
    with recording(tape):
        leaf = tape.leaf(np.array(x, dtype=np.float64))
        out = fn(leaf)
        grads = backward(tape, [(out, np.ones(np.shape(out.value)))])
    return grads[leaf._index]


# ----- sort, argsort, argpartition -------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_sort_and_argsort_match_numpy(axis):
    x = RNG.normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_array_equal(ops.sort(x, axis=axis).numpy(), np.sort(x, axis=axis))
    idx = ops.argsort(x, axis=axis).numpy()
    assert idx.dtype == np.int32
    np.testing.assert_array_equal(idx, np.argsort(x, axis=axis, kind="stable"))
    assert ops.sort(x).dtype == np.float32


@pytest.mark.parametrize("axis", [-1, 0, None])
def test_sort_gradient(axis):
    check_grad(lambda x: ops.sort(x, axis=axis), RNG.normal(size=(3, 4)))


def test_sort_ties_send_each_output_gradient_to_one_element():
    # two tied 1s: output positions 0 and 1 come from inputs 1 and 3 (stable: lower index first)
    g = np.array([10.0, 20.0, 30.0, 40.0])
    tape = Tape("test")
    with recording(tape):
        leaf = tape.leaf(np.array([2.0, 1.0, 3.0, 1.0]))
        out = ops.sort(leaf)
        grads = backward(tape, [(out, g)])
    np.testing.assert_array_equal(grads[leaf._index], [30.0, 10.0, 40.0, 20.0])


def test_argpartition_places_the_kth():
    x = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    idx = ops.argpartition(x, 2).numpy()
    assert idx.dtype == np.int32 and x[idx[2]] == 3.0
    assert set(x[idx[:2]]) == {1.0, 2.0}


# ----- top_k, in_top_k --------------------------------------------------------------
def test_top_k_keras_golden_numbers():
    # keras/src/ops/math_test.py::test_top_k and test_top_k_stability_small
    values, indices = ops.top_k(np.array([0, 4, 2, 1, 3, -1], dtype=np.float32), k=2)
    np.testing.assert_array_equal(values.numpy(), [4, 3])
    np.testing.assert_array_equal(indices.numpy(), [1, 4])
    assert indices.dtype == np.int32
    values, indices = ops.top_k(np.array([3, 5, 5, 2, 5, 1], dtype=np.float32), k=4)
    np.testing.assert_array_equal(values.numpy(), [5, 5, 5, 3])
    np.testing.assert_array_equal(indices.numpy(), [1, 2, 4, 0])
    # TopKTest.test_top_k_call_values / indices
    values, indices = ops.top_k(np.array([[1, 3, 2], [4, 6, 5]], dtype=np.float32), 2)
    np.testing.assert_array_equal(values.numpy(), [[3, 2], [6, 5]])
    np.testing.assert_array_equal(indices.numpy(), [[1, 2], [1, 2]])


def test_top_k_gradient_goes_to_the_chosen_values_only():
    check_grad(lambda x: ops.top_k(x, 3)[0], RNG.normal(size=(2, 6)))
    g = grad_of_sum(lambda x: ops.top_k(x, 2)[0], [1.0, 5.0, 5.0, 5.0])
    np.testing.assert_array_equal(g, [0, 1, 1, 0])   # ties: the lower indices win


def test_top_k_refuses_k_beyond_the_axis():
    with pytest.raises(ShapeError, match=r"ops.top_k: k=4 .*shape \(3,\)"):
        ops.top_k(np.ones(3), 4)


def test_in_top_k_keras_golden_numbers():
    # keras/src/ops/math_test.py::test_in_top_k (including its tie, multi-dimensional and NaN cases)
    t = np.array([1, 0, 2])
    p = np.array([[0.1, 0.9, 0.8, 0.8], [0.05, 0.95, 0, 1], [0.1, 0.8, 0.3, 1]])
    assert ops.in_top_k(t, p, k=1).numpy().tolist() == [True, False, False]
    assert ops.in_top_k(t, p, k=2).numpy().tolist() == [True, False, False]
    assert ops.in_top_k(t, p, k=3).numpy().tolist() == [True, True, True]
    p = np.array([[0.1, 0.9, 0.8, 0.8], [0.95, 0.95, 0, 0.95], [0.1, 0.8, 0.8, 0.95]])
    assert ops.in_top_k(t, p, k=1).numpy().tolist() == [True, True, False]
    assert ops.in_top_k(t, p, k=2).numpy().tolist() == [True, True, True]
    t2 = np.array([[1, 2], [0, 3]])
    p2 = np.array([[[0.1, 0.9, 0.8, 0.8], [0.05, 0.95, 0, 1]], [[0.9, 0.1, 0.8, 0.8], [0.1, 0.8, 0.3, 1]]])
    assert ops.in_top_k(t2, p2, k=2).numpy().tolist() == [[True, False], [True, True]]
    p3 = np.array([[0.1, np.nan, 0.5], [0.3, 0.2, 0.5]])
    assert ops.in_top_k(np.array([1, 0]), p3, k=2).numpy().tolist() == [False, True]


# ----- searchsorted, digitize ---------------------------------------------------------
def test_searchsorted_and_digitize_match_numpy():
    s = np.array([1.0, 2.0, 2.0, 5.0])
    v = np.array([[0.0, 2.0], [3.0, 9.0]])
    for side in ("left", "right"):
        out = ops.searchsorted(s, v, side=side).numpy()
        np.testing.assert_array_equal(out, np.searchsorted(s, v, side=side))
        assert out.dtype == np.int32
    bins = np.array([0.0, 1.0, 2.5, 4.0])
    x = np.array([-1.0, 0.0, 1.2, 2.5, 10.0])
    np.testing.assert_array_equal(ops.digitize(x, bins).numpy(), np.digitize(x, bins))
    with pytest.raises(ShapeError, match="ops.searchsorted: sorted_sequence must be 1-D"):
        ops.searchsorted(np.ones((2, 2)), 1.0)


# ----- quantile, median -------------------------------------------------------------
def test_quantile_keras_golden_cases():
    # keras/src/ops/numpy_test.py::NumpyDtypeTest... test_quantile: against np.quantile
    x = np.arange(24).reshape([2, 3, 4]).astype("float32")
    for q in (np.array(0.5, dtype="float32"), np.array([0.5, 1.0], dtype="float32")):
        np.testing.assert_allclose(ops.quantile(x, q).numpy(), np.quantile(x, q))
        np.testing.assert_allclose(ops.quantile(x, q, keepdims=True).numpy(), np.quantile(x, q, keepdims=True))
    q = np.array([0.5, 1.0], dtype="float32")
    np.testing.assert_allclose(ops.quantile(x, q, axis=1).numpy(), np.quantile(x, q, axis=1))
    np.testing.assert_allclose(ops.quantile(x, q, axis=1, keepdims=True).numpy(),
                               np.quantile(x, q, axis=1, keepdims=True))
    np.testing.assert_allclose(ops.quantile(x, q, axis=(1, 2)).numpy(), np.quantile(x, q, axis=(1, 2)))
    q = np.array([0.501, 1.0], dtype="float32")
    for method in ["linear", "lower", "higher", "midpoint", "nearest"]:
        np.testing.assert_allclose(ops.quantile(x, q, method=method).numpy(), np.quantile(x, q, method=method),
                                   rtol=1e-6)
        np.testing.assert_allclose(ops.quantile(x, q, axis=1, method=method).numpy(),
                                   np.quantile(x, q, axis=1, method=method), rtol=1e-6)


def test_quantile_methods_on_random_data_and_dtype():
    x = RNG.normal(size=(4, 7))
    for method in ["linear", "lower", "higher", "midpoint", "nearest"]:
        for q in (0.0, 0.25, 0.5, 0.9, 1.0, [0.1, 0.75]):
            np.testing.assert_allclose(ops.quantile(x, q, axis=-1, method=method).numpy(),
                                       np.quantile(x, q, axis=-1, method=method), err_msg=f"{method} {q}")
    assert ops.quantile(np.arange(5), 0.5).dtype == np.float32   # integers to floatx
    with pytest.raises(ConfigError, match="ops.quantile: method"):
        ops.quantile(x, 0.5, method="cubic")


@pytest.mark.parametrize("axis,keepdims", [(None, False), (-1, True), ((0, 2), False)])
def test_quantile_and_median_gradients(axis, keepdims):
    x = RNG.normal(size=(3, 4, 5))
    check_grad(lambda t: ops.quantile(t, [0.3, 0.8], axis=axis, keepdims=keepdims), x)
    check_grad(lambda t: ops.median(t, axis=axis, keepdims=keepdims), x)


def test_median_values_and_gradient_split():
    x = RNG.normal(size=(4, 6))
    for axis in (None, 0, -1):
        np.testing.assert_allclose(ops.median(x, axis=axis).numpy(), np.median(x, axis=axis))
    # even count: the two middle elements get half each
    np.testing.assert_array_equal(grad_of_sum(ops.median, [4.0, 1.0, 3.0, 2.0]), [0, 0, 0.5, 0.5])


# ----- average, nan-reductions, ptp -----------------------------------------------------
def test_average_values_and_gradients():
    x = RNG.normal(size=(3, 4))
    w = RNG.uniform(0.5, 2, size=(3, 4))
    w1 = RNG.uniform(0.5, 2, size=4)
    np.testing.assert_allclose(ops.average(x).numpy(), np.average(x))
    np.testing.assert_allclose(ops.average(x, axis=0, weights=w).numpy(), np.average(x, axis=0, weights=w))
    np.testing.assert_allclose(ops.average(x, axis=-1, weights=w1).numpy(), np.average(x, axis=-1, weights=w1))
    np.testing.assert_allclose(ops.average(x, weights=w).numpy(), np.average(x, weights=w))
    check_grad(lambda a, b: ops.average(a, axis=-1, weights=b), x, w1)
    check_grad(lambda a, b: ops.average(a, weights=b), x, w)
    with pytest.raises(ShapeError, match=r"ops.average: weights of shape \(3,\)"):
        ops.average(x, axis=-1, weights=np.ones(3))


@pytest.mark.parametrize("name", ["nansum", "nanmean", "nanmax", "nanmin", "nanprod"])
def test_nan_reductions(name):
    x = RNG.normal(size=(3, 4))
    x[0, 1] = x[2, 3] = np.nan
    ref = getattr(np, name)
    for axis, keepdims in [(None, False), (-1, True), (0, False), ((0, 1), True)]:
        np.testing.assert_allclose(getattr(ops, name)(x, axis=axis, keepdims=keepdims).numpy(),
                                   ref(x, axis=axis, keepdims=keepdims))
    g = grad_of_sum(lambda t: getattr(ops, name)(t, axis=-1), x)
    assert g[0, 1] == 0 and g[2, 3] == 0 and np.all(np.isfinite(g))
    clean = np.where(np.isnan(x), 0.7, x)
    nan = np.isnan(x)

    def masked(t):   # NaNs put back at fixed places, so the check perturbs only the others
        return getattr(ops, name)(ops.where(nan, np.nan, t), axis=-1, keepdims=True)
    check_grad(masked, clean)


def test_nanmax_ties_share_and_all_nan_rows():
    np.testing.assert_array_equal(grad_of_sum(ops.nanmax, [2.0, np.nan, 2.0, 1.0]), [0.5, 0, 0.5, 0])
    out = ops.nanmean(np.array([[np.nan, np.nan], [1.0, 3.0]]), axis=1).numpy()
    assert np.isnan(out[0]) and out[1] == 2.0
    assert ops.nansum(np.array([np.nan])).numpy() == 0.0


def test_ptp():
    x = RNG.normal(size=(3, 5))
    for axis in (None, 0, -1):
        np.testing.assert_allclose(ops.ptp(x, axis=axis).numpy(), np.ptp(x, axis=axis))
    np.testing.assert_allclose(ops.ptp(x, axis=-1, keepdims=True).numpy(), np.ptp(x, axis=-1, keepdims=True))
    check_grad(lambda t: ops.ptp(t, axis=0), x)


# ----- corrcoef, bincount, trapezoid --------------------------------------------------------
def test_corrcoef():
    x = RNG.normal(size=(3, 6))
    np.testing.assert_allclose(ops.corrcoef(x).numpy(), np.corrcoef(x), atol=1e-12)
    np.testing.assert_allclose(ops.corrcoef(x.astype(np.float32)).numpy(), np.corrcoef(x), atol=1e-5)
    assert ops.corrcoef(np.arange(12).reshape(3, 4).astype(np.int32)).dtype == np.float32
    check_grad(ops.corrcoef, x)


def test_bincount_keras_golden_numbers():
    # keras/src/ops/numpy_test.py::test_bincount
    x = np.array([1, 1, 2, 3, 2, 4, 4, 6])
    w = np.array([0, 0, 3, 2, 1, 1, 4, 2])
    np.testing.assert_array_equal(ops.bincount(x, weights=w, minlength=3).numpy(),
                                  np.bincount(x, weights=w, minlength=3))
    np.testing.assert_array_equal(ops.bincount(x[None], weights=w[None], minlength=3).numpy(),
                                  [[0, 0, 4, 2, 5, 0, 2]])
    counts = ops.bincount(x[None], minlength=3).numpy()
    np.testing.assert_array_equal(counts, [[0, 2, 2, 1, 2, 0, 1]])
    assert counts.dtype == np.int32
    check_grad(lambda t: ops.bincount(x, weights=t, minlength=9), RNG.normal(size=8))
    with pytest.raises(ShapeError, match="ops.bincount: x must be .* non-negative integers"):
        ops.bincount(np.array([-1, 2]))


def test_trapezoid():
    y = RNG.normal(size=(3, 5))
    x1 = np.cumsum(RNG.uniform(0.1, 1, size=5))
    x2 = np.cumsum(RNG.uniform(0.1, 1, size=(3, 5)), axis=1)
    np.testing.assert_allclose(ops.trapezoid(y).numpy(), np.trapezoid(y))
    np.testing.assert_allclose(ops.trapezoid(y, dx=0.5, axis=0).numpy(), np.trapezoid(y, dx=0.5, axis=0))
    np.testing.assert_allclose(ops.trapezoid(y, x1).numpy(), np.trapezoid(y, x1))
    np.testing.assert_allclose(ops.trapezoid(y, x2, axis=-1).numpy(), np.trapezoid(y, x2, axis=-1))
    check_grad(lambda a, b: ops.trapezoid(a, b), y, x1)
    check_grad(lambda a, b: ops.trapezoid(a, b, axis=1), y, x2)
    check_grad(lambda a: ops.trapezoid(a, dx=0.3, axis=0), y)


def test_new_ops_on_symbolic_tensors_build_graph_nodes_and_differentiate():
    # functional API: sort, top_k (two outputs: values and indices), quantile and a window constant
    from gradcheck import check_model

    from distdl.layers import Dense, Input
    from distdl.models import Model
    inp = Input(shape=(5,), dtype="float64")
    h = Dense(6, dtype="float64")(inp)
    values, indices = ops.top_k(h, 3)
    assert ops.shape(values) == (None, 3) and ops.dtype(indices) == "int32" and ops.dtype(h) == "float64"
    y = ops.concatenate([ops.sort(h, axis=-1)[:, :2], values, ops.median(h, axis=-1, keepdims=True)], axis=-1)
    model = Model(inp, Dense(2, dtype="float64")(y))
    x = RNG.normal(size=(4, 5))
    k1, b1, k2, b2 = model.get_weights()
    hv = x @ k1 + b1
    ref = np.concatenate([np.sort(hv, -1)[:, :2], -np.sort(-hv, -1)[:, :3], np.median(hv, -1, keepdims=True)], -1)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref @ k2 + b2, rtol=1e-12)
    check_model(model, [x])


def test_histogram_counts_and_edges_as_numpy():
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    counts, edges = ops.histogram(x, bins=4)
    want_counts, want_edges = np.histogram(x, bins=4)
    np.testing.assert_array_equal(value_of(counts), want_counts)
    np.testing.assert_allclose(value_of(edges), want_edges)
    counts, _ = ops.histogram(x, bins=2, range=(0.0, 1.0))
    np.testing.assert_array_equal(value_of(counts), [1, 2])
