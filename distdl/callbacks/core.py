"""`CallbackList` (what the training loop drives) and the simple callbacks: `TerminateOnNaN`,
`CSVLogger`, `LambdaCallback`. Users import every callback from `distdl.callbacks`."""
from __future__ import annotations

import collections.abc
import csv
import math
import os
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import ConfigError
from .base import HOOK_NAMES, Callback, History
from .progress import ProgbarLogger

__all__ = ["CallbackList", "TerminateOnNaN", "CSVLogger", "LambdaCallback"]


def _pythonify(logs: dict | None) -> dict:
    """Batch logs as Keras hands them on: sorted by name, numbers as Python floats."""
    result = {}
    for name, value in sorted((logs or {}).items()):
        try:
            result[name] = float(value)
        except (TypeError, ValueError):
            result[name] = value
    return result


class CallbackList(Callback):
    """Dispatch every hook to a list of callbacks, in order.

    Keras 3 order: the user's callbacks, then `History`, then `ProgbarLogger`
    (each added only when asked for and not already given). `params` (epochs,
    steps, verbose, rank, world_size) go to every callback's `set_params`.

    Args:
        callbacks: the user's callbacks, in order.
        add_history: append a History unless one is given.
        add_progbar: append a ProgbarLogger unless one is given.
        model: the model every callback acts on.
        **params: the run parameters (epochs, steps, verbose, rank, world_size) for every callback's
            set_params.
    """

    def __init__(self, callbacks: Iterable[Callback] | None = None, add_history: bool = False,
                 add_progbar: bool = False, model: Any = None, **params: Any) -> None:
        super().__init__()
        self.callbacks: list[Callback] = list(callbacks or [])
        for index, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks[{index}] is a {type(cb).__name__}, not a "
                                  "distdl.callbacks.Callback.")
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self._progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model: Any) -> None:
        if model is None:
            return
        self.model = model
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def _each(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_batch_begin", batch, logs or {})

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_batch_end", batch, _pythonify(logs))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._each("on_epoch_begin", epoch, logs or {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # One shared dict: callbacks such as LearningRateScheduler add keys that
        # History and CSVLogger, later in the list, then record.
        self._each("on_epoch_end", epoch, logs if logs is not None else {})

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_train_batch_begin", batch, logs or {})

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_train_batch_end", batch, _pythonify(logs))

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_test_batch_begin", batch, logs or {})

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_test_batch_end", batch, _pythonify(logs))

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_predict_batch_begin", batch, logs or {})

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._each("on_predict_batch_end", batch, logs or {})

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._each("on_train_begin", logs or {})

    def on_train_end(self, logs: dict | None = None) -> None:
        self._each("on_train_end", logs or {})

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._each("on_test_begin", logs or {})

    def on_test_end(self, logs: dict | None = None) -> None:
        self._each("on_test_end", logs or {})

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._each("on_predict_begin", logs or {})

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._each("on_predict_end", logs or {})

    def on_preemption(self, logs: dict | None = None) -> None:
        self._each("on_preemption", logs or {})


class TerminateOnNaN(Callback):
    """Stop training (`model.stop_training = True`) when a batch loss is NaN or infinite."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._say(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


def _csv_value(value: Any) -> Any:
    """Lists and arrays become one quoted `"[a, b]"` cell, as in Keras."""
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if isinstance(value, collections.abc.Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Write one CSV row per epoch: `epoch`, then the log keys in sorted order.

    Only rank 0 opens and writes the file (the logs are the same on every rank).
    With `append=True` rows go after an existing file's, without a second header.
    The file is flushed after each epoch so that a crash loses at most one row.

    Args:
        filename: the CSV file (written by rank 0 only).
        separator: the column separator.
        append: add rows to an existing file instead of replacing it.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self.writer: csv.DictWriter | None = None
        self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.rank != 0:
            return
        self.append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self.append_header = not f.readline()
        self._close()
        try:
            # newline="" lets the csv module write the excel dialect's \r\n itself.
            self.csv_file = open(self.filename, "a" if self.append else "w",
                                 newline="", encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"CSVLogger cannot open {self.filename!r} for writing: "
                              f"{err.strerror}.") from err
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.rank != 0 or self.csv_file is None:
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            for name in getattr(self.model, "metrics_names", None) or ():
                if name.startswith("val_") and name not in self.keys:
                    self.keys.append(name)
        if self.writer is None:
            dialect = type("_Dialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _csv_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._close()
        self.writer = None

    def _close(self) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = None


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. `LambdaCallback(on_epoch_end=lambda e, logs: ...)`.

    Epoch and batch hooks take `(index, logs)`, the begin/end hooks `(logs)`;
    any hook name from `Callback` may be given as a keyword.

    Args:
        on_epoch_begin: called as f(epoch, logs).
        on_epoch_end: called as f(epoch, logs).
        on_train_begin: called as f(logs).
        on_train_end: called as f(logs).
        on_train_batch_begin: called as f(batch, logs).
        on_train_batch_end: called as f(batch, logs).
        **kwargs: any other hook of Callback by name.
    """

    def __init__(self, on_epoch_begin: Callable | None = None, on_epoch_end: Callable | None = None,
                 on_train_begin: Callable | None = None, on_train_end: Callable | None = None,
                 on_train_batch_begin: Callable | None = None,
                 on_train_batch_end: Callable | None = None, **kwargs: Callable) -> None:
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if name not in HOOK_NAMES:
                raise ConfigError(f"LambdaCallback got unknown hook {name!r}; valid names are: "
                                  f"{', '.join(sorted(HOOK_NAMES))}.")
            if fn is not None:
                if not callable(fn):
                    raise ConfigError(f"LambdaCallback's {name} must be callable, "
                                      f"got {type(fn).__name__}.")
                setattr(self, name, fn)
