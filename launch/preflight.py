"""What distdlrun checks before it starts or restarts ranks, so that a job that cannot work is
refused with one sentence instead of dying later: room in /dev/shm for the ranks on this host,
and a checkpoint folder that can take the next checkpoint.
"""
from __future__ import annotations

import os
import socket
import tempfile

from distdl.cli import shm
from distdl.errors import ConfigError
from distdl.saving.checkpoint_files import checkpoint_paths, clean_temp_files

from .hosts import Host, ranks_per_host

__all__ = ["local_ranks", "check_shm", "checkpoint_folder_problem"]

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}
PROBE_BYTES = 4096  # what the write test puts in the checkpoint folder (and removes)


def local_ranks(hosts: list[Host], np: int, here: str | None = None) -> int:
    """How many of `np` ranks land on this host (all of them when no hosts are given).

    Args:
        hosts: the hosts given (none: every rank runs here).
        np: the number of ranks.
        here: this host's name (default: socket.gethostname()).
    """
    if not hosts:
        return np
    here = here or socket.gethostname()
    names = _LOCAL_NAMES | {here, here.split(".")[0]}
    return sum(n for h, n in zip(hosts, ranks_per_host(hosts, np)) if h.name in names)


def check_shm(hosts: list[Host], np: int, free: int | None = None) -> None:
    """Refuse (ConfigError) when /dev/shm here lacks room for this host's ranks; `free` stands in
    for the measured free bytes. Other hosts are not checked from here: a rank there that runs
    out dies of SIGBUS, which distdlrun reports with the same advice.

    Args:
        hosts: the hosts given (none: every rank runs here).
        np: the number of ranks.
        free: stands in for the measured free bytes (tests).
    """
    problem = shm.room_problem(local_ranks(hosts, np), free=free)
    if problem:
        raise ConfigError(f"Not starting: {problem}")


def checkpoint_folder_problem(directory: str) -> str | None:
    """Why the next checkpoint cannot be written into `directory`, or None when it can.

    Temp files of killed writers are removed first (they hold room the next save needs). Then
    a small file is written, synced and removed, which catches a read-only or full file system,
    missing permissions and quota; the folder must also have room for a file as large as its
    newest checkpoint.

    Args:
        directory: the --checkpoint-dir.
    """
    if not os.path.lexists(directory):
        return None  # `distdl train` creates it (its parent was checked at the start)
    if not os.path.isdir(directory):
        return f"checkpoint folder {directory} exists but is not a folder"
    clean_temp_files(directory)
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".distdlrun-probe-") as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        return f"checkpoint folder {directory} cannot be written ({(e.strerror or str(e)).lower()})"
    newest = checkpoint_paths(directory)[:1]
    if newest:
        try:
            need = os.path.getsize(newest[0])
            st = os.statvfs(directory)
        except OSError:
            return None
        free = st.f_bavail * st.f_frsize
        if free < need:
            return (f"checkpoint folder {directory} has {shm.size_text(free)} free, less than its newest "
                    f"checkpoint {os.path.basename(newest[0])} ({shm.size_text(need)}) needs")
    return None
