"""Keras's utility progress bar, `Progbar`, and the number formats it prints.

`Progbar` draws `12/50 ━━━━━━━━━━━━━━━━━━━━ 3s 40ms/step - loss: 0.1234` (verbose=1) or
`50/50 - 2s - 40ms/step - loss: 0.1234` (verbose=2: one line at the end). The training loop's
`callbacks.ProgbarLogger` draws with it too, so `keras.utils.Progbar` and `fit`'s bar are one.

With verbose=1 the bar is redrawn in place with `\\r` on a terminal. Elsewhere (a pipe, a log
file, the ranks of `distdlrun`) it prints, as Keras 3 does, a new line with the running values
every `LINE_INTERVAL` seconds, so a long epoch is not silent until its end, and the final line
when the epoch ends. `distdlrun` sets `DISTDL_TTY=1` on every rank when its own stdout is a
terminal: the bar then redraws in place there too.
"""
from __future__ import annotations

import math
import numbers
import os
import sys
import time
from typing import Any, Callable, Iterable, TextIO

import numpy as np

from ..errors import ConfigError

__all__ = ["Progbar", "format_value", "format_time_per_unit", "format_eta", "LINE_INTERVAL"]

LINE_INTERVAL = 2.0  # seconds between progress lines when the output is not a terminal

_BOLD, _GREEN, _GREY, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"


