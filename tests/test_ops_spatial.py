"""distdl.ops conv_transpose, separable_conv, depth_to_space/space_to_depth, unfold and the
adaptive pools: values from keras/src/ops/nn_test.py, NumPy loops and the adjoint identity of
conv_transpose, gradients against float64 finite differences."""
import numpy as np
import pytest

import distdl.ops as ops
from distdl.errors import ShapeError
from opcheck import check_grad

RNG = np.random.default_rng(6)


def rand(*shape):
    return RNG.standard_normal(shape)


@pytest.mark.parametrize("rank, stride, dilation", [(2, 2, 1), (2, 1, 2), (1, 3, 1), (2, 1, 1)])
def test_conv_transpose_is_the_adjoint_of_conv(rank, stride, dilation):
    k = rand(*((3,) * rank), 4, 2)                          # (spatial, filters F, in channels C)
    x = rand(1, *((9,) * rank), 4)                          # conv maps F -> C
    y = ops.conv(x, k, strides=stride, dilation_rate=dilation)
    z = rand(*y.shape)
    back = ops.conv_transpose(z, k, strides=stride, dilation_rate=dilation)
    assert back.shape == x.shape
    # <conv_transpose(z), x> = <z, conv(x)>: the transpose of the convolution
    np.testing.assert_allclose(np.sum(back.value * x), np.sum(z * y.value), rtol=1e-10)
    check_grad(lambda a, b: ops.conv_transpose(a, b, strides=stride, dilation_rate=dilation), z, k)


@pytest.mark.parametrize("padding, output_padding, want", [("valid", None, 7), ("same", None, 6),
                                                           ("valid", 1, 8), ("same", 1, 6)])
def test_conv_transpose_output_lengths_follow_keras(padding, output_padding, want):
    # keras deconv_output_length: valid (n - 1) s + k + op, or n s + max(k - s, 0); same n s
    out = ops.conv_transpose(rand(1, 3, 3, 2), rand(3, 3, 5, 2), strides=2, padding=padding,
                             output_padding=output_padding)
    assert out.shape == (1, want, want, 5)
    first = ops.conv_transpose(rand(1, 2, 3, 3), rand(3, 3, 5, 2), strides=2, padding=padding,
                               output_padding=output_padding, data_format="channels_first")
    assert first.shape == (1, 5, want, want)


def test_separable_conv_is_depthwise_then_pointwise():
    x, dk, pk = rand(1, 5, 5, 2), rand(3, 3, 2, 2), rand(1, 1, 4, 3)
    want = ops.conv(ops.depthwise_conv(x, dk), pk).value
    np.testing.assert_allclose(ops.separable_conv(x, dk, pk).value, want)
    check_grad(lambda a, b, c: ops.separable_conv(a, b, c, padding="same"), x, dk, pk)


def test_depth_to_space_keras_golden_and_round_trip():
    # nn_test.py test_depth_to_space
    x = np.arange(48, dtype=np.float64).reshape(1, 2, 2, 12)
    want = [[[[0, 1, 2], [3, 4, 5], [12, 13, 14], [15, 16, 17]],
             [[6, 7, 8], [9, 10, 11], [18, 19, 20], [21, 22, 23]],
             [[24, 25, 26], [27, 28, 29], [36, 37, 38], [39, 40, 41]],
             [[30, 31, 32], [33, 34, 35], [42, 43, 44], [45, 46, 47]]]]
    np.testing.assert_array_equal(ops.depth_to_space(x, 2).value, want)
    np.testing.assert_array_equal(ops.space_to_depth(ops.depth_to_space(x, 2), 2).value, x)
    first = np.arange(48.0).reshape(1, 12, 2, 2)
    assert ops.depth_to_space(first, 2, data_format="channels_first").shape == (1, 3, 4, 4)
    check_grad(lambda a: ops.depth_to_space(a, 2), rand(1, 2, 3, 8))
    with pytest.raises(ShapeError, match="ops.depth_to_space: needs block_size >= 2"):
        ops.depth_to_space(x, 1)


@pytest.mark.parametrize("kwargs", [{}, {"padding": 1, "stride": 2}, {"dilation": 2}])
def test_unfold_matches_a_loop(kwargs):
    x = rand(2, 3, 5, 6)
    k, d, p, s = 2, kwargs.get("dilation", 1), kwargs.get("padding", 0), kwargs.get("stride", 1)
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])
    oh, ow = ((xp.shape[2 + i] - (k - 1) * d - 1) // s + 1 for i in range(2))
    want = np.stack([xp[:, :, i * s + a * d, j * s + b * d] for a in range(k) for b in range(k)
                     for i in range(oh) for j in range(ow)], -1).reshape(2, 3, k * k, oh * ow)
    np.testing.assert_allclose(ops.unfold(x, k, **kwargs).value, want.reshape(2, 3 * k * k, oh * ow))
    check_grad(lambda a: ops.unfold(a, k, **kwargs), x)


def test_adaptive_pools():
    x = rand(2, 5, 7, 3)
    avg = ops.adaptive_average_pool(x, (2, 3)).value
    mx = ops.adaptive_max_pool(x, (2, 3)).value
    rows, cols = [(0, 3), (2, 5)], [(0, 3), (2, 5), (4, 7)]    # [floor(i L / n), ceil((i + 1) L / n))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            np.testing.assert_allclose(avg[:, i, j], x[:, r0:r1, c0:c1].mean((1, 2)))
            np.testing.assert_allclose(mx[:, i, j], x[:, r0:r1, c0:c1].max((1, 2)))
    assert ops.adaptive_average_pool(rand(2, 3, 8), 4, data_format="channels_first").shape == (2, 3, 4)
    check_grad(lambda a: ops.adaptive_average_pool(a, (2, 3)), x)
    check_grad(lambda a: ops.adaptive_max_pool(a, (2, 3)), x)
