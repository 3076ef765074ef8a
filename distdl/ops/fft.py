"""Fourier transforms of keras.ops.math on (real, imag) pairs, as Keras passes complex values.

`fft`, `fft2`, `ifft2` take and return a (real, imag) pair; `rfft` takes a real tensor and
returns the pair; `irfft` takes the pair and returns a real tensor; `stft`/`istft` frame and
window a signal around `rfft`/`irfft`. All are linear, so each pulls back through its adjoint:
for a complex map F, the gradient of (real, imag) of the input is (Re, Im) of F^H applied to
g_real + i g_imag. Each output of a pair is recorded as its own node (the pullback is linear).
`view_as_complex`/`view_as_real` convert between a trailing axis of 2 and NumPy complex
values; complex tensors are not differentiated.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, is_tracked, matmul, multiply, result
from ..errors import ShapeError
from ..special import _as_float
from .segments import extract_sequences
from .shape import pad, reshape

__all__ = ["fft", "fft2", "ifft2", "rfft", "irfft", "stft", "istft", "view_as_complex", "view_as_real", "polar"]


def _pair(op: str, x) -> tuple:
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ShapeError(f"ops.{op}: x must be a (real, imag) pair of tensors, as Keras passes complex values.")
    re, im = as_tensor(x[0]), as_tensor(x[1])
    rv, iv = _as_float(re.value), _as_float(im.value)
    if rv.shape != iv.shape:
        raise ShapeError(f"ops.{op}: the real part has shape {rv.shape} and the imaginary part {iv.shape}.")
    return re, im, rv + 1j * iv, rv.dtype


def _complex_linear(op, x, forward, adjoint):
    """Record a complex-linear map on a (real, imag) pair: (Re y, Im y), y = forward(z)."""
    re, im, z, dtype = _pair(op, x)
    y = forward(z)

    def pull(gc):
        gz = adjoint(gc)
        return np.real(gz).astype(dtype), np.imag(gz).astype(dtype)
    return (result(np.real(y).astype(dtype), (re, im), lambda g: pull(g)),
            result(np.imag(y).astype(dtype), (re, im), lambda g: pull(1j * g)))


def fft(x) -> tuple:
    """The discrete Fourier transform over the last axis."""
    return _complex_linear("fft", x, np.fft.fft, lambda g: np.fft.ifft(g) * g.shape[-1])


def fft2(x) -> tuple:
    """The 2-D discrete Fourier transform over the last two axes."""
    return _complex_linear("fft2", x, np.fft.fft2, lambda g: np.fft.ifft2(g) * (g.shape[-1] * g.shape[-2]))


def ifft2(x) -> tuple:
    """The inverse 2-D discrete Fourier transform over the last two axes."""
    return _complex_linear("ifft2", x, np.fft.ifft2, lambda g: np.fft.fft2(g) / (g.shape[-1] * g.shape[-2]))


def rfft(x, fft_length=None) -> tuple:
    """The real-input Fourier transform of the last axis (cut or zero-padded to `fft_length`):
    a (real, imag) pair with fft_length // 2 + 1 entries."""
    x = as_tensor(x)
    xv = _as_float(x.value)
    t = xv.shape[-1]
    n = t if fft_length is None else int(fft_length)
    y = np.fft.rfft(xv, n=n)

    def pull(gc):   # the adjoint: zero-pad the half spectrum to n, n * ifft, real part, fit back to t
        full = np.zeros(gc.shape[:-1] + (n,), dtype=complex)
        full[..., :gc.shape[-1]] = gc
        gx = np.real(np.fft.ifft(full) * n)
        gx = gx[..., :t] if n >= t else np.concatenate([gx, np.zeros(gx.shape[:-1] + (t - n,))], -1)
        return (gx.astype(xv.dtype),)
    return (result(np.real(y).astype(xv.dtype), (x,), lambda g: pull(g)),
            result(np.imag(y).astype(xv.dtype), (x,), lambda g: pull(1j * g)))


