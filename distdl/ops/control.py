"""Keras's control-flow ops run eagerly: each step of a loop, and the one branch a condition
picks, is recorded op by op on the current tape, so gradients flow through them as through
straight-line code; `custom_gradient` records a function with the gradient its author wrote.

A condition must be known when the op runs: a Python bool or a concrete tensor. On a symbolic
tensor (a functional model or a subclassed model's traced `call`) `cond` and `while_loop` cannot
pick, and say so. These ops take functions, so ops/__init__.py leaves them unwrapped: on symbolic
operands their bodies simply build graph nodes.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..autodiff.tape import recording
from ..autodiff.tensor import Tensor, as_tensor, result, value_of
from ..errors import ConfigError, ShapeError
from ..layers.base import SymbolicTensor
from .shape import concatenate, flip, stack

__all__ = ["cond", "switch", "fori_loop", "while_loop", "scan", "map", "associative_scan",
           "vectorized_map", "custom_gradient"]


def _concrete_bool(op: str, pred) -> bool:
    """A predicate's truth value, refused (one sentence naming `op`) when it is symbolic."""
    if isinstance(pred, SymbolicTensor):
        raise ConfigError(f"ops.{op}: the predicate is a symbolic tensor, whose value is known only when the "
                          f"model runs, so no branch can be picked while the graph is built; use a Python bool "
                          f"or ops.where.")
    v = np.asarray(value_of(pred))
    if v.size != 1:
        raise ShapeError(f"ops.{op}: the predicate must be a scalar, got shape {v.shape}.")
    return bool(v.reshape(()))


def cond(pred, true_fn, false_fn):
    """true_fn() if `pred` else false_fn(); only the branch taken runs (and is recorded)."""
    return true_fn() if _concrete_bool("cond", pred) else false_fn()


def switch(index, branches, *operands):
    """branches[index](*operands), `index` clamped into [0, len(branches) - 1] as Keras does."""
    if isinstance(index, SymbolicTensor):
        raise ConfigError("ops.switch: the index is a symbolic tensor, so no branch can be picked while the "
                          "graph is built; pass a Python int.")
    i = int(np.clip(int(np.asarray(value_of(index)).reshape(())), 0, len(branches) - 1))
    return branches[i](*operands)


def fori_loop(lower, upper, body_fun, init_val):
    """val = body_fun(i, val) for i in range(lower, upper); returns the last val."""
    val = init_val
    for i in range(int(value_of(lower)), int(value_of(upper))):
        val = body_fun(i, val)
    return val


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """loop_vars = body(*loop_vars) while cond(*loop_vars) (and fewer than `maximum_iterations`
    steps); a tuple/list of loop variables comes back as a tuple, a single one as itself."""
    is_tuple = isinstance(loop_vars, (tuple, list))
    loop_vars = tuple(v if isinstance(v, (tuple, list, SymbolicTensor)) else as_tensor(v)
                      for v in (loop_vars if is_tuple else (loop_vars,)))
    steps = 0
    while (maximum_iterations is None or steps < maximum_iterations) and _concrete_bool(
            "while_loop", cond(*loop_vars)):
        out = body(*loop_vars)
        loop_vars = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        steps += 1
    return loop_vars if is_tuple else loop_vars[0]


def _leaves(tree) -> list:
    return [x for part in tree for x in _leaves(part)] if isinstance(tree, (tuple, list)) else [tree]


