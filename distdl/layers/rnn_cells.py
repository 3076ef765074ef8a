"""Time loops of the recurrent cells (SimpleRNN, LSTM, GRU), forward and backpropagation through time.

Every array is time-major: `xz` (T, B, G*u) holds the input projections of all
steps (one GEMM done by the layer, input bias included), `H` (T+1, B, u) the
hidden states with H[0] the initial state. The only Python loop is over time;
each step is one recurrent GEMM plus in-place elementwise work on preallocated
buffers (an LSTM with its default activations folds the input projection into
the step GEMM instead: `lstm_forward_fused`). Backward functions return the
gradient with respect to `xz` (and the gates' recurrent pre-activations where
they differ), so the layer turns them into weight gradients with one GEMM over
all steps.

`skip` (T, B, 1) bool, or None, marks masked steps (`rnn_masking`): forward carries the
states over them, backward passes the state gradients straight through them and gives
them zero gate gradients.

Buffers come from the layer's `Scratch` (argument `scratch`, its lifetime rule); forward and
backward keys are distinct, since backward reads what forward left in its buffers.
"""
from __future__ import annotations

import numpy as np

from .. import activations
from .rnn_masking import carry as _carry, pass_through as _pass_through

__all__ = ["simple_forward", "simple_backward", "lstm_fused", "lstm_forward", "lstm_forward_fused", "lstm_backward",
           "lstm_backward_fused", "gru_forward", "gru_backward"]


def _activate(act, x) -> None:
    """Apply `act` to x in place; sigmoid as 0.5 * tanh(0.5 x) + 0.5 (no temporaries, never overflows)."""
    if type(act) is activations.Sigmoid:
        x *= 0.5
        np.tanh(x, out=x)
        x *= 0.5
        x += 0.5
    else:
        act.forward(x, out=x)


def _pre_store(acts, scratch, key, shape, dtype):
    """A buffer for pre-activations, only when an activation's derivative needs its input."""
    return scratch.get(key, shape, dtype) if any(a.uses_input for a in acts) else None


def _masked(h, mask, out):
    """h * mask into `out` (the recurrent-dropout view of the previous state), or h itself."""
    return h if mask is None else np.multiply(h, mask, out=out)


def _saved(scratch, *grads):
    """Copies of the state gradients entering a masked step (see `rnn_masking.pass_through`)."""
    out = [scratch.get(f"skip_keep{i}", g.shape, g.dtype) for i, g in enumerate(grads)]
    for buf, g in zip(out, grads):
        buf[...] = g
    return out


def _to_previous_step(d, UT, t, mask, skip, kept, dh, *carried) -> bool:
    """The end of BPTT step t, shared by SimpleRNN and LSTM: masked rows pass no gradient
    into d (B, G*u); then, unless t is the first step (whose gradient would go into the zero
    initial state), dh = d U^T times the recurrent dropout mask, and masked rows keep the
    state gradients `kept` saved on entry (dh, then `carried`). False at t == 0."""
    if kept is not None:
        np.copyto(d, 0, where=skip[t])
    if t == 0:
        return False
    np.matmul(d, UT, out=dh)
    if mask is not None:
        dh *= mask
    if kept is not None:
        _pass_through(skip[t], kept, dh, *carried)
    return True


def _rows(scratch, key: str, row, n: int) -> np.ndarray:
    """`row` repeated as an (n, len(row)) array: ufuncs run faster than with a broadcast row."""
    buf = scratch.get(key, (n, row.shape[0]), row.dtype)
    buf[...] = row
    return buf


