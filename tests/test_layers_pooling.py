"""Max/average pooling (1-D, 2-D, global): finite-difference gradients, tie rule, shapes, errors."""
import math

import numpy as np
import pytest

from distdl.errors import ShapeError
from distdl.layers.base import deserialize, serialize
from distdl.layers import pooling
from distdl.layers.pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                                   GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                                   MaxPooling1D, MaxPooling2D)
from gradcheck import check_layer

RNG = np.random.default_rng(1234)


def rand(*shape):
    return RNG.standard_normal(shape)


def distinct(*shape):
    """Random values with no near-ties, so max-pool finite differences are well defined."""
    return RNG.permutation(np.prod(shape)).reshape(shape) * 0.1 + rand(*shape) * 0.01


@pytest.mark.parametrize("layer", [
    lambda: MaxPooling2D(dtype="float64"),
    lambda: MaxPooling2D((3, 2), strides=(1, 2), dtype="float64"),           # overlapping windows
    lambda: MaxPooling2D(3, strides=2, padding="same", dtype="float64"),
    lambda: AveragePooling2D(dtype="float64"),
    lambda: AveragePooling2D((2, 3), strides=1, padding="same", dtype="float64"),
    lambda: MaxPooling1D(3, strides=1, padding="same", dtype="float64"),
    lambda: AveragePooling1D(2, dtype="float64"),
    lambda: AveragePooling1D(3, strides=2, padding="same", dtype="float64"),
    lambda: GlobalMaxPooling2D(dtype="float64"),
    lambda: GlobalAveragePooling2D(keepdims=True, dtype="float64"),
])
def test_pooling_gradients(layer):
    layer = layer()
    shape = (2, 5, 7, 3) if "2D" in type(layer).__name__ else (2, 9, 3)
    check_layer(layer, distinct(*shape))


@pytest.mark.parametrize("layer", [GlobalMaxPooling1D, GlobalAveragePooling1D])
def test_global_pooling_1d_gradients_batch_of_one(layer):
    check_layer(layer(dtype="float64"), distinct(1, 6, 2))


def test_max_pool_hand_computed_with_ties():
    x = np.array([[1.0, 5.0, 2.0, 2.0],
                  [5.0, 0.0, 2.0, 2.0],
                  [0.0, 1.0, 3.0, 1.0],
                  [2.0, 1.0, 0.0, 3.0]]).reshape(1, 4, 4, 1)
    layer = MaxPooling2D(dtype="float64")
    y = layer(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5.0, 2.0], [2.0, 3.0]])
    dx = layer.backward(np.array([1.0, 10.0, 100.0, 1000.0]).reshape(1, 2, 2, 1))
    # each window's gradient goes to its first maximum in row-major order (TF's MaxPoolGrad)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 1, 10, 0],
                                                   [0, 0, 0, 0],
                                                   [0, 0, 1000, 0],
                                                   [100, 0, 0, 0]])


def test_max_pool_gradient_is_zero_where_no_window_reaches_on_every_call():
    """Tiling windows write only what they cover; the uncovered border is zeroed each call."""
    x, layer = distinct(2, 5, 7, 3), MaxPooling2D(dtype="float64")
    for _ in range(2):
        layer(x)
        dx = layer.backward(np.ones((2, 2, 3, 3)))
        assert not dx[:, 4:].any() and not dx[:, :, 6:].any() and dx.sum() == 2 * 2 * 3 * 3
        dx[...] = np.nan  # poisons the reused buffer for the next call
        del dx


@pytest.mark.parametrize("layer", [lambda: MaxPooling2D(dtype="float64"),
                                   lambda: MaxPooling2D(3, strides=2, padding="same", dtype="float64"),
                                   lambda: AveragePooling2D(dtype="float64")])
def test_pooling_in_chunks_of_images_matches_one_image_at_a_time(layer):
    """A batch bigger than one cache-sized chunk (ties included) gives what each image gives alone."""
    x = np.maximum(rand(20, 26, 26, 32), 0.0)  # relu-like: many tied zeros
    dy = rand(*layer().compute_output_shape(x.shape[1:]))[None].repeat(20, axis=0) * rand(20, 1, 1, 1)
    batched = layer()
    y, dx = batched(x).copy(), batched.backward(dy).copy()
    single = layer()
    for i in range(len(x)):
        np.testing.assert_array_equal(single(x[i:i + 1])[0], y[i])
        np.testing.assert_array_equal(single.backward(dy[i:i + 1])[0], dx[i])


