"""Connectionist temporal classification of keras.ops.nn: `ctc_loss` (the forward-backward
recursion in log space, differentiated) and `ctc_decode` (greedy, or prefix beam search).

ctc_loss: target (B, S) integer labels (entries past target_length ignored), output (B, T, C)
logits, target_length and output_length (B,); returns (B,) negative log-likelihoods. The logits
go through a recorded log_softmax; the recursion's own node pulls back d(-log p)/d log-prob,
minus each frame's label occupancy exp(alpha + beta - log p) (zero past output_length). The
forward pass computes alpha only; beta is computed in the pullback.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor, result
from ..errors import ConfigError, ShapeError
from .activations import log_softmax

__all__ = ["ctc_loss", "ctc_decode"]


def _extended(labels: np.ndarray, blank: int) -> tuple:
    """The label sequence with blanks around every label, and where a skip over a blank is allowed."""
    ext = np.full(2 * len(labels) + 1, blank, dtype=np.int64)
    ext[1::2] = labels
    skip = np.zeros(len(ext), dtype=bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    return ext, skip


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """a moved k places right (k > 0) or left (k < 0), filled with -inf."""
    out = np.full_like(a, -np.inf)
    if k > 0:
        out[k:] = a[:-k]
    else:
        out[:k] = a[-k:]
    return out


def _alpha(e: np.ndarray, skip: np.ndarray) -> np.ndarray:
    alpha = np.full(e.shape, -np.inf)
    alpha[0, :2] = e[0, :2]
    for t in range(1, len(e)):
        a = alpha[t - 1]
        alpha[t] = np.logaddexp(np.logaddexp(a, _shift(a, 1)), np.where(skip, _shift(a, 2), -np.inf)) + e[t]
    return alpha


def _beta(e: np.ndarray, skip: np.ndarray) -> np.ndarray:
    beta = np.full(e.shape, -np.inf)
    beta[-1, -2:] = e[-1, -2:]
    skip_next = _shift(skip.astype(float), -2) > 0
    for t in range(len(e) - 2, -1, -1):
        b = beta[t + 1]
        beta[t] = np.logaddexp(np.logaddexp(b, _shift(b, -1)), np.where(skip_next, _shift(b, -2), -np.inf)) + e[t]
    return beta


def _lengths(op: str, values, batch: int, limit: int, what: str) -> np.ndarray:
    n = np.asarray(values).astype(np.int64).reshape(-1)
    if n.shape != (batch,) or (n < 0).any() or (n > limit).any():
        raise ShapeError(f"ops.{op}: {what} must hold {batch} lengths between 0 and {limit}, got {n.tolist()}.")
    return n


def ctc_loss(target, output, target_length, output_length, mask_index=0) -> Tensor:
    """Per-sequence CTC negative log-likelihood of `target` given `output` logits, blank =
    `mask_index`; an impossible alignment (too few frames) gives inf with a zero gradient."""
    logp = log_softmax(as_tensor(output), axis=-1)
    lp = np.asarray(logp.value, dtype=np.float64)
    labels = np.asarray(as_tensor(target).value).astype(np.int64)
    if lp.ndim != 3 or labels.ndim != 2 or labels.shape[0] != lp.shape[0]:
        raise ShapeError(f"ops.ctc_loss: target (B, S) and output (B, T, C) needed, got {labels.shape} and "
                         f"{lp.shape}.")
    b, t_max, _ = lp.shape
    u = _lengths("ctc_loss", target_length, b, labels.shape[1], "target_length")
    t_len = _lengths("ctc_loss", output_length, b, t_max, "output_length")
    runs, loss = [], np.empty(b)
    for i in range(b):
        ext, skip = _extended(labels[i, :u[i]], mask_index)
        e = lp[i][:t_len[i]][:, ext]           # (frames, extended labels)
        if t_len[i] == 0:
            loss[i] = 0.0 if u[i] == 0 else np.inf
            runs.append(None)
            continue
        alpha = _alpha(e, skip)
        loss[i] = -np.logaddexp(alpha[-1, -1], alpha[-1, -2] if len(ext) > 1 else -np.inf)
        runs.append((ext, skip, e, alpha))

    def vjp(g):
        grad = np.zeros(lp.shape)
        for i, run in enumerate(runs):
            if run is None or not np.isfinite(loss[i]):
                continue
            ext, skip, e, alpha = run
            post = np.exp(alpha + _beta(e, skip) - e + loss[i])     # occupancy of each extended label
            np.add.at(grad[i], (np.arange(len(e))[:, None], ext[None, :]), -g[i] * post)
        return (grad.astype(logp.dtype),)
    return result(loss.astype(logp.dtype), (logp,), vjp)


def _beam_search(lp: np.ndarray, blank: int, beam_width: int, top_paths: int) -> list:
    """Prefix beam search over one sequence's log-probabilities (T, C): each prefix keeps the
    log-probability of its alignments ending in a blank and in its last label; the best
    `beam_width` prefixes by total survive each frame. Returns [(prefix, log p)] best first."""
    beams = {(): (0.0, -np.inf)}
    for frame in lp:
        grown: dict = {}

        def add(prefix, blank_p=-np.inf, label_p=-np.inf):
            b0, l0 = grown.get(prefix, (-np.inf, -np.inf))
            grown[prefix] = (np.logaddexp(b0, blank_p), np.logaddexp(l0, label_p))
        for prefix, (pb, pl) in beams.items():
            total = np.logaddexp(pb, pl)
            for c, p in enumerate(frame):
                if c == blank:
                    add(prefix, blank_p=total + p)
                elif prefix and prefix[-1] == c:      # a repeat needs a blank in between to extend
                    add(prefix + (c,), label_p=pb + p)
                    add(prefix, label_p=pl + p)
                else:
                    add(prefix + (c,), label_p=total + p)
        ranked = sorted(grown.items(), key=lambda kv: -np.logaddexp(*kv[1]))
        beams = dict(ranked[:beam_width])
    ranked = sorted(((k, float(np.logaddexp(*v))) for k, v in beams.items()), key=lambda kv: -kv[1])
    return ranked[:top_paths]


def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1, merge_repeated=True,
               mask_index=0) -> tuple:
    """CTC decoding of (B, T, C) scores; not differentiated. Returns (decoded (top_paths, B, T),
    labels at the front padded with -1; scores (B, top_paths)).

    "greedy": the best class per frame, repeats merged (when `merge_repeated`) and blanks
    dropped; the score is -sum of the chosen frames' scores (Keras's convention). "beam_search":
    prefix beam search over log_softmax(inputs); the score is each prefix's log-probability."""
    if strategy not in ("greedy", "beam_search"):
        raise ConfigError(f"ops.ctc_decode: strategy must be 'greedy' or 'beam_search', got {strategy!r}.")
    x = np.asarray(as_tensor(inputs).value)
    if x.ndim != 3:
        raise ShapeError(f"ops.ctc_decode: inputs must be (B, T, C), got shape {x.shape}.")
    b, t_max, c = x.shape
    n = _lengths("ctc_decode", sequence_lengths, b, t_max, "sequence_lengths")
    blank = c - 1 if mask_index is None else mask_index
    if strategy == "beam_search":
        lp = np.asarray(log_softmax(x, axis=-1).value, dtype=np.float64)
        decoded = np.full((top_paths, b, t_max), -1, dtype=np.int32)
        scores = np.full((b, top_paths), -np.inf)
        for i in range(b):
            for k, (prefix, score) in enumerate(_beam_search(lp[i, :n[i]], blank, beam_width, top_paths)):
                decoded[k, i, :len(prefix)] = prefix
                scores[i, k] = score
        return Tensor(decoded), Tensor(scores.astype(x.dtype))
    best, scores = np.argmax(x, axis=-1), np.max(x, axis=-1)
    past = np.arange(t_max)[None, :] >= n[:, None]
    best, scores = np.where(past, blank, best), np.where(past, 0.0, scores)
    if merge_repeated:
        best = np.where(np.pad(best[:, 1:] == best[:, :-1], ((0, 0), (1, 0))), blank, best)
    drop = best == blank
    order = np.argsort(np.where(drop, t_max, np.arange(t_max)[None, :]), axis=-1, kind="stable")
    decoded = np.take_along_axis(np.where(drop, -1, best), order, axis=-1)
    return Tensor(decoded[None].astype(np.int32)), Tensor(-np.sum(scores, axis=1, keepdims=True))
