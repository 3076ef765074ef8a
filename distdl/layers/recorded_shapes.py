"""A recorded layer's shapes: Keras's `build` and `compute_output_shape` (shapes with the batch
axis), or the output shape found by running `call` on a small probe batch (twice when the input
has None axes, to see which output axes follow them), with the layer's weights put back after.
distdl's own shapes have no batch axis; `keras_shape` and `batchless` convert.
"""
from __future__ import annotations

import numpy as np

from ..autodiff import Tape, recording
from ..errors import ConfigError, DistdlError
from .recorded import CALL_COUNTS, LOSS_STACK, TRAINING_STACK, all_variables, call_kwargs, flatten, track, unflatten, wrap

__all__ = ["keras_shape", "batchless", "build", "output_shape_for", "infer_output_shape", "symbolic_shape", "probe"]

def keras_shape(shape):
    """distdl's shape (no batch axis) as Keras's (batch axis None), for lists of shapes too.

    Args:
        shape: a distdl shape, or a list or tuple of them.
    """
    if isinstance(shape, list):
        return [keras_shape(s) for s in shape]
    return (None,) + tuple(shape)


def batchless(shape, layer):
    """A Keras shape from compute_output_shape (batch axis first) as distdl's.

    Args:
        shape: the Keras shape(s) a layer's compute_output_shape returned.
        layer: that layer (named in the error).
    """
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
    the tracked sublayers and their weights; returns the output shape (distdl's).

    Args:
        layer: the recorded layer.
        input_shape: its input shape(s), distdl's (no batch axis).
    """
    cls = type(layer)
    if cls._own_build:
        layer.build(keras_shape(input_shape))
    track(layer)
    if cls._own_output_shape:
        return batchless(layer.compute_output_shape(keras_shape(input_shape)), layer)
    return infer_output_shape(layer, input_shape)


def output_shape_for(layer, input_shape):
    """The output shape (distdl's) of a built recorded layer called on `input_shape` again.

    Args:
        layer: the recorded layer.
        input_shape: its input shape(s), distdl's (no batch axis).
    """
    if type(layer)._own_output_shape:
        return batchless(layer.compute_output_shape(keras_shape(input_shape)), layer)
    if input_shape == layer.input_shape:
        return layer.output_shape
    return infer_output_shape(layer, input_shape)


def infer_output_shape(layer, input_shape):
    """Run `call` on ones of batch 2 (None axes 3), and again on batch 3 (None axes 4) when the
    input has None axes; output axes that changed with them are None. Weights are restored.

    Args:
        layer: the recorded layer.
        input_shape: its input shape(s), distdl's (no batch axis).
    """
    dtypes = getattr(layer, "_input_dtypes", None)
    snapshot = [(v, v.value.copy()) for v in all_variables(layer)]
    try:
        first = _dummy_run(layer, input_shape, 2, 3, dtypes)
        has_none = any(d is None for s in _as_list(input_shape) for d in s)
        second = _dummy_run(layer, input_shape, 3, 4, dtypes) if has_none else None
    except Exception as exc:
        if isinstance(exc, DistdlError) and repr(layer.name) in str(exc):
            raise  # it names the layer already (a NumPy call in `call`, say)
        raise ConfigError(f"Layer {layer.name!r}: calling it on a probe batch of 2 rows, shaped "
                          f"{keras_shape(input_shape)}, to find its output shape failed: "
                          f"{type(exc).__name__}: {exc} Define compute_output_shape(input_shape) if "
                          f"call needs other inputs.") from exc
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
    return unflatten(first[1], shapes)


def symbolic_shape(layer, shape):
    """The output shape a symbolic call uses; a layer whose output lost the batch axis is refused.

    Args:
        layer: the recorded layer.
        shape: the output shape(s) its build or compute_output_shape gave, distdl's.
    """
    if shape is None:
        raise ConfigError(f"Layer {layer.name!r}: call returns a tensor without the batch axis first, so it "
                          f"cannot be a layer of a model; keep the batch axis (or define "
                          f"compute_output_shape).")
    return shape


def _dummy_run(layer, input_shape, batch, none_size, dtypes):
    shapes = _as_list(input_shape)
    arrays = [probe((batch,) + tuple(none_size if d is None else d for d in s), dtypes[i] if dtypes else layer.dtype)
              for i, s in enumerate(shapes)]
    x = arrays if isinstance(input_shape, list) else arrays[0]
    LOSS_STACK.append([])
    CALL_COUNTS.append({})
    TRAINING_STACK.append(False)
    tape = Tape(f"layer {layer.name!r}")  # recorded, so NumPy calls that would cut gradients show now
    try:
        with recording(tape), np.errstate(all="ignore"):
            out = layer.call(wrap(x, tape), **call_kwargs(layer, False, None))
    finally:
        LOSS_STACK.pop()
        CALL_COUNTS.pop()
        TRAINING_STACK.pop()
    return flatten(layer, out)


def probe(shape, dtype) -> np.ndarray:
    """The values a shape probe runs on: integers 1 (valid ids); floats 0.5 plus the identity on
    the last two axes when they are square, so the values are positive (log, sqrt) and square
    matrices invertible and positive definite (ops.linalg.inv, cholesky).

    Args:
        shape: the probe's shape (batch axis first).
        dtype: its dtype.
    """
    if np.dtype(dtype).kind != "f":
        return np.ones(shape, dtype=dtype)
    out = np.full(shape, 0.5, dtype=dtype)
    if len(shape) >= 2 and shape[-1] == shape[-2]:
        out += np.eye(shape[-1], dtype=dtype)
    return out


def _as_list(shape):
    return shape if isinstance(shape, list) else [shape]