def irfft(x, fft_length=None) -> Tensor:
    """The inverse of rfft: a (real, imag) half spectrum of m entries -> a real signal of
    `fft_length` (default 2 (m - 1)) samples. The imaginary parts of the zero and Nyquist entries
    do not affect the result (their gradient is 0)."""
    re, im, z, dtype = _pair("irfft", x)
    m = z.shape[-1]
    n = 2 * (m - 1) if fft_length is None else int(fft_length)
    y = np.fft.irfft(z, n=n).astype(dtype)
    need_re, need_im = is_tracked(re), is_tracked(im)

    def vjp(g):
        c = np.fft.rfft(g, n=n)     # sum_j g_j e^{-2 pi i jk/n}, k < n // 2 + 1
        k = c.shape[-1]
        w = np.full(k, 2.0)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        c = c * w / n
        c[..., 0] = np.real(c[..., 0])
        if n % 2 == 0:
            c[..., -1] = np.real(c[..., -1])
        out = np.zeros(g.shape[:-1] + (m,), dtype=complex)
        out[..., :min(k, m)] = c[..., :min(k, m)]
        return (np.real(out).astype(dtype) if need_re else None, np.imag(out).astype(dtype) if need_im else None)
    return result(y, (re, im), vjp)


def _window(window, sequence_length: int, fft_length: int, dtype):
    """The analysis window (periodic Hann/Hamming as scipy's get_window, or a given array), placed
    in the middle of fft_length samples as Keras does; None is fft_length ones."""
    if window is None:
        return np.ones(fft_length, dtype=dtype)
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ShapeError(f"ops.stft: window must be 'hann', 'hamming', None or an array, got {window!r}.")
        a = 0.5 if window == "hann" else 0.54
        win = a - (1 - a) * np.cos(2 * np.pi * np.arange(sequence_length) / sequence_length)
    else:
        win = np.asarray(window, dtype=np.float64)
        if win.shape != (sequence_length,):
            raise ShapeError(f"ops.stft: a window of shape {win.shape} for sequence_length {sequence_length}.")
    left = (fft_length - sequence_length) // 2
    return np.pad(win, (left, fft_length - sequence_length - left)).astype(dtype)


def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True) -> tuple:
    """The short-time Fourier transform of the last axis: a (real, imag) pair of shape
    (..., frames, fft_length // 2 + 1). With `center`, x is reflect-padded by fft_length // 2."""
    x = as_tensor(x)
    dtype = _as_float(x.value).dtype
    if fft_length < sequence_length:
        raise ShapeError(f"ops.stft: fft_length {fft_length} is shorter than sequence_length {sequence_length}.")
    if center:
        half = fft_length // 2
        x = pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], mode="reflect")
    frames = extract_sequences(x, fft_length, sequence_stride)
    return rfft(multiply(frames, _window(window, sequence_length, fft_length, dtype)))


def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann", center=True) -> Tensor:
    """The inverse of stft: irfft of each frame, windowed overlap-add divided by the summed squared
    window; `center` drops fft_length // 2 samples at each end; `length` cuts or pads the end."""
    frames = irfft(x, fft_length)              # (..., frames, fft_length)
    win = _window(window, sequence_length, fft_length, frames.dtype)
    weighted = multiply(frames, win)
    n_frames = frames.shape[-2]
    total = fft_length + sequence_stride * (n_frames - 1)
    starts = np.arange(n_frames) * sequence_stride
    place = (starts[:, None] + np.arange(fft_length)).reshape(-1)
    onto = np.zeros((n_frames * fft_length, total), dtype=frames.dtype)
    onto[np.arange(place.size), place] = 1.0
    signal = matmul(reshape(weighted, frames.shape[:-2] + (-1,)), onto)
    norm = np.zeros(total)
    np.add.at(norm, place, np.tile(win.astype(np.float64) ** 2, n_frames))
    scale = 1.0 if window is not None else fft_length / sequence_stride   # Keras's scaling without a window
    signal = multiply(signal, (scale / np.where(norm > 1e-10, norm, 1.0)).astype(frames.dtype))
    start = fft_length // 2 if center else 0
    end = start + length if length is not None else total - start
    return signal[..., start:end]


def view_as_complex(x) -> Tensor:
    """A trailing axis of 2 (real, imag) as complex values (not differentiated)."""
    xv = np.asarray(as_tensor(x).value)
    if xv.ndim == 0 or xv.shape[-1] != 2:
        raise ShapeError(f"ops.view_as_complex: the last axis must have length 2, got shape {xv.shape}.")
    return Tensor(xv[..., 0] + 1j * xv[..., 1])


def view_as_real(x) -> Tensor:
    """Complex values as a trailing axis of 2 (real, imag) (not differentiated)."""
    xv = np.asarray(as_tensor(x).value)
    return Tensor(np.stack([np.real(xv), np.imag(xv)], axis=-1))


def polar(abs_, angle) -> Tensor:
    """The complex numbers abs_ * (cos(angle) + i sin(angle)) (not differentiated)."""
    r, a = np.asarray(as_tensor(abs_).value), np.asarray(as_tensor(angle).value)
    return Tensor(r * np.exp(1j * a))
