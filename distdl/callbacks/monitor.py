"""Callbacks that watch a metric or steer the learning rate, with Keras 3 semantics.

`EarlyStopping`, `ReduceLROnPlateau` and `LearningRateScheduler`. Their logs are
global (identical on every rank), so every rank stops or changes the learning
rate at the same epoch; only rank 0 prints or warns.
"""
from __future__ import annotations

import inspect
import math
import numbers
import warnings
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from .base import Callback

__all__ = ["EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler", "monitor_direction"]

_MODES = ("auto", "min", "max")
# Substrings of metric names that Keras metrics maximise ("direction up").
_UP_WORDS = ("acc", "auc", "precision", "recall", "f1", "fbeta", "r2", "iou",
             "cosine_similarity", "sensitivity", "specificity")
# Substrings of loss-like names that are minimised.
_DOWN_WORDS = ("loss", "error", "crossentropy", "mse", "mae", "mape", "msle",
               "hinge", "divergence", "kld", "poisson", "logcosh", "huber")


def _check_mode(owner: str, mode: str) -> str:
    """Return `mode` if it is one of auto/min/max, else raise a ConfigError."""
    if mode not in _MODES:
        raise ConfigError(f"{owner} got mode={mode!r}; valid modes are: auto, max, min.")
    return mode


def monitor_direction(owner: str, monitor: str, mode: str, model: Any = None) -> str:
    """Resolve `mode` to 'min' or 'max' for the metric `monitor` (Keras's 'auto' rule).

    'auto' minimises losses and maximises accuracy-like metrics; a model metric
    with a `direction` ('up'/'down') attribute of that name wins over the name rule.

    Args:
        owner: the callback's name, for the message.
        monitor: the monitored log key (`val_loss`, `accuracy`, ...).
        mode: 'auto', 'min' or 'max'.
        model: the model, whose metrics may declare a direction.
    """
    if mode in ("min", "max"):
        return mode
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    for metric in getattr(model, "metrics", None) or ():
        direction = getattr(metric, "direction", None) or getattr(metric, "_direction", None)
        if getattr(metric, "name", None) == name and direction in ("up", "down"):
            return "max" if direction == "up" else "min"
    lowered = name.lower()
    if any(word in lowered for word in _UP_WORDS):
        return "max"
    if any(word in lowered for word in _DOWN_WORDS):
        return "min"
    raise ConfigError(f"{owner} cannot tell whether monitor={monitor!r} should be minimised "
                      "or maximised; pass mode='min' or mode='max'.")


def _warn_missing(cb: Callback, what: str, monitor: str, logs: dict) -> None:
    """Warn (rank 0 only) that `monitor` is not in the logs, listing what is."""
    if cb.rank == 0:
        warnings.warn(f"{what} conditioned on metric `{monitor}` which is not available. "
                      f"Available metrics are: {','.join(logs.keys())}", stacklevel=3)