# ----- SimpleRNN: h_t = act(xz_t + h_{t-1} U) ---------------------------------
def simple_forward(xz, U, act, H, scratch, mask=None, skip=None):
    """Run the SimpleRNN recurrence; `xz` becomes the pre-activations, H is filled. Returns pre or None."""
    T, B, u = xz.shape
    tmp = scratch.get("s_tmp", (B, u), xz.dtype)
    hm = scratch.get("hm", (B, u), xz.dtype) if mask is not None else None
    for t in range(T):
        np.matmul(_masked(H[t], mask, hm), U, out=tmp)
        xz[t] += tmp
        act.forward(xz[t], out=H[t + 1])
        if skip is not None:
            _carry(skip[t], (H[t + 1], H[t]))
    return xz if act.uses_input else None


def simple_backward(dh_seq, dh, U, act, pre, H, scratch, mask=None, skip=None):
    """BPTT for SimpleRNN. `dh` (B, u) is the upstream gradient of the last state (updated in place).

    Returns dpre (T, B, u), the gradient of the pre-activations (= of xz).
    """
    T = H.shape[0] - 1
    dpre = scratch.get("s_dpre", (T,) + dh.shape, dh.dtype)
    UT = np.ascontiguousarray(U.T)      # faster per-step GEMM than with the transposed view
    for t in range(T - 1, -1, -1):
        if dh_seq is not None:
            dh += dh_seq[t]
        kept = None if skip is None else _saved(scratch, dh)
        act.backward(dh, None if pre is None else pre[t], H[t + 1], out=dpre[t])
        if not _to_previous_step(dpre[t], UT, t, mask, skip, kept, dh):
            break
    return dpre


# ----- LSTM (Keras gate order i, f, c, o) --------------------------------------
def lstm_fused(act, rec, u, dtype):
    """Column constants (scale, shift) for the default sigmoid gates and tanh cell, else None.

    sigmoid(x) = 0.5 tanh(0.5 x) + 0.5, so all four gates are tanh(x * scale) * scale + shift:
    one tanh over the whole (B, 4u) row instead of a call per gate block.
    """
    if type(act) is not activations.Tanh or type(rec) is not activations.Sigmoid:
        return None
    scale = np.full(4 * u, 0.5, dtype)
    scale[2 * u:3 * u] = 1
    shift = scale.copy()
    shift[2 * u:3 * u] = 0
    return scale, shift


def lstm_forward(z, U, act, rec, H, C, TC, scratch, mask=None, skip=None):
    """LSTM recurrence. `z` (T, B, 4u) holds xz on entry and the activated gates on exit.

    C (T+1, B, u) receives the cell states, TC (T, B, u) act(c_t). Returns the
    gate pre-activations (or None when no activation needs them).
    """
    T, B, g4 = z.shape
    u = g4 // 4
    tmp4 = scratch.get("l_tmp4", (B, g4), z.dtype)
    tmp = scratch.get("l_tmp", (B, u), z.dtype)
    pre = _pre_store((act, rec), scratch, "l_pre", z.shape, z.dtype)
    hm = scratch.get("hm", (B, u), z.dtype) if mask is not None else None
    for t in range(T):
        zt = z[t]
        np.matmul(_masked(H[t], mask, hm), U, out=tmp4)
        zt += tmp4
        if pre is not None:
            pre[t] = zt
        _activate(rec, zt[:, :2 * u])
        _activate(act, zt[:, 2 * u:3 * u])
        _activate(rec, zt[:, 3 * u:])
        _lstm_state(zt, C, TC, H, t, u, tmp, act.forward)
        if skip is not None:
            _carry(skip[t], (C[t + 1], C[t]), (H[t + 1], H[t]))
    return pre


