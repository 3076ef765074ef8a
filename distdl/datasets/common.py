"""Checks every file loader shares: the file exists, which x/y keys to read, and equal x/y lengths."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["Pair"]

Pair = tuple[Any, Any]  # (x, y), or ((x_train, y_train), (x_test, y_test))


def _existing_file(path: str | Path, what: str) -> Path:
    """Return `path` as a Path, or raise DataError if it is not an existing regular file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} file {p} does not exist.")
    if not p.is_file():
        raise DataError(f"{what} path {p} is not a regular file.")
    return p


def _check_lengths(path: Path, xk: str, x: Any, yk: str, y: Any) -> None:
    if len(x) != len(y):
        raise DataError(f"In {path}, {xk!r} has {len(x)} rows but {yk!r} has {len(y)}; "
                        "x and y must have the same length.")


def _pick_keys(path: Path, names: list[str], x: str, y: str, kind: str) -> list[str]:
    """[x, y] if both exist, else the four `{x}_train ... {y}_test` names, else a DataError."""
    if {x, y} <= set(names):
        return [x, y]
    keys = [f"{x}_train", f"{y}_train", f"{x}_test", f"{y}_test"]
    if not set(keys) <= set(names):
        raise DataError(f"{path} has neither {kind} {x!r}/{y!r} nor {'/'.join(map(repr, keys))}; "
                        f"its {kind} are: {', '.join(map(repr, names)) or 'none'}.")
    return keys


_KINDS = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers", "V": "records",
          "M": "dates", "m": "time spans"}


def _pairs(path: Path, keys: list[str], arrays: list) -> Pair:
    """Check each array holds numbers and each x/y pair's lengths; return (x, y) or
    ((x_train, y_train), (x_test, y_test))."""
    for k, a in zip(keys, arrays):
        kind = a.dtype.kind
        if kind not in "biuf":
            raise DataError(f"In {path}, {k!r} holds {_KINDS.get(kind, 'values')} (dtype {a.dtype}), "
                            f"not numbers.")
    for i in range(0, len(keys), 2):
        _check_lengths(path, keys[i], arrays[i], keys[i + 1], arrays[i + 1])
    if len(arrays) == 2:
        return arrays[0], arrays[1]
    return (arrays[0], arrays[1]), (arrays[2], arrays[3])