def test_overlapping_max_pool_accumulates_gradient():
    """A pixel that is the max of two overlapping windows receives both gradients."""
    layer = MaxPooling1D(2, strides=1, dtype="float64")
    x = np.array([1.0, 9.0, 2.0]).reshape(1, 3, 1)
    np.testing.assert_array_equal(layer(x).ravel(), [9.0, 9.0])
    np.testing.assert_array_equal(layer.backward(np.array([3.0, 4.0]).reshape(1, 2, 1)).ravel(), [0, 7, 0])


def test_average_pool_same_divides_by_real_values():
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    y = AveragePooling2D(2, padding="same", dtype="float64")(x)
    # windows {1,2,4,5}, {3,6}, {7,8}, {9}: padding is not counted
    np.testing.assert_allclose(y[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])


def test_global_max_splits_ties_and_global_average():
    x = np.array([[4.0, 1.0], [4.0, 2.0], [0.0, 3.0]]).reshape(1, 3, 2)  # channel 0 has a tie
    gm = GlobalMaxPooling1D(dtype="float64")
    np.testing.assert_array_equal(gm(x), [[4.0, 3.0]])
    np.testing.assert_array_equal(gm.backward(np.array([[2.0, 5.0]]))[0], [[1, 0], [1, 0], [0, 5]])
    ga = GlobalAveragePooling1D(dtype="float64")
    np.testing.assert_allclose(ga(x), [[8.0 / 3, 2.0]])


@pytest.mark.parametrize("n,p,s,padding", [(28, 2, None, "valid"), (7, 2, None, "valid"), (7, 3, 2, "valid"),
                                           (7, 2, None, "same"), (7, 3, 1, "same"), (4, 4, None, "valid")])
def test_pool_output_shape_matches_keras_formula(n, p, s, padding):
    st = p if s is None else s
    expected = math.floor((n - p) / st) + 1 if padding == "valid" else math.ceil(n / st)
    layer = MaxPooling2D(p, strides=s, padding=padding)
    assert layer(np.zeros((1, n, n, 2), np.float32)).shape == (1, expected, expected, 2)
    assert layer.output_shape == (expected, expected, 2)


def test_pooling_zero_rows_and_defaults():
    for layer, shape in [(MaxPooling2D(), (0, 4, 5, 2)), (AveragePooling1D(padding="same"), (0, 5, 2)),
                         (GlobalMaxPooling2D(), (0, 3, 3, 2)), (GlobalAveragePooling1D(), (0, 4, 2))]:
        y = layer(np.zeros(shape, np.float32))
        assert y.shape == (0,) + layer.output_shape
        assert layer.backward(y).shape == shape
    assert MaxPooling2D().get_config()["pool_size"] == [2, 2] and MaxPooling2D().strides == (2, 2)


def test_pool_larger_than_input_and_round_trip():
    with pytest.raises(ShapeError, match=r"'mp'.*\(3, 3\).*\(2, 5\)"):
        MaxPooling2D(3, name="mp").ensure_built((2, 5, 1))
    with pytest.raises(ShapeError, match="'gp'"):
        GlobalAveragePooling2D(name="gp").ensure_built((5, 1))
    layer = AveragePooling2D((3, 2), strides=1, padding="same", name="ap")
    assert deserialize(serialize(layer)).get_config() == layer.get_config()


@pytest.mark.parametrize("make,shape", [(lambda: MaxPooling2D(dtype="float64"), (13, 26, 26, 3)),
                                        (lambda: MaxPooling2D(3, padding="same", dtype="float64"), (3, 7, 5, 2)),
                                        (lambda: MaxPooling2D((1, 3), dtype="float64"), (3, 4, 7, 2)),
                                        (lambda: MaxPooling1D(2, dtype="float64"), (3, 9, 2))])
def test_tiled_max_pool_winners_match_the_general_path(make, shape, monkeypatch):
    """Tiling windows keep each window's winning offset from forward; ties (relu-like zeros,
    rounded values) still send the gradient to the first maximum in row-major order."""
    x = np.round(np.maximum(rand(*shape), 0.0), 1)
    layer = make()
    y = layer(x).copy()
    dy = rand(*y.shape)
    dx = layer.backward(dy).copy()
    assert layer.cache.winner is not None and layer.cache.winner.dtype == np.uint8
    monkeypatch.setattr(pooling._Pooling, "_tiled_max", lambda self, g: False)
    general = make()
    np.testing.assert_array_equal(general(x), y)
    assert general.cache.winner is None
    np.testing.assert_array_equal(general.backward(dy), dx)