def lstm_forward_fused(z, HX, H, UW, C, TC, scratch, fused, mask=None, skip=None):
    """LSTM recurrence for the `lstm_fused` activations; z (T, B, 4u) receives the gates.

    HX (T+1, B, u+F[+1]) holds [m * h_{t-1} | x_t | 1] (m the recurrent dropout mask, the
    ones only with a bias), UW is [U; W; b] times the scale. H is HX's h columns without
    a mask, else its own (T+1, B, u) array. Each step is one GEMM and row-wide activations.
    """
    T, B, g4 = z.shape
    u = g4 // 4
    tmp = scratch.get("l_tmp", (B, u), z.dtype)
    scale, shift = _rows(scratch, "l_scale", fused[0], B), _rows(scratch, "l_shift", fused[1], B)
    for t in range(T):
        zt = z[t]
        np.matmul(HX[t], UW, out=zt)
        np.tanh(zt, out=zt)
        zt *= scale
        zt += shift
        _lstm_state(zt, C, TC, H, t, u, tmp, np.tanh)
        if skip is not None:
            _carry(skip[t], (C[t + 1], C[t]), (H[t + 1], H[t]))
        if mask is not None:
            np.multiply(H[t + 1], mask, out=HX[t + 1, :, :u])


def _lstm_state(zt, C, TC, H, t, u, tmp, act_fn):
    """c_t = f c_{t-1} + i g, h_t = o act(c_t) from the activated gates zt = [i, f, g, o]."""
    np.multiply(zt[:, u:2 * u], C[t], out=C[t + 1])
    np.multiply(zt[:, :u], zt[:, 2 * u:3 * u], out=tmp)
    C[t + 1] += tmp
    act_fn(C[t + 1], out=TC[t])
    np.multiply(zt[:, 3 * u:], TC[t], out=H[t + 1])


def lstm_backward(dh_seq, dh, dc, U, act, rec, gates, pre, H, C, TC, scratch, mask=None, skip=None):
    """BPTT for LSTM with any activations. `dh`, `dc` (B, u) hold the last step's upstream
    gradients (updated in place).

    Returns dz (T, B, 4u), the gradient of the gate pre-activations (= of xz).
    """
    T, B, g4 = gates.shape
    u = g4 // 4
    dz = scratch.get("l_dz", gates.shape, gates.dtype)
    raw = scratch.get("l_raw", (B, g4), gates.dtype)
    tmp = scratch.get("l_btmp", (B, u), gates.dtype)
    tmp2 = scratch.get("l_btmp2", (B, u), gates.dtype)
    UT = _transposed(scratch, U)
    ifs, cs, os_ = slice(0, 2 * u), slice(2 * u, 3 * u), slice(3 * u, g4)
    for t in range(T - 1, -1, -1):
        if dh_seq is not None:
            dh += dh_seq[t]
        kept = None if skip is None else _saved(scratch, dh, dc)
        gt = gates[t]
        i, f, g, o = gt[:, :u], gt[:, u:2 * u], gt[:, cs], gt[:, os_]
        np.multiply(dh, TC[t], out=raw[:, os_])                 # d o
        np.multiply(dh, o, out=tmp)                             # d act(c)
        act.backward(tmp, C[t + 1], TC[t], out=tmp2)
        dc += tmp2
        np.multiply(dc, g, out=raw[:, :u])                      # d i
        np.multiply(dc, C[t], out=raw[:, u:2 * u])              # d f
        np.multiply(dc, i, out=raw[:, cs])                      # d g
        dc *= f
        pt = None if pre is None else pre[t]
        rec.backward(raw[:, ifs], None if pt is None else pt[:, ifs], gt[:, ifs], out=dz[t][:, ifs])
        act.backward(raw[:, cs], None if pt is None else pt[:, cs], g, out=dz[t][:, cs])
        rec.backward(raw[:, os_], None if pt is None else pt[:, os_], o, out=dz[t][:, os_])
        if not _to_previous_step(dz[t], UT, t, mask, skip, kept, dh, dc):
            break
    return dz


