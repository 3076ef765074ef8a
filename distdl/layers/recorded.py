"""Layers written as Keras writes them: `call` over distdl.ops, differentiated by recording.

A layer class that defines `call` and no `forward` of its own is *recorded*: `forward` runs
`call` on a tape (distdl.autodiff) when training, `backward` runs that tape back, and nobody
writes a backward pass. Everything else about the layer is Keras 3's:

- `build(input_shape)` and `compute_output_shape(input_shape)` see shapes with the batch axis
  (None), as in Keras; without `compute_output_shape` the output shape comes from running `call`
  once on a small batch of ones (twice when the input has None axes, to see which output axes
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
"""
from __future__ import annotations

import inspect

import numpy as np

from ..autodiff import Tape, Tensor, as_tensor, backward as run_backward, current_tape, recording, result
from ..autodiff.tensor import is_tracked
from ..errors import ConfigError

_TRAINING: list = []   # the `training` flag of the calls in progress (Keras's call context)
_LOSSES: list = []     # where add_loss puts its tensors during a top-level call
_CALLS: list = []      # per top-level call: id(hand-written layer) -> its calls so far
_RANDOM: list = []     # per top-level call: [run context, random stream, draws so far, rows]


def random_place():
    """Where a random draw happens (distdl.random): (run context, the layer's random stream,
    which draw of this call it is, the call's batch rows), or None outside a layer's call."""
    if not _RANDOM:
        return None
    place = _RANDOM[-1]
    place[2] += 1
    return place[0], place[1], place[2] - 1, place[3]


def call_parameters(cls) -> frozenset:
    """The parameter names of `cls.call` (to pass `training` / `mask` only where declared)."""
    try:
        params = inspect.signature(cls.call).parameters
    except (TypeError, ValueError):
        return frozenset()
    names = set(params)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        names |= {"training", "mask"}
    return frozenset(names)


# ----- shapes -----------------------------------------------------------------------
def keras_shape(shape):
    """distdl's shape (no batch axis) as Keras's (batch axis None), for lists of shapes too."""
    if isinstance(shape, list):
        return [keras_shape(s) for s in shape]
    return (None,) + tuple(shape)


def batchless(shape, layer):
    """A Keras shape from compute_output_shape (batch axis first) as distdl's."""
    if isinstance(shape, dict):
        return {k: batchless(s, layer) for k, s in shape.items()}
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return type(shape)(batchless(s, layer) for s in shape)
    shape = tuple(shape)
    if not shape:
        raise ConfigError(f"Layer {layer.name!r}: compute_output_shape returned (), a shape without the "
                          f"batch axis; return (None, ...) as Keras does.")
    return shape[1:]


def build(layer, input_shape):
    """Build a recorded layer for `input_shape` (distdl's, no batch axis): Keras's `build`, then
    the tracked sublayers and their weights; returns the output shape (distdl's)."""
    cls = type(layer)
    if cls._own_build:
        layer.build(keras_shape(input_shape))
    track(layer)
    if cls._own_output_shape:
        return batchless(layer.compute_output_shape(keras_shape(input_shape)), layer)
    return infer_output_shape(layer, input_shape)


def output_shape_for(layer, input_shape):
    """The output shape (distdl's) of a built recorded layer called on `input_shape` again."""
    if type(layer)._own_output_shape:
        return batchless(layer.compute_output_shape(keras_shape(input_shape)), layer)
    if input_shape == layer.input_shape:
        return layer.output_shape
    return infer_output_shape(layer, input_shape)


def infer_output_shape(layer, input_shape):
    """Run `call` on ones of batch 2 (None axes 3), and again on batch 3 (None axes 4) when the
    input has None axes; output axes that changed with them are None. Weights are restored."""
    dtypes = getattr(layer, "_input_dtypes", None)
    snapshot = [(v, v.value.copy()) for v in _all_variables(layer)]
    try:
        first = _dummy_run(layer, input_shape, 2, 3, dtypes)
        has_none = any(d is None for s in _as_list(input_shape) for d in s)
        second = _dummy_run(layer, input_shape, 3, 4, dtypes) if has_none else None
    finally:
        for v, value in snapshot:
            v.value[...] = value
        track(layer)
    shapes = []
    for i, t in enumerate(first[0]):
        s = np.shape(t.value)
        if len(s) == 0 or s[0] != 2:  # fine when called on arrays; refused in a model (symbolic_shape)
            return None
        if second is not None:
            s2 = np.shape(second[0][i].value)
            s = tuple(None if a != b else a for a, b in zip(s, s2))
        shapes.append(tuple(s[1:]))
    return _unflatten(first[1], shapes)


def symbolic_shape(layer, shape):
    """The output shape a symbolic call uses; a layer whose output lost the batch axis is refused."""
    if shape is None:
        raise ConfigError(f"Layer {layer.name!r}: call returns a tensor without the batch axis first, so it "
                          f"cannot be a layer of a model; keep the batch axis (or define "
                          f"compute_output_shape).")
    return shape


def _dummy_run(layer, input_shape, batch, none_size, dtypes):
    shapes = _as_list(input_shape)
    arrays = [np.ones((batch,) + tuple(none_size if d is None else d for d in s),  # ones: valid ids, no log(0)
                      dtype=(dtypes[i] if dtypes else layer.dtype)) for i, s in enumerate(shapes)]
    x = arrays if isinstance(input_shape, list) else arrays[0]
    _LOSSES.append([])
    _CALLS.append({})
    _TRAINING.append(False)
    tape = Tape(f"layer {layer.name!r}")  # recorded, so NumPy calls that would cut gradients show now
    try:
        with recording(tape), np.errstate(all="ignore"):
            out = layer.call(_wrap(x, tape), **_call_kwargs(layer, False, None))
    finally:
        _LOSSES.pop()
        _CALLS.pop()
        _TRAINING.pop()
    return _flatten(layer, out)


