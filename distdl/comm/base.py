"""The Communicator protocol and its size-1 implementation."""
from __future__ import annotations

import json
import sys
from typing import Any, Protocol

import numpy as np

from .strategies import SerialUpdate

__all__ = ["Communicator", "UpdateStrategy", "SerialComm"]


class Communicator(Protocol):
    """What the training loop needs from a group of ranks (all calls are collective)."""

    rank: int
    size: int

    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        """Sum `buf` over all ranks, in place; returns `buf`.

        Args:
            buf: a contiguous array of the same shape and dtype on every rank.
        """

    def bcast(self, buf: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite `buf` on every rank with root's `buf`, in place; returns `buf`.

        Args:
            buf: a contiguous array of the same shape and dtype on every rank.
            root: the rank whose values are sent.
        """

    def bcast_obj(self, obj: Any, root: int = 0) -> Any:
        """Broadcast a small JSON-able object (sent as JSON bytes, never pickled).

        Args:
            obj: root's object (ignored on the other ranks).
            root: the rank whose object is sent.
        """

    def allgather_obj(self, obj: Any) -> list:
        """Gather a small JSON-able object from every rank, in rank order.

        Args:
            obj: this rank's object.
        """

    def allgather_rows(self, local: np.ndarray, counts: list[int]) -> np.ndarray:
        """Concatenate every rank's rows (rank r holds counts[r] rows) on every rank.

        Args:
            local: this rank's rows (first axis).
            counts: number of rows each rank holds, in rank order.
        """

    def barrier(self) -> None:
        """Wait until every rank has reached this call."""

    def abort(self, code: int = 1) -> None:
        """End the whole job now (no rank is left waiting in a collective).

        Args:
            code: the exit status.
        """

    def update_strategy(self, model) -> "UpdateStrategy":
        """How `model`'s optimizer steps on these ranks during one fit (distdl.comm.strategies).
        Collective, once when a fit starts: every rank then starts from rank 0's weights and
        optimizer state, in the memory the strategy chose.

        Args:
            model: the compiled model being fitted.
        """


class UpdateStrategy(Protocol):
    """One fit's optimizer step across ranks: `step()` after each backward of an update (sums
    the gradient arena, adds the penalty gradients once, steps the optimizer, applies the
    constraints). `sharded`: whether each rank steps only its slice of the weights."""

    sharded: bool

    def step(self) -> None:
        """Take one optimizer step from the gradients of the update just computed."""


class SerialComm:
    """A communicator of one rank: every collective is the identity. Needs no MPI."""

    rank = 0
    size = 1

    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        """Returns `buf` unchanged (the sum over one rank).

        Args:
            buf: the array to sum.
        """
        return buf

    def bcast(self, buf: np.ndarray, root: int = 0) -> np.ndarray:
        """Returns `buf` unchanged.

        Args:
            buf: the array to broadcast.
            root: the sending rank (0, the only one).
        """
        return buf

    def bcast_obj(self, obj: Any, root: int = 0) -> Any:
        """A copy of `obj` through JSON, so that it fails here as it would under MPI.

        Args:
            obj: a JSON-able object.
            root: the sending rank (0, the only one).
        """
        return json.loads(json.dumps(obj))

    def allgather_obj(self, obj: Any) -> list:
        """[a copy of `obj` through JSON].

        Args:
            obj: a JSON-able object.
        """
        return [json.loads(json.dumps(obj))]

    def allgather_rows(self, local: np.ndarray, counts: list[int]) -> np.ndarray:
        """Returns `local` unchanged.

        Args:
            local: this rank's rows.
            counts: [len(local)].
        """
        return local

    def barrier(self) -> None:
        """Returns at once."""
        pass

    def abort(self, code: int = 1) -> None:
        """Exit this process (SystemExit).

        Args:
            code: the exit status.
        """
        sys.exit(code)

    def update_strategy(self, model) -> "UpdateStrategy":
        """The plain local step (strategies.SerialUpdate).

        Args:
            model: the compiled model being fitted.
        """
        return SerialUpdate(model)

    def describe(self) -> dict:
        """The library, size and host of each rank, for the run's log."""
        return {"library": "none (single process)", "size": 1, "hosts": {"0": _hostname()}}


def _hostname() -> str:
    import socket
    return socket.gethostname()
