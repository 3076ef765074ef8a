"""Keras 3 `.weights.h5` files: the layout `keras.Model.save_weights` writes and `load_weights` reads.

Layout (Keras 3 `saving_lib.H5IOStore`): an empty root `vars` group for the model itself, then
`layers/<snake_case(ClassName)>[_1, _2, ...]/vars/<i>` per layer of `model.layers`, numbered per
class in model order, datasets "0", "1", ... in Keras variable order (trainable, then
non-trainable). Recurrent layers keep their weights on the cell (`layers/lstm/cell/vars/<i>`,
with an empty `layers/lstm/vars`); Bidirectional on two wrapped layers
(`layers/bidirectional/forward_layer/cell/vars/<i>` and `.../backward_layer/cell/vars/<i>`);
TimeDistributed on its wrapped layer (`layers/time_distributed/layer/vars/<i>`, or `.../layer/cell/vars/<i>`
around an RNN). A wrapper is named by its class path, e.g. "TimeDistributed/LSTM" (`keras_class_path`).

The `*_to` / `*_from` functions work on an open `h5py.File`, so that a `.keras` archive can hold
the same layout in memory.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import h5py
import numpy as np

from distdl.errors import CheckpointError
from distdl.layers.base import snake_case
from distdl.saving.atomic import atomic_h5_write
from distdl.saving.h5_safety import open_h5

__all__ = ["keras_class_path", "keras_group_names", "write_keras_weights", "write_keras_weights_to",
           "read_keras_weights", "read_keras_weights_from", "read_keras_optimizer_vars",
           "read_keras_optimizer_vars_from"]

# Sub-paths below a layer's group where its weights live, for layers that do not hold them
# directly; the arrays are split evenly between the sub-paths, in order.
_WEIGHT_OWNERS: dict[str, tuple[str, ...]] = {
    "SimpleRNN": ("cell",),
    "LSTM": ("cell",),
    "GRU": ("cell",),
    "Bidirectional": ("forward_layer/cell", "backward_layer/cell"),
}


def keras_class_path(layer) -> str:
    """The class name `write_keras_weights` expects for `layer`: "TimeDistributed/Dense" for a
    TimeDistributed wrapper (its weights live on the wrapped layer), else the class name.

    Args:
        layer: a distdl layer.
    """
    name = type(layer).__name__
    if name == "TimeDistributed" and getattr(layer, "layer", None) is not None:
        return f"{name}/{keras_class_path(layer.layer)}"
    return name


def _owners(class_name: str) -> tuple[str, ...]:
    outer, _, inner = class_name.partition("/")
    if outer == "TimeDistributed" and inner:
        return tuple(f"layer/{sub}" if sub else "layer" for sub in _owners(inner))
    return _WEIGHT_OWNERS.get(outer, ("",))


def keras_group_names(class_names: Sequence[str]) -> list[str]:
    """Keras's per-class numbering: [Dense, Conv2D, Dense] -> [dense, conv2d, dense_1].

    Args:
        class_names: the layers' class names, in Keras's `model.layers` order.
    """
    counts: dict[str, int] = {}
    out = []
    for cls in class_names:
        base = snake_case(cls.partition("/")[0])
        n = counts.get(base, 0)
        counts[base] = n + 1
        out.append(base if n == 0 else f"{base}_{n}")
    return out


def _weight_groups(class_name: str, group: str, n_arrays: int) -> list[tuple[str, int]]:
    """[(vars group path, number of arrays in it)] for one layer, e.g. ("layers/lstm/cell/vars", 3)."""
    owners = _owners(class_name)
    if n_arrays % len(owners):
        raise CheckpointError(
            f"Layer group {group!r} ({class_name}) has {n_arrays} arrays, which do not split evenly "
            f"between {', '.join(owners)}.")
    per = n_arrays // len(owners)
    root = f"layers/{group}"
    return [(f"{root}/{sub}/vars" if sub else f"{root}/vars", per) for sub in owners]


def _layer_paths(class_name: str, group: str, n_arrays: int, children=None,
                root: str = "layers") -> tuple[list[str], list[tuple[str, int]]]:
    """(empty parent `vars` groups, [(vars group path, number of arrays)]) of one layer. A nested
    model (`children`: [(class_name, n_arrays, children)] of its `layers`) has an empty `vars`
    and its layers below `<group>/layers/`, numbered per class within it, as Keras 3 writes."""
    if children is None:
        groups = _weight_groups(class_name, group, n_arrays)
        parents = _empty_parents(class_name, group)
        if root != "layers":
            groups = [(root + p[len("layers"):], n) for p, n in groups]
            parents = [root + p[len("layers"):] for p in parents]
        return parents, groups
    parents, groups = [f"{root}/{group}/vars"], []
    for (cls, n, sub), name in zip(children, keras_group_names([c[0] for c in children])):
        p, g = _layer_paths(cls, name, n, sub, f"{root}/{group}/layers")
        parents += p
        groups += g
    if sum(n for _, n in groups) != n_arrays:
        raise CheckpointError(f"Nested model group {group!r} has {n_arrays} arrays but its layers "
                              f"hold {sum(n for _, n in groups)}.")
    return parents, groups


def _empty_parents(class_name: str, group: str) -> list[str]:
    """The empty `vars` groups Keras writes for the wrapper objects above the weight owners."""
    paths = [f"layers/{group}/vars"]
    for sub in _owners(class_name):
        parts = sub.split("/")
        paths += [f"layers/{group}/{'/'.join(parts[:i])}/vars" for i in range(1, len(parts))]
    return paths


def write_keras_weights(path: str | os.PathLike, layers: Sequence[tuple[str, Sequence[np.ndarray]]],
                        optimizer_vars: Sequence[np.ndarray] | None = None) -> None:
    """Write `[(class_name, arrays in Keras variable order)]` (the model's layers in order) atomically;
    a nested model's entry has a third item, its layers as `_layer_paths` takes them.

    Pass the layers of Keras's `model.layers` (a Sequential's InputLayer is not among them).
    `optimizer_vars`, when given, go to `optimizer/vars/<i>` in Keras's order: iterations (int),
    learning_rate, then per trainable variable its slots (Adam: momentum, velocity); without it
    the group is left out, which Keras accepts with a warning.

    Args:
        path: the `.weights.h5` file to write.
        layers: per layer, (class name, arrays in Keras's variable order[, nested layers]).
        optimizer_vars: the optimizer's variables in Keras's order, or None.
    """
    spath = os.fspath(path)
    plan = _plan(spath, layers, optimizer_vars)
    atomic_h5_write(spath, lambda f: _fill(f, plan), "weights file")


def write_keras_weights_to(f: h5py.File, name: str, layers: Sequence[tuple[str, Sequence[np.ndarray]]],
                           optimizer_vars: Sequence[np.ndarray] | None = None) -> None:
    """`write_keras_weights` into an open, empty HDF5 file.

    Args:
        f: the open file (a `.keras` archive's `model.weights.h5`).
        name: the file's name in messages.
        layers: as `write_keras_weights` takes them.
        optimizer_vars: as `write_keras_weights` takes them.
    """
    _fill(f, _plan(name, layers, optimizer_vars))


def _plan(spath: str, layers, optimizer_vars) -> list:
    """[(empty parent groups, [(vars group path, arrays)])] per layer, checked, in file order."""
    names = keras_group_names([entry[0] for entry in layers])
    plan = []
    for (cls, arrays, *children), group in zip(layers, names):
        arrays = [np.asarray(a) for a in arrays]
        for i, a in enumerate(arrays):
            if a.dtype.kind not in "fiub":
                raise CheckpointError(f"Cannot write {spath!r}: array {i} of layer group {group!r} "
                                      f"({cls}) has non-numeric dtype {a.dtype}.")
        slots, start = [], 0
        parents, groups = _layer_paths(cls, group, len(arrays), children[0] if children else None)
        for vars_path, n in groups:
            slots.append((vars_path, arrays[start:start + n]))
            start += n
        plan.append((parents, slots))
    if optimizer_vars is not None:
        plan.append(([], [("optimizer/vars", [np.asarray(a) for a in optimizer_vars])]))
    return plan


def _fill(f: h5py.File, plan: list) -> None:
    f.create_group("vars")  # the model's own (empty) variable group
    f.create_group("layers")
    for parents, slots in plan:
        for p in parents:
            f.require_group(p)
        for vars_path, arrays in slots:
            g = f.require_group(vars_path)
            for i, a in enumerate(arrays):
                g.create_dataset(str(i), data=a)


def _open(path: str) -> h5py.File:
    """Open a weights file the user named; links, storage or sizes reaching outside it are refused."""
    return open_h5(path, "Weights file")


def _layers_root(f: h5py.File, path: str) -> h5py.Group | None:
    """The group holding per-layer groups; Keras 2.13 files call it `_layer_checkpoint_dependencies`."""
    for key in ("layers", "_layer_checkpoint_dependencies"):
        if isinstance(f.get(key), h5py.Group):
            return f[key]
    if "model_weights" in f or "layer_names" in f.attrs:
        raise CheckpointError(f"Weights file {path!r} is a legacy Keras 2 .h5 file; save it again with "
                              "Keras 3 as .weights.h5.")
    return None


def _has_datasets(group: h5py.Group) -> bool:
    found = []
    group.visititems(lambda _, obj: found.append(1) if isinstance(obj, h5py.Dataset) else None)
    return bool(found)


def read_keras_weights(path: str | os.PathLike,
                       layers: Sequence[tuple[str, Sequence[tuple]]]) -> list[list[np.ndarray]]:
    """Read the arrays for `[(class_name, expected shapes)]`; returns one list of arrays per layer.

    Weightless layers may or may not have a group in the file. Any missing group, wrong count or
    wrong shape, and any weights in the file that no layer takes, raise CheckpointError naming
    the file, the group and both shapes.

    Args:
        path: the `.weights.h5` file.
        layers: per layer, (class name, the shapes of its weights[, nested layers]).
    """
    spath = os.fspath(path)
    with _open(spath) as f:
        return read_keras_weights_from(f, spath, layers)


def read_keras_weights_from(f: h5py.File, name: str,
                            layers: Sequence[tuple[str, Sequence[tuple]]]) -> list[list[np.ndarray]]:
    """`read_keras_weights` from an open HDF5 file.

    Args:
        f: the open file.
        name: the file's name: errors call it `Weights file {name!r}`.
        layers: as `read_keras_weights` takes them.
    """
    try:
        return _read_layers(f, name, layers)
    except CheckpointError:
        raise
    except Exception as e:  # a read past the end of a cut file surfaces here
        raise CheckpointError(f"Weights file {name!r} is truncated or damaged (HDF5: {e}).") from e


def _read_layers(f: h5py.File, spath: str,
                 layers: Sequence[tuple[str, Sequence[tuple]]]) -> list[list[np.ndarray]]:
    names = keras_group_names([entry[0] for entry in layers])
    out: list[list[np.ndarray]] = []
    root = _layers_root(f, spath)
    prefix = root.name.lstrip("/") if root is not None else "layers"
    for index, ((cls, shapes, *children), group) in enumerate(zip(layers, names)):
        shapes = [tuple(int(d) for d in s) for s in shapes]
        who = f"layer {index} ({cls})"
        arrays: list[np.ndarray] = []
        start = 0
        for vars_path, n in _layer_paths(cls, group, len(shapes), children[0] if children else None)[1]:
            vars_path = prefix + vars_path[len("layers"):]
            want = shapes[start:start + n]
            start += n
            node = f.get(vars_path)
            if node is None:
                if want:
                    raise CheckpointError(
                        f"Weights file {spath!r} has no group {vars_path!r} for {who}, which needs "
                        f"shapes {want}.")
                continue
            keys = sorted(node.keys(), key=lambda k: (len(k), k))
            if keys != [str(i) for i in range(n)]:
                got = [tuple(node[k].shape) for k in keys if isinstance(node[k], h5py.Dataset)]
                raise CheckpointError(
                    f"Weights file {spath!r} group {vars_path!r} holds {len(keys)} arrays with shapes "
                    f"{got}, but {who} expects {n} with shapes {want}.")
            for i, shape in enumerate(want):
                ds = node[str(i)]
                if not isinstance(ds, h5py.Dataset) or tuple(ds.shape) != shape:
                    got = tuple(ds.shape) if isinstance(ds, h5py.Dataset) else "a group"
                    raise CheckpointError(
                        f"Weights file {spath!r} dataset '{vars_path}/{i}' has shape {got}, "
                        f"but {who} expects {shape}.")
                arrays.append(ds[()])
        out.append(arrays)
    if root is not None:
        extra = [k for k in root if k not in set(names)
                 and (not isinstance(root[k], h5py.Group) or _has_datasets(root[k]))]
        if extra:
            raise CheckpointError(
                f"Weights file {spath!r} holds weights under '{prefix}/{extra[0]}' that match no layer "
                f"of the model (its groups would be {names}).")
    return out


def read_keras_optimizer_vars(path: str | os.PathLike) -> list[np.ndarray]:
    """The arrays under `optimizer/vars` in index order ([] when the file has none).

    Args:
        path: the `.weights.h5` file.
    """
    spath = os.fspath(path)
    with _open(spath) as f:
        return read_keras_optimizer_vars_from(f, spath)


def read_keras_optimizer_vars_from(f: h5py.File, name: str) -> list[np.ndarray]:
    """`read_keras_optimizer_vars` from an open HDF5 file.

    Args:
        f: the open file.
        name: the file's name in messages.
    """
    node = f.get("optimizer/vars")
    if node is None:
        return []
    try:
        return [node[k][()] for k in sorted(node.keys(), key=int)]
    except (ValueError, OSError, AttributeError) as e:
        raise CheckpointError(
            f"Weights file {name!r} has an unreadable 'optimizer/vars' group ({e}).") from e
