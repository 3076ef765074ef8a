"""Conv1D/Conv2D: finite-difference gradients, hand-computed outputs, shapes, errors; the im2col workspace."""
import math

import numpy as np
import pytest

from distdl.errors import ConfigError, ShapeError
from distdl.layers import im2col
from distdl.layers.base import deserialize, serialize
from distdl.layers.convolutional import Conv1D, Conv2D
from gradcheck import check_layer, check_without_input_grad

RNG = np.random.default_rng(1234)


def rand(*shape):
    return RNG.standard_normal(shape)


def same_pads(n, k, s, d=1):
    """TF 'same' split, written independently: the odd one goes after."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def conv2d_ref(x, kernel, bias, strides=(1, 1), dilation=(1, 1), padding="valid"):
    """Direct nested-loop convolution (cross-correlation, as Keras computes it)."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    if padding == "same":
        (t, b) = same_pads(h, kh, strides[0], dilation[0])
        (l, r) = same_pads(w, kw, strides[1], dilation[1])
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    hp, wp = x.shape[1:3]
    ho = (hp - (kh - 1) * dilation[0] - 1) // strides[0] + 1
    wo = (wp - (kw - 1) * dilation[1] - 1) // strides[1] + 1
    y = np.zeros((n, ho, wo, f))
    for b_ in range(n):
        for i in range(ho):
            for j in range(wo):
                for o in range(f):
                    acc = bias[o]
                    for di in range(kh):
                        for dj in range(kw):
                            for ch in range(c):
                                acc += (x[b_, i * strides[0] + di * dilation[0],
                                          j * strides[1] + dj * dilation[1], ch] * kernel[di, dj, ch, o])
                    y[b_, i, j, o] = acc
    return y


# ----- convolution gradients -------------------------------------------------------------
CONV2D_CASES = [
    dict(filters=3, kernel_size=3),                                            # basic, non-square image
    dict(filters=2, kernel_size=(2, 3), strides=2),                            # stride 2, rectangular kernel
    dict(filters=2, kernel_size=3, padding="same"),                            # same, odd kernel
    dict(filters=2, kernel_size=(2, 4), padding="same", strides=(2, 1)),       # same, even kernel
    dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"),           # dilation
    dict(filters=2, kernel_size=(2, 2), dilation_rate=(1, 2), activation="tanh"),
    dict(filters=4, kernel_size=1, activation="relu", use_bias=False),         # 1x1 fast path
    dict(filters=2, kernel_size=3, strides=2, padding="same", activation="gelu"),  # activation keeps z
]


@pytest.mark.parametrize("kwargs", CONV2D_CASES)
def test_conv2d_gradients(kwargs):
    check_layer(Conv2D(dtype="float64", **kwargs), rand(2, 6, 7, 3))


def test_conv2d_gradients_batch_of_one():
    check_layer(Conv2D(2, (3, 2), strides=(1, 2), padding="same", dtype="float64"), rand(1, 5, 4, 2))


@pytest.mark.parametrize("kwargs", [
    dict(filters=3, kernel_size=3),
    dict(filters=2, kernel_size=4, strides=2, padding="same"),
    dict(filters=2, kernel_size=3, dilation_rate=2, padding="causal", activation="sigmoid"),
    dict(filters=2, kernel_size=2, padding="same"),
])
def test_conv1d_gradients(kwargs):
    check_layer(Conv1D(dtype="float64", **kwargs), rand(2, 9, 3))


