"""distdl.ops Fourier transforms on (real, imag) pairs: values against numpy.fft, gradients of
every transform against float64 finite differences, and stft/istft against a framed rfft and
the round trip."""
import numpy as np
import pytest

import distdl.ops as ops
from opcheck import check_grad

RNG = np.random.default_rng(4)


def rand(*shape):
    return RNG.standard_normal(shape)


@pytest.mark.parametrize("name, ref", [("fft", np.fft.fft), ("fft2", np.fft.fft2), ("ifft2", np.fft.ifft2)])
def test_complex_transforms(name, ref):
    fn = getattr(ops, name)
    re, im = rand(2, 3, 4), rand(2, 3, 4)
    want = ref(re + 1j * im)
    r, i = fn((re, im))
    np.testing.assert_allclose(r.value, want.real, atol=1e-12)
    np.testing.assert_allclose(i.value, want.imag, atol=1e-12)
    check_grad(lambda a, b: fn((a, b))[0], re, im)
    check_grad(lambda a, b: fn((a, b))[1], re, im)


@pytest.mark.parametrize("n, fft_length", [(8, None), (7, None), (6, 9), (9, 4)])
def test_rfft_and_irfft(n, fft_length):
    x = rand(2, n)
    want = np.fft.rfft(x, n=fft_length)
    r, i = ops.rfft(x, fft_length)
    np.testing.assert_allclose(r.value + 1j * i.value, want, atol=1e-12)
    check_grad(lambda a: ops.rfft(a, fft_length)[0], x)
    check_grad(lambda a: ops.rfft(a, fft_length)[1], x)
    re, im = rand(2, n), rand(2, n)
    np.testing.assert_allclose(ops.irfft((re, im), fft_length).value, np.fft.irfft(re + 1j * im, n=fft_length))
    check_grad(lambda a, b: ops.irfft((a, b), fft_length), re, im)


@pytest.mark.parametrize("window", ["hann", "hamming", None])
def test_stft_matches_a_windowed_rfft_and_istft_inverts_it(window):
    x = rand(2, 40)
    r, i = ops.stft(x, 8, 4, 16, window=window)
    padded = np.pad(x, [(0, 0), (8, 8)], mode="reflect")
    k = np.arange(8)
    win = (np.ones(16) if window is None else np.pad(
        (0.5 if window == "hann" else 0.54) - (0.5 if window == "hann" else 0.46) * np.cos(2 * np.pi * k / 8), 4))
    frames = np.stack([padded[:, s:s + 16] for s in range(0, padded.shape[1] - 15, 4)], axis=1)
    np.testing.assert_allclose(r.value + 1j * i.value, np.fft.rfft(frames * win), atol=1e-12)
    if window is not None:
        np.testing.assert_allclose(ops.istft((r, i), 8, 4, 16, length=40, window=window).value, x, atol=1e-12)
    check_grad(lambda a: ops.stft(a, 8, 4, 16, window=window)[1], x[:, :20])
    spec = [np.ascontiguousarray(v.value[:, :4]) for v in (r, i)]   # opcheck perturbs through reshape(-1)
    check_grad(lambda a, b: ops.istft((a, b), 8, 4, 16, window=window), *spec)


def test_view_as_complex_and_real():
    x = rand(3, 2)
    c = ops.view_as_complex(x).value
    np.testing.assert_array_equal(c, x[:, 0] + 1j * x[:, 1])
    np.testing.assert_array_equal(ops.view_as_real(c).value, x)