def _as_list(shape):
    return shape if isinstance(shape, list) else [shape]


# ----- tracking -----------------------------------------------------------------------
def sublayers(layer) -> list:
    """Layers assigned to `layer`'s attributes (directly or in lists, tuples and dicts), in order."""
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
    """Make the tracked sublayers' weights part of `layer.variables` (after its own, once)."""
    layer._sublayers = sublayers(layer)
    have = {id(v) for v in layer.variables}
    for sub in layer._sublayers:
        for v in sub.variables:
            if id(v) not in have:
                have.add(id(v))
                layer.variables.append(v)


def _all_variables(layer) -> list:
    out = list(layer.variables)
    for sub in sublayers(layer):
        out.extend(_all_variables(sub))
    return out


def hand_down(layer) -> None:
    """Give the tracked sublayers the layer's run context and random streams of their own."""
    for j, sub in enumerate(layer._sublayers):
        sub.ctx = layer.ctx
        sub.stream_id = ((layer.stream_id + 1) << 12) + j
        if sub._recorded:
            hand_down(sub)


# ----- forward and backward -------------------------------------------------------------
def _call_kwargs(layer, training, mask) -> dict:
    params = layer._call_params
    kwargs = {}
    if "training" in params:
        kwargs["training"] = training
    if mask is not None and "mask" in params:
        kwargs["mask"] = mask
    return kwargs


def _wrap(x, tape):
    """Arrays as the Tensors `call` gets: leaves of `tape` (their gradient is wanted) or constants."""
    if isinstance(x, (list, tuple)):
        return [_wrap(a, tape) for a in x]
    if isinstance(x, Tensor):
        return x
    return tape.leaf(x) if tape is not None else Tensor(x)


def _flatten(layer, out):
    """(list of output Tensors, structure) of what `call` returned; anything else is refused."""
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


def _unflatten(structure, items):
    if structure is None:
        return items[0]
    kind, meta = structure
    if kind == "dict":
        return dict(zip(meta, items))
    return tuple(items) if kind == "tuple" else list(items)


def forward(layer, x, training=False, mask=None):
    """Run `call` (recorded when training); returns the output array(s) in `call`'s structure."""
    tape = Tape(f"layer {layer.name!r}") if training else None
    hand_down(layer)
    inputs = _wrap(x, tape if layer.need_input_grad else None)
    losses: list = []
    _LOSSES.append(losses)
    _CALLS.append({})
    _TRAINING.append(bool(training))
    _RANDOM.append([layer.ctx, layer.stream_id, 0, _rows(x)])
    try:
        with recording(tape):
            out = layer.call(inputs, **_call_kwargs(layer, bool(training), mask))
    finally:
        _LOSSES.pop()
        _CALLS.pop()
        _TRAINING.pop()
        _RANDOM.pop()
    outs, structure = _flatten(layer, out)
    weight = _rows_share(layer, x) if losses else 1.0
    layer.losses = [t.value for t in losses]
    layer.added_loss = weight * float(sum(np.sum(v, dtype=np.float64) for v in layer.losses))
    layer.cache = (tape, inputs, outs, structure, losses, weight) if tape is not None else None
    return _unflatten(structure, [_as_output(layer, t.value) for t in outs])


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
    trainable weight's gradient, return the inputs' gradients (None where not wanted)."""
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
    for sub_id, sub in tape.layer_calls.values():
        written.update(id(v) for v in sub.trainable_weights)
    for v in layer.trainable_weights:
        if id(v) not in written and v.grad is not None:
            v.grad.fill(0)
    tape.weights.clear()  # their leaves point back at the tape: free the recording by reference counts
    tape.losses.clear()
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
    """Keras's `add_loss` inside `call`: collected for the top-level call in progress."""
    t = as_tensor(loss)
    if _LOSSES:
        _LOSSES[-1].append(t)
    else:  # outside any call: only reported by `layer.losses`
        layer.losses = list(getattr(layer, "losses", [])) + [t.value]


# ----- a layer called on tensors (inside another layer's call) ----------------------------
def call_on_tensors(layer, inputs, training=None, mask=None):
    """`layer(tensors)` inside a call: a recorded layer runs its `call` inline; a hand-written
    one runs `forward` and is one node of the current tape."""
    if training is None:
        training = _TRAINING[-1] if _TRAINING else False
    listed = isinstance(inputs, (list, tuple))
    tensors = [as_tensor(t) for t in (inputs if listed else [inputs])]
    shapes = [np.shape(t.value)[1:] for t in tensors]
    if not layer.built:
        layer._input_dtypes = [np.result_type(t.value) for t in tensors]
        layer.ensure_built(shapes if listed else shapes[0])
    if layer._recorded:
        hand_down(layer)
        _TRAINING.append(bool(training))
        try:
            out = layer.call(tensors if listed else tensors[0], **_call_kwargs(layer, bool(training), mask))
        finally:
            _TRAINING.pop()
        return out
    return _hand_written_call(layer, tensors, listed, bool(training), mask)


def _hand_written_call(layer, tensors, listed, training, mask):
    calls = _CALLS[-1] if _CALLS else {}
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
        done[key] = (key, layer)
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
