"""The checkpoint checksums: sha256 over what a checkpoint holds, so any change to it is seen.

Format versions 1 and 2 (`array_checksum`) cover the arrays and the iteration count only: an
edited config, position, history or RNG state went unseen. Format version 3 (`file_checksum`)
covers every dataset and attribute of the file but the `checksum` attribute itself: the model,
optimizer and compile configs, the variable list, the position and seed, history, totals, RNG
state, extra, the format attributes and the arrays. The writer feeds it the values it writes and
the reader the values it read (JSON texts as their stored bytes, before they are parsed).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["array_checksum", "file_checksum"]


def _little(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a if a.dtype.byteorder in "<|=" else a.astype(a.dtype.newbyteorder("<"))


def array_checksum(params: np.ndarray, state: np.ndarray, optimizer_state: dict[str, np.ndarray],
                   iterations: int) -> str:
    """Versions 1-2: sha256 hex over params, state, each optimizer slot in sorted name order, then
    the iteration count.

    Each array contributes its dtype string, shape and little-endian bytes, so a reinterpreted or
    reshaped array is caught as well as a flipped byte.

    Args:
        params: the trainable arena.
        state: the state arena.
        optimizer_state: the optimizer's slot arrays by name.
        iterations: the optimizer's update count.
    """
    h = hashlib.sha256()
    arrays = [("params", params), ("state", state)]
    arrays += [(f"slot:{k}", optimizer_state[k]) for k in sorted(optimizer_state)]
    for label, a in arrays:
        a = _little(np.asarray(a))
        h.update(f"{label}|{a.dtype.str}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    h.update(f"iterations|{int(iterations)}".encode())
    return h.hexdigest()


def file_checksum(entries: dict[str, int | str | bytes | np.ndarray]) -> str:
    """Version 3: sha256 hex over every entry of the file, in sorted key order.

    Keys are dataset paths (`model/params`, `training/history`) and attributes as
    `<group>@<name>` (`/@format_version`, `training@epoch`). Each entry is framed as
    8-byte length + JSON header `[key, kind, meta]` + payload: an int or str attribute
    is its own meta (no payload); a JSON text (bytes) has meta = its length and its bytes as
    payload; an array has meta = [dtype, shape] and its little-endian bytes as payload. The
    framing makes every entry boundary unambiguous, and the kinds keep `1` and `"1"` apart.

    Args:
        entries: every dataset and attribute of the file by key, as above.
    """
    h = hashlib.sha256()
    for key in sorted(entries):
        value = entries[key]
        payload = b""
        if isinstance(value, bytes):
            head, payload = [key, "text", len(value)], value
        elif isinstance(value, np.ndarray):
            a = _little(value)
            head, payload = [key, "array", [a.dtype.str, list(a.shape)]], memoryview(a).cast("B")
        elif isinstance(value, str):
            head = [key, "str", value]
        elif isinstance(value, int) and not isinstance(value, bool):
            head = [key, "int", value]
        else:
            raise TypeError(f"checksum entry {key!r} has type {type(value).__name__}")
        header = json.dumps(head).encode()
        h.update(len(header).to_bytes(8, "little"))
        h.update(header)
        h.update(payload)
    return h.hexdigest()
