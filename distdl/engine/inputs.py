"""Checking and arranging user data for fit / evaluate / predict.

Every problem becomes one sentence naming the array, row, label or shape at fault.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import DataError, ShapeError, finite_number

__all__ = ["as_input_list", "check_finite", "check_targets", "numeric", "as_target_list", "check_lengths",
           "row_weights", "split_validation"]


def _is_lazy(a) -> bool:
    return not isinstance(a, np.ndarray) and hasattr(a, "shape") and hasattr(a, "__getitem__")


def numeric(name: str, a) -> np.ndarray:
    """`a` as a NumPy array of numbers (bool, int or float), else a DataError naming `name`:
    `fit` on an array of strings, objects or ragged lists is refused with one sentence.

    Args:
        name: the array's name in messages ("x", "y['out']").
        a: anything NumPy turns into an array.
    """
    try:
        out = np.asarray(a)
    except (ValueError, TypeError) as e:  # ragged nested lists
        raise DataError(f"{name} cannot be made into one numeric array ({e}).") from None
    if out.dtype.kind not in "biuf":
        what = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers"}.get(
            out.dtype.kind, f"values of dtype {out.dtype}")
        raise DataError(f"{name} holds {what} (dtype {out.dtype}), not numbers; convert it to a "
                        f"numeric array first.")
    return out


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
    xs = [a if _is_lazy(a) else numeric("x" if len(xs) == 1 else f"x[{i}]", a) for i, a in enumerate(xs)]
    if not model.built:
        model.build(tuple(np.shape(xs[0])[1:]))
    dtype = model.params.dtype
    out = []
    for i, a in enumerate(xs):
        lazy = _is_lazy(a)
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


_SCAN_BYTES = 16 << 20  # a lazy array is checked in blocks of about this many bytes


def _blocks(a):
    """(first row, rows as an in-memory array) over `a`: the whole of an in-memory array, a lazy
    one (an HDF5 dataset) in blocks of rows, so that checking it never loads it whole."""
    if not _is_lazy(a):
        yield 0, a
        return
    row_bytes = max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * np.dtype(a.dtype).itemsize)
    step = max(1, _SCAN_BYTES // row_bytes)
    for start in range(0, len(a), step):
        yield start, np.asarray(a[start:start + step])


def _source(name: str, a):
    """How messages name an array and number its rows: `name` and 0 for an in-memory array; for a
    lazy view of a file's dataset, the file and the dataset, and the view's first row in it."""
    a = getattr(a, "array", a)  # under _CastRows
    if _is_lazy(a) and hasattr(a, "path") and hasattr(a, "dataset"):
        return f"{a.path}, dataset {a.dataset!r}", int(getattr(a, "first_row", 0))
    return name, 0


def _renumber(error: DataError, where: str, offset: int) -> DataError:
    """`error` from a check of one block of rows, told as of the whole file: `where` first, and
    each `row N` moved by `offset` (the block's first row in the file)."""
    text = re.sub(r"\brow (\d+)", lambda m: f"row {int(m.group(1)) + offset}", str(error))
    return DataError(f"{where}: {text}")


def check_finite(name: str, a) -> None:
    """DataError naming the first row holding NaN or inf (a lazy array is read block by block,
    and named by its file and dataset).

    Args:
        name: the array's name in messages ("x", "x[1]").
        a: the array (in memory, or a lazy view of an HDF5 dataset).
    """
    if not np.issubdtype(np.dtype(a.dtype), np.floating) or 0 in a.shape:
        return
    where, first = _source(name, a)
    for start, block in _blocks(a):
        if not np.isfinite(block).all():
            bad = np.flatnonzero(~np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1))[0]
            raise DataError(f"{where} has NaN or inf values, first in row {first + start + bad}.")


def check_targets(obj, name: str, a, shape) -> None:
    """`obj.loss.check_targets` over `a` (labels in range, shapes), a lazy array block by block;
    a refusal from a file's dataset names the file, the dataset and the row in it.

    Args:
        obj: the output's Objective (its loss checks the targets).
        name: the targets' name in messages ("y", "y['out']").
        a: the targets (in memory, or a lazy view of an HDF5 dataset).
        shape: the model output's shape, without the batch axis (None axes allowed).
    """
    where, first = _source(name, a)
    for start, block in _blocks(a):
        try:
            obj.loss.check_targets(block, (None,) + _concrete_shape(shape, block))
        except DataError as e:
            if not _is_lazy(a):
                raise
            raise _renumber(e, where, first + start) from None


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
        label = "y" if len(names) == 1 else f"y[{name!r}]"
        a = a if lazy else numeric(label, a)
        float_like = np.issubdtype(np.dtype(a.dtype), np.floating) or np.dtype(a.dtype) == np.bool_
        if float_like and not lazy:
            a = a.astype(dtype, copy=False)
        check_finite(label, a)
        check_targets(obj, label, a, shape)
        out.append(_CastRows(a, dtype) if lazy and float_like and a.dtype != dtype else a)
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
        w = numeric("sample_weight", sample_weight).astype(np.float64, copy=False)
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
        for k in class_weight:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
                raise DataError(f"class_weight keys must be class indices (ints >= 0), got {k!r}.")
        table = np.ones(int(max(max(class_weight) + 1, width, labels.max(initial=0) + 1)))
        for k, v in class_weight.items():
            table[int(k)] = finite_number(f"class_weight[{k!r}]", v)
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