def _isatty(stream: Any) -> bool:
    """Whether `stream` shows on a terminal: it is one, or it is this process's stdout and
    distdlrun (whose stdout is a terminal) set DISTDL_TTY=1 for its ranks."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return stream in (sys.stdout, sys.__stdout__) and os.environ.get("DISTDL_TTY") == "1"


def _bar_chars(stream: Any, dynamic: bool) -> tuple[str, str]:
    """Characters for the done and to-do parts of the bar, falling back to ASCII."""
    done, todo = ("━", "━") if dynamic else ("━", "─")  # a terminal tells them apart by colour
    try:
        (done + todo).encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return "=", "."
    return done, todo


def format_value(value: Any) -> str:
    """A metric as Keras prints it: 4 decimals, or scientific notation when tiny.

    Args:
        value: a number (anything else is printed with `str`).
    """
    if not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_time_per_unit(seconds: float, unit_name: str) -> str:
    """A step duration as ` 1s/step`, ` 35ms/step` or ` 120us/step`.

    Args:
        seconds: the duration of one unit.
        unit_name: what a unit is called (`step`).
    """
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f" {seconds * 1e3:.0f}ms/{unit_name}"
    return f" {seconds * 1e6:.0f}us/{unit_name}"


def format_eta(seconds: float) -> str:
    """Remaining time as `12s`, `3:05` or `1:02:03`.

    Args:
        seconds: the time left.
    """
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


class Progbar:
    """A progress bar for `target` steps (None when unknown), shown on rank 0 only.

    The positional arguments are Keras 3's (`keras.utils.Progbar`); the keyword-only ones are
    distdl's: where to write, which rank writes, and a clock for tests.

    Args:
        target: the number of steps, None when unknown.
        width: the bar's width in characters (Keras 3's 20).
        verbose: 1 (the bar), 2 (one line at the end) or 0 (nothing).
        interval: seconds between redraws on a terminal.
        stateful_metrics: names shown as given; the others are averaged over the steps seen.
            Give this or `stateless_metrics`, not both.
        stateless_metrics: names averaged over the steps seen; the others are shown as given.
        unit_name: what a step is called in `40ms/step`.
        stream: where to write (stdout by default).
        rank: only rank 0 writes.
        clock: the time source, so tests can fix the time.
        line_interval: seconds between progress lines when `stream` is not a terminal (the
            first comes one interval after the start: a short epoch prints only its final line).
    """

    def __init__(self, target: int | None, width: int = 20, verbose: int = 1, interval: float = 0.05,
                 stateful_metrics: Iterable[str] | None = None, stateless_metrics: Iterable[str] | None = None,
                 unit_name: str = "step", *, stream: TextIO | None = None, rank: int = 0,
                 clock: Callable[[], float] = time.monotonic, line_interval: float | None = None) -> None:
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ConfigError("Progbar takes only one of stateful_metrics and stateless_metrics: the other "
                             "names are then the stateless or the stateful ones.")
        self.target = target
        self.verbose = verbose
        # as Keras: with neither given, every value is stateless (averaged)
        self.stateful_metrics = None if stateless_metrics is not None else set(stateful_metrics or ())
        self.stateless_metrics = None if stateless_metrics is None else set(stateless_metrics)
        self.width = width
        self.interval = interval
        self.line_interval = LINE_INTERVAL if line_interval is None else line_interval
        self.stream = stream if stream is not None else sys.stdout
        self.rank = rank
        self.unit_name = unit_name
        self._clock = clock
        self._dynamic = _isatty(self.stream)
        self._chars = _bar_chars(self.stream, self._dynamic)
        self._values: dict[str, list] = {}  # name -> [sum or value, count]
        self._order: list[str] = []
        self._seen = 0
        self._start = clock()
        self._last_update = -math.inf if self._dynamic else self._start
        self._time_after_first_step: float | None = None
        self._prev_width = 0

    def _stateless(self, name: str) -> bool:
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def update(self, current: int, values: Iterable[tuple[str, Any]] | None = None,
               finalize: bool | None = None) -> None:
        """Record `values` at step `current` and draw if it is time to.

        Args:
            current: the number of steps done.
            values: (name, value) pairs of this step.
            finalize: whether this is the last update (default: `current >= target`).
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or ():
            if name not in self._order:
                self._order.append(name)
            if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
                value = float(np.mean(value))  # as Keras: an array shows its mean
            if not self._stateless(name) or finalize:
                self._values[name] = [value, 1]
            else:
                weight = max(current - self._seen, 1)
                total = self._values.setdefault(name, [0.0, 0])
                total[0] += value * weight
                total[1] += weight
        self._seen = current
        now = self._clock()
        per_unit = self._step_duration(current, now)
        if self.rank != 0 or self.verbose not in (1, 2):
            return
        if self.verbose == 1:
            self._draw_live(current, now, per_unit, finalize)
        elif finalize and self.target:
            self._draw_summary(current, now, per_unit)

    def add(self, n: int, values: Iterable[tuple[str, Any]] | None = None) -> None:
        """Advance by `n` steps.

        Args:
            n: steps done since the last update.
            values: (name, value) pairs of these steps.
        """
        self.update(self._seen + n, values)

    def _step_duration(self, current: int, now: float) -> float:
        # The first step (setup, caches) is left out of the estimate once there are more.
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit

    def _metrics_text(self) -> str:
        parts = []
        for name in self._order:
            total, count = self._values[name]
            value = total / max(1, count) if isinstance(total, numbers.Real) else total
            parts.append(f" - {name}: {format_value(value)}")
        return "".join(parts)

    def _draw_live(self, current: int, now: float, per_unit: float, finalize: bool) -> None:
        """verbose=1: redraw in place on a terminal; elsewhere a new line every `line_interval`."""
        wait = self.interval if self._dynamic else self.line_interval
        if not finalize and now - self._last_update < wait:
            return
        self._last_update = now
        if self.target:  # a target of 0 or None draws as unknown, as Keras
            digits = int(math.log10(self.target)) + 1
            count = f"{current:{digits}d}/{self.target}"
            filled = min(self.width, int(self.width * current / self.target))
            done, todo = self._chars[0] * filled, self._chars[1] * (self.width - filled)
            plain = f"{count} {done}{todo}"
            styled = (f"{_BOLD}{count}{_RESET} {_GREEN}{done}{_RESET}{_GREY}{todo}{_RESET}"
                      if self._dynamic else plain)
        else:
            plain = styled = f"{current:7d}/Unknown"
        if self.target and not finalize:
            timing = format_eta(per_unit * (self.target - current))
        else:
            timing = f"{now - self._start:.0f}s"
        rest = format_time_per_unit(per_unit, self.unit_name) + self._metrics_text()
        width = len(plain) + 1 + len(timing) + len(rest)
        line = styled + (f" {_BOLD}{timing}{_RESET}" if self._dynamic else f" {timing}") + rest
        if self._dynamic:
            line = "\r" + line + " " * max(0, self._prev_width - width)
        self._prev_width = width
        self._write(line + ("\n" if finalize or not self._dynamic else ""))

    def _draw_summary(self, current: int, now: float, per_unit: float) -> None:
        """verbose=2: one line per epoch, `N/N - 1s - 3ms/step - loss: ...`."""
        digits = int(math.log10(self.target)) + 1
        line = (f"{current:{digits}d}/{self.target} - {now - self._start:.0f}s -"
                f"{format_time_per_unit(per_unit, self.unit_name)}{self._metrics_text()}\n")
        self._write(line)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
