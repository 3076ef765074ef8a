"""A model's arrays and configs onto files and back: `save`, `save_weights`, `load_weights`.

The file formats live in `checkpoint` (distdl's own HDF5 checkpoint) and `keras_format`
(Keras 3 `.weights.h5`); this module maps a built model onto them. Rebuilding a model from a
file needs the model classes, so `load_model` lives in `distdl.models`.
Saving and loading are collective under MPI: rank 0 writes and every rank returns only once the
file is complete and renamed, or every rank raises the same error (`distdl.comm.agree`); every
rank reads the file and the ranks check that they read the same checksum.
"""
from __future__ import annotations

import os

import numpy as np

from .. import utils
from ..comm import agree, ranks_for
from ..errors import CheckpointError, ConfigError, DistdlError
from . import checkpoint as ckpt
from . import keras_archive, keras_format
from .keras_graph import keras_layers

__all__ = ["ranks_of", "read_checkpoint", "checkpoint_data", "restore", "write_checkpoint", "save_model",
           "save_weights", "load_weights"]


def ranks_of(model):
    """The ranks `model` is saved and loaded by: its loop's communicator, else the world (a
    model not yet fitted holds a size-1 SerialComm, yet every rank of the job calls save).

    Args:
        model: the model.
    """
    return ranks_for(model.comm)


def read_checkpoint(comm, path: str | os.PathLike, verified: ckpt.CheckpointData | None = None
                    ) -> ckpt.CheckpointData:
    """`load_checkpoint` on every rank of `comm`, agreed: a failure on any rank is raised on all,
    and ranks that read different contents (the file replaced between their reads, another file
    under that name on another node) are refused.

    Args:
        comm: the ranks that read.
        path: the checkpoint file.
        verified: what this rank already loaded from `path` (BackupAndRestore's rank 0, which
            chose the file by loading it), so it is not read twice; None reads it.
    """
    data = agree.on_every_rank(comm, lambda: verified if verified is not None else ckpt.load_checkpoint(path))
    slots = [data.optimizer_state[k] for k in sorted(data.optimizer_state)]
    _same_contents(comm, path, [data.params, data.state, *slots, data.optimizer_iterations])
    return data


def _same_contents(comm, path, arrays: list) -> None:
    """Refuse (on every rank) when the ranks' `arrays` read from `path` differ."""
    odd = agree.same_bytes(comm, arrays)
    if odd:
        raise agree.mark_agreed(CheckpointError(
            f"Ranks read different contents from {os.fspath(path)!r}: rank(s) {odd} differ from "
            f"rank 0 (was the file replaced while they read it, or is it not the same file on every node?)."))


def _refuse_existing(path, overwrite: bool) -> None:
    """`overwrite=False` keeps an existing file (Keras would ask; a batch job cannot answer)."""
    if not overwrite and os.path.exists(path):
        raise ConfigError(f"{os.fspath(path)} already exists and overwrite=False; "
                          "pass overwrite=True to replace it.")


def _variable_layout(model) -> list[dict]:
    """[{name, shape, trainable}] for every variable, in the order of the flat arenas."""
    return [{"name": v.name, "shape": list(v.shape), "trainable": bool(v.trainable)}
            for layer in model.layers for v in layer.variables]


def checkpoint_data(model, epoch: int = 0, step: int = 0, seed: int = 0, history: dict | None = None,
                    totals: dict | None = None, extra: dict | None = None) -> ckpt.CheckpointData:
    """Everything needed to rebuild and continue `model`, as arrays and JSON-able dicts.

    Args:
        model: the built model.
        epoch: epochs done.
        step: steps done in the next epoch.
        seed: the fit's seed.
        history: the History logs so far.
        totals: the epoch's running sums by name (TrainState.named_totals) for a mid-epoch backup.
        extra: other JSON-able data to keep (callbacks' state).
    """
    opt = model.optimizer
    return ckpt.CheckpointData(
        model_config={"class_name": type(model).__name__, "config": model.get_config()},
        variables=_variable_layout(model), params=model.params.copy(), state=model.state.copy(),
        compile_config=getattr(model, "compile_config", None),
        optimizer_config=None if opt is None else {"class_name": type(opt).__name__, "config": opt.get_config()},
        optimizer_state={} if opt is None else {k: v.copy() for k, v in opt.get_state().items()},
        optimizer_iterations=0 if opt is None else int(opt.iterations),
        epoch=int(epoch), step=int(step), seed=int(seed),
        world_size=model.comm.size,
        history=history or {}, totals=totals or {}, rng_state={"init": utils.init_rng().bit_generator.state},
        extra=extra or {})


