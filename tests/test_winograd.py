"""Winograd F(2x2, 3x3): exact against direct convolution in float64, the same layer
results as im2col, finite-difference gradients, and which convolutions take it."""
import numpy as np
import pytest

from distdl.layers import Conv2D, convolutional, winograd
from distdl.layers.scratch import Scratch
from gradcheck import check_layer, check_without_input_grad


def direct(xp, kernel, dz):
    """Output, kernel gradient and input gradient of a valid 3x3 correlation, by offsets."""
    n, hp, wp, _ = xp.shape
    ho, wo = hp - 2, wp - 2
    y = np.zeros((n, ho, wo, kernel.shape[3]))
    dk, dx = np.zeros_like(kernel), np.zeros_like(xp)
    for i in range(3):
        for j in range(3):
            win = xp[:, i:i + ho, j:j + wo]
            y += win @ kernel[i, j]
            dk[i, j] = np.einsum("nhwc,nhwf->cf", win, dz)
            dx[:, i:i + ho, j:j + wo] += dz @ kernel[i, j].T
    return y, dk, dx


@pytest.mark.parametrize("shape", [(3, 8, 10, 4), (2, 9, 7, 3), (1, 3, 3, 2), (5, 4, 5, 1), (4, 13, 13, 6)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("chunk_bytes,keep_v", [(winograd._CHUNK_BYTES, True), (1, True), (1, False)],
                         ids=["one-chunk", "image-per-chunk", "recomputed-v"])
def test_equals_direct_convolution_in_float64(shape, chunk_bytes, keep_v, monkeypatch):
    """Even and odd (ragged) output sizes, a 1x1 output, chunks of one image, and V
    recomputed in backward (as for inputs too big to keep it)."""
    monkeypatch.setattr(winograd, "_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(winograd, "_KEEP_V_BYTES", winograd._KEEP_V_BYTES if keep_v else 0)
    rng = np.random.default_rng(0)
    xp = rng.standard_normal(shape)
    kernel = rng.standard_normal((3, 3, shape[3], 5))
    wg = winograd.Winograd(shape, 5, Scratch())
    if chunk_bytes == 1:
        assert wg.step == 1
    y_ref, dk_ref, dx_ref = direct(xp, kernel, dz := rng.standard_normal((shape[0], shape[1] - 2, shape[2] - 2, 5)))
    y = np.full_like(y_ref, np.nan)
    state = wg.forward(xp, kernel, y)
    assert (state.v is not None) == keep_v
    dk = np.full_like(kernel, np.nan)
    dx = wg.backward(state, lambda a, b: dz[a:b], dk, True, dz.dtype)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dk, dk_ref, rtol=0, atol=1e-11)
    np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=1e-12)
    assert wg.backward(state, lambda a, b: dz[a:b], dk, False, dz.dtype) is None
    np.testing.assert_allclose(dk, dk_ref, rtol=0, atol=1e-11)


def test_forward_calls_after_for_each_chunk_once_written(monkeypatch):
    monkeypatch.setattr(winograd, "_CHUNK_BYTES", 1)
    rng = np.random.default_rng(1)
    xp, kernel = rng.standard_normal((3, 5, 5, 2)), rng.standard_normal((3, 3, 2, 4))
    y = np.zeros((3, 3, 3, 4))
    seen = []
    winograd.Winograd(xp.shape, 4, Scratch()).forward(xp, kernel, y, after=lambda a, b: seen.append(
        (a, b, bool(np.any(y[a:b])), bool(np.any(y[b:])))))
    assert seen == [(0, 1, True, False), (1, 2, True, False), (2, 3, True, False)]


@pytest.mark.parametrize("kernel,strides,dilation,channels,filters,expected", [
    ((3, 3), (1, 1), (1, 1), 32, 32, True),
    ((3, 3), (1, 1), (1, 1), 64, 128, True),
    ((3, 3), (1, 1), (1, 1), 16, 8, True),
    ((3, 3), (1, 1), (1, 1), 8, 64, False),    # too few input channels: GEMMs too small for the transforms
    ((3, 3), (1, 1), (1, 1), 3, 64, False),
    ((3, 3), (1, 1), (1, 1), 64, 4, False),
    ((3, 3), (2, 2), (1, 1), 64, 64, False),
    ((3, 3), (1, 1), (2, 2), 64, 64, False),
    ((5, 5), (1, 1), (1, 1), 64, 64, False),
    ((1, 3), (1, 1), (1, 1), 64, 64, False),
])
def test_which_convolutions_take_it(kernel, strides, dilation, channels, filters, expected):
    assert winograd.winograd_applies(kernel, strides, dilation, channels, filters) is expected


def _layer(padding, activation, use_bias, seed=3):
    layer = Conv2D(32, 3, padding=padding, activation=activation, use_bias=use_bias, dtype="float64")
    layer.ensure_built((6, 7, 32))
    rng = np.random.default_rng(seed)
    for v in layer.trainable_weights:
        v.value[...] = rng.standard_normal(v.value.shape) * 0.2
    return layer


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("activation,use_bias", [("relu", True), (None, False), ("tanh", True)])
def test_conv2d_layer_matches_im2col(padding, activation, use_bias, monkeypatch):
    """The layer gives im2col's output and gradients (float64), through the Winograd path."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6, 7, 32))
    results = []
    for use_winograd in (True, False):
        if not use_winograd:
            monkeypatch.setattr(convolutional, "winograd_applies", lambda *a: False)
        layer = _layer(padding, activation, use_bias)
        y = layer(x, training=True)
        assert (layer._wino is not None) == use_winograd
        dy = rng.standard_normal(y.shape) if use_winograd else results[0][-1]
        dx = layer.backward(dy)
        results.append([y.copy(), dx.copy()] + [v.grad.copy() for v in layer.trainable_weights] + [dy])
    for got, want in zip(results[0][:-1], results[1][:-1]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_conv2d_layer_float32_close_to_im2col(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 13, 13, 32)).astype(np.float32)
    outs = []
    for use_winograd in (True, False):
        if not use_winograd:
            monkeypatch.setattr(convolutional, "winograd_applies", lambda *a: False)
        layer = Conv2D(64, 3, activation="relu")
        layer.ensure_built((13, 13, 32))
        layer.kernel.value[...] = np.random.default_rng(6).standard_normal(layer.kernel.value.shape) * 0.1
        y = layer(x, training=True)
        dx = layer.backward(np.ones_like(y))
        outs.append((y, dx, layer.kernel.grad.copy()))
    for got, want in zip(*outs):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.slow
def test_conv2d_winograd_gradients_match_finite_differences():
    layer = Conv2D(32, 3, padding="same", activation="tanh", dtype="float64")
    x = np.random.default_rng(7).standard_normal((2, 4, 3, 32))
    check_layer(layer, x)
    assert layer._wino is not None


def test_conv2d_winograd_without_input_grad():
    layer = _layer("same", "relu", True)
    x = np.random.default_rng(8).standard_normal((3, 6, 7, 32))
    check_without_input_grad(layer, x, np.random.default_rng(9).standard_normal((3, 6, 7, 32)))
    assert layer._wino is not None


def test_float16_layers_keep_im2col():
    layer = Conv2D(32, 3, dtype="float16")
    layer(np.zeros((2, 5, 5, 32), np.float16), training=True)
    assert layer._wino is None


def test_inference_forward_keeps_no_v_and_backward_still_works():
    """Outside training V is not kept (no 4x-input buffer for predict); a backward after such a
    forward recomputes it and gives the same gradients."""
    layer = _layer("same", "relu", True)
    x = np.random.default_rng(10).standard_normal((3, 6, 7, 32))
    dy = np.random.default_rng(11).standard_normal((3, 6, 7, 32))
    y_train = layer(x, training=True).copy()
    assert layer.cache.winograd_state.v is not None
    dx_train = layer.backward(dy).copy()
    grads = [v.grad.copy() for v in layer.trainable_weights]
    np.testing.assert_array_equal(layer(x, training=False), y_train)
    assert layer.cache.winograd_state.v is None
    np.testing.assert_allclose(layer.backward(dy), dx_train, rtol=1e-12, atol=1e-12)
    for v, g in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(v.grad, g, rtol=1e-12, atol=1e-12)
