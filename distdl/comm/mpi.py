"""`MPIComm`: the only module that imports mpi4py. Buffer-based calls only, no pickle.

An uncaught exception on any rank prints that rank's traceback once and calls
MPI_Abort, so no other rank is left waiting in a collective. With
`DISTDL_STALL_TIMEOUT=<s>` a watchdog ends the job when one collective waits
longer than that. `DISTDL_ALLREDUCE` picks the path of float sum-allreduces:
`auto` (default: through shared memory, `comm.shm`, when all ranks share one node,
from `SHM_MIN_BYTES` up, and up to `SHM_COPY_MAX_BYTES` for buffers outside the
shared window), `shm` (shared memory at every size) or `mpi`.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback

import numpy as np

from ..errors import CommError
from .strategies import NodeMemory, SerialUpdate, start_update

__all__ = ["MPIComm"]

# measured with benchmarks/allreduce.py: below 64 KiB MPICH's own allreduce is as fast; above
# 4 MiB copying a buffer that is not in the shared window in and out costs more than MPICH's
SHM_MIN_BYTES, SHM_COPY_MAX_BYTES = 64 << 10, 4 << 20
_MODES = ("auto", "shm", "mpi")
_NEVER = float("inf")
_UNMADE = False  # MPIComm._shm before the first call that may use shared memory


class MPIComm:
    """Communicator over MPI_COMM_WORLD (or a given mpi4py communicator); its methods are
    those of `distdl.comm.base.Communicator`, and all are collective.

    Args:
        comm: an mpi4py communicator (default: MPI.COMM_WORLD).
        allreduce: "auto", "shm" or "mpi": how large float buffers are summed (through the
            node's shared memory or MPI's allreduce); overrides `DISTDL_ALLREDUCE`.
    """

    def __init__(self, comm=None, allreduce=None):
        from mpi4py import MPI
        self._MPI = MPI
        self._comm = comm or MPI.COMM_WORLD
        self._in_place, self._sum = MPI.IN_PLACE, MPI.SUM
        self.rank = self._comm.Get_rank()
        self.size = self._comm.Get_size()
        _install_abort_hook(self)
        self._watch = _Watchdog.from_env(self.rank)
        self.allreduce_mode = _mode_from_env(allreduce)  # fixed for this communicator's life
        # the smallest buffer that may go through shared memory (_NEVER: none)
        self._min_shm = {"shm": 0, "auto": SHM_MIN_BYTES}.get(self.allreduce_mode, _NEVER)
        if self.size == 1:
            self._min_shm = _NEVER
        # the node's ShmAllreduce, made once by the first call that may use it (None: the ranks
        # span several nodes, so MPI's allreduce from then on)
        self._shm = _UNMADE
        self._memory = NodeMemory(self)  # which model uses the shared segment and node buffer

    # ----- the training step ---------------------------------------------
    def update_strategy(self, model):
        """The update for one fit of `model` (collective, at the fit's start; see
        distdl.comm.strategies): serial on one rank, else the node-shared sharded step where the
        ranks share one node, shared memory has room and the optimizer allows it, else MPI's
        allreduce and a full update on every rank.

        Args:
            model: the compiled model about to train.
        """
        return SerialUpdate(model) if self.size == 1 else start_update(model, self, self._memory)

    # ----- collectives on buffers ------------------------------------------
    def allreduce_sum(self, buf):
        """Sum `buf` over all ranks, in place (through shared memory where it may); returns `buf`.

        Args:
            buf: a NumPy array, the same shape and dtype on every rank.
        """
        if self._watch.timeout is None and buf.nbytes < self._min_shm:  # small: MPI, nothing else
            self._comm.Allreduce(self._in_place, buf, op=self._sum)
            return buf
        with self._watch("allreduce"):
            shm = self._node_shm(buf.nbytes) if buf.dtype.char in "fd" and buf.flags.c_contiguous else None
            if shm is None or not shm.allreduce(buf):
                self._comm.Allreduce(self._in_place, buf, op=self._sum)
        return buf

    def _node_shm(self, nbytes):
        """The shared-memory allreduce for a buffer of `nbytes`, or None (collective on first use)."""
        if nbytes < self._min_shm:
            return None
        if self._shm is _UNMADE:
            from .shm import ShmAllreduce
            copy_max = _NEVER if self.allreduce_mode == "shm" else SHM_COPY_MAX_BYTES
            self._shm = ShmAllreduce.create(self._MPI, self._comm, copy_max)
        return self._shm

    def shared_segment(self, nbytes):
        """This rank's segment (uint8, >= nbytes) of the node's shared window, or None when
        allreduces of `nbytes` do not go through shared memory. Collective.

        A float buffer that starts at the segment is summed without any copy.

        Args:
            nbytes: the bytes needed.
        """
        if not nbytes:
            return None
        with self._watch("shared window"):
            shm = self._node_shm(nbytes)
            return None if shm is None else shm.segment(nbytes)

    def node_array(self, nbytes):
        """`nbytes` (uint8) shared by every rank of the node (all see the same memory), or None
        when gradients do not go through shared memory. Collective.

        Args:
            nbytes: the bytes needed.
        """
        with self._watch("shared window"):
            shm = self._node_shm(nbytes) if nbytes else None
            return None if shm is None else shm.node_array(nbytes)

    def reduce_update(self, grads, update):
        """Sum `grads` (a `shared_segment` buffer) slice by slice and `update(lo, hi)` this rank's
        slice of node-shared parameters (see ShmAllreduce); False when not possible, and then
        nothing has changed. Collective.

        Args:
            grads: the gradient arena, in this rank's `shared_segment`.
            update: steps the parameters lo:hi of the node-shared weights.
        """
        if not self._shm:
            return False
        with self._watch("sharded update"):
            return self._shm.reduce_update(grads, update)

    def node_fence(self):
        """Make every rank's stores to node memory visible to every rank of the node. Collective."""
        if self._shm:
            with self._watch("shared window"):
                self._shm.fence()

    def bcast(self, buf, root=0):
        """Overwrite `buf` on every rank with root's, in place; returns `buf`.

        Args:
            buf: a NumPy array, the same shape and dtype on every rank.
            root: the rank whose values are sent.
        """
        if self._watch.timeout is None:
            self._comm.Bcast(buf, root=root)
            return buf
        with self._watch("broadcast"):
            self._comm.Bcast(buf, root=root)
        return buf

    def allgather_rows(self, local, counts):
        """Every rank's rows concatenated in rank order, on every rank.

        Args:
            local: this rank's rows (the row shape and dtype alike on all ranks).
            counts: the rows each rank holds, in rank order.
        """
        row = int(np.prod(local.shape[1:], dtype=np.int64))
        out = np.empty((int(sum(counts)),) + local.shape[1:], dtype=local.dtype)
        sizes = [c * row for c in counts]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
        with self._watch("allgather"):
            self._comm.Allgatherv(np.ascontiguousarray(local),
                                  [out, (sizes, offsets), self._MPI._typedict[local.dtype.char]])
        return out

    # ----- small JSON objects (bytes on the wire, never pickle) ------------
    def bcast_obj(self, obj, root=0):
        """Root's small JSON-able object on every rank (sent as JSON bytes, never pickled).

        Args:
            obj: the object (read on root only).
            root: the rank that sends it.
        """
        data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8) if self.rank == root else None
        n = np.array([0 if data is None else data.size], dtype=np.int64)
        self.bcast(n, root)
        buf = data.copy() if data is not None else np.empty(int(n[0]), dtype=np.uint8)
        self.bcast(buf, root)
        return json.loads(buf.tobytes().decode())

    def allgather_obj(self, obj):
        """Every rank's small JSON-able object, in rank order (JSON bytes, never pickled).

        Args:
            obj: this rank's object.
        """
        data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)
        counts = np.zeros(self.size, dtype=np.int64)
        counts[self.rank] = data.size
        self.allreduce_sum(counts)
        allb = self.allgather_rows(data, counts.tolist())
        out, start = [], 0
        for c in counts.tolist():
            out.append(json.loads(allb[start:start + c].tobytes().decode()))
            start += c
        return out

    def barrier(self):
        """Wait until every rank has reached this call (the watchdog names a rank that never does)."""
        with self._watch("barrier"):
            self._comm.Barrier()

    def abort(self, code=1):
        """End the whole job now with MPI_Abort, after flushing this rank's output.

        Args:
            code: the exit code.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        self._comm.Abort(code)

    def describe(self) -> dict:
        """MPI library, world size, rank-to-host map and BLAS threads per rank."""
        threads = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
        info = self.allgather_obj({"host": socket.gethostname(), "threads": threads})
        lib = self._MPI.Get_library_version().strip().splitlines()[0]
        return {"library": lib, "mpi_version": "%d.%d" % self._MPI.Get_version(), "size": self.size,
                "hosts": {str(r): i["host"] for r, i in enumerate(info)},
                "blas_threads": {str(r): i["threads"] for r, i in enumerate(info)}}


def _mode_from_env(mode=None) -> str:
    mode = mode or os.environ.get("DISTDL_ALLREDUCE", "").strip().lower() or "auto"
    if mode not in _MODES:
        raise CommError(f"DISTDL_ALLREDUCE must be one of {', '.join(_MODES)}, not {mode!r}.")
    return mode


def _install_abort_hook(comm: MPIComm) -> None:
    """Make an uncaught exception on any rank abort the whole job, printing it once."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        if sys._getframe().f_back is not None:
            # called by running code, not for an uncaught exception: h5py reports this way an
            # error while freeing a handle (e.g. of a write that failed on a full disk, which the
            # write's own error tells): not a reason to end the job; shown with DISTDL_DEBUG
            if os.environ.get("DISTDL_DEBUG"):
                previous(kind, value, tb)
            return
        if issubclass(kind, (KeyboardInterrupt, SystemExit)):
            previous(kind, value, tb)
        else:
            from ..errors import DistdlError
            if isinstance(value, DistdlError) and not os.environ.get("DISTDL_DEBUG"):
                text = f"{kind.__name__}: {value}\n"
            else:
                text = "".join(traceback.format_exception(kind, value, tb))
            if comm.rank == 0 or not getattr(value, "agreed", False):  # agreed: raised on every rank
                sys.stderr.write(f"[rank {comm.rank}] {text.rstrip()}\n"
                                 f"[rank {comm.rank}] aborting the MPI job.\n")
            else:
                time.sleep(1.0)  # rank 0 tells the error every rank agreed on, then ends the job
        sys.stdout.flush()
        sys.stderr.flush()
        code = value.code if isinstance(value, SystemExit) and isinstance(value.code, int) else 1
        if comm.size > 1 and not (issubclass(kind, SystemExit) and code == 0):
            time.sleep(0.2)  # let the launcher read this rank's message before Hydra tears the job down
            comm._comm.Abort(code or 1)

    sys.excepthook = hook
    previous_unraisable = sys.unraisablehook

    def unraisable(report):
        # h5py freeing the handles of a write that failed (a disk filled up mid-write): the
        # write's own CheckpointError tells it in one sentence; shown with DISTDL_DEBUG
        if "h5py" in repr(report.object) and not os.environ.get("DISTDL_DEBUG"):
            return
        previous_unraisable(report)

    sys.unraisablehook = unraisable


class _Watchdog:
    """Ends the process if one collective waits longer than the stall timeout."""

    def __init__(self, rank: int, timeout: float | None):
        self.rank = rank
        self.timeout = timeout
        self._op = None
        self._since = 0.0
        if timeout:
            threading.Thread(target=self._run, daemon=True, name="distdl-stall-watch").start()

    @classmethod
    def from_env(cls, rank):
        raw = os.environ.get("DISTDL_STALL_TIMEOUT", "").strip()
        try:
            timeout = float(raw) if raw else None
        except ValueError:
            raise CommError(f"DISTDL_STALL_TIMEOUT must be a number of seconds, not {raw!r}.")
        return cls(rank, timeout if timeout and timeout > 0 else None)

    def __call__(self, op):
        self._next = op
        return self

    def __enter__(self):
        self._since = time.monotonic()
        self._op = self._next

    def __exit__(self, *exc):
        self._op = None

    def _run(self):
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            op = self._op
            if op is not None and time.monotonic() - self._since > self.timeout:
                sys.stderr.write(f"[rank {self.rank}] stalled: one {op} has waited more than "
                                 f"{self.timeout:g} s (DISTDL_STALL_TIMEOUT); ending the job.\n")
                sys.stderr.flush()
                os._exit(3)