def _current_lr(model: Any, owner: str) -> float:
    """Read `model.optimizer.learning_rate` as a float, or say why it cannot be read."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ConfigError(f"{owner} needs a compiled model whose optimizer has a learning_rate.")
    return float(optimizer.learning_rate)


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved for `patience` epochs.

    An improvement beats the best value so far by more than `min_delta`; with a
    `baseline`, the wait only restarts once the value also beats the baseline.
    With `restore_best_weights`, the best epoch's weights are set back at the end
    of training (whether or not training stopped early), as Keras 3 does.

    Args:
        monitor: the log key to watch.
        min_delta: the least change that counts as an improvement.
        patience: epochs without improvement before stopping.
        verbose: 1: say when training stops and when weights are restored.
        mode: 'auto', 'min' or 'max'.
        baseline: a value the monitored quantity must beat for the wait to restart.
        restore_best_weights: set the best epoch's weights back at the end.
        start_from_epoch: epochs to wait before watching.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = _check_mode("EarlyStopping", mode)
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._direction: str | None = None
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()  # lets one instance serve several fit calls

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self._direction == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def _snapshot(self) -> list[np.ndarray]:
        # Copies: the model's weights may be views into the live parameter arena.
        return [np.array(w, copy=True) for w in self.model.get_weights()]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self._direction is None:
            self._direction = monitor_direction("EarlyStopping", self.monitor, self.mode, self.model)
        current = logs.get(self.monitor)
        if current is None:
            _warn_missing(self, "Early stopping", self.monitor, logs)
            return
        if epoch < self.start_from_epoch:
            return
        current = float(current)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self._snapshot()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self._snapshot()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            self._say(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                self._say(f"Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` after `patience` epochs without improvement.

    After a reduction, `cooldown` epochs pass before waiting starts again; the rate
    never drops below `min_lr`. Records the epoch's `learning_rate` in the logs.

    Args:
        monitor: the log key to watch.
        factor: the learning rate is multiplied by this (< 1).
        patience: epochs without improvement before a reduction.
        verbose: 1: say when the rate is reduced.
        mode: 'auto', 'min' or 'max'.
        min_delta: the least change that counts as an improvement.
        cooldown: epochs after a reduction before waiting starts again.
        min_lr: the rate never goes below this.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__()
        if factor >= 1.0:
            raise ConfigError(f"ReduceLROnPlateau does not support factor >= 1.0, got factor={factor}.")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = _check_mode("ReduceLROnPlateau", mode)
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self._direction: str | None = None
        self._reset()

    def _reset(self) -> None:
        self.cooldown_counter = 0
        self.wait = 0
        self.best = math.nan  # set once the direction is known

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()
        self._direction = None

    def in_cooldown(self) -> bool:
        """Whether the epochs after the last reduction are still running out."""
        return self.cooldown_counter > 0

    def _is_improvement(self, value: float) -> bool:
        if self._direction == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if self._direction is None:
            self._direction = monitor_direction("ReduceLROnPlateau", self.monitor, self.mode, self.model)
            self.best = math.inf if self._direction == "min" else -math.inf
        logs["learning_rate"] = _current_lr(self.model, "ReduceLROnPlateau")
        current = logs.get(self.monitor)
        if current is None:
            _warn_missing(self, "Learning rate reduction", self.monitor, logs)
            return
        current = float(current)
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = logs["learning_rate"]
                # Compare in float32 as Keras does, so min_lr is reached exactly once.
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        self._say(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing "
                                  f"learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


def _takes_two_args(fn: Callable) -> bool:
    """Whether `schedule` accepts (epoch, lr); Keras also allows the old (epoch) form."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(0, 0.0)
    except TypeError:
        return False
    return True


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start to `schedule(epoch, lr)`.

    `epoch` is 0-based and `lr` the current rate; the epoch's rate is recorded as
    `learning_rate` in the epoch logs (and so in History and CSVLogger).

    Args:
        schedule: f(epoch, lr) -> new rate (or f(epoch)); epoch counts from 0.
        verbose: 1: say the rate set each epoch.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise ConfigError(f"LearningRateScheduler needs a callable schedule, got {type(schedule).__name__}.")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = _current_lr(self.model, "LearningRateScheduler")
        new_lr = self.schedule(epoch, lr) if _takes_two_args(self.schedule) else self.schedule(epoch)
        if isinstance(new_lr, np.ndarray) and new_lr.ndim == 0:
            new_lr = new_lr[()]
        if not isinstance(new_lr, numbers.Real) or isinstance(new_lr, bool):
            raise ConfigError(f"LearningRateScheduler's schedule must return a float, "
                              f"got {new_lr!r} at epoch {epoch}.")
        self.model.optimizer.learning_rate = float(new_lr)
        if self.verbose > 0:
            self._say(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                      f"{float(new_lr)}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model, "LearningRateScheduler")
