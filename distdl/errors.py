"""Errors for people: each kind carries one sentence naming what is wrong, and, for a misspelt
name, the names it was probably meant to be (`did_you_mean`, stdlib `difflib`)."""
from __future__ import annotations

import difflib
import math
from numbers import Real
from typing import Iterable

__all__ = ["DistdlError", "ConfigError", "DataError", "ShapeError", "CheckpointError", "CommError",
           "unknown_name", "did_you_mean", "finite_number"]


class DistdlError(Exception):
    """Base of every error distdl raises on purpose; the CLIs print it and exit 2."""


class ConfigError(DistdlError):
    """A bad name, option or config value (names the key and the allowed values)."""


class DataError(DistdlError):
    """Bad training or evaluation data (names the array, row or label)."""


class ShapeError(DistdlError):
    """Shapes that do not fit together (names the layer and both shapes)."""


class CheckpointError(DistdlError):
    """A checkpoint that cannot be written or read back (names the file)."""


class CommError(DistdlError):
    """A failure between ranks (names the rank and the operation)."""


def _key(name: str) -> str:
    """What two spellings of one name share: `SparseCategoricalCrossentropy` and
    `sparse_categorical_crossentropy` both become `sparsecategoricalcrossentropy`."""
    return name.lower().replace("_", "").replace("-", "")


def did_you_mean(name: object, valid: Iterable[object]) -> str:
    """` Did you mean 'x'?` (or `'x' or 'y'` when two are about as close) naming the valid names
    closest to `name`, else ''.

    Case, `_` and `-` are ignored when comparing, so `Dence`, `dense` and `DENSE` all find
    `Dense`; of two spellings of one name the one written more like `name` is shown.

    Args:
        name: the name that was not found (anything else than a string gets no suggestion).
        valid: the names that would have been accepted.
    """
    if not isinstance(name, str) or not name:
        return ""
    groups: dict[str, list[str]] = {}
    for candidate in map(str, valid):
        groups.setdefault(_key(candidate), []).append(candidate)
    target = _key(name)
    scored = sorted((-difflib.SequenceMatcher(None, target, k).ratio(), k) for k in groups)  # ties: a-z
    top = -scored[0][0] if scored else 0.0
    best = [k for score, k in scored[:1 if top == 1.0 else 2] if -score >= max(0.6, top - 0.05)]
    if not best:
        return ""
    shown = [max(sorted(groups[k]), key=lambda c: difflib.SequenceMatcher(None, name, c).ratio())
             for k in best]
    return " Did you mean " + " or ".join(map(repr, shown)) + "?"


def unknown_name(kind: str, name: object, valid: Iterable[object]) -> ConfigError:
    """The error for an unknown identifier: the valid names, then the closest ones.

    Args:
        kind: what was looked up, for the sentence (`loss`, `layer`, `optimizer`, ...).
        name: what the user wrote.
        valid: every accepted name (a dict's keys will do).
    """
    names = sorted(map(str, valid))
    return ConfigError(f"Unknown {kind} {name!r}; valid names are: {', '.join(names)}."
                       f"{did_you_mean(name, names)}")


def finite_number(what: str, value: object, low: float | None = None, high: float | None = None,
                  high_open: bool = False) -> float:
    """`value` as a float when it is a finite real number in [low, high] (or [low, high) with
    `high_open`), else a ConfigError naming `what` and the allowed range: a hyperparameter of NaN,
    inf, a string or a bool is refused where it is given, not found later as `loss: nan`.

    Args:
        what: the argument, for the sentence (`Adam argument beta_1`, `loss_weights['out']`).
        value: what the user gave.
        low, high: the allowed bounds (None: unbounded on that side).
        high_open: `high` itself is not allowed.
    """
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or value >= low) and (high is None or (value < high if high_open else value <= high))
    if not ok:
        if high is None:
            span = "" if low is None else f" >= {low:g}"
        else:
            span = (f" {'<' if high_open else '<='} {high:g}" if low is None
                    else f" in [{low:g}, {high:g}{')' if high_open else ']'}")
        raise ConfigError(f"{what} must be a finite number{span}, got {value!r}.")
    return float(value)
