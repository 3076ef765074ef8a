"""`keras.ops.linalg`: decompositions, inverses and solves over the last two axes (batched over
the leading ones), each with its gradient where Keras's JAX backend has one.

Multi-output ops (eigh, qr, svd, slogdet) record each output as its own node: a vector-Jacobian
product is linear in the output cotangents, so the gradient of the pair is the sum of the two
nodes' pullbacks. Gradients assume what the formulas need: det/inv/solve a nonsingular matrix,
cholesky/eigh a symmetric input (the gradient is symmetrized, as JAX's), eigh distinct
eigenvalues, qr m >= n, lstsq full rank, svd vectors distinct nonzero singular values. eig
and lu_factor are not differentiated.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..autodiff.tape import unbroadcast
from ..autodiff.tensor import Tensor, as_tensor, is_tracked, matmul, result, transpose
from ..errors import DataError, ShapeError
from ..special import _as_float
from .reductions import norm  # noqa: F401 (keras.ops.linalg.norm is ops.norm)

__all__ = ["cholesky", "cholesky_inverse", "det", "eig", "eigh", "inv", "lstsq", "lu_factor", "norm",
           "qr", "solve", "solve_triangular", "svd", "logdet", "slogdet"]


def _T(a):
    return np.swapaxes(a, -1, -2)


def _square(op: str, x) -> tuple:
    """`x` as a Tensor and its float value, checked to be a stack of square matrices."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    if xv.ndim < 2 or xv.shape[-1] != xv.shape[-2]:
        raise ShapeError(f"ops.linalg.{op}: needs square matrices in the last two axes, got shape {xv.shape}.")
    return x, xv


@contextlib.contextmanager
def _lapack(op: str, what: str):
    """NumPy's LinAlgError ("Singular matrix") as one sentence naming the op."""
    try:
        yield
    except np.linalg.LinAlgError:
        raise DataError(f"ops.linalg.{op}: {what}.") from None


def _sym(a):
    return 0.5 * (a + _T(a))


def inv(x) -> Tensor:
    """The inverse of each square matrix; d(A^-1) pulls back as -A^-T g A^-T."""
    x, xv = _square("inv", x)
    with _lapack("inv", "the matrix is singular"):
        y = np.linalg.inv(xv)
    return result(y, (x,), lambda g: (-_T(y) @ g @ _T(y),))


def det(x) -> Tensor:
    """The determinant of each square matrix (shape: the leading axes); gradient det(A) A^-T."""
    x, xv = _square("det", x)
    y = np.linalg.det(xv)
    return result(y, (x,), lambda g: ((g * y)[..., None, None] * _T(np.linalg.inv(xv)),))


def slogdet(x) -> tuple:
    """(sign, log|det|) of each square matrix; the sign is a constant, log|det| pulls back as
    g A^-T."""
    x, xv = _square("slogdet", x)
    sign, logabs = np.linalg.slogdet(xv)
    return Tensor(sign), result(logabs, (x,), lambda g: (g[..., None, None] * _T(np.linalg.inv(xv)),))


def logdet(x) -> Tensor:
    """log det of each Hermitian positive-definite matrix (log|det| through slogdet, as Keras)."""
    return slogdet(x)[1]


def _vector_rhs(op: str, av, bv) -> bool:
    """Whether b is a (stack of) vector(s) rather than matrices, checking that it fits a."""
    vector = bv.ndim == av.ndim - 1 or bv.ndim == 1
    rows = bv.shape[-1] if vector else bv.shape[-2]
    if rows != av.shape[-1]:
        raise ShapeError(f"ops.linalg.{op}: a of shape {av.shape} and b of shape {bv.shape} do not fit "
                         f"(b needs {av.shape[-1]} rows).")
    return vector


def _solve_like(op, a, b, solver, solver_t, mask):
    """X = solver(A, B) with its gradients: gB = solver_t(A, g) (A^-T g), gA = -mask(gB X^T)."""
    av, bv = _as_float(a.value), _as_float(b.value)
    vector = _vector_rhs(op, av, bv)
    b2 = bv[..., None] if vector else bv
    with _lapack(op, "a is singular"):
        y2 = solver(av, b2)
    need_a = is_tracked(a)

    def vjp(g):
        g2 = g[..., None] if vector else g
        gb2 = solver_t(av, g2)
        ga = unbroadcast(mask(-gb2 @ _T(y2)), av.shape) if need_a else None
        return ga, unbroadcast(gb2, b2.shape).reshape(bv.shape)
    return result(y2[..., 0] if vector else y2, (a, b), vjp)


