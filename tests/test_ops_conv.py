"""distdl.ops.nn conv, depthwise_conv, max_pool, average_pool: values against direct NumPy loops
(TensorFlow's 'same' split: the extra padding goes after), gradients against finite differences
in float64, over strides, padding, dilation, groups, 1-D and 2-D, channels_first."""
import sys

import numpy as np
import pytest

import distdl.ops as ops
from distdl.autodiff import Tape, backward, recording
from distdl.errors import ConfigError, ShapeError
from opcheck import check_grad

RNG = np.random.default_rng(3)


def rand(*shape):
    return RNG.standard_normal(shape)


def distinct(*shape):
    """Values with no near-ties, so max-pool finite differences are well defined."""
    return RNG.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rand(*shape) * 0.01


def _pads(length, window, stride, padding, dilation=1):
    eff = dilation * (window - 1) + 1
    if padding == "valid":
        return 0, 0, (length - eff) // stride + 1
    out = -(-length // stride)
    total = max((out - 1) * stride + eff - length, 0)
    return total // 2, total - total // 2, out


def ref_windows(x, window, strides, padding, dilation, fill):
    """Yield (i, j, the window of x (N, H, W, C) at output (i, j) as (N, kh, kw, C), real mask)."""
    (kh, kw), (sh, sw), (dh, dw) = window, strides, dilation
    t, b, ho = _pads(x.shape[1], kh, sh, padding, dh)
    l, r, wo = _pads(x.shape[2], kw, sw, padding, dw)
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    real = np.pad(np.ones(x.shape[1:3]), ((t, b), (l, r)))
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            yield i, j, xp[:, rows, cols], real[rows, cols]


def ref_conv(x, k, strides, padding, dilation):
    """Grouped cross-correlation by loops; k (kh, kw, C // groups, F)."""
    kh, kw, cg, f = k.shape
    groups, fg = x.shape[3] // cg, f // (x.shape[3] // cg)
    out = {}
    for i, j, win, _ in ref_windows(x, (kh, kw), strides, padding, dilation, 0.0):
        for o in range(f):
            grp = o // fg
            out[i, j, o] = np.einsum("nabc,abc->n", win[..., grp * cg:(grp + 1) * cg], k[..., o])
    ho, wo = max(i for i, _, _ in out) + 1, max(j for _, j, _ in out) + 1
    y = np.zeros((x.shape[0], ho, wo, f))
    for (i, j, o), v in out.items():
        y[:, i, j, o] = v
    return y


def ref_pool(x, window, strides, padding, mode):
    fill = -np.inf if mode == "max" else 0.0
    res = {}
    for i, j, win, real in ref_windows(x, window, strides, padding, (1, 1), fill):
        res[i, j] = win.max(axis=(1, 2)) if mode == "max" else win.sum(axis=(1, 2)) / real.sum()
    ho, wo = max(i for i, _ in res) + 1, max(j for _, j in res) + 1
    y = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for (i, j), v in res.items():
        y[:, i, j] = v
    return y


def as2(v):
    return (v, v) if np.isscalar(v) else tuple(v)


CONV2D = [  # input shape, kernel shape, strides, padding, dilation
    ((2, 5, 6, 3), (3, 3, 3, 4), 1, "valid", 1),
    ((2, 5, 6, 3), (3, 3, 3, 4), 1, "same", 1),    # 3x3 stride 1: the shape the layers run by Winograd
    ((1, 7, 6, 2), (3, 2, 2, 3), (2, 3), "same", 1),
    ((1, 7, 7, 2), (2, 2, 2, 2), 2, "valid", 1),
    ((1, 7, 8, 2), (3, 2, 2, 3), 1, "valid", (2, 3)),
    ((1, 6, 6, 2), (2, 3, 2, 2), 1, "same", 2),
    ((2, 4, 4, 1), (1, 1, 1, 3), 1, "valid", 1),   # pointwise
    ((1, 5, 5, 1), (3, 3, 1, 2), 1, "same", 1),    # one input channel
    ((1, 5, 5, 4), (3, 3, 2, 6), 1, "same", 1),    # two groups
    ((1, 6, 5, 6), (2, 2, 1, 6), 2, "valid", 1),   # six groups of one channel
    ((1, 3, 4, 16), (3, 3, 16, 8), 1, "same", 1),  # 3x3, stride 1, >= 16 channels: Conv2D's Winograd plan
    ((2, 5, 4, 16), (3, 3, 16, 8), 1, "valid", 1),  # Winograd with an odd output height
]


@pytest.mark.parametrize("xs, ks, strides, padding, dilation", CONV2D)
def test_conv2d(xs, ks, strides, padding, dilation):
    x, k = rand(*xs), rand(*ks)
    y = ops.nn.conv(x, k, strides=strides, padding=padding, dilation_rate=dilation)
    np.testing.assert_allclose(y.value, ref_conv(x, k, as2(strides), padding, as2(dilation)), rtol=1e-10, atol=1e-12)
    check_grad(lambda x, k: ops.nn.conv(x, k, strides, padding, None, dilation), x, k)


def test_winograd_plan_is_used_where_conv2d_uses_it(monkeypatch):
    conv_module = sys.modules["distdl.ops.conv"]   # `distdl.ops.conv` is the function
    used = []
    real = conv_module.Winograd
    monkeypatch.setattr(conv_module, "Winograd", lambda *a: used.append(a) or real(*a))
    x, k = rand(2, 4, 4, 16).astype(np.float32), rand(3, 3, 16, 8).astype(np.float32)
    y = ops.conv(x, k, padding="same")
    assert len(used) == 1 and y.dtype == np.float32
    np.testing.assert_allclose(y.value, ref_conv(x, k, (1, 1), "same", (1, 1)), rtol=1e-4, atol=1e-4)
    ops.conv(x, k[..., :4], padding="same")  # 4 filters: im2col, as Conv2D
    assert len(used) == 1


@pytest.mark.parametrize("strides, padding, dilation", [(1, "valid", 1), (2, "same", 1), (1, "same", 2),
                                                        (3, "valid", 1)])
def test_conv1d(strides, padding, dilation):
    x, k = rand(2, 9, 3), rand(3, 3, 2)
    y = ops.conv(x, k, strides=strides, padding=padding, dilation_rate=dilation)
    want = ref_conv(x[:, None], k[None], (1, strides), padding, (1, dilation))[:, 0]
    np.testing.assert_allclose(y.value, want, rtol=1e-10, atol=1e-12)
    check_grad(lambda x, k: ops.conv(x, k, strides, padding, dilation_rate=dilation), x, k)


@pytest.mark.parametrize("xs, ks, strides, padding", [((2, 5, 5, 3), (3, 3, 3, 2), 1, "same"),
                                                      ((1, 6, 7, 2), (2, 3, 2, 1), 2, "valid"),
                                                      ((2, 8, 3), (3, 3, 2), 2, "same")])
def test_depthwise_conv(xs, ks, strides, padding):
    x, k = rand(*xs), rand(*ks)
    y = ops.depthwise_conv(x, k, strides=strides, padding=padding)
    c, m = ks[-2], ks[-1]
    x4, k4, st = (x, k, as2(strides)) if len(xs) == 4 else (x[:, None], k[None], (1, strides))
    want = np.concatenate([ref_conv(x4[..., ch:ch + 1], k4[..., ch:ch + 1, :], st, padding, (1, 1))
                           for ch in range(c)], axis=-1)   # channel ch, multiplier j -> ch * m + j
    np.testing.assert_allclose(y.value, want.reshape(y.shape), rtol=1e-10, atol=1e-12)
    assert y.shape[-1] == c * m
    check_grad(lambda x, k: ops.nn.depthwise_conv(x, k, strides, padding), x, k)


POOL = [((2, 4, 6, 3), 2, None, "valid"), ((1, 5, 5, 2), 3, 2, "same"), ((1, 5, 6, 2), (3, 2), (1, 2), "valid"),
        ((1, 5, 4, 1), (2, 3), 1, "same"), ((1, 7, 7, 2), 2, 3, "valid")]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("xs, pool, strides, padding", POOL)
def test_pool2d(mode, xs, pool, strides, padding):
    x = distinct(*xs)
    op = ops.nn.max_pool if mode == "max" else ops.nn.average_pool
    y = op(x, pool, strides, padding)
    want = ref_pool(x, as2(pool), as2(pool if strides is None else strides), padding, mode)
    np.testing.assert_allclose(y.value, want, rtol=1e-12)
    check_grad(lambda x: op(x, pool, strides, padding), x)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("pool, strides, padding", [(2, None, "valid"), (3, 1, "same"), (2, 3, "same")])
def test_pool1d(mode, pool, strides, padding):
    x = distinct(2, 7, 3)
    op = ops.max_pool if mode == "max" else ops.average_pool
    y = op(x, pool, strides=strides, padding=padding)
    st = pool if strides is None else strides
    np.testing.assert_allclose(y.value, ref_pool(x[:, None], (1, pool), (1, st), padding, mode)[:, 0], rtol=1e-12)
    check_grad(lambda x: op(x, pool, strides, padding), x)


def _grad(fn, x):
    tape = Tape("t")
    with recording(tape):
        leaf = tape.leaf(x)
        y = fn(leaf)
    return backward(tape, [(y, np.ones(y.shape))])[leaf._index]


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    # TensorFlow's MaxPoolGrad rule, which Keras's TF backend follows: the row-major first maximum
    g = _grad(lambda x: ops.max_pool(x, 2), np.ones((1, 2, 4, 1)))
    np.testing.assert_array_equal(g[0, :, :, 0], [[1, 0, 1, 0], [0, 0, 0, 0]])
    g = _grad(lambda x: ops.max_pool(x, 2, strides=1), np.ones((1, 3, 3, 1)))  # overlapping windows add
    np.testing.assert_array_equal(g[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_same_average_pool_counts_only_real_values():
    y = ops.average_pool(np.ones((1, 3, 3, 1)), 2, strides=2, padding="same")
    np.testing.assert_array_equal(y.value[0, :, :, 0], np.ones((2, 2)))


def test_max_pool_of_integers_pads_with_the_smallest_integer():
    x = -np.arange(9, dtype=np.int32).reshape(1, 3, 3, 1)
    y = ops.max_pool(x, 2, padding="same")
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y.value[0, :, :, 0], [[0, -2], [-6, -8]])


def test_channels_first_matches_channels_last():
    x, k = rand(2, 3, 6, 5), rand(3, 2, 3, 4)   # x (N, C, H, W)
    last = np.moveaxis(x, 1, -1)
    y = ops.conv(x, k, padding="same", data_format="channels_first")
    np.testing.assert_allclose(y.value, np.moveaxis(ops.conv(last, k, padding="same").value, -1, 1))
    y = ops.max_pool(x, 2, data_format="channels_first")
    np.testing.assert_array_equal(y.value, np.moveaxis(ops.max_pool(last, 2).value, -1, 1))
    check_grad(lambda x, k: ops.conv(x, k, 2, "same", "channels_first"), x, k)


def test_float32_stays_float32_and_inputs_are_untouched():
    x, k = rand(1, 5, 5, 2).astype(np.float32), rand(3, 3, 2, 2).astype(np.float32)
    before = x.copy()
    assert ops.conv(x, k, padding="same").dtype == np.float32
    assert ops.average_pool(x, 2, padding="same").dtype == np.float32
    np.testing.assert_array_equal(x, before)


def test_only_the_tracked_argument_gets_a_gradient():
    x, k = rand(1, 4, 4, 2), rand(2, 2, 2, 3)
    tape = Tape("t")
    with recording(tape):
        kl = tape.leaf(k)
        y = ops.conv(x, kl)
    g = backward(tape, [(y, np.ones(y.shape))])
    assert g[kl._index].shape == k.shape


@pytest.mark.parametrize("call, err, match", [
    (lambda: ops.conv(rand(1, 2, 3, 4, 1), rand(1, 1, 1, 1, 1)), ShapeError, r"3-D windows are not implemented"),
    (lambda: ops.conv(rand(1, 5, 5, 3), rand(3, 3, 2, 4)), ShapeError,
     r"ops.conv: inputs of shape \(1, 5, 5, 3\) have 3 channels, which a kernel of shape \(3, 3, 2, 4\)"),
    (lambda: ops.conv(rand(1, 5, 5, 3), rand(3, 3, 3)), ShapeError, r"ops.conv: a kernel for inputs of shape"),
    (lambda: ops.conv(rand(1, 2, 2, 1), rand(3, 3, 1, 1)), ShapeError,
     r"ops.conv: window \(3, 3\) is larger than the input \(2, 2\) with padding='valid'"),
    (lambda: ops.max_pool(rand(1, 4, 1), 5), ShapeError,
     r"ops.max_pool: window \(5,\) is larger than the input \(4,\)"),
    (lambda: ops.conv(rand(1, 4, 4, 1), rand(1, 1, 1, 1), padding="full"), ConfigError,
     r"ops.conv: padding must be 'valid' or 'same'"),
    (lambda: ops.conv(rand(1, 4, 4, 1), rand(1, 1, 1, 1), strides=(1, 0)), ConfigError,
     r"ops.conv: strides must be a positive int or a tuple of 2"),
    (lambda: ops.depthwise_conv(rand(1, 4, 4, 2), rand(2, 2, 3, 1)), ShapeError,
     r"ops.depthwise_conv: inputs of shape \(1, 4, 4, 2\) need a kernel of shape \(spatial..., 2, depth_multiplier\)"),
    (lambda: ops.average_pool(rand(1, 4, 4, 1), 2, data_format="NHWC"), ConfigError,
     r"ops.average_pool: data_format must be"),
])
def test_errors_name_the_op_and_shapes(call, err, match):
    with pytest.raises(err, match=match):
        call()
