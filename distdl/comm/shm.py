"""Sum-allreduce of float buffers through MPI-3 shared memory, for ranks that share one node.

Each rank's buffer lives in (zero copy) or is copied into its segment of a shared window.
After a sync, rank r sums its slice r of every segment in rank order 0..n-1 and writes that
sum into slice r of every segment (reduce-scatter and allgather in one pass); after a second
sync every segment holds the whole sum, computed once per slice, so bitwise identical on all
ranks. Memory model (MPI-3.1 section 11.7, MPI-4.1 example 12.23): each window stays in one
passive-target epoch (`Lock_all(MODE_NOCHECK)`), and every hand-over of one process's stores
to another's loads is `Win.Sync`, `Barrier`, `Win.Sync`. Windows are never freed: a model
may still view an old one, and freeing is collective.
"""
from __future__ import annotations

import os

import numpy as np

from ..log import notice

__all__ = ["ShmAllreduce"]

_LINE = 64               # bytes; slice bounds are cache-line aligned so ranks never write one line
_BLOCK = 1 << 20         # bytes per reduction block: the sum is copied out while still in cache
_HOME, _SCRATCH = 1, 2   # which window a call uses, published in the control window
_SHM_DIR = "/dev/shm"    # where MPICH puts the files behind shared windows


class _Window:
    """A shared window of `capacity` bytes per rank; `segs[q]` is rank q's segment (uint8)."""

    def __init__(self, MPI, node, capacity: int, shared_by_all: bool = False):
        info = MPI.Info.Create()
        info.Set("alloc_shared_noncontig", "true")  # each segment page-aligned, near its owner
        self.win = MPI.Win.Allocate_shared(capacity, 1, info=info, comm=node)
        info.Free()
        self.win.Lock_all(MPI.MODE_NOCHECK)
        self.capacity = capacity
        self.unified = self.win.Get_attr(MPI.WIN_MODEL) == MPI.WIN_UNIFIED
        owners = [0] if shared_by_all else range(node.Get_size())  # shared_by_all: rank 0 holds all
        self.segs = [np.frombuffer(self.win.Shared_query(q)[0], dtype=np.uint8) for q in owners]
        if not shared_by_all:
            self.segs = [seg[:capacity] for seg in self.segs]
        self.base = _address(self.segs[0 if shared_by_all else node.Get_rank()])
        self._views = (None, None)  # (nbytes, dtype) -> every segment's first nbytes as dtype

    def views(self, nbytes: int, dtype) -> list[np.ndarray]:
        key, views = self._views
        if key != (nbytes, dtype):  # the same buffer comes back every step: keep its views
            views = [s[:nbytes].view(dtype) for s in self.segs]
            self._views = ((nbytes, dtype), views)
        return views


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]  # much cheaper than a.ctypes.data