@pytest.mark.parametrize("channels", [1, 3])  # one channel stores windows transposed
@pytest.mark.parametrize("kwargs", CONV2D_CASES[:4] + CONV2D_CASES[6:] + [dict(filters=2, kernel_size=1)])
def test_conv2d_in_chunks_of_images_matches_one_pass(kwargs, channels, monkeypatch):
    """Tiny chunks (one image each) give the same output and gradients as a single chunk."""
    x, layers, outs = rand(3, 6, 7, channels), [], []
    for chunk_bytes in (1 << 30, 1):
        monkeypatch.setattr(im2col, "_CHUNK_BYTES", chunk_bytes)
        layer = Conv2D(dtype="float64", bias_initializer="random_normal", **kwargs)
        layer(x)
        if layers:
            layer.set_weights(layers[0].get_weights())
        y = layer.forward(x, training=True).copy()  # copies: check_layer's forwards reuse the layer's scratch
        outs.append((y, layer.backward(np.cos(y)).copy(), *(v.grad.copy() for v in layer.trainable_weights)))
        layers.append(layer)
    check_layer(layers[1], x)
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_conv_without_input_grad_returns_none_and_same_weight_grads():
    x, dy = rand(2, 6, 5, 1), rand(2, 4, 3, 2)
    check_without_input_grad(Conv2D(2, 3, activation="relu", dtype="float64"), x, dy)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv_input_gradient_does_not_depend_on_the_reused_buffer(padding):
    """col2im writes the first offset and zeroes only the rest: stale values must not leak."""
    layer, x = Conv2D(3, 3, padding=padding, dtype="float64"), rand(2, 6, 5, 2)
    dy = rand(*layer(x).shape)
    first = layer.backward(dy).copy()
    for _ in range(2):
        layer.forward(x, training=True)
        dx = layer.backward(dy)
        np.testing.assert_array_equal(dx, first)
        dx.base[...] = np.nan  # poisons the whole reused buffer, border included
        del dx


# ----- convolution forward values ----------------------------------------------------------
def test_conv2d_hand_computed_3x3_sum():
    """Ones kernel on arange(16) as 4x4: each output is the sum of a 3x3 neighbourhood."""
    layer = Conv2D(1, 3, kernel_initializer="ones", bias_initializer="zeros", dtype="float64")
    y = layer(np.arange(16.0).reshape(1, 4, 4, 1))
    # top-left window rows 0..2, cols 0..2: 0+1+2+4+5+6+8+9+10 = 45; each step right adds 3, down adds 12
    np.testing.assert_array_equal(y[0, :, :, 0], [[45.0, 54.0], [81.0, 90.0]])


def test_conv2d_same_padding_even_kernel_hand_computed():
    """'same' with a 2x2 kernel pads one row/column after (TF split): bottom-right sees zeros."""
    layer = Conv2D(1, 2, padding="same", kernel_initializer="ones", dtype="float64")
    y = layer(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[10.0, 6.0], [7.0, 4.0]])


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3), dict(kernel_size=3, strides=2), dict(kernel_size=(2, 3), padding="same"),
    dict(kernel_size=(4, 2), padding="same", strides=(2, 3)), dict(kernel_size=2, dilation_rate=2),
    dict(kernel_size=3, dilation_rate=(2, 1), padding="same"),
])
def test_conv2d_matches_nested_loop_reference(kwargs):
    x = rand(2, 7, 6, 2)
    layer = Conv2D(3, bias_initializer="random_normal", dtype="float64", **kwargs)
    y = layer(x)
    kernel, bias = (v.value for v in layer.weights)
    ref = conv2d_ref(x, kernel, bias, layer.strides, layer.dilation_rate, layer.padding)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv1d_matches_conv2d_on_a_single_row_and_causal_shift():
    x = rand(2, 8, 3)
    c1 = Conv1D(2, 3, padding="causal", dtype="float64")
    y = c1(x)
    kernel, bias = (v.value for v in c1.weights)
    # causal = left-pad by (k - 1) then 'valid'
    xp = np.pad(x, ((0, 0), (2, 0), (0, 0)))[:, None]
    ref = conv2d_ref(xp, kernel[None], bias)[:, 0]
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv_float32_default_and_relu_applied():
    layer = Conv2D(4, 3, activation="relu", bias_initializer="random_normal")
    x = rand(2, 5, 5, 3).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32 and layer.kernel.value.dtype == np.float32
    z = conv2d_ref(x.astype(np.float64), layer.kernel.value.astype(np.float64), layer.bias.value.astype(np.float64))
    assert z.min() < 0 < z.max()  # relu has something to clip
    np.testing.assert_allclose(y, np.maximum(z, 0.0), rtol=1e-5, atol=1e-5)


def test_previous_output_is_not_overwritten_by_next_call():
    layer = Conv2D(2, 3)
    y1 = layer(rand(2, 5, 5, 1))
    kept = y1.copy()
    layer(rand(2, 5, 5, 1))
    np.testing.assert_array_equal(y1, kept)


