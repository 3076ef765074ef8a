"""`distdl plot`: a run's training curves as a picture.

The history comes from a `CSVLogger` file, from a checkpoint (`/training/history`, what
`History` recorded up to it), or from a checkpoint folder (its newest checkpoint that verifies).
Each quantity gets a panel with its value per epoch: the training curve solid, the validation
one (`val_` + name) dashed, epochs counted from 1 as Keras prints them. matplotlib is an optional
dependency (`pip install 'distdl[plot]'`); only this module imports it, and without it the
command says so in one sentence.
"""
from __future__ import annotations

import csv
import math
import os

from ..errors import ConfigError

__all__ = ["read_history", "plot_history", "figure_pixels", "PANEL_INCHES", "DPI"]

PANEL_INCHES = (4.0, 3.0)  # one panel, width x height
DPI = 100
COLUMNS = 3  # panels per row at most
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _float(text: str) -> float:
    """A CSV cell as a number; `NA`, empty and non-numbers (lists) become NaN, drawn as gaps."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def _read_csv(path: str) -> tuple[list[int], dict[str, list[float]]]:
    """A CSVLogger file: `epoch` (0-based) and one column per logged quantity. A row repeating an
    epoch (a resumed run appending to the file) replaces the earlier one."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = list(csv.DictReader(fh, dialect=dialect))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read {path} as a CSVLogger file ({getattr(e, 'strerror', None) or e}).") from None
    if not rows or "epoch" not in rows[0]:
        raise ConfigError(f"{path} is not a CSVLogger file: it has no 'epoch' column.")
    by_epoch: dict[int, dict[str, str]] = {}
    for number, row in enumerate(rows, start=2):
        try:
            by_epoch[int(row["epoch"])] = row
        except (TypeError, ValueError):
            raise ConfigError(f"{path}, line {number}: epoch {row['epoch']!r} is not a whole number.") from None
    epochs = sorted(by_epoch)
    names = [k for k in rows[0] if k and k != "epoch"]
    series = {k: [_float(by_epoch[e].get(k) or "") for e in epochs] for k in names}
    return [e + 1 for e in epochs], {k: v for k, v in series.items() if not all(map(math.isnan, v))}


def _read_checkpoint(path: str) -> tuple[list[int], dict[str, list[float]]]:
    from ..saving.checkpoint import load_checkpoint
    history = load_checkpoint(path).history or {}
    length = max((len(v) for v in history.values()), default=0)
    series = {k: [float(x) if x is not None else math.nan for x in v] + [math.nan] * (length - len(v))
              for k, v in history.items()}
    return list(range(1, length + 1)), series


def read_history(source: str) -> tuple[list[int], dict[str, list[float]], str]:
    """(epochs counted from 1, {name: one value per epoch}, the file read) from a CSVLogger file, a
    checkpoint or a checkpoint folder; ConfigError/CheckpointError with one sentence when there is
    nothing to draw.

    Args:
        source: a `.csv` written by CSVLogger, a distdl checkpoint (`.h5`), or a `--checkpoint-dir`.
    """
    if os.path.isdir(source):
        from ..saving.checkpoint import latest_valid_checkpoint
        newest, skipped = latest_valid_checkpoint(source)
        if newest is None:
            why = f" ({len(skipped)} that do not verify)" if skipped else ""
            raise ConfigError(f"Checkpoint folder {source} holds no checkpoint to read a history from{why}.")
        epochs, series = _read_checkpoint(newest)
        source = newest
    elif not os.path.isfile(source):
        raise ConfigError(f"{source} does not exist; give a CSVLogger file, a checkpoint or a checkpoint folder.")
    else:
        with open(source, "rb") as fh:
            is_hdf5 = fh.read(8) == _HDF5_SIGNATURE
        epochs, series = (_read_checkpoint if is_hdf5 else _read_csv)(source)
    if not epochs or not series:
        raise ConfigError(f"{source} records no finished epoch yet: nothing to draw.")
    return epochs, series, source


def _panels(series: dict[str, list[float]]) -> list[str]:
    """One panel per quantity, `loss` first, then in the order logged; `val_x` joins `x`."""
    bases = []
    for name in series:
        base = name.removeprefix("val_")
        if base not in bases:
            bases.append(base)
    return sorted(bases, key=lambda b: b != "loss")


def figure_pixels(panels: int) -> tuple[int, int]:
    """(width, height) in pixels of the picture for `panels` panels.

    Args:
        panels: how many quantities are drawn (`loss`, `accuracy`, ...).
    """
    cols = min(COLUMNS, panels)
    rows = math.ceil(panels / cols)
    return round(cols * PANEL_INCHES[0] * DPI), round(rows * PANEL_INCHES[1] * DPI)


def plot_history(epochs: list[int], series: dict[str, list[float]], out: str, title: str = "") -> list[str]:
    """Draw the curves into `out` (PNG, or any format matplotlib writes by extension); returns the
    panel names. ConfigError when matplotlib is missing or the file cannot be written.

    Args:
        epochs: the x values, epochs counted from 1.
        series: name -> one value per epoch (NaN: not recorded that epoch, left as a gap).
        out: the file to write.
        title: drawn above the panels (the source's name).
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ConfigError("distdl plot needs matplotlib, which is not installed: "
                          "pip install 'distdl[plot]' (or pip install matplotlib).") from None
    names = _panels(series)
    width, height = figure_pixels(len(names))
    cols = min(COLUMNS, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    marker = "o" if len(epochs) <= 30 else None  # dots while they can be told apart
    for ax, name in zip(axes, names):
        if name in series:
            ax.plot(epochs, series[name], "-", marker=marker, ms=3, color="C0", label="train")
        if "val_" + name in series:
            ax.plot(epochs, series["val_" + name], "--", marker=marker, ms=3, color="C1", label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if name in series and "val_" + name in series:
            ax.legend(fontsize="small")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=DPI)
    except (OSError, ValueError) as e:
        raise ConfigError(f"Cannot write {out} ({getattr(e, 'strerror', None) or e}).") from None
    return names
