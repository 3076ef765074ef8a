"""What the `distdl` commands do: train from a config, resume, evaluate, predict, inspect."""
from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np

from .. import utils
from ..comm import agree, world
from ..errors import CheckpointError, ConfigError, DataError, ShapeError
from ..log import notice
from .config import build_model, load_config, load_data

__all__ = ["train_from_config", "resume_from_checkpoint", "evaluate_checkpoint", "predict_checkpoint",
           "inspect_lines", "data_spec", "data_file", "about_data"]


def _echo(comm, text):
    if comm.rank == 0:
        print(text, flush=True)


def _backup_callback(directory, ckcfg, resume, run_config):
    """BackupAndRestore for the CLI: keeps every checkpoint, resumes only when asked."""
    from ..callbacks import BackupAndRestore
    from ..saving import checkpoint as ckpt
    from ..saving.checkpoint_files import clean_temp_files
    if resume not in (None, "auto") and not os.path.isfile(resume):
        raise CheckpointError(f"Checkpoint {resume} does not exist.")
    if directory is None:
        if resume == "auto":
            raise ConfigError("--resume auto needs --checkpoint-dir (or [checkpoint].dir in the config).")
        directory = os.path.dirname(os.path.abspath(resume))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Checkpoint folder {directory} cannot be created ({e.strerror}).") from None
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"Checkpoint folder {directory} is not writable.")
    if world().rank == 0:  # one remover; temp files of writers still alive are kept
        clean_temp_files(directory)
    found = ckpt.checkpoint_paths(directory)
    if resume is None and found:
        raise ConfigError(f"Checkpoint folder {directory} already holds checkpoints; pass --resume auto "
                          f"to continue from them, or choose an empty folder.")
    if resume == "auto" and not found:
        notice(f"--resume auto: no checkpoint in {directory} yet; starting from the beginning.",
               rank=world().rank)
    return BackupAndRestore(directory, save_freq=ckcfg.get("save_freq", "epoch"), keep=ckcfg.get("keep", 3),
                            delete_checkpoint=False, resume_from=None if resume in (None, "auto") else resume,
                            run_config=run_config)


def data_file(spec: dict, base_dir: str = ".") -> str | None:
    """The file (or IDX folder) a data spec reads, as messages name it; None for shipped data.

    Args:
        spec: a [data] table or `data_spec`'s output.
        base_dir: where a relative path starts.
    """
    if "path" not in spec:
        return None
    path = os.path.expanduser(str(spec["path"]))
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base_dir, path))


@contextlib.contextmanager
def about_data(source: str | None):
    """Data errors raised inside (NaN rows, labels out of range, shapes) name `source`, the data
    file they came from: `data.npz: x has NaN or inf values, first in row 7.`"""
    try:
        yield
    except (DataError, ShapeError) as e:
        if source is None or source in str(e):
            raise
        named = type(e)(f"{source}: {e}")
        raise (agree.mark_agreed(named) if agree.is_agreed(e) else named) from None


def _fit_and_score(model, data, training, callbacks, epochs, comm, source=None):
    with about_data(source):
        _fit_and_score_on(model, data, training, callbacks, epochs, comm)


def _fit_and_score_on(model, data, training, callbacks, epochs, comm):
    (x_train, y_train), (x_test, y_test) = data
    t = training
    model.fit(x_train, y_train, batch_size=t.get("batch_size", 32), epochs=epochs,
              verbose=t.get("verbose", 2), validation_split=t.get("validation_split", 0.0),
              shuffle=t.get("shuffle", True), steps_per_update=t.get("steps_per_update", 1),
              callbacks=callbacks, comm=comm)
    if len(x_test):
        scores = model.evaluate(x_test, y_test, batch_size=t.get("batch_size", 32), verbose=0,
                                return_dict=True, comm=comm)
        _echo(comm, "Test " + " - ".join(f"{k}: {v:.4f}" for k, v in scores.items()))


