"""Folders of checkpoints: the file names (`checkpoint_name`, the temp names atomic writes use),
listing them newest first, pruning old ones and removing temp files left by killed writers.
Re-exported by `distdl.saving.checkpoint`."""
from __future__ import annotations

import os
import re

from distdl.errors import ConfigError

__all__ = ["checkpoint_name", "checkpoint_paths", "prune_checkpoints", "clean_temp_files"]

# Files named by `checkpoint_name`; temp files start with "." and never match.
CHECKPOINT_PATTERN = r"^ckpt-e(?P<epoch>\d+)-s(?P<step>\d+)\.h5$"
# Temp files that `distdl.saving.atomic.atomic_h5_write` writes beside their target.
_TEMP_RE = re.compile(r"^\..+\.tmp-(?P<pid>\d+)-[0-9a-f]+$")


def checkpoint_name(epoch: int, step: int = 0) -> str:
    """File name for the state after `epoch` epochs and `step` more steps, e.g. ckpt-e0003-s000000.h5.

    Args:
        epoch: epochs done.
        step: steps done in the next epoch.
    """
    return f"ckpt-e{int(epoch):04d}-s{int(step):06d}.h5"


def checkpoint_paths(directory: str | os.PathLike, pattern: str = CHECKPOINT_PATTERN) -> list[str]:
    """Checkpoint files in `directory`, newest first by (epoch, step) parsed from the name.

    A missing folder gives [].

    Args:
        directory: the folder to list.
        pattern: a regex with named groups `epoch` and `step` that checkpoint names match.
    """
    regex = re.compile(pattern)
    if not {"epoch", "step"} <= set(regex.groupindex):
        raise ConfigError(f"Checkpoint pattern {pattern!r} needs named groups 'epoch' and 'step'.")
    found = []
    for name in _names(directory):
        m = regex.match(name)
        if m:
            found.append(((int(m["epoch"]), int(m["step"])), os.path.join(directory, name)))
    found.sort(key=lambda t: t[0], reverse=True)
    return [p for _, p in found]


def prune_checkpoints(directory: str | os.PathLike, keep: int,
                      pattern: str = CHECKPOINT_PATTERN) -> list[str]:
    """Delete all but the newest `keep` checkpoints; return the removed paths.

    Args:
        directory: the folder of checkpoints.
        keep: how many of the newest to keep (0: none).
        pattern: a regex with groups `epoch` and `step` that checkpoint names match.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ConfigError(f"prune_checkpoints keep must be an integer >= 0, got {keep!r}.")
    removed = checkpoint_paths(directory, pattern)[keep:]
    for p in removed:
        os.remove(p)
    return removed


def clean_temp_files(directory: str | os.PathLike) -> list[str]:
    """Remove temp files left by killed writers (their process is gone); return the removed paths.

    Args:
        directory: the folder to clean.
    """
    removed = []
    for name in _names(directory):
        m = _TEMP_RE.match(name)
        if not m or int(m["pid"]) == os.getpid() or _pid_alive(int(m["pid"])):
            continue
        p = os.path.join(directory, name)
        _remove_quietly(p)
        removed.append(p)
    return removed


def _names(directory: str | os.PathLike) -> list[str]:
    """The entries of `directory`; [] when it does not exist."""
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