def _pack(tree, leaves):
    """`leaves` (an iterator) in the structure of `tree` (nested tuples/lists)."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(_pack(t, leaves) for t in tree)
    return next(leaves)


def _stack_tree(items: list):
    """Per-step outputs (same structure each step) stacked on a new first axis, leaf by leaf."""
    if items[0] is None:
        return None
    columns = zip(*[_leaves(it) for it in items])
    return _pack(items[0], iter([stack(list(col)) for col in columns]))


def _length(op: str, xs, length) -> int:
    leaves = [] if xs is None else _leaves(xs)
    sizes = {len(value_of(x)) for x in leaves}
    if length is not None:
        sizes.add(int(length))
    if not sizes:
        raise ShapeError(f"ops.{op}: give xs or length (how many steps to run).")
    if len(sizes) != 1:
        raise ShapeError(f"ops.{op}: the inputs' first axes (and length) must agree, got lengths {sorted(sizes)}.")
    return sizes.pop()


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """(carry, ys): carry, y = f(carry, x) over the first axis of `xs` (or `length` times with
    x None), ys stacked; `reverse` walks from the end (ys keep the input order). `unroll` changes
    nothing here: every step runs eagerly."""
    n = _length("scan", xs, length)
    carry, ys = init, [None] * n
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        x = None if xs is None else _pack(xs, iter([as_tensor(leaf)[i] for leaf in _leaves(xs)]))
        carry, ys[i] = f(carry, x)
    return carry, (_stack_tree(ys) if n else None)


def map(f, xs):  # noqa: A001 (Keras's name)
    """f applied to each slice of `xs` along its first axis, the results stacked."""
    n = _length("map", xs, None)
    return _stack_tree([f(_pack(xs, iter([as_tensor(leaf)[i] for leaf in _leaves(xs)]))) for i in range(n)])


def vectorized_map(function, elements):
    """function over the first axis of `elements`, one recorded step per slice (as ops.map)."""
    return map(function, elements)


def associative_scan(f, elems, reverse=False, axis=0):
    """Inclusive scan with an associative `f`: out[0] = elems[0], out[i] = f(out[i-1], elems[i])
    along `axis`; `f` sees slices that keep the axis (length 1), as Keras's blocks do."""
    leaves = [as_tensor(e) for e in _leaves(elems)]
    n = _length("associative_scan", [np.moveaxis(np.asarray(value_of(e)), axis, 0) for e in leaves], None)
    if reverse:
        leaves = [flip(e, axis) for e in leaves]
    ax = [axis % max(e.ndim, 1) for e in leaves]

    def piece(e, a, i):
        return e[(builtins.slice(None),) * a + (builtins.slice(i, i + 1),)]
    acc = [piece(e, a, 0) for e, a in zip(leaves, ax)]
    outs = [acc]
    for i in range(1, n):
        acc = _leaves(f(_pack(elems, iter(acc)), _pack(elems, iter([piece(e, a, i) for e, a in zip(leaves, ax)]))))
        outs.append(acc)
    joined = [concatenate([o[k] for o in outs], axis=a) for k, a in enumerate(ax)]
    if reverse:
        joined = [flip(j, a) for j, a in zip(joined, ax)]
    return _pack(elems, iter(joined))


def custom_gradient(f):
    """Decorator: `f(*args)` returns `(y, grad_fn)`; the wrapped function returns y, recorded
    with `grad_fn(upstream)` (one gradient, or a tuple with one per tensor argument) as its
    vector-Jacobian product. f runs without recording: its inner ops are not differentiated."""
    def wrapped(*args, **kwargs):
        tensors = [as_tensor(a) for a in args]
        with recording(None):
            y, grad_fn = f(*tensors, **kwargs)
        y = np.asarray(value_of(y))

        def vjp(g):
            with recording(None):
                grads = grad_fn(Tensor(g))
            grads = grads if isinstance(grads, (tuple, list)) else (grads,)
            if len(grads) != len(tensors):
                raise ShapeError(f"ops.custom_gradient: the gradient function of {f.__name__} returned "
                                 f"{len(grads)} gradients for {len(tensors)} arguments.")
            return tuple(None if gr is None else np.broadcast_to(np.asarray(value_of(gr)), np.shape(t.value))
                         for gr, t in zip(grads, tensors))
        return result(y, tuple(tensors), vjp)
    wrapped.__name__ = getattr(f, "__name__", "custom_gradient")
    wrapped.__doc__ = getattr(f, "__doc__", None)
    return wrapped