def lstm_backward_fused(dh_seq, dh, dc, U, gates, H, C, TC, scratch, fused, mask=None, skip=None):
    """BPTT for the `lstm_fused` activations; arguments as in `lstm_backward`, returns dz (T, B, 4u).

    Every gate's derivative comes from one row-wide expression: sigmoid' = (1 - y) y and
    tanh' = 1 - y y are both (m - y) y + (1 - m) with m = 2 shift. With h_t = o tanh(c_t),
    o (1 - tanh(c_t)^2) = o - h_t tanh(c_t).
    """
    T, B, g4 = gates.shape
    u = g4 // 4
    dz = scratch.get("l_dz", gates.shape, gates.dtype)
    tmp = scratch.get("l_btmp", (B, u), gates.dtype)
    up = scratch.get("l_up", (B, g4), gates.dtype)  # the upstream gradient of each gate
    UT = _transposed(scratch, U)
    m = _rows(scratch, "l_m", 2 * fused[1], B)
    k = np.subtract(1, m, out=scratch.get("l_k", m.shape, m.dtype))
    for t in range(T - 1, -1, -1):
        if dh_seq is not None:
            dh += dh_seq[t]
        kept = None if skip is None else _saved(scratch, dh, dc)
        gt, dzt = gates[t], dz[t]
        np.subtract(m, gt, out=dzt)
        dzt *= gt
        dzt += k
        np.multiply(H[t + 1], TC[t], out=tmp)                   # dc += dh o (1 - tanh(c)^2)
        np.subtract(gt[:, 3 * u:], tmp, out=tmp)
        tmp *= dh
        dc += tmp
        np.multiply(dc, gt[:, 2 * u:3 * u], out=up[:, :u])      # d i
        np.multiply(dc, C[t], out=up[:, u:2 * u])               # d f
        np.multiply(dc, gt[:, :u], out=up[:, 2 * u:3 * u])      # d g
        np.multiply(dh, TC[t], out=up[:, 3 * u:])               # d o
        dzt *= up
        dc *= gt[:, u:2 * u]
        if not _to_previous_step(dzt, UT, t, mask, skip, kept, dh, dc):
            break
    return dz


def _transposed(scratch, U) -> np.ndarray:
    """U.T as a contiguous array: the per-step GEMM is faster than with the transposed view."""
    UT = scratch.get("ut", U.shape[::-1], U.dtype)
    UT[...] = U.T
    return UT


# ----- GRU (Keras gate order z, r, h) -----------------------------------------
def gru_forward(z, U, b_rec, act, rec, H, HR, reset_after, scratch, mask=None, skip=None):
    """GRU recurrence. `z` (T, B, 3u) holds xz on entry and the activated gates z, r, hh on exit.

    reset_after: hh = act(xz_h + r * (h U_h + b_rec_h)), HR[t] stores h U_h + b_rec_h;
    else hh = act(xz_h + (r * h) U_h), HR[t] stores r * h. Returns pre-activations or None.
    """
    T, B, g3 = z.shape
    u = g3 // 3
    pre = _pre_store((act, rec), scratch, "g_pre", z.shape, z.dtype)
    tmp = scratch.get("g_tmp", (B, u), z.dtype)
    hm = scratch.get("hm", (B, u), z.dtype) if mask is not None else None
    if reset_after:
        rec3 = scratch.get("g_rec3", (B, g3), z.dtype)
    else:
        rec2 = scratch.get("g_rec2", (B, 2 * u), z.dtype)
        U_zr, U_h = np.ascontiguousarray(U[:, :2 * u]), np.ascontiguousarray(U[:, 2 * u:])
    for t in range(T):
        zt = z[t]
        zr, hh = zt[:, :2 * u], zt[:, 2 * u:]
        h = _masked(H[t], mask, hm)
        if reset_after:
            np.matmul(h, U, out=rec3)
            if b_rec is not None:
                rec3 += b_rec
            zr += rec3[:, :2 * u]
            HR[t] = rec3[:, 2 * u:]
        else:
            np.matmul(h, U_zr, out=rec2)
            zr += rec2
        if pre is not None:
            pre[t, :, :2 * u] = zr
        _activate(rec, zr)
        r = zt[:, u:2 * u]
        if reset_after:
            np.multiply(r, HR[t], out=tmp)
        else:
            np.multiply(r, h, out=HR[t])
            np.matmul(HR[t], U_h, out=tmp)
        hh += tmp
        if pre is not None:
            pre[t, :, 2 * u:] = hh
        _activate(act, hh)
        np.subtract(H[t], hh, out=tmp)                  # h = hh + z (h_prev - hh)
        tmp *= zt[:, :u]
        np.add(hh, tmp, out=H[t + 1])
        if skip is not None:
            _carry(skip[t], (H[t + 1], H[t]))
    return pre


