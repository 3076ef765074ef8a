"""Ranks that agree: one rank's work or error made everyone's, and arguments checked alike.

Each function here is collective (every rank of `comm` calls it at the same point) and costs
one small JSON exchange. An error they raise is raised on every rank with the same sentence and
marked `agreed = True`, so a CLI can print it once and exit on every rank without MPI_Abort;
an error without the mark happened on one rank only and must end the whole job.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np

from .. import errors
from ..errors import DistdlError

__all__ = ["mark_agreed", "is_agreed", "on_root", "on_every_rank", "check_same", "same_bytes"]

_KINDS = {cls.__name__: cls for cls in (errors.DistdlError, errors.ConfigError, errors.DataError,
                                        errors.ShapeError, errors.CheckpointError, errors.CommError)}


def mark_agreed(error: BaseException) -> BaseException:
    """Mark `error` as raised on every rank alike (see the module docstring); returns it.

    Args:
        error: the exception every rank is about to raise.
    """
    error.agreed = True
    return error


def is_agreed(error: BaseException) -> bool:
    """Whether `error` was raised on every rank alike (`mark_agreed`), so that one rank may
    report it and none needs to abort the job.

    Args:
        error: the exception caught.
    """
    return bool(getattr(error, "agreed", False))


def _describe(error: BaseException) -> list:
    """An error as [class name, sentence]; errors not of distdl's kinds travel as DistdlError."""
    name = type(error).__name__ if isinstance(error, DistdlError) else "DistdlError"
    text = str(error) if isinstance(error, DistdlError) else f"{type(error).__name__}: {error}"
    return [name if name in _KINDS else "DistdlError", text]


def _raise(described: list, rank: int | None, local: BaseException | None):
    """Raise the error `described` (from `rank`, None: rank 0 of on_root), as this rank's own
    `local` one where it is that error, else rebuilt with the rank named."""
    kind, text = described
    if local is not None and _describe(local) == described:
        raise mark_agreed(local)  # this rank's own error: keep its class and traceback
    if rank is not None:
        text = f"{text} (on rank {rank})"
    raise mark_agreed(_KINDS[kind](text)) from local


def on_root(comm, work: Callable[[], Any]) -> Any:
    """Run `work()` on rank 0 only; every rank returns when it has finished (its result, which
    must be JSON-able, broadcast), or every rank raises rank 0's error. The broadcast is the
    barrier: no rank goes on before rank 0's file is complete and renamed.

    Args:
        comm: the ranks.
        work: the work, e.g. writing a file.
    """
    result, error, local = None, None, None
    if comm.rank == 0:
        try:
            result = work()
        except Exception as e:  # every failure is agreed: the other ranks must not wait forever
            error, local = _describe(e), e
    if comm.size > 1:
        error, result = comm.bcast_obj([error, result])
    if error is not None:
        _raise(error, None, local)
    return result


def on_every_rank(comm, work: Callable[[], Any]) -> Any:
    """Run `work()` on every rank and agree on failure: when it raised on any rank, every rank
    raises the lowest failing rank's error (naming that rank); else each rank's own result.

    Args:
        comm: the ranks.
        work: the work, e.g. reading a file.
    """
    result, error, local = None, None, None
    try:
        result = work()
    except Exception as e:
        error, local = _describe(e), e
    found = comm.allgather_obj(error) if comm.size > 1 else [error]
    for rank, described in enumerate(found):
        if described is not None:
            _raise(described, rank, local)
    return result


def check_same(comm, what: str, values: dict, local_error: BaseException | None = None) -> None:
    """Refuse (on every rank alike) values that differ between ranks, or an error any rank hit
    while computing them: `values` (name -> JSON-able) must be equal on all ranks. `what` names
    the sentence names the argument, the ranks and their values.

    Args:
        comm: the ranks.
        what: the call, e.g. "fit".
        values: name -> JSON-able value, which must be equal on all ranks.
        local_error: the error this rank hit while computing `values`, or None.
    """
    mine = [None if local_error is None else _describe(local_error), values]
    found = comm.allgather_obj(mine) if comm.size > 1 else [mine]
    for rank, (described, _) in enumerate(found):
        if described is not None:
            _raise(described, rank, local_error)
    first = found[0][1]
    for name in first:
        seen = [v[name] for _, v in found]
        if any(s != seen[0] for s in seen):
            shown = ", ".join(f"rank {r} has {_show(s)}" for r, s in enumerate(seen))
            raise mark_agreed(errors.ConfigError(
                f"The ranks disagree on {what}'s {name}, which must be the same on every rank: {shown}."))


def same_bytes(comm, arrays: list) -> list[int]:
    """The ranks whose `arrays` (dtype, shape and bytes, one sha256 per rank) differ from rank 0's;
    [] on every rank when all read the same (a size-1 communicator has nothing to compare).

    Args:
        comm: the ranks.
        arrays: this rank's arrays.
    """
    if comm.size == 1:
        return []
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    digests = comm.allgather_obj(h.hexdigest())
    return [r for r, d in enumerate(digests) if d != digests[0]]


def _show(value) -> str:
    return "none" if value is None else str(value)
