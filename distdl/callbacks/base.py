"""The `Callback` contract and `History`, as in Keras 3.

Kept apart from `callbacks.py` so that `progress.py` (the ProgbarLogger) and the
checkpoint callbacks can subclass `Callback` without a circular import.
"""
from __future__ import annotations

from typing import Any

from ..log import notice

__all__ = ["HOOK_NAMES", "Callback", "History"]

# Every hook a training loop may call; LambdaCallback checks names against it.
HOOK_NAMES = (
    "on_batch_begin", "on_batch_end",
    "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end",
    "on_test_batch_begin", "on_test_batch_end",
    "on_predict_batch_begin", "on_predict_batch_end",
    "on_train_begin", "on_train_end",
    "on_test_begin", "on_test_end",
    "on_predict_begin", "on_predict_end",
    "on_preemption",
)


class Callback:
    """Base class: every hook is a no-op; subclasses override the ones they need.

    `params` holds 'epochs', 'steps', 'verbose', 'rank' and 'world_size' as set by
    the training loop. Logs passed to hooks are global (summed across ranks), so
    every rank takes the same decisions; only rank 0 should print or write files.
    """

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.model: Any = None

    def set_params(self, params: dict[str, Any]) -> None:
        """Receive the run parameters.

        Args:
            params: 'epochs', 'steps', 'verbose', 'rank' and 'world_size'.
        """
        self.params = params

    def set_model(self, model: Any) -> None:
        """Receive the model the callbacks act on.

        Args:
            model: the model being fitted, evaluated or run.
        """
        self.model = model

    @property
    def rank(self) -> int:
        """This process's rank (0 when no params were set, as in one process)."""
        return int(self.params.get("rank", 0) or 0)

    def _say(self, message: str) -> None:
        """A notice from rank 0 only, through the `distdl` logger (shown on stdout by default)."""
        notice(message, rank=self.rank)

    # Keras's backwards-compatible aliases: the train-batch hooks call these.
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Alias of `on_train_batch_begin`, kept for Keras compatibility.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Alias of `on_train_batch_end`, kept for Keras compatibility.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the start of each training epoch (0-based index).

        Args:
            epoch: index of the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the end of each epoch with the epoch's (and `val_`) metrics.

        Args:
            epoch: index of the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each training batch.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each training batch with the running epoch averages.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each evaluation or validation batch.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each evaluation or validation batch.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each prediction batch.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each prediction batch.

        Args:
            batch: index of the batch within the epoch (0-based).
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once when `fit` starts.

        Args:
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once when `fit` ends (also after an early stop).

        Args:
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Called when evaluation or validation starts.

        Args:
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_test_end(self, logs: dict | None = None) -> None:
        """Called when evaluation or validation ends.

        Args:
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Called when prediction starts.

        Args:
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_predict_end(self, logs: dict | None = None) -> None:
        """Called when prediction ends.

        Args:
            logs: the global metric values so far (summed across ranks), or None.
        """

    def on_preemption(self, logs: dict | None = None) -> None:
        """Called on every rank when SIGTERM or SIGINT reached any rank during `fit`, after the
        step in flight (and its gradient update) finished and before every rank exits with
        128 + signal: the moment to save. distdl's own hook, not Keras's; BackupAndRestore
        writes a backup at `model.train_state`'s position here.

        Args:
            logs: the global metric values so far (summed across ranks), or None.
        """


class History(Callback):
    """Records each epoch's logs: `history[name]` is a list with one value per epoch.

    Added to every `fit` by `CallbackList`; `model.history` points at it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.epoch.append(epoch)
        for name, value in logs.items():
            self.history.setdefault(name, []).append(value)
        if self.model is not None:
            self.model.history = self