def gru_backward(dh_seq, dh, U, act, rec, gates, pre, H, HR, reset_after, scratch, mask=None, skip=None):
    """BPTT for GRU. `dh` (B, u) holds the last state's upstream gradient (updated in place).

    Returns (dxz, drec): gradients of xz (T, B, 3u) and, for reset_after, of the
    recurrent pre-activations h U + b_rec (T, B, 3u); drec is None otherwise.
    """
    T, B, g3 = gates.shape
    u = g3 // 3
    dxz = scratch.get("g_dxz", gates.shape, gates.dtype)
    drec = scratch.get("g_drec", gates.shape, gates.dtype) if reset_after else None
    raw = scratch.get("g_raw", (B, g3), gates.dtype)
    tmp = scratch.get("g_btmp", (B, u), gates.dtype)
    tmp2 = scratch.get("g_btmp2", (B, u), gates.dtype)
    hm = scratch.get("g_hm", (B, u), gates.dtype) if mask is not None else None
    # contiguous transposes: the per-step GEMMs are faster than with transposed views
    if reset_after:
        UT = _transposed(scratch, U)
    else:
        U_zrT, U_hT = np.ascontiguousarray(U[:, :2 * u].T), np.ascontiguousarray(U[:, 2 * u:].T)
    zrs, hs = slice(0, 2 * u), slice(2 * u, g3)
    for t in range(T - 1, -1, -1):
        if dh_seq is not None:
            dh += dh_seq[t]
        kept = None if skip is None else _saved(scratch, dh)
        gt = gates[t]
        zg, r, hh = gt[:, :u], gt[:, u:2 * u], gt[:, hs]
        pt = None if pre is None else pre[t]
        np.subtract(H[t], hh, out=raw[:, :u])
        raw[:, :u] *= dh                                        # d z
        np.subtract(1, zg, out=raw[:, hs])
        raw[:, hs] *= dh                                        # d hh
        dxh = dxz[t][:, hs]
        act.backward(raw[:, hs], None if pt is None else pt[:, hs], hh, out=dxh)
        if reset_after:
            np.multiply(dxh, HR[t], out=raw[:, u:2 * u])        # d r
            np.multiply(dxh, r, out=drec[t][:, hs])
        else:
            np.matmul(dxh, U_hT, out=tmp2)                     # d (r * h_prev)
            np.multiply(tmp2, _masked(H[t], mask, hm), out=raw[:, u:2 * u])   # d r
            tmp2 *= r
        rec.backward(raw[:, zrs], None if pt is None else pt[:, zrs], gt[:, zrs], out=dxz[t][:, zrs])
        np.multiply(dh, zg, out=tmp)
        if kept is not None:
            np.copyto(dxz[t], 0, where=skip[t])
        if reset_after:
            drec[t][:, zrs] = dxz[t][:, zrs]
            if kept is not None:
                np.copyto(drec[t], 0, where=skip[t])
        if t == 0:
            break  # the gradient into the zero initial state is not needed
        if reset_after:
            np.matmul(drec[t], UT, out=dh)
        else:
            np.matmul(dxz[t][:, zrs], U_zrT, out=dh)
            dh += tmp2
        if mask is not None:                # only the paths through U saw the masked state
            dh *= mask
        dh += tmp
        if kept is not None:
            _pass_through(skip[t], kept, dh)
    return dxz, drec