def solve(a, b) -> Tensor:
    """X with A X = B (b a matrix stack, or vectors when b has one axis fewer than a)."""
    a, _ = _square("solve", a)
    b = as_tensor(b)
    return _solve_like("solve", a, b, np.linalg.solve, lambda av, g: np.linalg.solve(_T(av), g), lambda m: m)


def solve_triangular(a, b, lower=False) -> Tensor:
    """X with A X = B where only A's lower (or upper) triangle is read."""
    a, _ = _square("solve_triangular", a)
    b = as_tensor(b)
    tri = np.tril if lower else np.triu
    return _solve_like("solve_triangular", a, b, lambda av, bv: np.linalg.solve(tri(av), bv),
                       lambda av, g: np.linalg.solve(_T(tri(av)), g), tri)


def cholesky(x, upper=False) -> Tensor:
    """The Cholesky factor L (A = L L^T) of each symmetric positive-definite matrix, or L^T when
    `upper`. Gradient: A^-bar = sym(L^-T Phi(L^T g) L^-1), Phi the lower triangle, diagonal halved."""
    x, xv = _square("cholesky", x)
    with _lapack("cholesky", "the input is not positive definite"):
        low = np.linalg.cholesky(xv)

    def vjp(g):
        g = _T(g) if upper else g
        phi = np.tril(_T(low) @ g)
        phi = phi - 0.5 * np.tril(np.triu(phi))
        inv_low = np.linalg.inv(low)
        return (_sym(_T(inv_low) @ phi @ inv_low),)
    return result(_T(low) if upper else low, (x,), vjp)


def cholesky_inverse(x, upper=False) -> Tensor:
    """A^-1 from A's Cholesky factor `x` (lower L with A = L L^T, or upper U with A = U^T U)."""
    x, _ = _square("cholesky_inverse", x)
    n = x.shape[-1]
    eye = np.broadcast_to(np.eye(n, dtype=np.result_type(x.value)), x.shape)
    inv_f = solve_triangular(x, eye, lower=not upper)
    t = _swap(inv_f)
    return matmul(inv_f, t) if upper else matmul(t, inv_f)