def train_from_config(path: str, epochs: int | None = None, checkpoint_dir: str | None = None,
                      resume: str | None = None) -> Any:
    """Train as the config says; prints the test loss and metrics (rank 0). Returns the model.

    Args:
        path: the TOML config, or a shipped config's bare name (`digits_mlp`).
        epochs: overrides `[training].epochs`.
        checkpoint_dir: write checkpoints here (overrides `[checkpoint].dir`).
        resume: `"auto"` (the newest checkpoint in the folder that verifies; none: start fresh, and
            say so) or the path of a checkpoint to continue from.
    """
    cfg = load_config(path)
    data = load_data(cfg)
    t = cfg.training
    utils.set_random_seed(t.get("seed", 0))
    model = build_model(cfg, np.shape(data[0][0])[1:])
    comm = world()
    callbacks = []
    directory = checkpoint_dir or cfg.checkpoint.get("dir")
    if directory and not os.path.isabs(directory) and not checkpoint_dir:
        directory = os.path.join(cfg.base_dir, directory)
    if directory or resume:
        run_config = {"data": cfg.data, "base_dir": cfg.base_dir, "training": t,
                      "checkpoint": cfg.checkpoint, "checkpoint_dir": os.path.abspath(directory or ".")}
        callbacks.append(_backup_callback(directory, cfg.checkpoint, resume, run_config))
    _fit_and_score(model, data, t, callbacks, epochs or t.get("epochs", 1), comm,
                   source=data_file(cfg.data, cfg.base_dir))
    return model


def resume_from_checkpoint(path: str, epochs: int | None = None) -> Any:
    """Continue the run a checkpoint came from, with the data and settings it recorded.

    Args:
        path: a checkpoint written by `distdl train` (it records the run's config).
        epochs: train up to this epoch instead of the recorded one.
    """
    from ..datasets import load
    from ..models import model_from_checkpoint
    from ..saving import checkpoint as ckpt
    data = ckpt.load_checkpoint(path)
    run = _recorded_run(path, data.extra.get("run_config"))
    model = model_from_checkpoint(data, path)
    comm = world()
    # new checkpoints go beside the one resumed from (the recorded folder may be elsewhere or gone)
    run = dict(run, checkpoint_dir=os.path.dirname(os.path.abspath(path)))
    callbacks = [_backup_callback(run["checkpoint_dir"], run["checkpoint"], path, run)]
    t = run["training"]
    _fit_and_score(model, load(run["data"], base_dir=run["base_dir"]), t, callbacks,
                   epochs or t.get("epochs", 1), comm, source=data_file(run["data"], run["base_dir"]))
    return model


def _recorded_run(path, run) -> dict:
    """The run config `distdl train` recorded in checkpoint `path`, checked as a config file is.

    Its data is read only when it is a shipped dataset or a file inside the checkpoint's own
    folder: distdl never opens, on its own, a path named inside a checkpoint (one received from
    elsewhere could name any file). Data elsewhere is named by the user, as with Keras's
    BackupAndRestore: `distdl train CONFIG --resume CHECKPOINT`.
    """
    from .config import CHECKPOINT_KEYS, TRAINING_KEYS, _typed
    if not run:
        raise CheckpointError(f"{path} was not written by `distdl train`, so it does not record its data "
                              f"and settings; resume it from Python with BackupAndRestore instead.")
    if not (isinstance(run, dict) and isinstance(run.get("data"), dict) and isinstance(run.get("base_dir"), str)
            and isinstance(run.get("training"), dict) and isinstance(run.get("checkpoint", {}), dict)):
        raise CheckpointError(f"Checkpoint {path} records a run config without the data, base_dir, "
                              f"training and checkpoint tables `distdl resume` needs.")
    run = dict(run, training=_typed(path, "training", run["training"], TRAINING_KEYS),
               checkpoint=_typed(path, "checkpoint", run.get("checkpoint", {}), CHECKPOINT_KEYS))
    recorded = run["data"].get("path")
    if recorded is not None:
        folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        named = os.path.expanduser(str(recorded))
        full = os.path.realpath(os.path.join(run["base_dir"], named))
        if os.path.isabs(named) or os.path.commonpath([full, folder]) != folder:
            raise CheckpointError(
                f"Checkpoint {path} records its data as {full}, outside the checkpoint's folder {folder}; "
                f"distdl does not open paths named inside a checkpoint: continue with "
                f"`distdl train CONFIG --resume {path}`, whose config names the data.")
    return run


