"""Which tape records now, and the reverse pass over a tape (a Wengert list).

A `Tape` (defined with `Tensor` in tensor.py, as it makes leaf tensors) is a list of nodes in
the order the ops ran: node i holds the tape indices of its parents and its vector-Jacobian product `vjp(g) -> (g_parent, ...)` (None for a leaf: an input or
a weight). Running the list backwards is already a topological order, so `backward` needs no sort.

Recording is on while a tape is the current one (`recording(tape)`); ops that see no tracked
input (or no tape) compute plain values and record nothing, so inference costs nothing extra.
Gradients are never accumulated in place: a vjp may return `g` itself or a view of it.
"""
from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["recording", "current_tape", "backward", "unbroadcast"]

_CURRENT: list = []   # the stack of active tapes; the last one records


def current_tape():
    """The tape that records now, or None."""
    return _CURRENT[-1] if _CURRENT else None


@contextlib.contextmanager
def recording(tape):
    """Make `tape` the current one for the `with` block (None: record nothing inside)."""
    _CURRENT.append(tape)
    try:
        yield tape
    finally:
        _CURRENT.pop()


def backward(tape, seeds) -> list:
    """Reverse pass: `seeds` is [(Tensor, gradient of the objective w.r.t. it)]; returns the list
    of gradients by tape index (None where nothing reached). Leaves keep theirs; interior nodes'
    gradients are dropped once used, so memory follows the live frontier."""
    grads: list = [None] * len(tape.vjps)
    for t, g in seeds:
        if g is not None and getattr(t, "_tape", None) is tape:
            i = t._index
            grads[i] = g if grads[i] is None else grads[i] + g
    parents, vjps = tape.parents, tape.vjps
    for i in range(len(vjps) - 1, -1, -1):
        g = grads[i]
        vjp = vjps[i]
        if g is None or vjp is None:
            continue
        grads[i] = None
        for p, gp in zip(parents[i], vjp(g)):
            if p >= 0 and gp is not None:
                grads[p] = gp if grads[p] is None else grads[p] + gp
    return grads


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `g` over the axes that broadcasting added or stretched, giving an array of `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    return np.sum(g, axis=axes).reshape(shape) if axes else g.reshape(shape)
