"""Executors that run a model's layers forward and backward.

`Chain` is the fast path for `Sequential` (a plain loop); `Graph` runs a
functional model's layer calls in topological order, handling multi-input and
multi-output layers, fan-out (gradients summed) and shared layers (caches and
weight gradients kept per call).

Like PyTorch, neither computes gradients nobody uses: during `backward` each
layer whose inputs depend on no weights gets `need_input_grad = False` (and it
is set back to True afterwards, so standalone calls always get dx).
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .layers.base import SymbolicTensor
from .layers.core import InputLayer


class Chain:
    """Runs layers one after another: one input, one output."""

    def __init__(self, layers):
        self.layers = list(layers)
        self.activity_loss = 0.0
        first = next((i for i, layer in enumerate(self.layers) if layer.variables), len(self.layers))
        self.no_input_grad = self.layers[:first + 1]

    def forward(self, inputs, training=False):
        x = inputs[0]
        self.activity_loss = 0.0
        for layer in self.layers:
            x = layer.forward(x, training)
            if layer.activity_regularizer is not None:
                self.activity_loss += layer.activity_regularizer(x)
                layer._activity_out = x
        return [x]

    def backward(self, douts, fused=(False,)):
        _without_input_grads(self.no_input_grad, self._backward, douts, fused)

    def _backward(self, douts, fused):
        dy = douts[0]
        layers = self.layers
        last = len(layers) - 1
        for i in range(last, -1, -1):
            layer = layers[i]
            if layer.activity_regularizer is not None:  # never on a fused output layer
                dy = dy + layer.activity_regularizer.gradient(layer._activity_out)
            if i == last and fused[0]:
                dy = layer.backward_preactivation(dy)
            else:
                dy = layer.backward(dy)
            if dy is None:
                break


class _Node:
    __slots__ = ("layer", "inputs", "outputs", "list_input", "list_output", "cache", "shared", "out_meta")

    def __init__(self, layer, inputs, outputs, list_input, list_output):
        self.layer, self.inputs, self.outputs = layer, inputs, outputs
        self.list_input, self.list_output = list_input, list_output
        self.cache = None
        self.shared = False
        self.out_meta = None  # (shape, dtype) of each output of a multi-output call, for zero gradients


def trace(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> list[_Node]:
    """Layer calls needed to compute `outputs` from `inputs`, in topological order."""
    input_ids = {id(t) for t in inputs}
    order, state, nodes = [], {}, {}

    def node_of(t):
        # the outputs of one multi-output call share `siblings` but not their `inputs` list
        key = (id(t.layer), id(t.siblings) if t.siblings is not None else id(t.inputs))
        if key not in nodes:
            outs = t.siblings or [t]
            nodes[key] = _Node(t.layer, t.inputs, outs, t.list_input, t.siblings is not None)
        return key

    def visit(t):
        if id(t) in input_ids:
            return
        if isinstance(t.layer, InputLayer):
            raise ConfigError(f"The model's outputs depend on input {t.layer.name!r}, "
                              f"which is not among the model's inputs.")
        key = node_of(t)
        if state.get(key) == "done":
            return
        if state.get(key) == "open":
            raise ConfigError(f"The model graph has a cycle through layer {t.layer.name!r}.")
        state[key] = "open"
        for parent in t.inputs:
            visit(parent)
        state[key] = "done"
        order.append(nodes[key])

    for t in outputs:
        visit(t)
    used = {id(p) for n in order for p in n.inputs} | {id(t) for t in outputs}
    for t in inputs:
        if id(t) not in used:
            raise ConfigError(f"Input {t.layer.name!r} is not connected to any of the model's outputs.")
    calls = {}
    for n in order:
        calls[id(n.layer)] = calls.get(id(n.layer), 0) + 1
    for n in order:
        n.shared = calls[id(n.layer)] > 1
        if n.shared:
            n.layer.reuse_buffers = False
    return order


class Graph:
    """Runs a traced functional graph forward and backward."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.nodes = trace(self.inputs, self.outputs)
        seen, self.layers = set(), []
        for n in self.nodes:
            if id(n.layer) not in seen:
                seen.add(id(n.layer))
                self.layers.append(n.layer)
        self.activity_loss = 0.0
        self.no_input_grad = _layers_without_input_grads(self.nodes)

    def forward(self, inputs, training=False):
        values = {id(t): x for t, x in zip(self.inputs, inputs)}
        self.activity_loss = 0.0
        for n in self.nodes:
            args = [values[id(t)] for t in n.inputs]
            y = n.layer.forward(args if n.list_input else args[0], training)
            ys = y if n.list_output else [y]
            for t, v in zip(n.outputs, ys):
                values[id(t)] = v
            if n.list_output:
                n.out_meta = [(v.shape, v.dtype) for v in ys]
            if n.layer.activity_regularizer is not None:
                self.activity_loss += sum(n.layer.activity_regularizer(v) for v in ys)
            if n.shared or n.layer.activity_regularizer is not None:
                n.cache = (n.layer.call_state(), ys)
        return [values[id(t)] for t in self.outputs]

    def backward(self, douts, fused=None):
        _without_input_grads(self.no_input_grad, self._backward, douts, fused)

    def _backward(self, douts, fused):
        fused = fused or [False] * len(self.outputs)
        grads = {}
        fused_ids = set()
        for t, d, f in zip(self.outputs, douts, fused):
            _accumulate(grads, t, d)
            if f:
                fused_ids.add(id(t))
        done = set()  # layers whose weight gradients this pass has written
        for n in reversed(self.nodes):
            dys = [grads.get(id(t)) for t in n.outputs]
            if all(d is None for d in dys):
                continue
            layer = n.layer
            if n.cache is not None:
                layer.set_call_state(n.cache[0])
            if layer.activity_regularizer is not None:
                dys = [(d if d is not None else np.zeros_like(v)) + layer.activity_regularizer.gradient(v)
                       for d, v in zip(dys, n.cache[1])]
            # a shared layer's later calls add to what its earlier backward calls wrote
            saved = [v.grad.copy() for v in layer.trainable_weights] if id(layer) in done else None
            if not n.list_output and id(n.outputs[0]) in fused_ids:
                dx = layer.backward_preactivation(dys[0])
            elif n.list_output:
                dx = layer.backward([d if d is not None else np.zeros(shape, dtype)
                                     for d, (shape, dtype) in zip(dys, n.out_meta)])
            else:
                dx = layer.backward(dys[0])
            done.add(id(layer))
            if saved is not None:
                for v, g in zip(layer.trainable_weights, saved):
                    v.grad += g
            if dx is None:
                continue
            for t, d in zip(n.inputs, dx if n.list_input else [dx]):
                if d is not None and not isinstance(t.layer, InputLayer):
                    _accumulate(grads, t, d)
        for layer in self.layers:  # layers no gradient reached this pass
            if id(layer) not in done:
                for v in layer.trainable_weights:
                    v.grad.fill(0)


def _accumulate(grads, t, d):
    if d is None:
        return
    prev = grads.get(id(t))
    grads[id(t)] = d if prev is None else prev + d


def _layers_without_input_grads(nodes):
    """Layers none of whose calls has an input that depends on a weight."""
    depends, needs = set(), {}
    for n in nodes:
        need = any(id(t) in depends for t in n.inputs)
        needs[id(n.layer)] = needs.get(id(n.layer), False) or need
        if need or n.layer.variables:
            depends.update(id(t) for t in n.outputs)
    seen, layers = set(), []
    for n in nodes:
        if not needs[id(n.layer)] and id(n.layer) not in seen:
            seen.add(id(n.layer))
            layers.append(n.layer)
    return layers


def _without_input_grads(layers, backward, douts, fused):
    for layer in layers:
        layer.need_input_grad = False
    try:
        backward(douts, fused)
    finally:
        for layer in layers:
            layer.need_input_grad = True
