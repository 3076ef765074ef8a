"""Layers written as Keras writes them: `call` over distdl.ops, differentiated by recording.

A layer class that defines `call` and no `forward` of its own is *recorded*: `forward` runs
`call` on a tape (distdl.autodiff) when training, `backward` runs that tape back, and nobody
writes a backward pass. Everything else about the layer is Keras 3's:

- `build(input_shape)` and `compute_output_shape(input_shape)` see shapes with the batch axis
  (None), as in Keras; without `compute_output_shape` the output shape comes from running `call`
  once on a small probe batch (twice when the input has None axes, to see which output axes
  follow them), with the layer's weights put back afterwards.
- `call` gets `training` and `mask` when its signature names them; a layer called inside another
  inherits the caller's `training` unless given one (Keras's call context).
- Layers assigned to attributes (also in lists, tuples and dicts) are tracked: their weights are
  the layer's, after its own (Keras's order), and they share its run context.
- `add_loss(x)` inside `call` adds sum(x) to the training loss, weighted by this rank's rows /
  the global batch rows, so a batch mean or a weight penalty sums to the one-process value on any
  number of ranks (a sum over the batch rows is not exact under several ranks).
- A hand-written (built-in) layer called on tensors inside a recording is one node of the tape
  whose vjp is that layer's `backward`; each of its calls keeps its own scratch slot and cache.

Shapes and building live in recorded_shapes.py, layers called inside a `call` in inner_calls.py;
the stacks below are the state of the calls in progress they share.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..autodiff import Tape, Tensor, as_tensor, backward as run_backward, recording
from ..errors import ConfigError

__all__ = ["random_place", "call_parameters", "sublayers", "track", "all_variables", "hand_down", "call_kwargs",
           "wrap", "flatten", "unflatten", "forward", "backward", "add_loss"]

TRAINING_STACK: list = []  # the `training` flag of the calls in progress (Keras's call context)
LOSS_STACK: list = []      # where add_loss puts its tensors during a top-level call
CALL_COUNTS: list = []     # per top-level call: id(hand-written layer) -> its calls so far
RANDOM_STACK: list = []    # per top-level call: [run context, random stream, draws so far, rows]


def random_place():
    """Where a random draw happens (distdl.random): (run context, the layer's random stream,
    which draw of this call it is, the call's batch rows), or None outside a layer's call."""
    if not RANDOM_STACK:
        return None
    place = RANDOM_STACK[-1]
    place[2] += 1
    return place[0], place[1], place[2] - 1, place[3]


def call_parameters(cls) -> frozenset:
    """The parameter names of `cls.call` (to pass `training` / `mask` only where declared).

    Args:
        cls: a Layer subclass that defines `call`.
    """
    try:
        params = inspect.signature(cls.call).parameters
    except (TypeError, ValueError):
        return frozenset()
    names = set(params)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        names |= {"training", "mask"}
    return frozenset(names)


# ----- tracking -----------------------------------------------------------------------
def sublayers(layer) -> list:
    """Layers assigned to `layer`'s attributes (directly or in lists, tuples and dicts), in order.

    Args:
        layer: the recorded layer.
    """
    found, seen = [], {id(layer)}

    def visit(value):
        if getattr(value, "_is_layer", False):
            if id(value) not in seen:
                seen.add(id(value))
                found.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
    for name, value in vars(layer).items():
        if not name.startswith("_") or name == "_layers":
            visit(value)
    return found


def track(layer) -> None:
    """Make the tracked sublayers' weights part of `layer.variables` (after its own, once).

    Args:
        layer: the recorded layer.
    """
    layer._sublayers = sublayers(layer)
    have = {id(v) for v in layer.variables}
    for sub in layer._sublayers:
        for v in sub.variables:
            if id(v) not in have:
                have.add(id(v))
                layer.variables.append(v)


def all_variables(layer) -> list:
    """The variables of `layer` and, recursively, of its sublayers.

    Args:
        layer: any layer.
    """
    out, seen = [], set()  # a tracked sublayer's variables are in `layer.variables` too
    for v in list(layer.variables) + [v for sub in sublayers(layer) for v in all_variables(sub)]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def hand_down(layer) -> None:
    """Give the tracked sublayers the layer's run context and random streams of their own.

    Args:
        layer: the recorded layer.
    """
    for j, sub in enumerate(layer._sublayers):
        sub.ctx = layer.ctx
        sub.stream_id = ((layer.stream_id + 1) << 12) + j
        if sub._recorded:
            hand_down(sub)


# ----- forward and backward -------------------------------------------------------------
def call_kwargs(layer, training, mask) -> dict:
    """The keyword arguments `call` declares: `training` always, `mask` when one is given.

    Args:
        layer: the recorded layer.
        training: the call's training flag.
        mask: the call's mask, or None.
    """
    params = layer._call_params
    kwargs = {}
    if "training" in params:
        kwargs["training"] = training
    if mask is not None and "mask" in params:
        kwargs["mask"] = mask
    return kwargs


def wrap(x, tape):
    """Arrays as the Tensors `call` gets: leaves of `tape` (their gradient is wanted) or constants.

    Args:
        x: an array, a Tensor, or a list or tuple of them.
        tape: the recording tape, or None (constants).
    """
    if isinstance(x, (list, tuple)):
        return [wrap(a, tape) for a in x]
    if isinstance(x, Tensor):
        return x
    return tape.leaf(x) if tape is not None else Tensor(x)


def flatten(layer, out):
    """(list of output Tensors, structure) of what `call` returned; anything else is refused.

    Args:
        layer: the recorded layer.
        out: what `call` returned: a Tensor, or a list, tuple or dict of them.
    """
    if isinstance(out, dict):
        keys = sorted(out)
        return [_checked(layer, out[k]) for k in keys], ("dict", keys)
    if isinstance(out, (list, tuple)):
        return [_checked(layer, t) for t in out], (type(out).__name__, len(out))
    return [_checked(layer, out)], None


def _checked(layer, t):
    if isinstance(t, Tensor):
        return t
    if hasattr(t, "trainable") and hasattr(t, "value"):  # a weight returned as it is: a copy
        return as_tensor(t) + 0
    raise ConfigError(f"Layer {layer.name!r}: call returned a {type(t).__name__}, not a distdl tensor, so "
                      f"its gradient cannot be recorded; compute the output with distdl.ops "
                      f"(e.g. ops.convert_to_tensor, ops.exp, ops.matmul) instead of NumPy.")


def unflatten(structure, items):
    """The inverse of `flatten`: `items` in the structure it recorded.

    Args:
        structure: the structure `flatten` returned (None for a single output).
        items: the values, in `flatten`'s order.
    """
    if structure is None:
        return items[0]
    kind, meta = structure
    if kind == "dict":
        return dict(zip(meta, items))
    return tuple(items) if kind == "tuple" else list(items)


def forward(layer, x, training=False, mask=None):
    """Run `call` (recorded when training); returns the output array(s) in `call`'s structure.

    Args:
        layer: the recorded layer.
        x: the input array(s).
        training: whether to record the call for a backward.
        mask: a (batch, timesteps) mask for a `call` that takes one, or None.
    """
    tape = Tape(f"layer {layer.name!r}") if training else None
    hand_down(layer)
    inputs = wrap(x, tape if layer.need_input_grad else None)
    losses: list = []
    LOSS_STACK.append(losses)
    CALL_COUNTS.append({})
    TRAINING_STACK.append(bool(training))
    RANDOM_STACK.append([layer.ctx, layer.stream_id, 0, _rows(x)])
    try:
        with recording(tape):
            out = layer.call(inputs, **call_kwargs(layer, bool(training), mask))
    finally:
        LOSS_STACK.pop()
        CALL_COUNTS.pop()
        TRAINING_STACK.pop()
        RANDOM_STACK.pop()
    outs, structure = flatten(layer, out)
    weight = _rows_share(layer, x) if losses else 1.0
    layer.losses = [t.value for t in losses]
    layer.added_loss = weight * float(sum(np.sum(v, dtype=np.float64) for v in layer.losses))
    layer.cache = (tape, inputs, outs, structure, losses, weight) if tape is not None else None
    return unflatten(structure, [_as_output(layer, t.value) for t in outs])


def _rows(x) -> int:
    """The batch rows of a call's input(s) (0 for a value without axes)."""
    first = np.shape(x[0] if isinstance(x, (list, tuple)) else x)
    return first[0] if first else 0


def _rows_share(layer, x) -> float:
    """This rank's rows / the global batch's rows (1 outside a fit, evaluate or predict)."""
    return _rows(x) / layer.ctx.global_rows if layer.ctx.global_rows else 1.0


def _as_output(layer, value):
    """An output array, in the layer's float dtype (a float64 NumPy constant in call would
    otherwise make the rest of the model float64)."""
    value = np.asarray(value)
    if layer._cast_outputs and value.dtype.kind == "f" and value.dtype != layer.dtype:
        return value.astype(layer.dtype)
    return value


def backward(layer, dy):
    """Run the latest training call's tape back from `dy` (and the added losses): overwrite each
    trainable weight's gradient, return the inputs' gradients (None where not wanted).

    Args:
        layer: the recorded layer.
        dy: the loss gradient(s) w.r.t. the output(s), in `call`'s structure.
    """
    if layer.cache is None:
        raise ConfigError(f"Layer {layer.name!r}: backward needs a training call first (forward(x, training=True)).")
    tape, inputs, outs, structure, losses, weight = layer.cache
    dys = [dy[k] for k in structure[1]] if structure and structure[0] == "dict" else (
        list(dy) if structure else [dy])
    seeds = list(zip(outs, dys)) + [(t, np.full(np.shape(t.value), weight, dtype=np.result_type(t.value)))
                                    for t in losses]
    tape.layer_calls.clear()
    grads = run_backward(tape, seeds)
    written = set()
    for var, leaf in tape.weights.values():
        if var.grad is not None:
            g = grads[leaf._index]
            if g is None:
                var.grad.fill(0)
            else:
                var.grad[...] = g
            written.add(id(var))
    for sub in tape.layer_calls.values():
        written.update(id(v) for v in sub.trainable_weights)
    for v in layer.trainable_weights:
        if id(v) not in written and v.grad is not None:
            v.grad.fill(0)
    tape.weights.clear()  # their leaves point back at the tape: free the recording by reference counts
    if not layer.need_input_grad:
        return None
    flat = inputs if isinstance(inputs, list) else [inputs]
    dx = [_input_grad(grads, t) for t in flat]
    return dx if isinstance(inputs, list) else dx[0]


def _input_grad(grads, t):
    g = grads[t._index] if t._index >= 0 else None
    value = t.value
    if g is None:
        return np.zeros_like(value)
    g = np.asarray(g)
    return g.astype(value.dtype) if g.dtype != value.dtype else g


def add_loss(layer, loss) -> None:
    """Keras's `add_loss` inside `call`: collected for the top-level call in progress.

    Args:
        layer: the recorded layer.
        loss: a tensor (summed if not a scalar).
    """
    t = as_tensor(loss)
    if LOSS_STACK:
        LOSS_STACK[-1].append(t)
    else:  # outside any call: only reported by `layer.losses`
        layer.losses = list(getattr(layer, "losses", [])) + [t.value]