def _swap(t: Tensor) -> Tensor:
    axes = list(range(t.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(t, axes)


def eig(x) -> tuple:
    """(eigenvalues, eigenvectors) of general square matrices, complex; not differentiated."""
    _, xv = _square("eig", x)
    w, v = np.linalg.eig(xv)
    return Tensor(w), Tensor(v)


def eigh(x) -> tuple:
    """(w, V): ascending eigenvalues and orthonormal eigenvectors of symmetric matrices (the lower
    triangle is read). A^-bar = sym(V (diag(w^-bar) + F o (V^T V^-bar)) V^T), F_ij = 1/(w_j - w_i)."""
    x, xv = _square("eigh", x)
    w, v = np.linalg.eigh(xv)

    def from_w(gw):
        return (_sym((v * gw[..., None, :]) @ _T(v)),)

    def from_v(gv):
        diff = w[..., None, :] - w[..., :, None]
        n = w.shape[-1]
        f = np.where(np.eye(n, dtype=bool), 0.0, 1.0 / np.where(diff == 0, np.inf, diff))
        return (_sym(v @ (f * (_T(v) @ gv)) @ _T(v)),)
    return result(w, (x,), from_w), result(v, (x,), from_v)


def qr(x, mode="reduced") -> tuple:
    """(Q, R) with A = Q R. Gradient for m >= n (reduced mode, or complete when square):
    A^-bar = (Q^-bar + Q copyltu(M)) R^-T with M = R R^-bar^T - Q^-bar^T Q."""
    if mode not in ("reduced", "complete"):
        raise ShapeError(f"ops.linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}.")
    x = as_tensor(x)
    xv = _as_float(x.value)
    if xv.ndim < 2:
        raise ShapeError(f"ops.linalg.qr: needs matrices in the last two axes, got shape {xv.shape}.")
    q, r = np.linalg.qr(xv, mode=mode)
    m, n = xv.shape[-2:]
    if m < n or (mode == "complete" and m != n):
        return Tensor(q), Tensor(r)

    def pull(gq, gr):
        mm = r @ _T(gr) - _T(gq) @ q
        copy = np.tril(mm) + _T(np.tril(mm, -1))
        return (_T(np.linalg.solve(r, _T(gq + q @ copy))),)
    zq, zr = np.zeros_like(q), np.zeros_like(r)
    return result(q, (x,), lambda g: pull(g, zr)), result(r, (x,), lambda g: pull(zq, g))


def svd(x, full_matrices=True, compute_uv=True):
    """Singular value decomposition: (u, s, vh), or s alone when `compute_uv` is False. The
    singular values are differentiated (A^-bar = U diag(s^-bar) V^T); u and vh too when they are
    the thin factors (full_matrices False, or a square x) and the singular values are distinct
    and nonzero (Townsend's formula); the extra columns of full non-square factors are constants."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    if xv.ndim < 2:
        raise ShapeError(f"ops.linalg.svd: needs matrices in the last two axes, got shape {xv.shape}.")
    u, s, vh = np.linalg.svd(xv, full_matrices=False)
    s_t = result(s, (x,), lambda g: ((u * g[..., None, :]) @ vh,))
    if not compute_uv:
        return s_t
    m, n = xv.shape[-2:]
    if full_matrices and m != n:
        fu, _, fvh = np.linalg.svd(xv, full_matrices=True)
        return Tensor(fu), s_t, Tensor(fvh)
    v = _T(vh)

    def pull(gu, gv):
        s2 = s[..., None, :] ** 2 - s[..., :, None] ** 2          # s_j^2 - s_i^2
        f = np.where(np.eye(s.shape[-1], dtype=bool), 0.0, 1.0 / np.where(s2 == 0, np.inf, s2))
        inner = np.zeros(s2.shape)
        if gu is not None:
            j = _T(u) @ gu
            inner += (f * (j - _T(j))) * s[..., None, :]
            extra = (gu - u @ j) / s[..., None, :] @ vh
        if gv is not None:
            k = _T(v) @ gv
            inner += s[..., :, None] * (f * (k - _T(k)))
            extra = (u / s[..., None, :]) @ _T(gv - v @ k)
        return (u @ inner @ vh + extra,)
    return result(u, (x,), lambda g: pull(g, None)), s_t, result(vh, (x,), lambda g: pull(None, _T(g)))


def lstsq(a, b, rcond=None) -> Tensor:
    """The least-squares solution x of a x = b (a of shape (m, n); b (m,) or (m, k)). Gradient
    for full rank: tall (m >= n) through the normal equations, wide through the minimum-norm form."""
    a, b = as_tensor(a), as_tensor(b)
    av, bv = _as_float(a.value), _as_float(b.value)
    if av.ndim != 2 or bv.ndim not in (1, 2) or bv.shape[0] != av.shape[0]:
        raise ShapeError(f"ops.linalg.lstsq: a must be (m, n) and b (m,) or (m, k) with the same m, got "
                         f"{av.shape} and {bv.shape}.")
    y = np.linalg.lstsq(av, bv, rcond=rcond)[0]

    def vjp(g):
        g2, b2, y2 = (g[:, None], bv[:, None], y[:, None]) if bv.ndim == 1 else (g, bv, y)
        if av.shape[0] >= av.shape[1]:
            z = np.linalg.solve(_T(av) @ av, g2)
            ga, gb = (b2 - av @ y2) @ _T(z) - av @ z @ _T(y2), av @ z
        else:
            h = av @ _T(av)
            yy, w = np.linalg.solve(h, b2), np.linalg.solve(h, av @ g2)
            ga, gb = yy @ _T(g2) - w @ _T(y2) - yy @ _T(w) @ av, w
        return ga, gb.reshape(bv.shape)
    return result(y, (a, b), vjp)


def _lu(a):
    """LU with partial pivoting of one matrix: (lu, pivots) as LAPACK's getrf (0-based)."""
    lu = a.copy()
    m, n = lu.shape
    piv = np.zeros(min(m, n), dtype=np.int32)
    for k in range(min(m, n)):
        p = k + int(np.argmax(np.abs(lu[k:, k])))
        piv[k] = p
        if p != k:
            lu[[k, p]] = lu[[p, k]]
        if lu[k, k] != 0:
            lu[k + 1:, k] /= lu[k, k]
            lu[k + 1:, k + 1:] -= np.outer(lu[k + 1:, k], lu[k, k + 1:])
    return lu, piv


def lu_factor(x) -> tuple:
    """(lu, pivots): L (unit diagonal, below) and U (on and above) packed in one matrix, and the
    row swapped with row i at step i, as scipy.linalg.lu_factor; not differentiated."""
    xv = _as_float(as_tensor(x).value)
    if xv.ndim < 2:
        raise ShapeError(f"ops.linalg.lu_factor: needs matrices in the last two axes, got shape {xv.shape}.")
    flat = xv.reshape((-1,) + xv.shape[-2:])
    parts = [_lu(a) for a in flat]
    lu = np.stack([p[0] for p in parts]).reshape(xv.shape)
    piv = np.stack([p[1] for p in parts]).reshape(xv.shape[:-2] + (-1,))
    return Tensor(lu), Tensor(piv)