def data_spec(text: str) -> dict:
    """The dataset spec for `--data`.

    Args:
        text: a shipped dataset name, an .npz / .h5 file, or a folder of IDX files.
    """
    from ..datasets import SHIPPED_NAMES
    if text in SHIPPED_NAMES:
        return {"name": text}
    if os.path.isdir(text):
        return {"format": "idx", "path": text}
    lower = text.lower()
    if lower.endswith(".npz"):
        return {"format": "npz", "path": text}
    if lower.endswith((".h5", ".hdf5")):
        return {"format": "hdf5", "path": text}
    raise ConfigError(f"--data {text!r} is not a dataset name ({', '.join(SHIPPED_NAMES)}), an .npz or .h5 file, "
                      f"or a folder of IDX files.")


def _model_and_data(checkpoint, data):
    from ..datasets import load
    from ..models import load_model
    model = load_model(checkpoint)
    (xt, yt), (xv, yv) = load(data_spec(data), base_dir=".")
    x, y = (xv, yv) if len(xv) else (xt, yt)
    want = tuple(model.input_shapes[0])
    if None not in want and tuple(np.shape(x)[1:]) != want and int(np.prod(np.shape(x)[1:])) == int(np.prod(want)):
        x = np.asarray(x).reshape((len(x),) + want)  # e.g. 8x8 images into a 64-input MLP
    return model, x, y


def evaluate_checkpoint(checkpoint: str, data: str, batch_size: int = 32) -> dict:
    """Print (rank 0) and return the loss and metrics of a checkpoint's model on `data`.

    Args:
        checkpoint: a distdl checkpoint or `model.save` file.
        data: as `--data` takes it (see `data_spec`); its test split when it has one.
        batch_size: rows per evaluation step (global).
    """
    model, x, y = _model_and_data(checkpoint, data)
    comm = world()
    with about_data(data_file(data_spec(data))):
        scores = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True, comm=comm)
    _echo(comm, " - ".join(f"{k}: {v:.4f}" for k, v in scores.items()))
    return scores


def predict_checkpoint(checkpoint: str, data: str, out: str, batch_size: int = 32) -> Any:
    """Write a checkpoint's predictions for `data` to the .npy file `out` (rank 0); returns them.

    Args:
        checkpoint: a distdl checkpoint or `model.save` file.
        data: as `--data` takes it (see `data_spec`).
        out: the .npy file to write.
        batch_size: rows per prediction step (global).
    """
    model, x, _ = _model_and_data(checkpoint, data)
    comm = world()
    with about_data(data_file(data_spec(data))):
        pred = model.predict(x, batch_size=batch_size, verbose=0, comm=comm)
    if comm.rank == 0:
        try:
            np.save(out, pred if not isinstance(pred, list) else pred[0])
        except OSError as e:
            raise ConfigError(f"Cannot write predictions to {out} ({e.strerror or e}).") from None
        print(f"Wrote predictions of shape {np.shape(pred)} to {out}", flush=True)
    return pred


def inspect_lines(info: dict) -> list[str]:
    """What `distdl inspect` prints.

    Args:
        info: `distdl.saving.checkpoint.inspect_checkpoint(path)`, what `--json` prints.
    """
    lines = [f"file: {info['path']}",
             f"format version: {info['format_version']} (written by distdl {info['distdl_version']})",
             f"position: epoch {info['epoch']}, step {info['step']} within it (seed {info['seed']})",
             f"world size at save: {info['world_size']}",
             f"optimizer: {info['optimizer']} after {info['optimizer_iterations']} updates",
             f"checksum: {info['checksum']}",
             f"parameters: {info['total_params']:,} ({info['trainable_params']:,} trainable, "
             f"{info['non_trainable_params']:,} non-trainable, {info['dtype']})"]
    lines.append("layers:")
    for layer in info["layers"]:
        lines.append(f"  {layer['name'] + ' (' + layer['class_name'] + ')':<40} {layer['params']:>10,} params")
    lines.append("weights:")
    for v in info["variables"]:
        lines.append(f"  {v['name']:<40} {str(tuple(v['shape'])):<16} {v['params']:>10,}"
                     f"{'' if v['trainable'] else '  (non-trainable)'}")
    return lines
