"""ZeroPadding, Cropping, UpSampling, Permute, RepeatVector: values, gradients, shapes, errors."""
import numpy as np
import pytest

from distdl.errors import ConfigError, ShapeError
from distdl.layers.base import deserialize, serialize
from distdl.layers.reshaping import (Cropping1D, Cropping2D, Permute, RepeatVector, UpSampling1D,
                                     UpSampling2D, ZeroPadding1D, ZeroPadding2D)
from gradcheck import check_layer

RNG = np.random.default_rng(5)

CASES = [
    (lambda **k: ZeroPadding1D((2, 1), **k), (2, 4, 3)),
    (lambda **k: ZeroPadding2D(**k), (2, 3, 4, 2)),
    (lambda **k: ZeroPadding2D(((1, 0), (0, 2)), **k), (1, 3, 2, 2)),
    (lambda **k: Cropping1D((1, 2), **k), (2, 6, 3)),
    (lambda **k: Cropping2D(((1, 0), (2, 1)), **k), (2, 4, 5, 2)),
    (lambda **k: UpSampling1D(3, **k), (2, 4, 3)),
    (lambda **k: UpSampling2D((2, 3), **k), (2, 3, 2, 2)),
    (lambda **k: Permute((2, 1), **k), (2, 3, 4)),
    (lambda **k: Permute((3, 1, 2), **k), (1, 2, 3, 4)),
    (lambda **k: RepeatVector(3, **k), (2, 5)),
]


@pytest.mark.parametrize("make,shape", CASES)
def test_gradients(make, shape):
    layer = make(dtype="float64")
    check_layer(layer, RNG.standard_normal(shape))


@pytest.mark.parametrize("make,shape", CASES)
def test_output_shape_and_zero_rows(make, shape):
    layer = make()
    y = layer(RNG.standard_normal(shape).astype(np.float32))
    assert y.shape[1:] == layer.output_shape and y.dtype == np.float32
    empty = layer.forward(np.zeros((0,) + shape[1:], np.float32))
    assert empty.shape == (0,) + layer.output_shape
    assert layer.backward(empty).shape == (0,) + shape[1:]


def test_zero_padding_and_cropping_values():
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y = ZeroPadding2D(((1, 0), (0, 2)))(x)[0, :, :, 0]
    np.testing.assert_array_equal(y, [[0, 0, 0, 0], [1, 2, 0, 0], [3, 4, 0, 0]])
    seq = np.arange(6.0).reshape(1, 6, 1)
    np.testing.assert_array_equal(Cropping1D((1, 2))(seq).ravel(), [1, 2, 3])
    np.testing.assert_array_equal(ZeroPadding1D(1)(seq[:, :2]).ravel(), [0, 0, 1, 0])
    img = np.arange(20.0).reshape(1, 4, 5, 1)
    np.testing.assert_array_equal(Cropping2D(((1, 2), (0, 3)))(img)[0, :, :, 0], [[5, 6]])
    np.testing.assert_array_equal(Cropping2D(1)(img)[0, :, :, 0], [[6, 7, 8], [11, 12, 13]])


def test_upsampling_values_and_gradient_sums():
    up = UpSampling1D(2)
    np.testing.assert_array_equal(up(np.array([1.0, 2.0]).reshape(1, 2, 1)).ravel(), [1, 1, 2, 2])
    dx = up.backward(np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1))
    np.testing.assert_array_equal(dx.ravel(), [3, 7])
    up2 = UpSampling2D((1, 2))
    y = up2(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1))[0, :, :, 0]
    np.testing.assert_array_equal(y, [[1, 1, 2, 2], [3, 3, 4, 4]])


def test_permute_and_repeat_values():
    x = np.arange(6.0).reshape(1, 2, 3)
    np.testing.assert_array_equal(Permute((2, 1))(x)[0], x[0].T)
    rv = RepeatVector(2)
    np.testing.assert_array_equal(rv(np.array([[1.0, 2.0]])), [[[1, 2], [1, 2]]])
    np.testing.assert_array_equal(rv.backward(np.array([[[1.0, 2.0], [3.0, 4.0]]])), [[4, 6]])


def test_bad_arguments_and_shapes():
    with pytest.raises(ConfigError, match="'zp'.*padding"):
        ZeroPadding2D(((1, 2, 3), (0, 0)), name="zp")
    with pytest.raises(ConfigError, match="padding"):
        ZeroPadding1D(-1)
    with pytest.raises(ShapeError, match=r"'cr'.*\(3, 4, 1\)"):
        Cropping2D(((2, 1), (0, 0)), name="cr").ensure_built((3, 4, 1))
    with pytest.raises(ConfigError, match="'pm'.*permutation"):
        Permute((1, 3), name="pm")
    with pytest.raises(ShapeError, match=r"'pm2'.*\(2, 3\)"):
        Permute((1, 2, 3), name="pm2").ensure_built((2, 3))
    with pytest.raises(ShapeError, match=r"'rv'.*\(4, 5\)"):
        RepeatVector(3, name="rv").ensure_built((4, 5))
    with pytest.raises(ShapeError, match="'up'"):
        UpSampling2D(name="up").ensure_built((4, 5))
    with pytest.raises(ConfigError, match="nearest"):
        UpSampling2D(interpolation="bilinear")


@pytest.mark.parametrize("layer", [
    ZeroPadding1D((1, 2)), ZeroPadding2D(((1, 0), (2, 3))), Cropping1D(2), Cropping2D((1, 2)),
    UpSampling1D(3), UpSampling2D((2, 1)), Permute((2, 3, 1)), RepeatVector(4),
])
def test_config_round_trip(layer):
    copy = deserialize(serialize(layer))
    assert type(copy) is type(layer) and copy.get_config() == layer.get_config()
