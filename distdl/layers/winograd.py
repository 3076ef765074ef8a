"""Winograd F(2x2, 3x3): a 3x3 stride-1 convolution in 2.25x fewer multiply-adds than im2col.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). Each
2x2 output tile is A^T [(G g G^T) * (B^T d B)] A for its 4x4 input tile d
(tiles overlap by 2), so the convolution becomes 16 GEMMs V[k] @ U[k] with
V = B^T d B (16, tiles, C) and U = G g G^T (16, C, F). Backward runs the
transposes of the same maps: W = A dY A^T (16, tiles, F), the kernel gradient
G^T (V^T @ W) G and the input gradient B (W @ U^T) B^T overlap-added over the tiles.
B, G and A hold only 0, +-1 and 1/2, so the transforms are adds, exact in binary.

Arrays are channels-last; the work runs in chunks of images that stay in cache.
Columns are stored split by parity ("phases": even columns, then odd ones), so a
tile's four columns are two contiguous slices of each phase. Tiles cover
(2*th, 2*tw) outputs; an odd output size reads one zero row/column past the
input and drops the extra output row/column.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layer_utils import matmul_sum
from .scratch import Scratch

__all__ = ["winograd_applies", "WinogradState", "Winograd"]

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_CHUNK_BYTES = 4 << 20  # transform buffers of one chunk of images (measured best at 8-9 images of 13x13x32)
_KEEP_V_BYTES = 64 << 20  # V is 4x the input: above this, backward recomputes it instead of keeping it


def winograd_applies(kernel, strides, dilation, channels: int, filters: int) -> bool:
    """Whether a 2-D conv takes the Winograd path: 3x3, stride 1, no dilation, at least 16
    input channels and 8 filters. benchmarks/conv.py, im2col time over Winograd's: 1.1-1.2x at
    16 channels, 1.3-1.7x at 32-128, 1.4x for 32 channels into 8 filters; 8 channels
    measured 0.94x to 1.15x, and 3 or 4 (an RGB image) 0.8x to 0.9x: the GEMMs are too small.

    Args:
        kernel: the kernel size (h, w).
        strides: the strides (h, w).
        dilation: the dilation rate (h, w).
        channels: the input channels C.
        filters: the output channels F.
    """
    return (tuple(kernel) == (3, 3) and tuple(strides) == (1, 1) and tuple(dilation) == (1, 1)
            and channels >= 16 and filters >= 8)


@dataclass(slots=True)
class WinogradState:
    """What `Winograd.backward` needs from its forward.

    Args:
        v: V of every image, flat (16 * N * th * tw * C), or None: backward recomputes it.
        xp: the padded input (N, Hp, Wp, C).
        u: the transformed kernel U (16, C, F)."""

    v: np.ndarray | None
    xp: np.ndarray
    u: np.ndarray


class Winograd:
    """F(2x2, 3x3) forward and backward for one padded input shape (N, Hp, Wp, C) and F filters.

    Within a chunk of k images the transform buffers keep the image axis inside the
    spatial ones, (..., th, tw, k, C): every transform then runs over long contiguous
    runs, and only the copies in and out of (k, H, W, C) arrays stride by C. Buffers come
    from the convolution's `Scratch` (its lifetime rule); a chunk's are keyed by (name, whether
    the chunk is full), so every full chunk reuses one set and a short last chunk has its own.

    Args:
        padded_shape: the padded input's shape (N, Hp, Wp, C).
        filters: the number of filters F.
        scratch: the convolution's `Scratch`, which lends the transform buffers.
    """

    def __init__(self, padded_shape, filters: int, scratch: Scratch):
        n, hp, wp, c = padded_shape
        self.padded_shape, self.filters, self.scratch = tuple(padded_shape), filters, scratch
        self.out_hw = (hp - 2, wp - 2)
        self.th, self.tw = (hp - 1) // 2, (wp - 1) // 2  # tile rows and columns: ceil(out / 2)
        per_image = 4 * 16 * self.th * self.tw * (c + filters) * 2
        self.step = max(1, min(n, _CHUNK_BYTES // per_image))

    def _chunks(self):
        n = self.padded_shape[0]
        for a in range(0, n, self.step):
            yield a, min(a + self.step, n)

    # ----- forward ------------------------------------------------------------
    def forward(self, xp: np.ndarray, kernel: np.ndarray, z: np.ndarray, after=None, training: bool = True):
        """xp (N, Hp, Wp, C) and kernel (3, 3, C, F) -> z (N, Ho, Wo, F) (written).

        after(a, b), when given, runs once images a..b of z are written (while in cache).
        Returns the state `backward` needs. V is 4x the input; outside training, or where it
        would exceed _KEEP_V_BYTES, it is not kept (backward, if any, recomputes it from xp).

        Args:
            xp: the padded input (N, Hp, Wp, C).
            kernel: the kernel (3, 3, C, F).
            z: the output (N, Ho, Wo, F), written.
            after: a callable after(a, b) run once images a..b of z are written, or None.
            training: whether to keep V for a backward.
        """
        n, hp, wp, c = self.padded_shape
        th, tw, f = self.th, self.tw, self.filters
        dtype = z.dtype
        u = _kernel_transform(kernel, dtype)
        size = 16 * n * th * tw * c
        keep = training and size * z.itemsize <= _KEEP_V_BYTES
        v_all = self.scratch.get("wg_v", (size,), dtype) if keep else None
        buf = self.scratch.get
        for a, b in self._chunks():
            k = b - a
            full = k == self.step
            v = self._input_v(xp, a, b, v_all[16 * a * th * tw * c:16 * b * th * tw * c] if keep
                              else buf(("v", full), (16 * th * tw * c * k,), dtype))
            m = buf(("m", full), (16, th * tw * k, f), dtype)
            np.matmul(v.reshape(16, -1, c), u, out=m)
            _output_transform(m.reshape(4, 4, th, tw, k, f), buf(("half", full), (2, 4, th, tw, k, f), dtype),
                             z[a:b])
            if after is not None:
                after(a, b)
        return WinogradState(v_all, xp, u)

    def _input_v(self, xp, a: int, b: int, out: np.ndarray) -> np.ndarray:
        """V (4, 4, th, tw, k, C) of images a..b of xp, written into `out` (flat)."""
        th, tw, c = self.th, self.tw, self.padded_shape[3]
        k, dtype, buf = b - a, xp.dtype, self.scratch.get
        full = k == self.step
        xq = _to_phases(xp[a:b], buf(("xq", full), (2 * th + 2, 2, tw + 1, k, c), dtype))
        v = out.reshape(4, 4, th, tw, k, c)
        _input_transform(xq, buf(("rows", full), (4, th, 2, tw + 1, k, c), dtype), v)
        return v

    # ----- backward -----------------------------------------------------------
    def backward(self, state: WinogradState, dz, kernel_grad: np.ndarray | None, need_dx: bool, dtype):
        """dz(a, b) -> the output gradient of images a..b, (b - a, Ho, Wo, F), called once per
        chunk (so the caller's activation gradient runs in cache) -> dxp (N, Hp, Wp, C) or
        None; writes kernel_grad (3, 3, C, F).

        Args:
            state: what `forward` returned.
            dz: a callable dz(a, b) giving the output gradient of images a..b.
            kernel_grad: the kernel gradient (3, 3, C, F) to write, or None.
            need_dx: whether to compute the input gradient dxp.
            dtype: the computation's dtype.
        """
        n, hp, wp, c = self.padded_shape
        th, tw, f = self.th, self.tw, self.filters
        buf = self.scratch.get
        du = buf("wg_du", (16, c, f), dtype) if kernel_grad is not None else None
        du_part = buf("wg_du_part", (16, c, f), dtype) if du is not None and n > self.step else None
        dxp = buf("wg_dxp", self.padded_shape, dtype) if need_dx else None
        ut = np.ascontiguousarray(state.u.transpose(0, 2, 1))
        for a, b in self._chunks():
            k = b - a
            full = k == self.step
            w = buf(("w", full), (4, 4, th, tw, k, f), dtype)
            _output_transform_t(dz(a, b), buf(("d", full), (2, 2, th, tw, k, f), dtype),
                               buf(("drows", full), (4, 2, th, tw, k, f), dtype), w)
            w16 = w.reshape(16, -1, f)
            if du is not None:
                if state.v is not None:
                    v = state.v[16 * a * th * tw * c:16 * b * th * tw * c].reshape(16, -1, c)
                else:  # recompute V from the input
                    v = self._input_v(state.xp, a, b, buf(("v", full), (16 * th * tw * c * k,), dtype))
                    v = v.reshape(16, -1, c)
                matmul_sum(v.transpose(0, 2, 1), w16, du, du_part, a == 0)
            if need_dx:
                dv = buf(("dv", full), (16, th * tw * k, c), dtype)
                np.matmul(w16, ut, out=dv)
                dxq = buf(("dxq", full), (2 * th + 2, 2, tw + 1, k, c), dtype)
                _input_transform_t(dv.reshape(4, 4, th, tw, k, c),
                                  buf(("cols", full), (4, th, 2, tw + 1, k, c), dtype),
                                  buf(("tmp_cols", full), (4, th, tw, k, c), dtype),
                                  buf(("tmp_rows", full), (th, 2, tw + 1, k, c), dtype), dxq)
                _from_phases(dxq, dxp[a:b])
        if du is not None:
            if n == 0:
                du.fill(0)
            kernel_grad[...] = _kernel_transform_t(du)
        return dxp


# ----- the transforms -------------------------------------------------------------
def _kernel_transform(kernel: np.ndarray, dtype) -> np.ndarray:
    """(3, 3, C, F) kernel -> U (16, C, F), U[4a + b] = sum_ij G[a, i] G[b, j] g[i, j]."""
    c, f = kernel.shape[2:]
    g = _G.astype(dtype)
    half = (g @ kernel.reshape(3, 3 * c * f).astype(dtype, copy=False)).reshape(4, 3, c * f)
    return np.matmul(g, half).reshape(16, c, f)


def _kernel_transform_t(du: np.ndarray) -> np.ndarray:
    """The transpose of `_kernel_transform`: dU (16, C, F) -> dkernel (3, 3, C, F)."""
    c, f = du.shape[1:]
    gt = _G.T.astype(du.dtype)
    half = np.matmul(gt, du.reshape(4, 4, c * f))  # (4, 3, C*F): over b
    return (gt @ half.reshape(4, 3 * c * f)).reshape(3, 3, c, f)


def _to_phases(x: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """x (k, Hp, Wp, C) -> xq (2th+2, 2, tw+1, k, C): columns by parity, zero past the input."""
    hp, wp = x.shape[1:3]
    even, odd = (wp + 1) // 2, wp // 2
    np.copyto(xq[:hp, 0, :even], x[:, :, 0::2].transpose(1, 2, 0, 3))
    np.copyto(xq[:hp, 1, :odd], x[:, :, 1::2].transpose(1, 2, 0, 3))
    xq[hp:].fill(0)
    xq[:hp, 0, even:].fill(0)
    xq[:hp, 1, odd:].fill(0)
    return xq


def _from_phases(dxq: np.ndarray, dx: np.ndarray) -> None:
    """The inverse of `_to_phases`, dropping what lies past the input: dxq -> dx (k, Hp, Wp, C)."""
    hp, wp = dx.shape[1:3]
    np.copyto(dx[:, :, 0::2].transpose(1, 2, 0, 3), dxq[:hp, 0, :(wp + 1) // 2])
    np.copyto(dx[:, :, 1::2].transpose(1, 2, 0, 3), dxq[:hp, 1, :wp // 2])


def _input_transform(xq: np.ndarray, rows: np.ndarray, v: np.ndarray) -> None:
    """B^T d B of every 4x4 tile of xq (2th+2, 2, tw+1, k, C) -> v (4, 4, th, tw, k, C).

    B^T's rows: d0 - d2, d1 + d2, d2 - d1, d1 - d3 (rows first into `rows`, then columns).
    """
    th, tw = v.shape[2], v.shape[3]
    r = [xq[i:i + 2 * th:2] for i in range(4)]
    np.subtract(r[0], r[2], out=rows[0])
    np.add(r[1], r[2], out=rows[1])
    np.subtract(r[2], r[1], out=rows[2])
    np.subtract(r[1], r[3], out=rows[3])
    c0, c1 = rows[:, :, 0, :tw], rows[:, :, 1, :tw]  # tile columns 0..3: phases 0, 1, 0, 1
    c2, c3 = rows[:, :, 0, 1:], rows[:, :, 1, 1:]
    np.subtract(c0, c2, out=v[:, 0])
    np.add(c1, c2, out=v[:, 1])
    np.subtract(c2, c1, out=v[:, 2])
    np.subtract(c1, c3, out=v[:, 3])


def _output_transform(m: np.ndarray, half: np.ndarray, z: np.ndarray) -> None:
    """A^T M A of every tile, m (4, 4, th, tw, k, F), written into z (k, Ho, Wo, F).

    A^T's rows: m0 + m1 + m2 and m1 - m2 - m3, over rows into `half` (2, 4, th, tw, k, F),
    then over columns into m's own first rows (done with), then copied out: output
    (2i + p, 2j + q) is tile (i, j)'s (p, q) value; a ragged last tile row/column is cropped.
    """
    np.add(m[0], m[1], out=half[0])
    half[0] += m[2]
    np.subtract(m[1], m[2], out=half[1])
    half[1] -= m[3]
    y = m[0].reshape((2, 2) + m.shape[2:])
    np.add(half[:, 0], half[:, 1], out=y[:, 0])
    y[:, 0] += half[:, 2]
    np.subtract(half[:, 1], half[:, 2], out=y[:, 1])
    y[:, 1] -= half[:, 3]
    ho, wo = z.shape[1:3]
    for p in (0, 1):
        for q in (0, 1):
            np.copyto(z[:, p::2, q::2].transpose(1, 2, 0, 3), y[p, q, :(ho - p + 1) // 2, :(wo - q + 1) // 2])


def _output_transform_t(dz: np.ndarray, d: np.ndarray, rows: np.ndarray, w: np.ndarray) -> None:
    """The transpose of `_output_transform`: dz (k, Ho, Wo, F) -> w (4, 4, th, tw, k, F) = A dY A^T.

    Scratch: d (2, 2, th, tw, k, F) holds dz by output parity (zero past the edge),
    rows (4, 2, th, tw, k, F) the row half. A's rows: (1, 0), (1, 1), (1, -1), (0, -1).
    """
    ho, wo = dz.shape[1:3]
    for p in (0, 1):
        for q in (0, 1):
            rp, cq = (ho - p + 1) // 2, (wo - q + 1) // 2
            np.copyto(d[p, q, :rp, :cq], dz[:, p::2, q::2].transpose(1, 2, 0, 3))
            d[p, q, rp:].fill(0)
            d[p, q, :rp, cq:].fill(0)
    np.copyto(rows[0], d[0])
    np.add(d[0], d[1], out=rows[1])
    np.subtract(d[0], d[1], out=rows[2])
    np.negative(d[1], out=rows[3])
    np.copyto(w[:, 0], rows[:, 0])
    np.add(rows[:, 0], rows[:, 1], out=w[:, 1])
    np.subtract(rows[:, 0], rows[:, 1], out=w[:, 2])
    np.negative(rows[:, 1], out=w[:, 3])


def _input_transform_t(dv: np.ndarray, cols: np.ndarray, tmp_cols: np.ndarray, tmp_rows: np.ndarray,
                      dxq: np.ndarray) -> None:
    """The transpose of `_input_transform`: B dV B^T of every tile, overlap-added into
    dxq (2th+2, 2, tw+1, k, C) (overwritten; columns by parity as in `_to_phases`).

    dv (4, 4, th, tw, k, C). Scratch: cols (4, th, 2, tw+1, k, C) holds the column
    half; tmp_cols (4, th, tw, k, C) and tmp_rows (th, 2, tw+1, k, C) one combination each.
    """
    _overlap_add([dv[:, j] for j in range(4)], cols[:, :, 0], cols[:, :, 1], tmp_cols, 2)
    _overlap_add([cols[i] for i in range(4)], dxq[0::2], dxq[1::2], tmp_rows, 0)


def _along(a: np.ndarray, axis: int, start: int, stop: int | None = None) -> np.ndarray:
    """a[..., start:stop, ...] on `axis`."""
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(start, stop)
    return a[tuple(idx)]


def _overlap_add(e, even, odd, tmp, axis: int) -> None:
    """One axis of `_input_transform_t`. A tile's four values along the axis come from
    e[0..3] (t tiles on `axis`) as e0, e1 - e2 + e3, e1 + e2 - e0 and -e3 (B^T's columns).
    Tile s's last two positions are tile s+1's first two, so position 2s (`even`[s], t+1
    long on `axis`) gets e0[s] + (e1 + e2 - e0)[s-1] and 2s+1 (`odd`[s]) (e1 - e2 + e3)[s] - e3[s-1].
    """
    e0, e1, e2, e3 = e
    t = e0.shape[axis]
    np.copyto(_along(even, axis, 0, t), e0)
    _along(even, axis, t).fill(0)
    np.add(e1, e2, out=tmp)
    tmp -= e0
    tail = _along(even, axis, 1)
    np.add(tail, tmp, out=tail)
    head = _along(odd, axis, 0, t)
    np.subtract(e1, e2, out=head)
    head += e3
    _along(odd, axis, t).fill(0)
    tail = _along(odd, axis, 1)
    np.subtract(tail, e3, out=tail)
