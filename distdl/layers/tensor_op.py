"""An op on symbolic tensors as a node of the functional graph: the `TensorOp` layer.

Keras 3 lets a functional model (and the `call` of a subclassed model, which distdl traces into
one) apply `keras.ops` and Python's operators to symbolic tensors:
`x = ops.relu(layers.Dense(8)(inputs)) * 2.0`. Each such call becomes a TensorOp (a recorded
layer: its gradient comes from the recording). `distdl.ops` registers its functions here
(`register`) and sends calls with a symbolic argument to `symbolic_call`; the arithmetic that
Python's operators need is registered from distdl.autodiff at once. The TensorOp keeps the other
arguments as constants; its config names the op and holds those constants (numbers, strings,
lists, small arrays), so a model with ops saves and loads without code: the op is looked up by
name in this table.

A TensorOp output may lose the batch axis (`ops.mean(x)` over everything, as a VAE's KL term):
it is then `batched = False`, its shape is the whole shape, and it may only feed other ops or
`add_loss`.
"""
from __future__ import annotations

import numpy as np

from ..autodiff import tensor as arithmetic
from ..autodiff.tensor import Tensor
from ..errors import ConfigError
from .base import Layer, SymbolicTensor, unique_name
from .recorded_shapes import probe

__all__ = ["TensorOp", "register", "has_symbolic", "symbolic_call"]

# op name -> the plain function (configs name ops); Python's operators need these at once
_OPS: dict = {f.__name__: f for f in (arithmetic.add, arithmetic.subtract, arithmetic.multiply,
                                      arithmetic.divide, arithmetic.power, arithmetic.negative,
                                      arithmetic.absolute, arithmetic.matmul, arithmetic.getitem,
                                      arithmetic.transpose)}


def register(fn) -> None:
    """Make a distdl.ops function usable in graphs and configs under its name.

    Args:
        fn: the op function; its `__name__` is the name configs use.
    """
    _OPS[fn.__name__] = fn


def has_symbolic(values) -> bool:
    """Whether a SymbolicTensor is among `values` (or in their lists and tuples).

    Args:
        values: an op call's arguments.
    """
    for v in values:
        if type(v) is SymbolicTensor:
            return True
        if type(v) in (list, tuple) and has_symbolic(v):
            return True
    return False


def _template(value, found: list):
    """`value` with each SymbolicTensor replaced by {"__input__": i} (its place in `found`)."""
    if type(value) is SymbolicTensor:
        found.append(value)
        return {"__input__": len(found) - 1}
    if isinstance(value, (list, tuple)):
        items = [_template(v, found) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, slice):
        return {"__slice__": [_template(v, found) for v in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"__ellipsis__": True}
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _template(v, found) for k, v in value.items()}
    if isinstance(value, np.dtype) or isinstance(value, type):
        return str(np.dtype(value))
    raise ConfigError(f"ops.{{op}} on a symbolic tensor got an argument of type {type(value).__name__}, which a "
                      f"model cannot keep; use numbers, strings, slices, lists or arrays (a weight belongs in "
                      f"a layer).")


def _fill(value, inputs):
    """A template with the inputs put back (the inverse of `_template`)."""
    if isinstance(value, dict):
        if "__input__" in value:
            return inputs[value["__input__"]]
        if "__tuple__" in value:
            return tuple(_fill(v, inputs) for v in value["__tuple__"])
        if "__array__" in value:
            return np.asarray(value["__array__"], dtype=value["dtype"])
        if "__slice__" in value:
            return slice(*(_fill(v, inputs) for v in value["__slice__"]))
        if "__ellipsis__" in value:
            return Ellipsis
        return {k: _fill(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, inputs) for v in value]
    return value


def symbolic_call(name, args, kwargs):
    """The output(s) of op `name` on arguments holding symbolic tensors: a new TensorOp's call.

    Args:
        name: the op's name in distdl.ops.
        args: its positional arguments (some SymbolicTensors).
        kwargs: its keyword arguments.
    """
    found: list = []
    try:
        targs, tkwargs = _template(list(args), found), _template(dict(kwargs), found)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("{op}", name)) from None
    dtype = next((t.dtype for t in found if str(t.dtype).startswith("float")), None)
    return TensorOp(name, targs, tkwargs, dtype=dtype)(found)


class TensorOp(Layer):
    """One distdl.ops call in a functional graph.

    Args:
        op: the op's name in distdl.ops, e.g. "relu".
        args: its positional arguments, with {"__input__": i} where the i-th input goes.
        kwargs: its keyword arguments, likewise.
    """

    def __init__(self, op, args=(), kwargs=None, **layer_kwargs):
        if op not in _OPS:
            from ..errors import unknown_name
            raise unknown_name("op", op, _OPS)
        layer_kwargs.setdefault("name", unique_name(op))
        super().__init__(**layer_kwargs)
        self.op, self.args, self.kwargs = op, list(args), dict(kwargs or {})

    _cast_outputs = False  # an op decides its own dtype (ops.cast)
    symbolic_call = staticmethod(symbolic_call)  # for SymbolicTensor's operators, which find it by name

    def call(self, inputs):
        """The op on the inputs put back in its arguments.

        Args:
            inputs: the input tensors, in the order of the {"__input__": i} places.
        """
        return _OPS[self.op](*_fill(self.args, inputs), **_fill(self.kwargs, inputs))

    def __call__(self, inputs, training=None, mask=None):
        """Symbolic only (the dispatcher calls it): the output tensors, their shapes found by
        running the op on probe values (recorded_shapes.probe) for batches of 2 and 3 rows."""
        first, second = self._probe(inputs, 2, 3), self._probe(inputs, 3, 4)
        outs = first if isinstance(first, (list, tuple)) else [first]
        outs2 = second if isinstance(second, (list, tuple)) else [second]
        tensors = []
        for i, (a, b) in enumerate(zip(outs, outs2)):
            if not isinstance(a, Tensor):
                raise ConfigError(f"ops.{self.op} on symbolic tensors must give tensors, got {type(a).__name__}.")
            sa, sb = np.shape(a.value), np.shape(b.value)
            batched = any(t.batched for t in inputs) and len(sa) > 0 and (sa[0], sb[0]) == (2, 3)
            shape = tuple(None if x != y else x for x, y in zip(sa, sb))
            t = SymbolicTensor(shape[1:] if batched else shape, self, inputs, i, str(np.result_type(a.value)),
                               list_input=True)
            t.batched = batched
            tensors.append(t)
        self.input_shape = [t.shape for t in inputs]
        self.output_shape = [t.shape for t in tensors] if len(tensors) > 1 else tensors[0].shape
        self.built = True
        if len(tensors) > 1:
            for t in tensors:
                t.siblings = tensors
        if "_first_node" not in self.__dict__:
            self.set_node_tensors(inputs, tensors if len(tensors) > 1 else tensors[0])
        if isinstance(first, (list, tuple)):
            return type(first)(tensors)
        return tensors[0]

    def _probe(self, inputs, batch, none_size):
        values = []
        for t in inputs:
            shape = tuple(none_size if d is None else d for d in t.shape)
            values.append(Tensor(probe(((batch,) if t.batched else ()) + shape, t.dtype)))
        with np.errstate(all="ignore"):
            return self.call(values)

    def get_config(self) -> dict:
        return {**super().get_config(), "op": self.op, "args": self.args, "kwargs": self.kwargs}
