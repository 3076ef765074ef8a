"""`Tensor`: a NumPy array that ops record for reverse-mode differentiation, with Python's operators.

A Tensor holds `value` (an ndarray, or a Python scalar for constants) and, when an op on the
current tape made it, its place on that tape. `as_tensor` turns anything an op is given into a
Tensor: a weight (`VariableBase`, which `distdl.arena.Variable` extends) becomes the tape's leaf for
it, so its gradient can be written back; Python numbers stay Python numbers, so `x * 2.0` keeps
x's float32 (NumPy's rules for weak scalars).

`result(value, args, vjp)` is how every op records: the output is tracked only if one of `args`
is tracked on the current tape. The arithmetic every operator needs (`+ - * / ** @`, unary minus,
`abs`, indexing, comparisons) is defined here; the rest of keras.ops lives in `distdl.ops`.

NumPy functions applied to a tracked Tensor (`np.exp(t)`) would silently cut the recording, so
they are refused with a sentence naming the op to use instead; on untracked Tensors they compute
as usual.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import ConfigError, ShapeError
from .tape import _CURRENT, unbroadcast

__all__ = ["Tape", "Tensor", "VariableBase", "as_tensor", "value_of", "result", "is_tracked",
           "add", "subtract", "multiply", "divide", "power", "negative", "absolute", "matmul", "getitem", "transpose"]

_SCALARS = (bool, int, float, np.generic)


class _Operators:
    """Python's operators as recorded ops (shared by Tensor and weights)."""

    __slots__ = ()
    __array_priority__ = 1000  # ndarray <op> Tensor defers to the Tensor's reflected operator

    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return subtract(self, o)
    def __rsub__(self, o): return subtract(o, self)
    def __mul__(self, o): return multiply(self, o)
    def __rmul__(self, o): return multiply(o, self)
    def __truediv__(self, o): return divide(self, o)
    def __rtruediv__(self, o): return divide(o, self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return negative(self)
    def __pos__(self): return as_tensor(self)
    def __abs__(self): return absolute(self)
    def __getitem__(self, key): return getitem(self, key)
    def __floordiv__(self, o): return _constant(np.floor_divide, self, o)
    def __rfloordiv__(self, o): return _constant(np.floor_divide, o, self)
    def __mod__(self, o): return _constant(np.mod, self, o)
    def __rmod__(self, o): return _constant(np.mod, o, self)
    def __lt__(self, o): return _constant(np.less, self, o)
    def __le__(self, o): return _constant(np.less_equal, self, o)
    def __gt__(self, o): return _constant(np.greater, self, o)
    def __ge__(self, o): return _constant(np.greater_equal, self, o)
    def __and__(self, o): return _constant(np.logical_and, self, o)
    def __or__(self, o): return _constant(np.logical_or, self, o)
    def __invert__(self): return _constant(np.logical_not, self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """`ndarray + tensor` and friends record as the operator would; other NumPy ufuncs on a
        tracked tensor are refused (they would cut the gradient), on others they just compute."""
        if method == "__call__" and not kwargs and ufunc in _UFUNC_OPS:
            return _UFUNC_OPS[ufunc](*inputs)
        _refuse_numpy(ufunc.__name__, inputs)
        values = [value_of(x) for x in inputs]
        return getattr(ufunc, method)(*values, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        flat = list(args) + list(kwargs.values())
        _refuse_numpy(func.__name__, [x for a in flat for x in (a if isinstance(a, (list, tuple)) else [a])])
        args = [([value_of(x) for x in a] if isinstance(a, (list, tuple)) else value_of(a)) for a in args]
        return func(*args, **{k: value_of(v) for k, v in kwargs.items()})


class Tensor(_Operators):
    """A value (ndarray) that ops may have recorded on a tape; see the module docstring.
    Unlike a weight, a Tensor compares elementwise (`t == 0` is a bool Tensor), as Keras's do."""

    __slots__ = ("value", "_tape", "_index")
    __hash__ = object.__hash__

    def __eq__(self, o): return _constant(np.equal, self, o)
    def __ne__(self, o): return _constant(np.not_equal, self, o)

    def __init__(self, value) -> None:
        self.value = value
        self._tape = None
        self._index = -1

    @property
    def shape(self) -> tuple:
        return np.shape(self.value)

    @property
    def dtype(self):
        return np.result_type(self.value)

    @property
    def ndim(self) -> int:
        return np.ndim(self.value)

    @property
    def size(self) -> int:
        return int(np.size(self.value))

    @property
    def T(self):
        return transpose(self)

    def numpy(self) -> np.ndarray:
        """The value as an ndarray (a copy: what the user keeps is theirs)."""
        return np.array(self.value)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype=dtype)

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return int(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return f"<Tensor shape={self.shape} dtype={self.dtype}{' tracked' if is_tracked(self) else ''}>\n{self.value!r}"


class VariableBase(_Operators):
    """What a weight needs to be used in ops: `value` (ndarray) and `trainable`; the arena's
    `Variable` extends it. In a recording, a trainable weight becomes the tape's leaf for it."""

    __slots__ = ()


class Tape:
    """One recording: nodes, the leaves made for weights, and the hand-written layers run back.

    Args:
        owner: what is being recorded, for error messages (e.g. "layer 'antirectifier'").
    """

    __slots__ = ("owner", "parents", "vjps", "weights", "layer_calls")

    def __init__(self, owner: str = "") -> None:
        self.owner = owner
        self.parents: list = []      # per node: tuple of parent indices (-1: not tracked)
        self.vjps: list = []         # per node: vjp function, or None for a leaf
        self.weights: dict = {}      # id(variable) -> (variable, its leaf Tensor)
        self.layer_calls: dict = {}  # id(layer) -> hand-written layer whose backward ran this pass

    def leaf(self, value: np.ndarray):
        """A new tracked Tensor with no parents (an input or a weight) holding `value`."""
        t = Tensor(value)
        t._tape, t._index = self, len(self.vjps)
        self.parents.append(())
        self.vjps.append(None)
        return t

    def weight(self, variable):
        """The leaf Tensor standing for `variable` in this recording (one per variable)."""
        entry = self.weights.get(id(variable))
        if entry is None:
            entry = self.weights[id(variable)] = (variable, self.leaf(variable.value))
        return entry[1]


def is_tracked(t) -> bool:
    """Whether `t` is recorded on the current tape (its gradient would be computed)."""
    return isinstance(t, Tensor) and t._tape is not None and bool(_CURRENT) and t._tape is _CURRENT[-1]


def as_tensor(x) -> Tensor:
    """`x` as a Tensor: itself, a weight's leaf on the current tape, or a constant. Python numbers
    stay Python numbers inside (weak typing); lists of floats become floatx arrays."""
    kind = type(x)
    if kind is Tensor:
        return x
    if kind is np.ndarray or kind is float or kind is int:
        return Tensor(x)
    if isinstance(x, VariableBase):
        tape = _CURRENT[-1] if _CURRENT else None
        if tape is not None and x.trainable:
            return tape.weight(x)
        return Tensor(x.value)
    if isinstance(x, _SCALARS) or isinstance(x, np.ndarray):
        return Tensor(x)
    if hasattr(x, "__array__") and not isinstance(x, (list, tuple)):
        return Tensor(np.asarray(x))
    arr = np.asarray(x)
    if arr.dtype == np.float64:
        arr = arr.astype(backend.floatx())
    return Tensor(arr)


def value_of(x):
    """The raw value under a Tensor or weight; anything else as it is."""
    if isinstance(x, Tensor):
        return x.value
    if isinstance(x, VariableBase):
        return x.value
    return x


def result(value, args, vjp) -> Tensor:
    """The output Tensor of an op on `args` (Tensors); recorded with `vjp(g) -> grads per arg`
    when an arg is tracked on the current tape."""
    out = Tensor(value)
    if not _CURRENT:
        return out
    tape = _CURRENT[-1]
    if tape is None:
        return out
    if len(args) == 1:  # the common cases, without a generator (this runs once per op)
        if args[0]._tape is not tape:
            return out
        parents = (args[0]._index,)
    else:
        parents = tuple([a._index if a._tape is tape else -1 for a in args])
        if max(parents) < 0:
            return out
    out._tape, out._index = tape, len(tape.vjps)
    tape.parents.append(parents)
    tape.vjps.append(vjp)
    return out


def _binary(name, fn, a, b):
    """Apply a NumPy binary function; a broadcasting failure names the op and both shapes."""
    try:
        return fn(a.value, b.value)
    except ValueError as exc:
        if "broadcast" in str(exc) or "mismatch" in str(exc) or "shapes" in str(exc):
            raise ShapeError(f"ops.{name}: shapes {a.shape} and {b.shape} do not fit together "
                             f"({exc}).") from None
        raise


def _shape(value) -> tuple:
    """The shape of an array or a Python scalar (np.shape is slower: it dispatches)."""
    return value.shape if type(value) is np.ndarray else np.shape(value)


# ----- arithmetic (differentiated) --------------------------------------------------
def add(a, b) -> Tensor:
    """a + b, broadcasting (keras.ops.add)."""
    a, b = as_tensor(a), as_tensor(b)
    y = _binary("add", np.add, a, b)
    sa, sb = _shape(a.value), _shape(b.value)
    return result(y, (a, b), lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)))


def subtract(a, b) -> Tensor:
    """a - b (keras.ops.subtract)."""
    a, b = as_tensor(a), as_tensor(b)
    y = _binary("subtract", np.subtract, a, b)
    sa, sb = _shape(a.value), _shape(b.value)
    return result(y, (a, b), lambda g: (unbroadcast(g, sa), unbroadcast(-g, sb)))


def multiply(a, b) -> Tensor:
    """a * b elementwise (keras.ops.multiply)."""
    a, b = as_tensor(a), as_tensor(b)
    y = _binary("multiply", np.multiply, a, b)
    av, bv = a.value, b.value
    return result(y, (a, b), lambda g: (unbroadcast(g * bv, _shape(av)), unbroadcast(g * av, _shape(bv))))


def divide(a, b) -> Tensor:
    """a / b (keras.ops.divide / true_divide)."""
    a, b = as_tensor(a), as_tensor(b)
    y = _binary("divide", np.true_divide, a, b)
    av, bv = a.value, b.value
    return result(y, (a, b), lambda g: (unbroadcast(g / bv, _shape(av)),
                                        unbroadcast(-g * y / bv, _shape(bv))))


def power(a, b) -> Tensor:
    """a ** b (keras.ops.power); the exponent's gradient uses log(a) where a > 0."""
    a, b = as_tensor(a), as_tensor(b)
    y = _binary("power", np.power, a, b)
    av, bv = a.value, b.value
    need_a, need_b = is_tracked(a), is_tracked(b)

    def vjp(g):
        ga = unbroadcast(g * bv * np.power(av, bv - 1), np.shape(av)) if need_a else None
        safe = np.where(np.asarray(av) > 0, av, 1) if need_b else None
        return ga, (unbroadcast(g * y * np.log(safe), np.shape(bv)) if need_b else None)
    return result(y, (a, b), vjp)


def negative(a) -> Tensor:
    """-a (keras.ops.negative)."""
    a = as_tensor(a)
    return result(np.negative(a.value), (a,), lambda g: (-g,))


def absolute(a) -> Tensor:
    """|a| (keras.ops.abs / absolute); the gradient at 0 is 0, as sign(0)."""
    a = as_tensor(a)
    av = a.value
    return result(np.abs(av), (a,), lambda g: (g * np.sign(av),))


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules (keras.ops.matmul): 1-D operands, batched stacks."""
    a, b = as_tensor(a), as_tensor(b)
    av, bv = np.asarray(a.value), np.asarray(b.value)
    try:
        y = np.matmul(av, bv)
    except ValueError:
        raise ShapeError(f"ops.matmul: shapes {av.shape} and {bv.shape} do not fit together "
                         f"(the last axis of the first must equal the second-to-last of the second).") from None
    need_a, need_b = is_tracked(a), is_tracked(b)

    def vjp(g):  # 1-D operands as a row (a) and a column (b), as matmul treats them
        a2, b2 = (av[None, :] if av.ndim == 1 else av), (bv[:, None] if bv.ndim == 1 else bv)
        g2 = np.reshape(g, np.shape(g)[:-1] + (1,) + np.shape(g)[-1:]) if av.ndim == 1 and bv.ndim > 1 else g
        g2 = np.reshape(g2, np.shape(g2) + (1,)) if bv.ndim == 1 else g2
        g2 = np.reshape(g2, (1, 1)) if av.ndim == 1 and bv.ndim == 1 else g2
        ga = gb = None
        if need_a:
            ga = unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(av.shape)
        if need_b:
            gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(bv.shape)
        return ga, gb
    return result(y, (a, b), vjp)


def transpose(a, axes=None) -> Tensor:
    """a with its axes permuted (reversed when `axes` is None), as keras.ops.transpose."""
    a = as_tensor(a)
    av = np.asarray(a.value)
    axes = tuple(range(av.ndim))[::-1] if axes is None else tuple(int(i) % av.ndim for i in axes)
    inverse = tuple(np.argsort(axes))
    return result(np.transpose(av, axes), (a,), lambda g: (np.transpose(g, inverse),))


def _basic_key(key) -> bool:
    """Whether indexing with `key` is basic (a view, each element picked at most once)."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice, np.integer)) for k in parts)


def getitem(a, key) -> Tensor:
    """a[key] (indexing and slicing); the gradient scatters back, adding repeated picks."""
    a = as_tensor(a)
    key = tuple(value_of(k) for k in key) if isinstance(key, tuple) else value_of(key)
    av = a.value
    y = np.asarray(av)[key]
    basic = _basic_key(key)

    def vjp(g):
        out = np.zeros(np.shape(av), dtype=np.result_type(g))
        if basic:
            out[key] = g
        else:
            np.add.at(out, key, g)
        return (out,)
    return result(y, (a,), vjp)


def _constant(fn, *args):
    """An op with no gradient (comparisons, logical ops, floor division): a constant result."""
    return Tensor(fn(*[value_of(as_tensor(x)) for x in args]))


_UFUNC_OPS = {np.add: add, np.subtract: subtract, np.multiply: multiply, np.true_divide: divide,
              np.power: power, np.negative: negative, np.matmul: matmul, np.absolute: absolute}
for _u in (np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
           np.logical_and, np.logical_or, np.logical_not, np.floor_divide, np.mod):
    _UFUNC_OPS[_u] = (lambda fn: lambda *xs: _constant(fn, *xs))(_u)


def _refuse_numpy(name: str, inputs) -> None:
    """A NumPy function on a tracked tensor would drop its gradient: say what to use instead."""
    if any(is_tracked(x) for x in inputs):
        owner = _CURRENT[-1].owner if _CURRENT and _CURRENT[-1] is not None else "a recorded computation"
        raise ConfigError(f"{owner[0].upper() + owner[1:]} applied numpy.{name} to a distdl tensor, which "
                          f"would cut its gradient; use distdl.ops.{name} (or another distdl.ops function) "
                          f"inside call() instead.")
