"""Checking and arranging user data for fit / evaluate / predict.

Every problem becomes one sentence naming the array, row, label or shape at fault.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError, ShapeError

__all__ = ["as_input_list", "check_finite", "as_target_list", "check_lengths", "row_weights",
           "split_validation"]


def _is_lazy(a) -> bool:
    return not isinstance(a, np.ndarray) and hasattr(a, "shape") and hasattr(a, "__getitem__")


def _consumers_are_embeddings(model, i) -> bool:
    from ..layers.core import InputLayer
    if hasattr(model, "_inputs"):
        t = model._inputs[i]
        layers = [n.layer for n in model.executor.nodes if any(p is t for p in n.inputs)]
    else:
        layers = model.layers[:1]
    return bool(layers) and all(type(l).__name__ == "Embedding" or isinstance(l, InputLayer) for l in layers)


def as_input_list(model, x, check=True) -> list:
    """x (array, list or dict by input name) -> list of arrays in the model's input order, cast
    to the model's dtype (integer ids for Embedding inputs kept); builds an unbuilt model.

    Args:
        model: the model the data is for.
        x: an array, a list of arrays, or a dict by input layer name; lazy arrays (HDF5) stay lazy.
        check: check the number of arrays and each one's row shape against the model's inputs.
    """
    if x is None:
        raise DataError("No input data: pass x.")
    if isinstance(x, dict):
        names = [t.layer.name for t in model._inputs] if hasattr(model, "_inputs") else []
        missing = [n for n in names if n not in x]
        if missing:
            raise DataError(f"x has no entry for input(s) {missing}; it has {sorted(x)}.")
        xs = [x[n] for n in names]
    else:
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
    if not model.built:
        model.build(tuple(np.shape(xs[0])[1:]))
    dtype = model.params.dtype
    out = []
    for i, a in enumerate(xs):
        lazy = _is_lazy(a)
        a = a if lazy else np.asarray(a)
        keep_ints = np.issubdtype(np.dtype(a.dtype), np.integer) and _consumers_are_embeddings(model, i)
        if a.dtype != dtype and not keep_ints:
            a = _CastRows(a, dtype) if lazy else a.astype(dtype)
        out.append(a)
    if check:
        expected = model.input_shapes
        if len(out) != len(expected):
            raise DataError(f"Model {model.name!r} has {len(expected)} input(s), got {len(out)} array(s).")
        for i, (a, shape) in enumerate(zip(out, expected)):
            if not _shape_fits(a.shape[1:], shape):
                which = "x" if len(out) == 1 else f"x[{i}]"
                raise ShapeError(f"Model {model.name!r} expects {which} of shape (None, "
                                 f"{', '.join(map(str, shape))}), got an array of shape {tuple(a.shape)}.")
    return out


def _shape_fits(actual, expected) -> bool:
    """Whether an array's row shape `actual` fits a model shape `expected` (both without the batch
    axis): the same rank, and equal sizes where `expected` is fixed (a None axis takes any size)."""
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def _concrete_shape(shape, rows) -> tuple:
    """`shape` (batch axis excluded) with each None axis taken from `rows`, an array of whole
    samples (batch axis first) of the same rank, else left None."""
    sizes = tuple(np.shape(rows)[1:])
    return tuple(sizes[i] if d is None and i < len(sizes) else d for i, d in enumerate(shape))


class _CastRows:
    """A lazy array (e.g. an HDF5 dataset) whose rows are read as the model's float type."""

    def __init__(self, array, dtype):
        self.array, self.dtype = array, np.dtype(dtype)
        self.shape, self.ndim = array.shape, len(array.shape)

    def __len__(self):
        return len(self.array)

    def __getitem__(self, index):
        return np.asarray(self.array[index], dtype=self.dtype)


def check_finite(name: str, a) -> None:
    """DataError naming the first row holding NaN or inf (numeric in-memory arrays only).

    Args:
        name: the array's name in messages ("x", "x[1]").
        a: the array.
    """
    if _is_lazy(a) or not np.issubdtype(a.dtype, np.floating) or a.size == 0:
        return
    if not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))[0]
        raise DataError(f"{name} has NaN or inf values, first in row {bad}.")


