"""distdl.ops products and contractions (dot, einsum, tensordot, outer, inner, vdot, trace,
diagonal): values against NumPy (as keras/src/ops/numpy_test.py checks them) and gradients
against finite differences in float64, including ellipses, broadcasting and repeated indices."""
import numpy as np
import pytest

import distdl.ops as ops
from distdl.autodiff import Tape, backward, recording
from distdl.errors import ShapeError
from opcheck import check_grad

RNG = np.random.default_rng(11)


def rand(*shape):
    return RNG.standard_normal(shape)


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("ij->i", [(3, 4)]),                        # an index summed within one operand only
    ("ij,j->", [(3, 4), (4,)]),
    ("ii->i", [(3, 3)]),                        # a repeated index: the diagonal
    ("ii", [(3, 3)]),                           # implicit output: the trace
    ("iij,jk->ik", [(2, 2, 3), (3, 4)]),
    ("ba", [(3, 2)]),                           # implicit output sorted: a transpose
    ("i,j", [(3,), (2,)]),                      # implicit outer product
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),   # ellipses of different lengths
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),    # a length-1 ellipsis axis broadcast
    ("i...,i...->...", [(3, 2, 1), (3, 1, 4)]),
    ("ij,ij->ij", [(1, 4), (3, 4)]),            # a length-1 labelled axis broadcast
]


@pytest.mark.parametrize("subscripts, shapes", EINSUM, ids=[s for s, _ in EINSUM])
def test_einsum_value_and_gradients(subscripts, shapes):
    arrays = [rand(*s) for s in shapes]
    np.testing.assert_allclose(ops.einsum(subscripts, *arrays).value, np.einsum(subscripts, *arrays), rtol=1e-12)
    check_grad(lambda *xs: ops.einsum(subscripts, *xs), *arrays)


def test_einsum_skips_untracked_operands():
    tape = Tape("t")
    with recording(tape):
        a = tape.leaf(rand(2, 3))
        y = ops.einsum("ij,jk->ik", a, rand(3, 4))
    grads = backward(tape, [(y, np.ones((2, 4)))])
    assert grads[a._index].shape == (2, 3)


def test_einsum_keeps_float32():
    a = np.ones((2, 3), np.float32)
    assert ops.einsum("ij,kj->ik", a, a).dtype == np.float32


TENSORDOT = [
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3), (3, 4), 1),
    ((2, 3), (4, 5), 0),
    ((2, 3, 4), (4, 2, 5), ([0, 2], [1, 0])),
    ((2, 3, 4), (4, 3), ([-1, -2], [0, 1])),
]


@pytest.mark.parametrize("sa, sb, axes", TENSORDOT)
def test_tensordot(sa, sb, axes):
    a, b = rand(*sa), rand(*sb)
    np.testing.assert_allclose(ops.tensordot(a, b, axes).value, np.tensordot(a, b, axes), rtol=1e-12)
    check_grad(lambda a, b: ops.tensordot(a, b, axes), a, b)


DOT = [((3,), (3,)), ((2, 3), (3, 4)), ((2, 3, 4), (4, 2)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3)),
       ((2, 3, 4), (5, 4, 2)), ((), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("sa, sb", DOT)
def test_dot_follows_numpy(sa, sb):
    a, b = rand(*sa), rand(*sb)
    np.testing.assert_allclose(ops.dot(a, b).value, np.dot(a, b), rtol=1e-12)
    check_grad(ops.dot, a, b)


@pytest.mark.parametrize("sa, sb", [((3,), (3,)), ((2, 3), (4, 3)), ((2, 3), (5, 2, 3)), ((), (2,))])
def test_inner(sa, sb):
    a, b = rand(*sa), rand(*sb)
    np.testing.assert_allclose(ops.inner(a, b).value, np.inner(a, b), rtol=1e-12)
    check_grad(ops.inner, a, b)


def test_outer_and_vdot_flatten_their_inputs():
    a, b = rand(2, 3), rand(4)
    np.testing.assert_allclose(ops.outer(a, b).value, np.outer(a, b))
    check_grad(ops.outer, a, b)
    c, d = rand(2, 3), rand(3, 2)
    np.testing.assert_allclose(ops.vdot(c, d).value, np.vdot(c, d))
    check_grad(ops.vdot, c, d)


@pytest.mark.parametrize("offset, axis1, axis2", [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (2, -1, 0), (0, 2, 1), (-2, 1, 2)])
def test_diagonal_and_trace(offset, axis1, axis2):
    x = rand(3, 4, 5)
    np.testing.assert_array_equal(ops.diagonal(x, offset, axis1, axis2).value, np.diagonal(x, offset, axis1, axis2))
    np.testing.assert_allclose(ops.trace(x, offset, axis1, axis2).value, np.trace(x, offset, axis1, axis2))
    check_grad(lambda x: ops.diagonal(x, offset, axis1, axis2), x)
    check_grad(lambda x: ops.trace(x, offset, axis1, axis2), x)


def test_trace_of_a_matrix_has_the_identity_as_gradient():
    tape = Tape("t")
    with recording(tape):
        x = tape.leaf(rand(3, 3))
        y = ops.trace(x)
    np.testing.assert_array_equal(backward(tape, [(y, np.float64(2.0))])[x._index], 2 * np.eye(3))


@pytest.mark.parametrize("call, match", [
    (lambda: ops.dot(rand(2, 3), rand(2, 3)), r"ops.dot: shapes \(2, 3\) and \(2, 3\) do not fit together"),
    (lambda: ops.inner(rand(2, 3), rand(2)), r"ops.inner: the last axes of shapes \(2, 3\) and \(2,\)"),
    (lambda: ops.tensordot(rand(2, 3), rand(2, 3), 1), r"ops.tensordot: axes 1 do not pair up shapes"),
    (lambda: ops.einsum("ij,jk->ik", rand(2, 3), rand(4, 5)), r"ops.einsum: subscripts 'ij,jk->ik' do not fit"),
    (lambda: ops.einsum("ij,jk->ik", rand(2, 3)), r"ops.einsum: subscripts 'ij,jk->ik' name 2 operands, got 1"),
    (lambda: ops.einsum("ijk", rand(2, 3)), r"ops.einsum: subscripts 'ijk' do not fit an operand of shape"),
    (lambda: ops.vdot(rand(2), rand(3)), r"ops.vdot: inputs of shapes \(2,\) and \(3,\)"),
    (lambda: ops.trace(rand(3), 0), r"ops.trace: needs an input of rank 2 or more"),
    (lambda: ops.diagonal(rand(3, 3), 0, 1, -1), r"ops.diagonal: axis1=1 and axis2=-1 must be two different"),
])
def test_errors_name_the_op_and_shapes(call, match):
    with pytest.raises(ShapeError, match=match):
        call()
