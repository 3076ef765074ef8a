"""distdl.ops scatter, scatter_update, segment_sum/max, extract_sequences, saturate_cast: values
against NumPy and keras/src/ops/{core,math}_test.py, gradients against float64 finite differences."""
import numpy as np
import pytest

import distdl.ops as ops
from distdl.errors import ShapeError
from opcheck import check_grad

RNG = np.random.default_rng(9)


def test_scatter_adds_repeats_and_differentiates():
    # core_test.py test_scatter: a 1-D scatter and a 2-D one with slices
    np.testing.assert_array_equal(ops.scatter([[1], [3], [4], [7]], np.array([9.0, 10, 11, 12]), (8,)).value,
                                  [0, 9, 0, 10, 11, 0, 0, 12])
    out = ops.scatter([[0, 1], [0, 1]], np.array([1.0, 2.0]), (2, 2)).value
    np.testing.assert_array_equal(out, [[0, 3], [0, 0]])
    vals = RNG.standard_normal((3, 4))
    np.testing.assert_array_equal(ops.scatter([[2], [0], [2]], vals, (3, 4)).value[2], vals[0] + vals[2])
    check_grad(lambda v: ops.scatter([[2], [0], [2]], v, (3, 4)), vals)
    with pytest.raises(ShapeError, match="ops.scatter: index \\[5\\] is out of range for shape \\(3, 4\\)"):
        ops.scatter([[5]], vals[:1], (3, 4))


@pytest.mark.parametrize("reduction", [None, "add"])
def test_scatter_update(reduction):
    x, u = RNG.standard_normal((4, 3)), RNG.standard_normal((2, 3))
    want = x.copy()
    if reduction is None:
        want[[1, 3]] = u
    else:
        want[[1, 3]] += u
    np.testing.assert_allclose(ops.scatter_update(x, [[1], [3]], u, reduction=reduction).value, want)
    check_grad(lambda a, b: ops.scatter_update(a, [[1], [3]], b, reduction=reduction), x, u)
    # core_test.py test_scatter_update: single elements of a 4-D array
    z = ops.scatter_update(np.zeros((2, 2, 3, 2)), [[1, 0, 2, 0], [0, 1, 1, 1]], np.array([1.0, 1.0])).value
    assert z[1, 0, 2, 0] == 1 and z[0, 1, 1, 1] == 1 and z.sum() == 2
    assert ops.scatter_update(np.ones(3), [[0], [0]], np.array([2.0, 5.0]), reduction="max").value[0] == 5


def test_segment_sum_and_max():
    # math_test.py test_segment_sum / test_segment_max
    data = np.array([1.0, 2, 10, 20, 100, 200])
    ids = np.array([0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(ops.segment_sum(data, ids).value, [3, 30, 300])
    np.testing.assert_array_equal(ops.segment_max(data, ids).value, [2, 20, 200])
    np.testing.assert_array_equal(ops.segment_sum(data, ids, num_segments=4).value, [3, 30, 300, 0])
    np.testing.assert_array_equal(ops.segment_max(data, ids, num_segments=4).value, [2, 20, 200, -np.inf])
    np.testing.assert_array_equal(ops.segment_sum(data, [0, -1, 1, 1, 5, 0], num_segments=2).value, [201, 30])
    d = RNG.standard_normal((5, 3))
    check_grad(lambda a: ops.segment_sum(a, [1, 0, 1, 2, 0]), d)
    check_grad(lambda a: ops.segment_max(a, [1, 0, 1, 2, 0]), d)
    tied = ops.segment_max  # ties share the gradient evenly, as ops.max
    from distdl.autodiff import Tape, backward, recording
    tape = Tape("t")
    with recording(tape):
        leaf = tape.leaf(np.array([3.0, 3.0, 1.0]))
        out = tied(leaf, [0, 0, 0])
    np.testing.assert_array_equal(backward(tape, [(out, np.array([1.0]))])[leaf._index], [0.5, 0.5, 0])


def test_extract_sequences():
    # math_test.py test_extract_sequences: frames of length 3, stride 2
    x = np.arange(10.0).reshape(2, 5)
    out = ops.extract_sequences(x, 3, 2).value
    np.testing.assert_array_equal(out, [[[0, 1, 2], [2, 3, 4]], [[5, 6, 7], [7, 8, 9]]])
    check_grad(lambda a: ops.extract_sequences(a, 3, 2), RNG.standard_normal((2, 7)))
    with pytest.raises(ShapeError, match="ops.extract_sequences: sequence_length 9"):
        ops.extract_sequences(x, 9, 1)


def test_saturate_cast():
    # core_test.py test_saturate_cast: values outside uint8 saturate instead of wrapping
    x = np.array([-256.0, 1.0, 257.0])
    np.testing.assert_array_equal(ops.saturate_cast(x, "uint8").value, [0, 1, 255])
    assert ops.saturate_cast(np.array([1e10]), "int32").value[0] == np.iinfo(np.int32).max
    y = ops.saturate_cast(np.array([1e300, -1.0]), "float32").value
    assert y.dtype == np.float32 and y[0] == np.finfo(np.float32).max and y[1] == -1
    check_grad(lambda a: ops.saturate_cast(a, "float64"), RNG.standard_normal(4))
