"""`TensorBoard`: Keras 3's callback, writing TensorBoard event files without TensorFlow (rank 0).

What it writes, as Keras 3 does (tags, folders and steps):

- `<log_dir>/train/`: `epoch_<name>` for each training log and `epoch_learning_rate`, at step
  `epoch`; with `update_freq=N` also `batch_<name>` (the running epoch averages the loop reports)
  every N-th training batch, at step = the number of batches trained since `on_train_begin`;
  with `histogram_freq=K` a histogram `<weight name>/histogram` of every weight every K epochs.
- `<log_dir>/validation/`: `epoch_<name>` for each `val_<name>` log at step `epoch`, and at the
  end of each evaluation `evaluation_<name>_vs_iterations` at step `optimizer.iterations`.

Logs are global (the same on every rank), so only rank 0 writes; the other ranks do nothing.
The files are opened lazily (no `validation/` folder without validation) and closed at
`on_train_end`; a second `fit` with the same callback starts new files, as in Keras.
"""
from __future__ import annotations

import numbers
import os
import time
from typing import Any

from ..errors import ConfigError
from .base import Callback
from .event_file import EventFileWriter, histogram_value, scalar_value

__all__ = ["TensorBoard"]


class TensorBoard(Callback):
    """Write scalars and weight histograms for TensorBoard (`tensorboard --logdir logs`).

    The signature is Keras 3's. `write_graph`, `write_images`, `embeddings_freq` and
    `embeddings_metadata` are accepted and ignored: they need TensorFlow's graph, image and
    projector plugins, which distdl does not produce. `profile_batch` must stay 0 (there is no
    TensorFlow profiler to start), as Keras requires on its NumPy and torch backends.

    Args:
        log_dir: the folder for the `train/` and `validation/` event files.
        histogram_freq: write weight histograms every this many epochs (0: never).
        write_graph: accepted and ignored (no graph to write).
        write_images: accepted and ignored.
        write_steps_per_second: also write `epoch_steps_per_second` and `batch_steps_per_second`.
        update_freq: "epoch" (scalars once per epoch), "batch" (every batch) or an integer N:
            `batch_*` scalars every N training batches as well.
        profile_batch: must be 0.
        embeddings_freq: accepted and ignored.
        embeddings_metadata: accepted and ignored.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None) -> None:
        super().__init__()
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and not (_is_count(update_freq) and update_freq > 0):
            raise ConfigError(f"TensorBoard's update_freq must be 'epoch', 'batch' or a positive integer; "
                              f"got {update_freq!r}.")
        if not _is_count(histogram_freq) or histogram_freq < 0:
            raise ConfigError(f"TensorBoard's histogram_freq must be a non-negative integer; got {histogram_freq!r}.")
        if profile_batch not in (0, None):
            raise ConfigError(f"TensorBoard's profile_batch must be 0: distdl has no profiler to start; "
                              f"got {profile_batch!r}.")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers: dict[str, EventFileWriter] = {}
        self._global_train_batch = 0
        self._batch_start = self._epoch_start = 0.0
        self._epoch_first_iteration = 0
        self._in_fit = False

    # ----- files ---------------------------------------------------------------------------------
    def _writer(self, which: str) -> EventFileWriter | None:
        """The `train` or `validation` writer, opened on first use; None on ranks other than 0."""
        if self.rank != 0:
            return None
        if which not in self._writers:
            self._writers[which] = EventFileWriter(os.path.join(self.log_dir, which))
        return self._writers[which]

    def _scalars(self, which: str, step: int, scalars: dict[str, Any]) -> None:
        writer = self._writer(which) if scalars else None
        if writer is not None:
            writer.add(step, [scalar_value(tag, float(v)) for tag, v in scalars.items()])
            writer.flush()

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # ----- hooks ---------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start counting training batches from 0 and open new files on first write.

        Args:
            logs: unused.
        """
        self._close()
        self._global_train_batch = 0
        self._in_fit = True

    def on_train_end(self, logs: dict | None = None) -> None:
        """Close the event files.

        Args:
            logs: unused.
        """
        self._in_fit = False
        self._close()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Note the time and optimizer step at the epoch's start (for steps per second).

        Args:
            epoch: index of the epoch.
            logs: unused.
        """
        self._epoch_start = _now()
        self._epoch_first_iteration = _iterations(self.model)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Count the batch (the step of `batch_*` scalars).

        Args:
            batch: index of the batch within the epoch.
            logs: unused.
        """
        self._global_train_batch += 1
        self._batch_start = _now()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Write `batch_<name>` scalars every `update_freq`-th batch.

        Args:
            batch: index of the batch within the epoch.
            logs: the global running averages of the epoch so far.
        """
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        scalars = {f"batch_{k}": v for k, v in (logs or {}).items() if _is_number(v)}
        if self.write_steps_per_second:
            scalars["batch_steps_per_second"] = 1.0 / max(_now() - self._batch_start, 1e-9)
        self._scalars("train", self._global_train_batch, scalars)

    def on_test_end(self, logs: dict | None = None) -> None:
        """Write `evaluation_<name>_vs_iterations` at the optimizer's step, as Keras does (inside
        `fit`'s validation when the loop reports it, and in `evaluate`).

        Args:
            logs: the global evaluation results.
        """
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "iterations") or not logs:
            return
        self._scalars("validation", int(optimizer.iterations),
                      {f"evaluation_{k}_vs_iterations": v for k, v in logs.items() if _is_number(v)})
        if not self._in_fit:  # a model.evaluate on its own: nothing else comes to close the file
            self._close()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Write the epoch's scalars (train and `val_` logs apart) and, when due, weight histograms.

        Args:
            epoch: index of the epoch (the step TensorBoard plots at).
            logs: the epoch's global logs.
        """
        logs = {k: v for k, v in (logs or {}).items() if _is_number(v)}
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        lr = _learning_rate(self.model)
        if lr is not None:
            train["epoch_learning_rate"] = lr
        if self.write_steps_per_second:
            steps = _iterations(self.model) - self._epoch_first_iteration
            train["epoch_steps_per_second"] = steps / max(_now() - self._epoch_start, 1e-9)
        self._scalars("train", epoch, train)
        self._scalars("validation", epoch, {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")})
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._histograms(epoch)

    def _histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        if writer is None:
            return
        values = [histogram_value(f"{w.name.replace(':', '_')}/histogram", w.numpy())
                  for layer in self.model.layers for w in layer.weights]
        if values:
            writer.add(epoch, values)
            writer.flush()


def _now() -> float:
    return time.perf_counter()


def _is_count(value: Any) -> bool:
    """An integer (NumPy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _iterations(model: Any) -> int:
    return int(getattr(getattr(model, "optimizer", None), "iterations", 0) or 0)


def _learning_rate(model: Any) -> float | None:
    """The optimizer's current learning rate (a schedule evaluated at its step), or None."""
    optimizer = getattr(model, "optimizer", None)
    try:
        return float(optimizer.learning_rate)
    except (AttributeError, TypeError, ValueError):
        return None
