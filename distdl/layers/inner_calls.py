"""A layer called on tensors inside a recorded layer's `call` (layers/recorded.py).

A recorded layer runs its `call` inline, on the caller's tape. A hand-written (built-in) layer runs
`forward` and is one node of the tape, whose vjp is that layer's `backward`: each of its calls
gets its own scratch call slot and keeps its own cache, and a layer called several times adds up
its weight gradients (its first backward of a pass overwrites them, as every backward does).
"""
from __future__ import annotations

import numpy as np

from ..autodiff import Tensor, as_tensor, current_tape, result
from ..autodiff.tensor import is_tracked
from .recorded import CALL_COUNTS, LOSS_STACK, TRAINING_STACK, call_kwargs, hand_down

__all__ = ["call_on_tensors"]


def call_on_tensors(layer, inputs, training=None, mask=None):
    """`layer(tensors)` inside a call: a recorded layer runs its `call` inline; a hand-written
    one runs `forward` and is one node of the current tape.

    Args:
        layer: the layer being called.
        inputs: a Tensor or array, or a list of them.
        training: whether this is a training call (None: the enclosing call's mode).
        mask: a (batch, timesteps) bool mask, for layers that take one.
    """
    if training is None:
        training = TRAINING_STACK[-1] if TRAINING_STACK else False
    listed = isinstance(inputs, (list, tuple))
    tensors = [as_tensor(t) for t in (inputs if listed else [inputs])]
    shapes = [np.shape(t.value)[1:] for t in tensors]
    if not layer.built:
        layer._input_dtypes = [np.result_type(t.value) for t in tensors]
        layer.ensure_built(shapes if listed else shapes[0])
    if layer._recorded:
        hand_down(layer)
        top = not LOSS_STACK  # an eager call of its own: its add_loss values become `layer.losses`
        if top:
            LOSS_STACK.append([])
        TRAINING_STACK.append(bool(training))
        try:
            out = layer.call(tensors if listed else tensors[0], **call_kwargs(layer, bool(training), mask))
        finally:
            TRAINING_STACK.pop()
            if top:
                layer.losses = [t.value for t in LOSS_STACK.pop()]
        return out
    return _hand_written_call(layer, tensors, listed, bool(training), mask)


def _hand_written_call(layer, tensors, listed, training, mask):
    calls = CALL_COUNTS[-1] if CALL_COUNTS else {}
    slot = calls.get(id(layer), 0)
    calls[id(layer)] = slot + 1
    layer.select_call(slot)
    values = [np.asarray(t.value, dtype=layer.dtype) if np.result_type(t.value).kind == "f" else t.value
              for t in tensors]
    x = values if listed else values[0]
    if mask is not None and layer.takes_mask:
        y = layer.forward(x, training, mask=mask)
    else:
        y = layer.forward(x, training)
    tape = current_tape()
    multi = isinstance(y, (list, tuple))
    if tape is None or not any(is_tracked(t) for t in tensors):
        ys = [Tensor(np.array(v)) for v in y] if multi else [Tensor(np.array(y))]
        return type(y)(ys) if multi else ys[0]
    state = layer.call_state()
    shapes = [(np.shape(v), np.result_type(v)) for v in (y if multi else [y])]
    done = tape.layer_calls  # not the tape itself: a closure on the tape would make a reference cycle

    def vjp(g):
        layer.set_call_state(state)
        key = id(layer)
        ran = key in done
        saved = [v.grad.copy() for v in layer.trainable_weights] if ran else None
        if multi:
            g = [np.zeros(s, d) if p is None else p for p, (s, d) in zip(g.parts, shapes)]
        dx = layer.backward(g)
        if saved is not None:
            for v, s in zip(layer.trainable_weights, saved):
                v.grad += s
        done[key] = layer
        return tuple(dx) if listed else (dx,)
    if not multi:
        return result(np.array(y), tensors, vjp)
    bundle = result(None, tensors, vjp)
    outs = [result(np.array(v), (bundle,), _part_vjp(i, len(y))) for i, v in enumerate(y)]
    return type(y)(outs)


class _Parts:
    """The gradients of a multi-output layer call's outputs; `+` adds them part by part."""

    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts

    def __add__(self, other):
        return _Parts([b if a is None else a if b is None else a + b for a, b in zip(self.parts, other.parts)])


def _part_vjp(i, n):
    def vjp(g):
        parts = [None] * n
        parts[i] = g
        return (_Parts(parts),)
    return vjp
