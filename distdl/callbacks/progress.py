"""`ProgbarLogger`, Keras 3's callback that prints the progress bar, on rank 0 only.

The bar itself is `distdl.utils.Progbar` (Keras's `keras.utils.Progbar`), re-exported here with
its number formats: `fit`'s bar and the utility are one class. This module is the callback that
drives it from `fit`, `evaluate` and `predict`.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from ..utils.progbar import LINE_INTERVAL, Progbar, format_eta, format_time_per_unit, format_value
from .base import Callback

__all__ = ["Progbar", "ProgbarLogger", "format_value", "format_time_per_unit", "format_eta", "LINE_INTERVAL"]


class ProgbarLogger(Callback):
    """The callback that prints the progress bar and the `Epoch 3/10` header (rank 0).

    Inside `fit`, validation runs silently and its `val_` metrics join the epoch's
    final line; `evaluate` and `predict` get a bar of their own.

    Args:
        stream: where to print (default: stdout at the time of printing).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.progbar: Progbar | None = None
        self.seen = 0
        self.target: int | None = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.epochs = params.get("epochs", 1) or 1
        self.target = params.get("steps")

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._called_in_fit = True  # validation inside fit stays silent

    def on_train_end(self, logs: dict | None = None) -> None:
        self._called_in_fit = False

    def on_test_begin(self, logs: dict | None = None) -> None:
        if not self._called_in_fit:
            self._reset()

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._reset()
        if self.verbose and self.epochs > 1 and self.rank == 0:
            out = self._out()
            out.write(f"Epoch {epoch + 1}/{self.epochs}\n")
            out.flush()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update(batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update(batch, None)  # predictions are not metrics

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._finalize(logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._finalize(logs)

    def _reset(self) -> None:
        self.seen = 0
        self.progbar = None

    def _bar(self) -> Progbar:
        if self.progbar is None:
            # as Keras: the loop's logs are already running epoch averages, shown as they are
            self.progbar = Progbar(self.target, verbose=self.verbose, unit_name="step", stateless_metrics=set(),
                                   stream=self._out(), rank=self.rank)
        return self.progbar

    def _update(self, batch: int, logs: dict | None) -> None:
        bar = self._bar()
        self.seen = batch + 1
        if self.verbose == 1:
            bar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize(self, logs: dict | None) -> None:
        bar = self._bar()
        if bar.target is None:
            bar.target = self.seen
        bar.update(bar.target, list((logs or {}).items()), finalize=True)