# ----- shapes, params, errors ---------------------------------------------------------------
@pytest.mark.parametrize("n,k,s,d,padding", [
    (28, 3, 1, 1, "valid"), (28, 3, 2, 1, "valid"), (7, 2, 3, 1, "valid"), (7, 3, 2, 2, "valid"),
    (28, 3, 1, 1, "same"), (7, 2, 2, 1, "same"), (9, 4, 3, 1, "same"), (5, 5, 1, 1, "valid"),
])
def test_conv_output_shape_matches_keras_formula(n, k, s, d, padding):
    expected = math.ceil((n - (k - 1) * d) / s) if padding == "valid" else math.ceil(n / s)
    layer = Conv2D(5, k, strides=s, dilation_rate=d, padding=padding)
    layer.ensure_built((n, n + 1, 2))
    wexp = math.ceil((n + 1 - (k - 1) * d) / s) if padding == "valid" else math.ceil((n + 1) / s)
    assert layer.output_shape == (expected, wexp, 5)
    assert layer(np.zeros((1, n, n + 1, 2), np.float32)).shape == (1, expected, wexp, 5)


def test_param_counts_match_keras():
    conv = Conv2D(32, 3)
    conv.ensure_built((28, 28, 1))
    assert conv.count_params() == 320 and conv.kernel.shape == (3, 3, 1, 32)
    c1 = Conv1D(16, 5, use_bias=False)
    c1.ensure_built((100, 8))
    assert c1.count_params() == 5 * 8 * 16 and c1.kernel.shape == (5, 8, 16)


def test_conv_zero_rows():
    layer = Conv2D(3, 3, padding="same", dtype="float64")
    layer.ensure_built((5, 4, 2))
    layer.kernel.grad[...] = 7.0
    layer.bias.grad[...] = 7.0
    y = layer.forward(np.zeros((0, 5, 4, 2)), training=True)
    assert y.shape == (0, 5, 4, 3)
    dx = layer.backward(np.zeros((0, 5, 4, 3)))
    assert dx.shape == (0, 5, 4, 2)
    assert not layer.kernel.grad.any() and not layer.bias.grad.any()


def test_conv2d_rejects_input_without_channel_axis():
    layer = Conv2D(4, 3, name="c2")
    with pytest.raises(ShapeError, match=r"'c2'.*\(28, 28\)"):
        layer.ensure_built((28, 28))


def test_kernel_larger_than_valid_input():
    with pytest.raises(ShapeError, match=r"'big'.*\(5, 5\).*\(4, 6\)"):
        Conv2D(2, 5, name="big").ensure_built((4, 6, 1))
    with pytest.raises(ShapeError, match="dilated|larger"):
        Conv1D(2, 3, dilation_rate=3, name="dil").ensure_built((6, 1))


def test_channel_mismatch_and_bad_arguments():
    layer = Conv2D(2, 3, name="cm")
    layer.ensure_built((5, 5, 3))
    with pytest.raises(ShapeError, match="'cm'.*3 input channels"):
        layer.forward(np.zeros((1, 5, 5, 4), np.float32))
    with pytest.raises(ConfigError, match="padding.*same, valid"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ConfigError, match="kernel_size"):
        Conv2D(2, (3, 3, 3))
    with pytest.raises(ConfigError, match="filters"):
        Conv2D(0, 3)


def test_conv_config_round_trip():
    layer = Conv2D(8, (3, 2), strides=2, padding="same", dilation_rate=1, activation="relu",
                   use_bias=False, kernel_initializer="he_normal", kernel_regularizer="l2",
                   kernel_constraint="max_norm", name="cfg")
    copy = deserialize(serialize(layer))
    assert type(copy) is Conv2D and copy.get_config() == layer.get_config()
    cfg = layer.get_config()
    assert cfg["activation"] == "relu" and cfg["kernel_size"] == [3, 2] and cfg["strides"] == [2, 2]
    assert cfg["kernel_initializer"]["class_name"] == "HeNormal"


def test_keras_aliases_are_exported():
    from distdl import layers
    assert layers.Convolution1D is Conv1D and layers.Convolution2D is layers.Conv2D
    assert layers.MaxPool1D is layers.MaxPooling1D and layers.AvgPool2D is layers.AveragePooling2D
    assert layers.GlobalAvgPool1D is layers.GlobalAveragePooling1D
    assert layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D
    assert layers.GlobalAvgPool2D is layers.GlobalAveragePooling2D
    assert layers.GlobalMaxPool2D is layers.GlobalMaxPooling2D
