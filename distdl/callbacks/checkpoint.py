"""`ModelCheckpoint` and `BackupAndRestore`: saving during `fit`, and exact resume.

A backup holds the position in the data (epoch, step within it, seed) and the
epoch's running sums by name besides weights and optimizer state, so a resumed run —
on the same or another number of ranks — continues exactly where it stopped. Both
callbacks read the loop's position from `model.train_state` (a TrainState). Writes are
collective (rank 0 writes, every rank goes on once the file is renamed): a write that fails
raises the same CheckpointError on every rank at the same step, so the whole job stops, the
previous checkpoint staying the newest valid one.
"""
from __future__ import annotations

import os

from ..comm import agree
from ..errors import CheckpointError, ConfigError
from ..saving import checkpoint as ckpt
from ..saving.model_io import (checkpoint_data, read_checkpoint, restore, save_model, save_weights,
                               write_checkpoint)
from .base import Callback

__all__ = ["ModelCheckpoint", "BackupAndRestore"]


def _save_freq(value, who: str):
    if value == "epoch" or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise ConfigError(f"{who} save_freq must be 'epoch' or a positive number of steps, got {value!r}.")


class ModelCheckpoint(Callback):
    """Save the model (or its weights) every epoch or every `save_freq` steps, as Keras does.
    Under MPI rank 0 writes; every rank calls it.

    Args:
        filepath: the file to write; it may hold `{epoch}`, `{batch}` and log names, formatted
            per save (e.g. "ckpt-{epoch:02d}-{val_loss:.2f}.h5"), numbered from 1 as Keras does.
        monitor: the log to compare when `save_best_only`, e.g. "val_loss".
        verbose: 1 prints a line per save (rank 0).
        save_best_only: save only when `monitor` improves on the best so far.
        save_weights_only: save the weights only (`save_weights`), not the whole model.
        mode: "min", "max" or "auto" (from the monitor's name): which way is better.
        save_freq: "epoch", or a number of steps between saves.
        initial_value_threshold: the value `monitor` must beat for the first save, or None.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode, self.save_freq = mode, _save_freq(save_freq, "ModelCheckpoint")
        self.best = initial_value_threshold
        self._steps = 0

    def _better(self, value):
        from .monitor import monitor_direction
        direction = monitor_direction("ModelCheckpoint", self.monitor, self.mode, self.model)
        if self.best is None:
            return True
        return value < self.best if direction == "min" else value > self.best

    def _save(self, epoch, logs, batch=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                self._say(f"ModelCheckpoint: '{self.monitor}' is not in the logs "
                          f"({', '.join(sorted(logs))}); skipping.")
                return
            if not self._better(value):
                return
            self.best = value
        try:
            # Keras numbers epochs and batches from 1 in file names
            path = self.filepath.format(epoch=epoch + 1, **({} if batch is None else {"batch": batch + 1}),
                                        **logs)
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"ModelCheckpoint filepath {self.filepath!r} cannot be formatted: {e}.") from None
        (save_weights if self.save_weights_only else save_model)(self.model, path)
        if self.verbose:
            self._say(f"Epoch {epoch + 1}: saved model to {path}")

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._steps += 1
            if self._steps % self.save_freq == 0:
                self._save(self.model.train_state.epoch, logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)


class BackupAndRestore(Callback):
    """Keras's fault-tolerance callback, exact: resume mid-epoch on any number of ranks.

    Backups go to `backup_dir` every epoch or every `save_freq` steps (newest `keep`
    kept). If the folder holds a backup that verifies when `fit` starts, training
    continues from it; newer backups that do not verify are skipped with a warning.

    Args:
        backup_dir: the folder of backups.
        save_freq: "epoch", or a number of steps between backups.
        delete_checkpoint: remove the backups when training ends normally.
        keep: how many of the newest backups to keep (at least 1).
        resume_from: a backup file to resume from instead of the folder's newest.
        run_config: a JSON-able record of the run (distdl train's config), kept in each backup.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, keep=3, resume_from=None,
                 run_config=None):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = _save_freq(save_freq, "BackupAndRestore")
        self.delete_checkpoint = delete_checkpoint
        if not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"BackupAndRestore keep must be a positive integer, got {keep!r}.")
        self.keep = keep
        self.resume_from = resume_from
        self.run_config = run_config
        self._steps = 0
        self._due = False

    def on_train_begin(self, logs=None):
        path, verified = self.resume_from, None
        if path is None:
            comm = self.model.comm
            if comm.rank == 0:
                path, verified, skipped = ckpt.latest_valid_checkpoint_data(self.backup_dir)
                for bad, why in skipped:
                    self._say(f"warning: skipping checkpoint {bad}: {why}")
            path = comm.bcast_obj(path)  # every rank must resume from the same file
        if path is None:
            return
        # every rank reads, agreed: the ranks compare what they read (rank 0 keeps what it verified)
        data = read_checkpoint(self.model.comm, path, verified)
        restore(self.model, data, path)
        state = self.model.train_state
        totals = data.totals or None
        if data.format_version == 1 and (data.extra or {}).get("totals") is not None:
            totals = state.layout.named_v1(data.extra["totals"])  # version 1: the raw vector
        state.resume_at(epoch=data.epoch, step=data.step, seed=data.seed, history=data.history, totals=totals)
        self._say(f"Resuming from {path} (epoch {data.epoch + 1}, step {data.step}).")

    def _write(self, epoch_logs=None):
        """Back up at the state's position; `epoch_logs`: an epoch just ended (not yet in the
        history), so the backup is at the start of the next one."""
        model, state = self.model, self.model.train_state
        extra = {} if self.run_config is None else {"run_config": self.run_config}
        history, totals = state.history_so_far(epoch_logs), state.named_totals()

        def write():
            try:
                os.makedirs(self.backup_dir, exist_ok=True)
            except OSError as e:
                raise CheckpointError(f"Could not create the checkpoint folder {self.backup_dir!r}: "
                                      f"{e.strerror or e}.") from e
            data = checkpoint_data(model, epoch=state.epoch, step=state.step, seed=state.seed,
                                   history=history, totals=totals, extra=extra)
            name = ckpt.checkpoint_name(state.epoch, state.step)
            write_checkpoint(os.path.join(self.backup_dir, name), data)
            try:
                ckpt.prune_checkpoints(self.backup_dir, self.keep)
            except OSError as e:
                raise CheckpointError(f"Could not remove old checkpoints in {self.backup_dir!r}: "
                                      f"{e.strerror or e}.") from e
        agree.on_root(model.comm, write)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._steps += 1
            self._due = self._due or self._steps % self.save_freq == 0
            # a backup between two steps of one update would lose the pending gradient sum: wait for the update
            if self._due and self.model.train_state.at_update_boundary():
                self._due = False
                self._write()

    def on_epoch_end(self, epoch, logs=None):
        self._due = False
        if self.save_freq == "epoch":
            self._write(logs or {})

    def on_preemption(self, logs=None):
        """SIGTERM/SIGINT reached a rank: back up the state after the step that just finished.

        Args:
            logs: unused (Keras's hook signature).
        """
        self._write()

    def on_train_end(self, logs=None):
        if not self.delete_checkpoint and self.save_freq != "epoch":
            self._write()  # keep the final state too, not only the last multiple of save_freq
        if self.delete_checkpoint:
            agree.on_root(self.model.comm, self._delete_all)

    def _delete_all(self):
        for p in ckpt.checkpoint_paths(self.backup_dir):
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise CheckpointError(f"Could not delete checkpoint {p!r}: {e.strerror or e}.") from e