def _check_layout(model, data: ckpt.CheckpointData, path, trainability: bool = True) -> None:
    """The checkpoint's variables must match the model's shape by shape (and trainability, where
    the optimizer state is restored too); name the first that does not."""
    mine = _variable_layout(model)
    for a, b in zip(mine, data.variables):
        if list(a["shape"]) != list(b["shape"]) or (trainability and a["trainable"] != b["trainable"]):
            what = "shape" if list(a["shape"]) != list(b["shape"]) else "trainability"
            raise CheckpointError(
                f"Checkpoint {os.fspath(path)!r} does not fit model {model.name!r}: layer "
                f"{a['name'].rsplit('/', 1)[0]!r} weight {a['name']!r} has {what} {_describe(a)} in the "
                f"model but {_describe(b)} in the checkpoint (weight {b['name']!r}).")
    if len(mine) != len(data.variables):
        extra = (mine if len(mine) > len(data.variables) else data.variables)[min(len(mine), len(data.variables))]
        where = "model" if len(mine) > len(data.variables) else "checkpoint"
        raise CheckpointError(
            f"Checkpoint {os.fspath(path)!r} does not fit model {model.name!r}: the checkpoint has "
            f"{len(data.variables)} weight arrays and the model {len(mine)}, the first unmatched being "
            f"{extra['name']!r} {tuple(extra['shape'])} in the {where}.")


def _describe(v: dict) -> str:
    return str(tuple(v["shape"])) + ("" if v["trainable"] else " (non-trainable)")


def restore(model, data: ckpt.CheckpointData, path: str | os.PathLike, with_optimizer: bool = True) -> None:
    """Copy a checkpoint's weights, state (and optimizer state) into `model`. Weights alone load
    whatever was trainable when either was saved (a layer frozen since, as transfer learning does).

    Args:
        model: the model to fill, built as the checkpoint's.
        data: the checkpoint's contents.
        path: the file it was read from, for messages.
        with_optimizer: also restore the optimizer's state and iteration count.
    """
    _check_layout(model, data, path, trainability=with_optimizer)
    if not with_optimizer:
        flat, at = {True: data.params, False: data.state}, {True: 0, False: 0}
        for v, b in zip([v for layer in model.layers for v in layer.variables], data.variables):
            k, n = bool(b["trainable"]), v.value.size
            v.assign(flat[k][at[k]:at[k] + n].reshape(v.shape))
            at[k] += n
        return
    model.params[...] = data.params
    model.state[...] = data.state
    if with_optimizer and model.optimizer is not None and data.optimizer_state:
        try:
            model.optimizer.set_state(data.optimizer_state)
        except DistdlError as e:  # e.g. Adam's slots in a file resumed with SGD
            raise CheckpointError(f"Checkpoint {os.fspath(path)!r} does not fit model {model.name!r}: "
                                  f"{str(e).rstrip('.')}.") from e
        model.optimizer.iterations = int(data.optimizer_iterations)
        lr = (data.optimizer_config or {}).get("config", {}).get("learning_rate")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):  # e.g. lowered by ReduceLROnPlateau
            model.optimizer.learning_rate = float(lr)


def write_checkpoint(path: str | os.PathLike, data: ckpt.CheckpointData) -> None:
    """`save_checkpoint` that refuses, before HDF5 starts writing, a folder without room for the
    file (HDF5 failing mid-write on a full disk gives misleading causes, or worse), and names a
    full disk as the cause of a write that failed anyway.

    Args:
        path: the file to write.
        data: what to write.
    """
    folder = os.path.dirname(os.path.abspath(path))
    need = sum(np.asarray(a).nbytes for a in (data.params, data.state, *data.optimizer_state.values()))
    need += 256 << 10  # configs, history and HDF5's own metadata (well above a measured ~40 KiB)
    if _read_only(folder):
        raise CheckpointError(f"Could not write checkpoint {os.fspath(path)!r}: read-only file system: "
                              f"{folder}/ cannot be written.")
    free = _free_bytes(folder)
    if free is not None and free < need:
        raise CheckpointError(f"Could not write checkpoint {os.fspath(path)!r}: no space left on device: "
                              f"{free} bytes free in {folder}/, about {need} needed.")
    try:
        ckpt.save_checkpoint(path, data)
    except CheckpointError as e:
        free = _free_bytes(folder)
        if free is not None and free < need and "no space left" not in str(e).lower():
            raise CheckpointError(f"Could not write checkpoint {os.fspath(path)!r}: no space left on "
                                  f"device: {free} bytes free in {folder}/.") from e
        raise