class ShmAllreduce:
    """The shared-memory allreduce of one node's ranks (every rank of `node` calls collectively).

    Args:
        MPI: the mpi4py MPI module.
        node: the communicator of the node's ranks (MPI.COMM_TYPE_SHARED).
        copy_max: the largest buffer, in bytes, summed by copying through shared memory (a
            buffer in the home window is never copied).
    """

    def __init__(self, MPI, node, copy_max: float = float("inf")):
        self._MPI, self._node, self.copy_max = MPI, node, copy_max
        self.rank, self.size = node.Get_rank(), node.Get_size()
        self._ctrl = _Window(MPI, node, 64)  # per rank: (window, bytes, dtype) of the current call
        self._rows = self._ctrl.views(24, np.int64)
        self._home = self._scratch = None    # home: lent to a gradient arena; scratch: copied through
        self._node_wins: list[_Window] = []  # node_array windows (never freed, like the others)
        self._tmp = None                     # one block of partial sums for reduce_update
        self._told_no_room = False           # the fallback notice is given once

    @classmethod
    def create(cls, MPI, comm, copy_max: float = float("inf")):
        """The allreduce for `comm` when all its ranks share one node (and memory is unified), else
        None. Buffers outside the home window and larger than `copy_max` bytes are refused.

        Args:
            MPI: the mpi4py MPI module.
            comm: the communicator of the ranks.
            copy_max: as the class takes it.
        """
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        if node.Get_size() != comm.Get_size():
            node.Free()
            notice("The ranks span several nodes: gradients are summed with MPI's allreduce, not "
                   "through shared memory.", rank=comm.Get_rank())
            return None
        shm = cls(MPI, node, copy_max)
        return shm if shm._ctrl.unified else None

    def segment(self, nbytes: int) -> np.ndarray | None:
        """This rank's segment (uint8, at least `nbytes`) of the home window, or None when the
        node's shared memory has no room for it; collective.

        A buffer that starts there is reduced without copies, e.g. a gradient arena.

        Args:
            nbytes: the bytes needed.
        """
        home = self._grown(self._home, nbytes)
        if home is None:
            return None
        self._home = home
        return home.segs[self.rank]

    def _grown(self, win, nbytes):
        """`win` if it holds `nbytes` per rank, else a new window that does (None: no room)."""
        if win is not None and win.capacity >= nbytes:
            return win
        capacity = max(64 << 10, 1 << (max(nbytes, 1) - 1).bit_length())
        return _Window(self._MPI, self._node, capacity) if self._room(capacity * self.size) else None

    def _room(self, nbytes: int) -> bool:
        """Whether the node's shared-memory file system has twice `nbytes` free; all ranks agree.

        MPICH backs windows with files in /dev/shm, and a tmpfs that runs full kills the job
        with SIGBUS at first touch instead of failing the allocation (Docker's default size
        is 64 MiB): without room, the caller keeps MPI's allreduce.
        """
        try:
            st = os.statvfs(_SHM_DIR)
            ok = st.f_bavail * st.f_frsize >= 2 * nbytes
        except OSError:  # no such folder: the MPI library allocates elsewhere
            ok = True
        flag = np.array([int(ok)], dtype=np.int32)
        self._node.Allreduce(self._MPI.IN_PLACE, flag, op=self._MPI.MIN)
        if not flag[0] and not self._told_no_room:
            self._told_no_room = True
            notice(f"{_SHM_DIR} has less than the {2 * nbytes / 2**20:.1f} MiB free that a shared-memory "
                   "window needs: gradients are summed with MPI's allreduce instead (in Docker, "
                   "--shm-size raises it).", rank=self.rank)
        return bool(flag[0])

    def _sync(self, *wins) -> None:
        """Make this rank's stores to `wins` visible to the others' loads after the barrier."""
        for w in wins:
            w.win.Sync()
        self._node.Barrier()
        for w in wins:
            w.win.Sync()

    def _in_home(self, buf: np.ndarray) -> bool:
        """Whether `buf` starts this rank's segment of the home window (a zero-copy buffer)."""
        home = self._home
        return home is not None and _address(buf) == home.base and buf.nbytes <= home.capacity

    def _agree(self, buf: np.ndarray, fence: bool = False) -> tuple[bool, bool]:
        """(zero copy here, every rank passed the same kind, size and dtype): each rank publishes
        its call in the control window, then syncs it and the home window in use (`fence`: all)."""
        zero_copy = self._in_home(buf)
        mine = [_HOME if zero_copy else _SCRATCH, buf.nbytes, buf.dtype.num]
        self._rows[self.rank][:] = mine
        if fence:
            self.fence()
        else:
            self._sync(self._ctrl, *((self._home,) if zero_copy else ()))
        return zero_copy, all(row.tolist() == mine for row in self._rows)

    def allreduce(self, buf: np.ndarray) -> bool:
        """Sum the C-contiguous float `buf` over the node in place; False (nothing changed)
        when the ranks did not all pass the same kind of buffer or a plain one is larger than
        `copy_max`, so the caller must use another allreduce.

        Args:
            buf: the buffer, the same size and dtype on every rank.
        """
        home = self._home
        zero_copy, agreed = self._agree(buf)
        if not agreed or (not zero_copy and buf.nbytes > self.copy_max):
            return False
        if buf.size == 0:
            self._node.Barrier()  # nobody rewrites its control row before all have read them
            return True
        if zero_copy:
            win = home
        else:
            win = self._grown(self._scratch, buf.nbytes)
            if win is None:
                return False
            self._scratch = win
            win.segs[self.rank][:buf.nbytes] = buf.view(np.uint8).reshape(-1)
            self._sync(win)
        segs = win.views(buf.nbytes, buf.dtype)
        lo, hi = self._bounds(buf.size, buf.itemsize)
        _reduce_slice(segs, lo, hi, _BLOCK // buf.itemsize)
        self._sync(win)
        if not zero_copy:
            buf.reshape(-1)[...] = segs[self.rank]
        return True

    def node_array(self, nbytes: int) -> np.ndarray | None:
        """`nbytes` (uint8) that every rank of the node sees at once, e.g. optimizer slots that
        each rank updates a slice of and rank 0 saves whole (None: no room); collective.
        Hand-overs need `fence`.

        Args:
            nbytes: the bytes needed.
        """
        if not self._room(nbytes):
            return None
        win = _Window(self._MPI, self._node, nbytes if self.rank == 0 else 0, shared_by_all=True)
        self._node_wins.append(win)
        return win.segs[0][:nbytes]

    def fence(self) -> None:
        """Make every rank's stores to the node arrays and windows visible to all ranks."""
        self._sync(self._ctrl, *self._node_wins, *(w for w in (self._home, self._scratch) if w is not None))

    def reduce_update(self, grads: np.ndarray, update) -> bool:
        """Sharded step: sum this rank's slice of `grads` (in the home window) over the node into
        grads[lo:hi], call `update(lo, hi)` (which steps that slice of parameters every rank of
        the node shares), then sync. False (nothing changed) unless every rank passes its home
        buffer, so the caller falls back to allreduce and a full update.

        Each element is summed in rank order and updated once, on one rank: the result is
        bitwise what an allreduce and a full update give.

        Args:
            grads: the gradient arena, in this rank's home window.
            update: steps the parameters lo:hi of the node-shared weights.
        """
        zero_copy, agreed = self._agree(grads, fence=True)
        if not (zero_copy and agreed):
            return False
        lo, hi = self._bounds(grads.size, grads.itemsize)
        if self._tmp is None or self._tmp.dtype != grads.dtype:  # a fresh 1 MiB array costs page faults
            self._tmp = np.empty(_BLOCK // grads.itemsize, dtype=grads.dtype)
        _sum_into(self._home.views(grads.nbytes, grads.dtype), self.rank, lo, hi, self._tmp)
        update(lo, hi)
        self.fence()  # nobody reads the parameters before every slice is stepped
        return True

    def _bounds(self, count: int, itemsize: int) -> tuple[int, int]:
        """This rank's slice [lo, hi) of `count` elements, cut at cache-line multiples."""
        unit = max(1, _LINE // itemsize)
        per = -(-count // (unit * self.size)) * unit
        lo = min(self.rank * per, count)
        return lo, min(lo + per, count)


def _sum_into(segs: list[np.ndarray], rank: int, lo: int, hi: int, tmp: np.ndarray) -> None:
    """segs[rank][lo:hi] = segs[0] + segs[1] + ... + segs[n-1] (in that order), block by block
    (a block: tmp's size). Ranks 0 and 1 sum straight into their own segment, whose term is
    read first; the others through `tmp`, as theirs is still to be added."""
    block = tmp.size
    for a in range(lo, hi, block):
        b = min(a + block, hi)
        own = segs[rank][a:b]
        t = own if rank < 2 else tmp[:b - a]
        np.add(segs[0][a:b], segs[1][a:b], out=t)
        for s in segs[2:]:
            t += s[a:b]
        if t is not own:
            own[...] = t


def _reduce_slice(segs: list[np.ndarray], lo: int, hi: int, block: int) -> None:
    """segs[q][lo:hi] = segs[0] + segs[1] + ... + segs[n-1] (in that order) for every q.

    The sum accumulates in segs[0] (read only by the first addition), block by block, so
    each block is copied to the other segments while it is still in cache.
    """
    acc, rest = segs[0], segs[1:]
    for a in range(lo, hi, block):
        b = min(a + block, hi)
        out = acc[a:b]
        for s in rest:
            np.add(out, s[a:b], out=out)
        for s in rest:
            s[a:b] = out
