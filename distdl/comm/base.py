"""The Communicator protocol and its size-1 implementation."""
from __future__ import annotations

import json
import sys
from typing import Any, Protocol

import numpy as np

from .strategies import SerialUpdate


class Communicator(Protocol):
    """What the training loop needs from a group of ranks (all calls are collective)."""

    rank: int
    size: int

    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        """Sum `buf` over all ranks, in place; returns `buf`."""

    def bcast(self, buf: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite `buf` on every rank with root's `buf`, in place; returns `buf`."""

    def bcast_obj(self, obj: Any, root: int = 0) -> Any:
        """Broadcast a small JSON-able object (sent as JSON bytes, never pickled)."""

    def allgather_obj(self, obj: Any) -> list:
        """Gather a small JSON-able object from every rank, in rank order."""

    def allgather_rows(self, local: np.ndarray, counts: list[int]) -> np.ndarray:
        """Concatenate every rank's rows (rank r holds counts[r] rows) on every rank."""

    def barrier(self) -> None: ...

    def abort(self, code: int = 1) -> None:
        """End the whole job now (no rank is left waiting in a collective)."""

    def update_strategy(self, model) -> "UpdateStrategy":
        """How `model`'s optimizer steps on these ranks during one fit (distdl.comm.strategies).
        Collective, once when a fit starts: every rank then starts from rank 0's weights and
        optimizer state, in the memory the strategy chose."""


class UpdateStrategy(Protocol):
    """One fit's optimizer step across ranks: `step()` after each backward of an update (sums
    the gradient arena, adds the penalty gradients once, steps the optimizer, applies the
    constraints). `sharded`: whether each rank steps only its slice of the weights."""

    sharded: bool

    def step(self) -> None: ...


class SerialComm:
    """A communicator of one rank: every collective is the identity. Needs no MPI."""

    rank = 0
    size = 1

    def allreduce_sum(self, buf):
        return buf

    def bcast(self, buf, root=0):
        return buf

    def bcast_obj(self, obj, root=0):
        return json.loads(json.dumps(obj))

    def allgather_obj(self, obj):
        return [json.loads(json.dumps(obj))]

    def allgather_rows(self, local, counts):
        return local

    def barrier(self):
        pass

    def abort(self, code=1):
        sys.exit(code)

    def update_strategy(self, model):
        return SerialUpdate(model)

    def describe(self) -> dict:
        return {"library": "none (single process)", "size": 1, "hosts": {"0": _hostname()}}


def _hostname() -> str:
    import socket
    return socket.gethostname()
