"""distdl.ops.linalg (keras.ops.linalg) and ops.logdet/slogdet: values against NumPy and the
golden numbers of keras/src/ops/linalg_test.py, gradients against float64 finite differences."""
import numpy as np
import pytest

import distdl.ops as ops
from distdl.errors import DataError, ShapeError
from opcheck import check_grad

L = ops.linalg
RNG = np.random.default_rng(5)


def rand(*shape):
    return RNG.standard_normal(shape)


def spd(a):
    """A symmetric positive-definite matrix stack built from `a` with ops (so the check perturbs
    both triangles symmetrically)."""
    n = a.shape[-1]
    return ops.matmul(a, ops.transpose(a, (0, 2, 1)) if a.ndim == 3 else ops.transpose(a)) + n * np.eye(n)


def well(*shape):
    return rand(*shape) + 3 * np.eye(shape[-1])


def test_namespace_and_top_level():
    assert L.norm is ops.norm and ops.logdet is L.logdet and ops.slogdet is L.slogdet
    from distdl.ops import products
    assert ops.dot.__wrapped__ is products.dot


def test_inv_det_slogdet_values_and_gradients():
    a = well(2, 3, 3)
    np.testing.assert_allclose(L.inv(a).value, np.linalg.inv(a))
    np.testing.assert_allclose(L.det(a).value, np.linalg.det(a))
    sign, logabs = ops.slogdet(-a)
    np.testing.assert_allclose(sign.value, np.linalg.slogdet(-a)[0])
    np.testing.assert_allclose(logabs.value, np.linalg.slogdet(-a)[1])
    check_grad(L.inv, a)
    check_grad(L.det, a)
    check_grad(lambda x: ops.slogdet(x)[1], a)
    check_grad(ops.logdet, a)
    # keras linalg_test.py test_det: det([[1, 2], [3, 4]]) is -2
    np.testing.assert_allclose(L.det(np.array([[1.0, 2.0], [3.0, 4.0]])).value, -2.0)


@pytest.mark.parametrize("bshape", [(2, 3, 2), (2, 3), (3,)], ids=["matrices", "vectors", "broadcast"])
def test_solve(bshape):
    a, b = well(2, 3, 3), rand(*bshape)
    want = np.linalg.solve(a, b[..., None])[..., 0] if len(bshape) < 3 else np.linalg.solve(a, b)
    np.testing.assert_allclose(L.solve(a, b).value, want)
    check_grad(L.solve, a, b)


@pytest.mark.parametrize("lower", [True, False])
def test_solve_triangular_reads_one_triangle(lower):
    a, b = well(2, 3, 3), rand(2, 3, 2)
    tri = np.tril(a) if lower else np.triu(a)
    np.testing.assert_allclose(L.solve_triangular(a, b, lower=lower).value, np.linalg.solve(tri, b))
    g = check_grad(lambda x, y: L.solve_triangular(x, y, lower=lower), a, b)[0]
    assert not np.any((np.triu(g, 1) if lower else np.tril(g, -1)))


def test_cholesky_and_inverse():
    a = rand(2, 3, 3)
    m = spd(a).value
    low = L.cholesky(m).value
    np.testing.assert_allclose(low, np.linalg.cholesky(m))
    np.testing.assert_allclose(L.cholesky(m, upper=True).value, np.swapaxes(low, -1, -2))
    np.testing.assert_allclose(L.cholesky_inverse(low).value, np.linalg.inv(m), rtol=1e-10)
    np.testing.assert_allclose(L.cholesky_inverse(np.swapaxes(low, -1, -2), upper=True).value,
                               np.linalg.inv(m), rtol=1e-10)
    check_grad(lambda x: L.cholesky(spd(x)), a)
    check_grad(lambda x: L.cholesky(spd(x), upper=True), a)
    check_grad(lambda x: L.cholesky_inverse(L.cholesky(spd(x))), a)
    with pytest.raises(DataError, match="ops.linalg.cholesky: the input is not positive definite"):
        L.cholesky(-np.eye(2))


