"""Atomic HDF5 writes: a file is built in memory, written to a temp file beside its target,
fsynced and renamed over it, so a crash leaves the old file or the new one, never a partial one.
Checkpoints and Keras `.weights.h5` files are written this way; `checkpoint_files` removes the
temp files of writers that were killed.
"""
from __future__ import annotations

import errno
import io
import os
import secrets
from collections.abc import Callable

import h5py

from distdl.errors import CheckpointError
from distdl.saving.checkpoint_files import _remove_quietly
from distdl.saving.h5_safety import _cause

__all__ = ["atomic_h5_write"]


def atomic_h5_write(path: str | os.PathLike, write: Callable[[h5py.File], None], what: str,
                    libver: str | tuple[str, str] | None = None) -> None:
    """Run `write(h5file)` on an HDF5 file built in memory, then write its bytes to a temp file
    beside `path`, fsync it, and rename it over `path`.

    A crash at any point leaves either the old file or the new one under `path`, never a partial
    one. Building in memory keeps HDF5 away from the disk: a disk that fills or turns read-only is a
    plain OSError from `os.write` (HDF5 itself can crash when a write fails under it). On failure
    the temp file is removed and CheckpointError names `path` and the cause.

    Args:
        path: the file to write.
        write: fills the open in-memory HDF5 file.
        what: what is written, for messages ("Checkpoint", "Weights file").
        libver: h5py's bound on the HDF5 file format versions written (None: h5py's default).
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        image = io.BytesIO()
        with h5py.File(image, "w", libver=libver) as f:
            write(f)
        _write_bytes(tmp, image.getbuffer())
        os.replace(tmp, path)
    except CheckpointError:
        _remove_quietly(tmp)
        raise
    except Exception as e:  # OSError, h5py's errors, TypeError from odd dtypes: all mean "not saved"
        _remove_quietly(tmp)
        raise CheckpointError(f"Could not write {what} {path!r}: {_cause(e)}.") from e
    _fsync_dir(folder)


def _write_bytes(path: str, data: memoryview) -> None:
    """Create `path` (it must not exist) holding `data`, and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        done = 0
        while done < len(data):
            done += os.write(fd, data[done:done + (64 << 20)])
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable; some filesystems refuse fsync on folders, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise CheckpointError(f"Could not sync folder {folder!r}: {_cause(e)}.") from e
    finally:
        os.close(fd)
