"""distdl's notices (resuming, early stopping, a learning rate changed, falling back from shared
memory to MPI) go through the standard `logging` module, under the `distdl` logger.

By default they are shown as Keras prints them: the bare message on stdout, at INFO and above,
from rank 0 only (the other ranks would repeat the same words). That default is one handler on
the `distdl` logger, installed at import; the logger does not propagate, so a program that
configures the root logger does not see every notice twice. To take them over:

    logging.getLogger("distdl").setLevel(logging.WARNING)   # quieter
    distdl.log.use_root_handlers()                          # through your own logging config

The rank is read from the MPI launcher's environment, so the filter works before (and without)
any communicator.
"""
from __future__ import annotations

import logging
import os
import sys

__all__ = ["logger", "notice", "launcher_rank", "use_root_handlers"]

logger = logging.getLogger("distdl")

_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def launcher_rank(environ=os.environ) -> int:
    """This process's rank as the MPI launcher set it (0 outside a launcher or when unreadable).

    Args:
        environ: the environment to read (`os.environ` unless a test passes its own).
    """
    for key in _RANK_VARS:
        value = environ.get(key, "")
        if value.isdigit():
            return int(value)
    return 0


class _RankZero(logging.Filter):
    """Let records through on rank 0 only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return launcher_rank() == 0


class _Stdout(logging.StreamHandler):
    """A handler that writes to whatever `sys.stdout` is when a record arrives (pytest's capture,
    `contextlib.redirect_stdout`), not the stream of import time."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _install_default_handler() -> None:
    """Print notices as Keras does (message only, stdout, INFO), once per process."""
    if any(getattr(h, "_distdl_default", False) for h in logger.handlers):
        return
    handler = _Stdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_RankZero())
    handler._distdl_default = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    logger.propagate = False


def use_root_handlers() -> None:
    """Hand distdl's notices to the root logger's handlers (your `logging.basicConfig(...)`)
    instead of distdl's own stdout handler; the rank filter goes with it only when you add it."""
    for handler in [h for h in logger.handlers if getattr(h, "_distdl_default", False)]:
        logger.removeHandler(handler)
    logger.propagate = True


def notice(message: str, rank: int | None = None, level: int = logging.INFO) -> None:
    """Log `message` under the `distdl` logger, from rank 0 only.

    Args:
        message: one line for people, as Keras words its notices.
        rank: the caller's rank when it knows it (a callback's `self.rank`); other ranks stay
            silent. None: the launcher's rank decides, in the handler's filter.
        level: a `logging` level; INFO (shown by default) unless it is a warning.
    """
    if rank is None or rank == 0:
        logger.log(level, message)


_install_default_handler()
