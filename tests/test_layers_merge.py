"""Merge layers: hand-computed values, float64 finite-difference gradients, shape errors, empty batches."""
import numpy as np
import pytest

from distdl.errors import ConfigError, ShapeError
from distdl.layers.base import deserialize, serialize
from distdl.layers.merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from gradcheck import check_layer

F64 = "float64"
A = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
B = np.array([[2.0, 1.0, -3.0], [0.5, -4.0, 2.0]])
C = np.array([[-1.0, 5.0, 0.0], [1.0, 1.0, 1.0]])


@pytest.mark.parametrize("cls, expected", [
    (Add, [[2.0, 4.0, 0.0], [2.0, 1.0, 2.0]]),
    (Multiply, [[-2.0, -10.0, -0.0], [0.25, -16.0, -2.0]]),
    (Average, [[2 / 3, 4 / 3, 0.0], [2 / 3, 1 / 3, 2 / 3]]),
    (Maximum, [[2.0, 5.0, 3.0], [1.0, 4.0, 2.0]]),
    (Minimum, [[-1.0, -2.0, -3.0], [0.5, -4.0, -1.0]])])
def test_elementwise_values(cls, expected):
    np.testing.assert_allclose(cls(dtype=F64)([A, B, C]), expected, rtol=1e-12)


def test_subtract_and_concatenate_values():
    np.testing.assert_array_equal(Subtract(dtype=F64)([A, B]), A - B)
    out = Concatenate(dtype=F64)([A, B[:, :2]])
    np.testing.assert_array_equal(out, [[1, -2, 3, 2, 1], [0.5, 4, -1, 0.5, -4]])
    x, y = np.ones((2, 3, 4)), np.zeros((2, 1, 4))
    assert Concatenate(axis=1)([x, y]).shape == (2, 4, 4)


def test_dot_values_and_cosine():
    np.testing.assert_allclose(Dot(axes=1, dtype=F64)([A, B]), [[-9.0], [-17.75]], rtol=1e-12)
    cos = Dot(axes=-1, normalize=True, dtype=F64)([A, B])
    expected = np.sum(A * B, 1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)
    np.testing.assert_allclose(cos[:, 0], expected, rtol=1e-12)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))
    layer = Dot(axes=(2, 2), dtype=F64)
    np.testing.assert_allclose(layer([x, y]), np.einsum("bik,bjk->bij", x, y), rtol=1e-12)
    assert layer.output_shape == (3, 5)


def test_max_gradient_goes_to_first_of_ties():
    layer = Maximum(dtype=F64)
    x = np.array([[1.0, 2.0]])
    layer([x, x.copy()])
    d0, d1 = layer.backward(np.array([[3.0, 4.0]]))
    np.testing.assert_array_equal(d0, [[3.0, 4.0]])
    np.testing.assert_array_equal(d1, [[0.0, 0.0]])


def test_multiply_gradient_with_zeros():
    layer = Multiply(dtype=F64)
    x0, x1, x2 = np.array([[0.0, 2.0]]), np.array([[3.0, 0.0]]), np.array([[5.0, 7.0]])
    layer([x0, x1, x2])
    g = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(g[0], [[15.0, 0.0]])
    np.testing.assert_array_equal(g[1], [[0.0, 14.0]])
    np.testing.assert_array_equal(g[2], [[0.0, 0.0]])


@pytest.mark.parametrize("layer, shapes", [
    (Add(dtype=F64), [(2, 3)] * 3), (Subtract(dtype=F64), [(1, 4)] * 2),
    (Multiply(dtype=F64), [(2, 3)] * 3), (Average(dtype=F64), [(2, 3)] * 2),
    (Maximum(dtype=F64), [(2, 3)] * 3), (Minimum(dtype=F64), [(2, 2, 2)] * 2),
    (Concatenate(dtype=F64), [(2, 3), (2, 1), (2, 2)]),
    (Concatenate(axis=1, dtype=F64), [(2, 1, 3), (2, 2, 3)]),
    (Dot(axes=1, dtype=F64), [(3, 4)] * 2), (Dot(axes=1, normalize=True, dtype=F64), [(3, 4)] * 2),
    (Dot(axes=(1, 2), dtype=F64), [(2, 3, 2), (2, 4, 3)])])
def test_merge_gradients(layer, shapes):
    rng = np.random.default_rng(1)
    check_layer(layer, [rng.normal(size=s) for s in shapes])


@pytest.mark.parametrize("cls", [Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot])
def test_empty_batch(cls):
    layer = cls(axes=1) if cls is Dot else cls()
    xs = [np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)]
    out = layer(xs, training=True)
    assert out.shape[0] == 0 and out.shape[1:] == layer.output_shape
    grads = layer.backward(np.zeros_like(out))
    assert [g.shape for g in grads] == [(0, 3), (0, 3)]


def test_shape_errors_name_layer_and_shapes():
    with pytest.raises(ShapeError, match=r"Add layer 'add_x'.*same shape.*\(None, 4\), \(None, 5\)"):
        Add(name="add_x").ensure_built([(4,), (5,)])
    with pytest.raises(ShapeError, match=r"'cat'.*except on axis -1.*\(None, 2, 3\), \(None, 4, 3\)"):
        Concatenate(name="cat").ensure_built([(2, 3), (4, 3)])
    with pytest.raises(ShapeError, match=r"'cat1'.*same rank"):
        Concatenate(name="cat1").ensure_built([(2, 3), (3,)])
    with pytest.raises(ShapeError, match=r"'sub'.*exactly 2 inputs, got 3"):
        Subtract(name="sub").ensure_built([(2,)] * 3)
    with pytest.raises(ShapeError, match=r"'m'.*list of inputs"):
        Maximum(name="m").ensure_built((3,))
    with pytest.raises(ShapeError, match=r"'d'.*axis 1 with axis 1.*\(None, 3\), \(None, 4\)"):
        Dot(axes=1, name="d").ensure_built([(3,), (4,)])
    with pytest.raises(ShapeError, match=r"'c0'.*axis 0"):
        Concatenate(axis=0, name="c0").ensure_built([(3,), (3,)])
    with pytest.raises(ConfigError, match="Dot axes"):
        Dot(axes=(1, 2, 3))


@pytest.mark.parametrize("layer", [Add(), Concatenate(axis=1), Dot(axes=(1, 2), normalize=True), Minimum()])
def test_config_round_trip(layer):
    spec = serialize(layer)
    assert serialize(deserialize(spec)) == spec