def as_target_list(model, y) -> list:
    """y (array, list or dict by output name) -> list in output order, checked against the losses.

    Args:
        model: the compiled model.
        y: an array, a list of arrays, or a dict by output layer name.
    """
    if y is None:
        raise DataError("No target data: pass y.")
    names = [layer.name for layer in model.output_layers]
    if isinstance(y, dict):
        missing = [n for n in names if n not in y]
        if missing:
            raise DataError(f"y has no entry for output(s) {missing}; it has {sorted(y)}.")
        ys = [y[n] for n in names]
    else:
        ys = list(y) if isinstance(y, (list, tuple)) and len(names) > 1 else [y]
    if len(ys) != len(names):
        raise DataError(f"Model {model.name!r} has {len(names)} output(s), got {len(ys)} target array(s).")
    out = []
    dtype = model.params.dtype
    for obj, shape, a, name in zip(model.objectives, model.output_shapes, ys, names):
        lazy = _is_lazy(a)
        a = a if lazy else np.asarray(a)
        float_like = np.issubdtype(np.dtype(a.dtype), np.floating) or np.dtype(a.dtype) == np.bool_
        if lazy:  # read (and checked) batch by batch
            out.append(_CastRows(a, dtype) if float_like and a.dtype != dtype else a)
            continue
        if float_like:
            a = a.astype(dtype, copy=False)
        check_finite("y" if len(names) == 1 else f"y[{name!r}]", a)
        obj.loss.check_targets(a, (None,) + _concrete_shape(shape, a))
        out.append(a)
    return out


def check_lengths(xs, ys=(), weights=()) -> int:
    """All arrays must have the same number of rows; returns it.

    Args:
        xs: the input arrays.
        ys: the target arrays.
        weights: row weight arrays (None entries are skipped).
    """
    named = [(f"x[{i}]" if len(xs) > 1 else "x", a) for i, a in enumerate(xs)]
    named += [(f"y[{i}]" if len(ys) > 1 else "y", a) for i, a in enumerate(ys)]
    named += [("sample_weight", a) for a in weights if a is not None]
    n = len(named[0][1])
    for name, a in named[1:]:
        if len(a) != n:
            raise DataError(f"{named[0][0]} has {n} rows but {name} has {len(a)}; they must match.")
    return n


def row_weights(model, ys, sample_weight, class_weight):
    """Per-row weights (n,) from sample_weight and class_weight, or None when neither is given.

    Args:
        model: the model (its name in messages).
        ys: the target arrays (class_weight reads each row's class from them).
        sample_weight: a weight per row, or None.
        class_weight: a dict from class index to weight, or None.
    """
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.ndim != 1:
            w = w.reshape(len(w), -1)[:, 0] if w.ndim == 2 and w.shape[1] == 1 else None
            if w is None:
                raise DataError("sample_weight must have one value per row, shape (n,).")
        check_finite("sample_weight", w)
    if class_weight:
        if len(ys) != 1:
            raise DataError("class_weight is supported for single-output models only; use sample_weight.")
        y = np.asarray(ys[0])
        width = model.output_shapes[0][-1]
        if width == 1:
            labels = np.rint(y.reshape(len(y), -1)[:, 0]).astype(np.int64)
        elif y.ndim == 1 or y.shape[-1] == 1:
            labels = y.reshape(len(y)).astype(np.int64)
        else:
            labels = np.argmax(y.reshape(len(y), -1, width)[:, 0], axis=-1)
        table = np.ones(int(max(max(class_weight) + 1, width, labels.max(initial=0) + 1)))
        for k, v in class_weight.items():
            table[int(k)] = float(v)
        cw = table[labels]
        w = cw if w is None else w * cw
    return w


def split_validation(arrays: list, fraction: float):
    """Keras's validation_split: the LAST rows (before shuffling) become validation data.

    Args:
        arrays: arrays with the same number of rows (None entries stay None).
        fraction: the share of rows to hold out, in [0, 1).
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"validation_split must be in [0, 1), got {fraction!r}.")
    n = len(arrays[0])
    at = int(np.floor(n * (1.0 - fraction)))
    if at == 0 or at == n:
        raise DataError(f"validation_split={fraction} of {n} rows leaves "
                        f"{'no training' if at == 0 else 'no validation'} rows.")
    return [None if a is None else a[:at] for a in arrays], [None if a is None else a[at:] for a in arrays]
