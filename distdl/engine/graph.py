"""Executors that run a model's layers forward and backward.

`Chain` is the fast path for `Sequential` (a plain loop); `Graph` runs a
functional model's layer calls in topological order, handling multi-input and
multi-output layers, fan-out (gradients summed) and shared layers (caches and
weight gradients kept per call).

Like PyTorch, neither computes gradients nobody uses: during `backward` each
layer whose inputs depend on no weights gets `need_input_grad = False` (and it
is set back to True afterwards, so standalone calls always get dx).

`activity_loss` sums, per forward, the activity regularizers' values and what layers added with
`add_loss` (`layer.added_loss`, already weighted for this rank's share of the batch).

Masks (Keras 3): when a layer that creates masks is present (Embedding(mask_zero=True),
Masking), forward carries a (batch, timesteps) bool mask beside each tensor, hands it to
layers that take one, passes it on through layers that support masking and drops it
elsewhere; `output_masks` then lists the model outputs' masks (None where unmasked, and
None altogether without mask sources, whose forward is the plain loop).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..layers.base import SymbolicTensor
from ..layers.core import InputLayer

__all__ = ["Chain", "trace", "Graph", "train_forward"]


class Chain:
    """Runs layers one after another: one input, one output (a Sequential's executor).

    Args:
        layers: the built layers, in order.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.activity_loss = 0.0
        first = next((i for i, layer in enumerate(self.layers) if layer.variables), len(self.layers))
        self.no_input_grad = self.layers[:first + 1]
        self.masked = any(layer.creates_mask for layer in self.layers)
        self.output_masks = None
        if self.masked:   # the plain loop below stays exactly as it is without masks
            self.forward = self._forward_masked

    def forward(self, inputs: list, training: bool = False) -> list:
        """Run every layer; returns [the output]. `activity_loss` becomes the sum of the layers'
        added losses and activity penalties.

        Args:
            inputs: [the input batch].
            training: run layers in training mode (Dropout, BatchNormalization).
        """
        x = inputs[0]
        self.activity_loss = 0.0
        for layer in self.layers:
            x = layer.forward(x, training)
            self.activity_loss += layer.added_loss
            if layer.activity_regularizer is not None:
                self.activity_loss += layer.activity_regularizer(x)
                layer._activity_out = x
        return [x]

    def _forward_masked(self, inputs, training=False):
        x = inputs[0]
        self.activity_loss = 0.0
        mask = None
        for layer in self.layers:
            y = _call(layer, x, mask, training)
            mask = layer.compute_mask(x, mask) if layer.supports_masking else None
            x = y
            self.activity_loss += layer.added_loss
            if layer.activity_regularizer is not None:
                self.activity_loss += layer.activity_regularizer(x)
                layer._activity_out = x
        self.output_masks = None if mask is None else [mask]
        return [x]

    def backward(self, douts: list, fused=(False,), input_grads: bool = False):
        """Gradients of every weight; with `input_grads` (a model nested in another) also
        returns [dx] for the input, else skips what only dx needs.

        Args:
            douts: [the loss's gradient with respect to the output].
            fused: [whether that gradient is with respect to the last layer's pre-activation]
                (a loss fused with its softmax or sigmoid).
            input_grads: also compute and return the input's gradient.
        """
        if input_grads:
            return [self._backward(douts, fused)]
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
        return dy


class _Node:
    __slots__ = ("layer", "inputs", "outputs", "list_input", "list_output", "cache", "shared", "slot", "out_meta")

    def __init__(self, layer, inputs, outputs, list_input, list_output):
        self.layer, self.inputs, self.outputs = layer, inputs, outputs
        self.list_input, self.list_output = list_input, list_output
        self.cache = None
        self.shared = False
        self.slot = 0         # which of its layer's calls this is: its scratch call slot
        self.out_meta = None  # (shape, dtype) of each output of a multi-output call, for zero gradients


def trace(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> list[_Node]:
    """Layer calls needed to compute `outputs` from `inputs`, in topological order.

    Args:
        inputs: the graph's input tensors (from `Input`).
        outputs: the tensors to compute (outputs, and a subclassed model's added losses).
    """
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
        n.slot = calls.get(id(n.layer), 0)
        calls[id(n.layer)] = n.slot + 1
    for n in order:
        n.shared = calls[id(n.layer)] > 1
    return order


class Graph:
    """Runs a traced functional graph forward and backward.

    Args:
        inputs: the model's input tensors.
        outputs: its output tensors.
        losses: tensors a subclassed model's `call` gave `add_loss` (layers/recorded.py says how
            they are weighed); each forward adds their sum to `activity_loss`, backward their
            gradient.
    """

    def __init__(self, inputs, outputs, losses=()):
        self.inputs, self.outputs, self.losses = list(inputs), list(outputs), list(losses)
        self.loss_share = 1.0
        self.loss_values = []  # the latest forward's values of `losses`
        self.nodes = trace(self.inputs, self.outputs + self.losses)
        seen, self.layers = set(), []
        for n in self.nodes:
            if id(n.layer) not in seen:
                seen.add(id(n.layer))
                self.layers.append(n.layer)
        self.activity_loss = 0.0
        self.no_input_grad = _layers_without_input_grads(self.nodes)
        self.masked = any(layer.creates_mask for layer in self.layers)
        self.output_masks = None

    def forward(self, inputs: list, training: bool = False) -> list:
        """Run every layer call in order; returns the outputs' values. `activity_loss` becomes
        the sum of the added losses and activity penalties.

        Args:
            inputs: one batch per input tensor, in input order.
            training: run layers in training mode (Dropout, BatchNormalization).
        """
        values = {id(t): x for t, x in zip(self.inputs, inputs)}
        masks = {} if self.masked else None
        self.activity_loss = 0.0
        for n in self.nodes:
            args = [values[id(t)] for t in n.inputs]
            if n.shared:  # each call of a shared layer keeps its own buffers (layers/scratch.py)
                n.layer.select_call(n.slot)
            if masks is None:
                y = n.layer.forward(args if n.list_input else args[0], training)
            else:
                y = self._masked_call(n, args, masks, training)
            ys = y if not n.list_output else [y[k] for k in sorted(y)] if isinstance(y, dict) else y
            ys = ys if n.list_output else [ys]
            for t, v in zip(n.outputs, ys):
                values[id(t)] = v
            if n.list_output:
                n.out_meta = [(v.shape, v.dtype) for v in ys]
            self.activity_loss += n.layer.added_loss
            if n.layer.activity_regularizer is not None:
                self.activity_loss += sum(n.layer.activity_regularizer(v) for v in ys)
            if n.shared or n.layer.activity_regularizer is not None:
                n.cache = (n.layer.call_state(), ys)
        if self.losses:
            ctx = self.nodes[-1].layer.ctx
            self.loss_share = len(inputs[0]) / ctx.global_rows if ctx.global_rows else 1.0
            self.activity_loss += self.loss_share * float(sum(np.sum(values[id(t)], dtype=np.float64)
                                                              for t in self.losses))
            self.loss_values = [values[id(t)] for t in self.losses]
        if masks is not None:
            out_masks = [masks.get(id(t)) for t in self.outputs]
            self.output_masks = None if all(m is None for m in out_masks) else out_masks
        return [values[id(t)] for t in self.outputs]

    @staticmethod
    def _masked_call(n, args, masks, training):
        """One layer call with its input mask(s); records the output masks in `masks`."""
        layer = n.layer
        in_masks = [masks.get(id(t)) for t in n.inputs]
        if n.list_input:
            mask = None if all(m is None for m in in_masks) else in_masks
            x = args
        else:
            mask, x = in_masks[0], args[0]
        y = _call(layer, x, mask, training)
        out = layer.compute_mask(x, mask) if layer.supports_masking else None
        # as Keras: a single mask for a multi-output call belongs to its first output
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        for t, m in zip(n.outputs, outs):
            if m is not None:
                masks[id(t)] = m
        return y

    def backward(self, douts, fused=None, input_grads=False):
        """Gradients of every weight; with `input_grads` (a model nested in another) also
        returns the gradient of each input (None where none reaches it).

        Args:
            douts: the loss's gradient with respect to each output.
            fused: per output, whether its gradient is with respect to the output layer's
                pre-activation (a loss fused with its softmax or sigmoid); None: none is.
            input_grads: also compute and return the inputs' gradients.
        """
        if input_grads:
            return self._backward(douts, fused, True)
        _without_input_grads(self.no_input_grad, self._backward, douts, fused)

    def _backward(self, douts, fused, input_grads=False):
        fused = fused or [False] * len(self.outputs)
        grads = {}
        fused_ids = set()
        for t, d, f in zip(self.outputs, douts, fused):
            _accumulate(grads, t, d)
            if f:
                fused_ids.add(id(t))
        for t, v in zip(self.losses, self.loss_values):
            _accumulate(grads, t, np.full(np.shape(v), self.loss_share, dtype=np.result_type(v)))
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
                dys = [d if d is not None else np.zeros(shape, dtype) for d, (shape, dtype) in zip(dys, n.out_meta)]
                if isinstance(layer.output_shape, dict):  # backward takes what forward gave
                    dys = dict(zip(sorted(layer.output_shape), dys))
                dx = layer.backward(dys)
            else:
                dx = layer.backward(dys[0])
            done.add(id(layer))
            if saved is not None:
                for v, g in zip(layer.trainable_weights, saved):
                    v.grad += g
            if dx is None:
                continue
            for t, d in zip(n.inputs, dx if n.list_input else [dx]):
                if d is not None and (input_grads or not isinstance(t.layer, InputLayer)):
                    _accumulate(grads, t, d)
        for layer in self.layers:  # layers no gradient reached this pass
            if id(layer) not in done:
                for v in layer.trainable_weights:
                    v.grad.fill(0)
        return [grads.get(id(t)) for t in self.inputs]


def _call(layer, x, mask, training):
    """layer.forward, with the mask for layers that take one."""
    if mask is not None and layer.takes_mask:
        return layer.forward(x, training, mask=mask)
    return layer.forward(x, training)


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


def train_forward(executor, inputs) -> list:
    """A training forward of a top-level model. Recorded layers (layers/recorded.py) whose input
    gradient nobody uses (those in `no_input_grad`) do not record their inputs, so their backward
    skips that work (e.g. x @ W's dx) instead of computing and dropping it.

    Args:
        executor: the model's `Chain` or `Graph`.
        inputs: one batch per model input.
    """
    skip = executor.__dict__.get("_recorded_without_input_grad")
    if skip is None:
        skip = executor._recorded_without_input_grad = [layer for layer in executor.no_input_grad
                                                        if layer._recorded]
    if not skip:
        return executor.forward(inputs, training=True)
    for layer in skip:
        layer.need_input_grad = False
    try:
        return executor.forward(inputs, training=True)
    finally:
        for layer in skip:
            layer.need_input_grad = True