def _read_only(folder: str) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _free_bytes(folder: str) -> int | None:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no such folder (save_checkpoint names it), or no statvfs
        return None
    return st.f_bavail * st.f_frsize


def save_model(model, path: str | os.PathLike, overwrite: bool = True) -> None:
    """`model.save(path)`: architecture, weights, optimizer and its state, in Keras 3's archive for
    `*.keras`, else in one distdl HDF5 checkpoint. Collective: rank 0 writes, every rank returns
    once the file is renamed into place (or raises rank 0's error).

    Args:
        model: the built model.
        path: the file to write.
        overwrite: replace an existing file; False refuses to.
    """
    model._require_built("save")

    def write():
        _refuse_existing(path, overwrite)
        if keras_archive.is_keras_archive(path):
            keras_archive.save_keras_archive(model, path)
            return
        hist = model.history.history if model.history is not None else {}
        write_checkpoint(path, checkpoint_data(model, history=hist))
    agree.on_root(ranks_of(model), write)


def _keras_layers(model):
    """The layers of Keras's `model.layers`, in Keras's order: a functional model lists its InputLayers
    (ordered by Keras's depth rule, not distdl's), a Sequential not (its `layers` never holds one)."""
    return keras_layers(model)


def _keras_entry(layer, arrays) -> tuple:
    """A layer's entry for keras_format: (class path, arrays), and a nested model's layers."""
    if not hasattr(layer, "executor"):
        return (keras_format.keras_class_path(layer), arrays)
    return (keras_format.keras_class_path(layer), arrays, _children(layer))


def _children(model) -> list:
    return [(keras_format.keras_class_path(l), len(l.weights), _children(l) if hasattr(l, "executor") else None)
            for l in _keras_layers(model)]


def save_weights(model, path: str | os.PathLike, overwrite: bool = True) -> None:
    """Weights only: Keras 3 layout for `*.weights.h5`, else a distdl checkpoint. Collective as
    `save_model`.

    Args:
        model: the built model.
        path: the file to write.
        overwrite: replace an existing file; False refuses to.
    """
    model._require_built("save_weights")
    agree.on_root(ranks_of(model), lambda: _write_weights(model, path, overwrite))


def _write_weights(model, path, overwrite: bool) -> None:
    _refuse_existing(path, overwrite)
    if str(path).endswith(".weights.h5"):
        keras_format.write_keras_weights(path, [_keras_entry(l, [v.value for v in l.weights])
                                                for l in _keras_layers(model)])
    else:
        data = checkpoint_data(model)
        data.optimizer_config, data.optimizer_state, data.optimizer_iterations = None, {}, 0
        write_checkpoint(path, data)


def load_weights(model, path: str | os.PathLike) -> None:
    """Weights from a `.weights.h5` (Keras 3 layout) or from a distdl checkpoint. Collective:
    every rank reads, a failure on any rank is raised on all, and all must read the same values.

    Args:
        model: the built model.
        path: the `.weights.h5` file or distdl checkpoint.
    """
    model._require_built("load_weights")
    comm = ranks_of(model)
    if not str(path).endswith(".weights.h5"):
        restore(model, read_checkpoint(comm, path), path, with_optimizer=False)
        return
    layers = _keras_layers(model)

    def read():
        if not os.path.exists(path):
            raise CheckpointError(f"Weights file {os.fspath(path)!r} does not exist.")
        return keras_format.read_keras_weights(path, [_keras_entry(l, [v.shape for v in l.weights])
                                                      for l in layers])
    arrays = agree.on_every_rank(comm, read)
    _same_contents(comm, path, [a for values in arrays for a in values])
    for layer, values in zip(layers, arrays):
        for v, a in zip(layer.weights, values):
            v.assign(np.asarray(a, dtype=v.value.dtype))
