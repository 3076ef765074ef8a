"""Checking a distdl.ops function: its value against NumPy's and its recorded gradient against
central finite differences, in float64.

`check_grad(fn, *arrays)` records `fn` on a tape with every array a leaf, pulls back a random
cotangent `r`, and compares each input's gradient with the central difference of
sum(r * fn(...)) taken element by element (relative error 1e-6 at eps 1e-6 in float64).
"""
from __future__ import annotations

import numpy as np

from distdl.autodiff import Tape, backward, recording, value_of


def _run(fn, arrays, tape=None):
    with recording(tape):
        leaves = [tape.leaf(a) if tape is not None else a for a in arrays]
        return leaves, fn(*leaves)


def check_grad(fn, *arrays, eps=1e-6, rtol=1e-6, atol=1e-8, seed=0, wrt=None):
    """Assert that the gradients `fn` records match finite differences for each array in `wrt`
    (default: all floating arrays). Returns the analytic gradients (None where not checked)."""
    arrays = [np.array(a, dtype=np.float64, order="C") if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else list(wrt)
    tape = Tape("gradient check")
    leaves, out = _run(fn, arrays, tape)
    y = np.asarray(value_of(out), dtype=np.float64)
    r = np.random.default_rng(seed).standard_normal(y.shape)
    grads = backward(tape, [(out, r)])
    found = []
    for i, a in enumerate(arrays):
        if i not in wrt:
            found.append(None)
            continue
        g = grads[leaves[i]._index]
        g = np.zeros_like(a) if g is None else np.asarray(g, dtype=np.float64)
        assert g.shape == a.shape, f"input {i}: gradient shape {g.shape} != {a.shape}"
        num = np.zeros_like(a)
        flat = a.reshape(-1)
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            plus = np.sum(r * np.asarray(value_of(_run(fn, arrays)[1])))
            flat[k] = old - eps
            minus = np.sum(r * np.asarray(value_of(_run(fn, arrays)[1])))
            flat[k] = old
            num.reshape(-1)[k] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
        found.append(g)
    return found


def grad_at(fn, *arrays):
    """The recorded gradient of sum(fn(*arrays)) with respect to each array (float64): for value
    tests at points where finite differences do not apply (ties, kinks)."""
    tape = Tape("test")
    with recording(tape):
        leaves = [tape.leaf(np.array(a, dtype=np.float64)) for a in arrays]
        out = fn(*leaves)
        grads = backward(tape, [(out, np.ones(np.shape(out.value)))])
    return [grads[t._index] for t in leaves]