def test_eigh_values_and_vectors():
    a = rand(2, 4, 4)
    m = spd(a).value
    w, v = L.eigh(m)
    np.testing.assert_allclose(w.value, np.linalg.eigh(m)[0])
    np.testing.assert_allclose(v.value @ (w.value[..., None] * np.swapaxes(v.value, -1, -2)), m, rtol=1e-10)
    check_grad(lambda x: L.eigh(spd(x))[0], a)
    check_grad(lambda x: ops.square(L.eigh(spd(x))[1]), a)   # squared: the vectors' sign drops out
    w, v = L.eig(np.diag([1.0, 2.0]))
    np.testing.assert_allclose(np.sort(w.value.real), [1.0, 2.0])


@pytest.mark.parametrize("shape", [(4, 4), (2, 5, 3)], ids=["square", "tall"])
def test_qr(shape):
    a = rand(*shape)
    q, r = L.qr(a)
    nq, nr = np.linalg.qr(a)
    np.testing.assert_allclose(q.value, nq)
    np.testing.assert_allclose(r.value, nr)
    check_grad(lambda x: L.qr(x)[0], a)
    check_grad(lambda x: L.qr(x)[1], a)
    check_grad(lambda x: L.qr(x)[0] * 2.0 + ops.sum(L.qr(x)[1]), a)
    assert L.qr(rand(5, 3), mode="complete")[0].shape == (5, 5)


def test_svd_values_and_gradient():
    a = rand(2, 4, 3)
    u, s, vh = L.svd(a)
    assert u.shape == (2, 4, 4) and vh.shape == (2, 3, 3)
    np.testing.assert_allclose(s.value, np.linalg.svd(a)[1])
    assert L.svd(a, full_matrices=False)[0].shape == (2, 4, 3)
    check_grad(lambda x: L.svd(x, compute_uv=False), a)


@pytest.mark.parametrize("shape, full", [((4, 4), True), ((2, 5, 3), False), ((3, 5), False)],
                         ids=["square", "tall", "wide"])
def test_svd_vector_gradients(shape, full):
    a = rand(*shape)
    u, s, vh = L.svd(a, full_matrices=full)
    np.testing.assert_allclose((u.value * s.value[..., None, :]) @ vh.value, a, atol=1e-12)
    # squared entries and the product u diag(s) vh are independent of each vector's sign
    check_grad(lambda x: ops.square(L.svd(x, full_matrices=full)[0]), a)
    check_grad(lambda x: ops.square(L.svd(x, full_matrices=full)[2]), a)
    check_grad(lambda x: ops.matmul(L.svd(x, full_matrices=full)[0] * 2.0, L.svd(x, full_matrices=full)[2]), a)


@pytest.mark.parametrize("ashape, bshape", [((5, 3), (5, 2)), ((5, 3), (5,)), ((2, 4), (2, 3))],
                         ids=["tall", "vector", "wide"])
def test_lstsq(ashape, bshape):
    a, b = rand(*ashape), rand(*bshape)
    np.testing.assert_allclose(L.lstsq(a, b).value, np.linalg.lstsq(a, b, rcond=None)[0], atol=1e-12)
    check_grad(L.lstsq, a, b)


def test_lu_factor_reconstructs_with_pivots():
    a = rand(2, 4, 4)
    lu, piv = L.lu_factor(a)
    for k in range(2):
        low = np.tril(lu.value[k], -1) + np.eye(4)
        up = np.triu(lu.value[k])
        perm = np.arange(4)
        for i, p in enumerate(piv.value[k]):
            perm[[i, p]] = perm[[p, i]]
        np.testing.assert_allclose(low @ up, a[k][perm], atol=1e-12)
        assert np.all(np.abs(low) <= 1 + 1e-12)


def test_shape_errors_name_the_op():
    with pytest.raises(ShapeError, match="ops.linalg.inv: needs square matrices.*\\(2, 3\\)"):
        L.inv(np.ones((2, 3)))
    with pytest.raises(ShapeError, match="ops.linalg.solve: a of shape \\(3, 3\\) and b of shape \\(2,\\)"):
        L.solve(np.eye(3), np.ones(2))
    with pytest.raises(DataError, match="ops.linalg.inv: the matrix is singular"):
        L.inv(np.ones((2, 2)))
    with pytest.raises(DataError, match="ops.linalg.solve_triangular: a is singular"):
        L.solve_triangular(np.zeros((2, 2)), np.ones(2))
