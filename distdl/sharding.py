"""Node-shared memory for training: the gradient arena in this rank's shared segment, and the
sharded optimizer step.

Sharded step (all ranks on one node, an elementwise optimizer without norm clipping, no
constraints): the weights and optimizer slots live in memory the whole node shares, one copy;
rank r sums slice r of every rank's gradients and steps slice r of the weights. Each rank
streams 1/n of the optimizer's arrays instead of all of them (the update is bound by the one
memory bus the cores share), nothing is copied back, and rank 0 always holds the complete
weights and optimizer state for a checkpoint. Every element is summed in rank order and
updated once, so the result is bitwise what an allreduce and a full update give.
"""
from __future__ import annotations

import weakref

import numpy as np

_lent = weakref.WeakKeyDictionary()          # comm -> the model whose gradients use its segment
_node = weakref.WeakKeyDictionary()  # comm -> {"buf": node-shared bytes, "owner": weakref to the
                                     # model whose weights and slots are views into it, "views"}


def share_gradients(model, comm) -> None:
    """Move the gradient arena into this rank's shared-memory segment, where the allreduce
    sums it without copies (a no-op unless `comm` offers one). Collective.

    One segment serves one model at a time: the model that had it gets private memory back.
    """
    arena = model.trainable_arena
    segment = getattr(comm, "shared_segment", None)
    if comm.size == 1 or segment is None or arena.grads is None:
        return
    seg = segment(arena.grads.nbytes)
    if seg is None or arena.grads.ctypes.data == seg.ctypes.data:
        return
    holder = _lent.get(comm)
    holder = holder() if holder is not None else None
    if holder is not None and np.may_share_memory(holder.grads, seg):
        holder.trainable_arena.move_grads(np.zeros_like(holder.grads))
        holder.grads = holder.trainable_arena.grads
    arena.move_grads(seg[:arena.grads.nbytes].view(arena.dtype))
    model.grads = arena.grads
    _lent[comm] = weakref.ref(model)


def node_shared(model, comm) -> list[np.ndarray]:
    """The model's arrays that live in `comm`'s node-shared buffer (its weights and optimizer
    slots while it holds the buffer), as the model and its optimizer use them now."""
    record = _node.get(comm)
    if record is None or _owner(record) is not model:
        return []
    return [a for a in [model.params, *model.optimizer.get_state().values()]
            if any(a is v for v in record["views"].values())]


def _owner(record):
    """The model whose arrays are views into the record's buffer, or None."""
    ref = record.get("owner")
    return ref() if ref is not None else None


class ShardedUpdate:
    """One model's sharded optimizer step; calling it returns False when the caller must
    allreduce the gradients and update everything itself (decided alike on all ranks)."""

    def __init__(self, model, comm):
        self.model, self.comm = model, comm
        self.ready = None  # decided by the first step, after any restore of the optimizer state
        arena = model.trainable_arena
        spans = dict(zip(map(id, arena.variables), arena.segments()))
        self.regularized = [(v, spans[id(v)]) for v in model.regularized]

    def __call__(self) -> bool:
        if self.ready is None:
            self.ready = self._prepare()
        if self.ready and not self.comm.reduce_update(self.model.grads, self._update_slice):
            self._unshare()  # e.g. another model's gradients took the shared segment
        return self.ready

    def _prepare(self) -> bool:
        """Put the weights and optimizer slots in the communicator's node buffer (collective);
        False when the step cannot be sharded. Runs at the first update, when all ranks hold
        the same values. One buffer per communicator serves the model being fitted: a model
        that held it before gets private copies back, so /dev/shm use stays bounded."""
        comm, model, opt = self.comm, self.model, self.model.optimizer
        if (comm.size == 1 or not hasattr(comm, "reduce_update") or not opt.sliceable
                or model.constrained):  # a constraint needs a whole variable: one rank cannot own it
            return False
        arrays = {"params": model.params, **{"slot_" + k: a for k, a in opt.get_state().items()}}
        record = _node.get(comm)
        if record is not None and _owner(record) is model and all(
                record["views"].get(k) is a for k, a in arrays.items()):
            return True  # a later fit of the same model
        offsets, end = {}, 0
        for name, arr in arrays.items():
            offsets[name] = end
            end += -(-arr.nbytes // 64) * 64  # every array starts on a cache line
        if record is not None:
            holder = _owner(record)
            if holder is not None:
                _to_private(holder)
                comm.barrier()  # every rank has copied the holder's values out before rank 0 writes
            if record["buf"].nbytes < end:
                record = None
        if record is None:
            buf = comm.node_array(max(64 << 10, 1 << (max(end, 1) - 1).bit_length()))
            if buf is None:
                return False
            record = _node[comm] = {"buf": buf}
        views = {name: record["buf"][o:o + a.nbytes].view(a.dtype).reshape(a.shape)
                 for (name, a), o in zip(arrays.items(), offsets.values())}
        record.update(owner=weakref.ref(model), views=views)
        # every rank holds the same values (broadcast at start): rank 0 copies them, and the
        # first step's sync publishes them before anyone reads
        copy = comm.rank == 0
        model.trainable_arena.move_params(views["params"], copy=copy)
        model.params = model.trainable_arena.params
        opt.move_slots({k[5:]: a for k, a in views.items() if k.startswith("slot_")}, copy=copy)
        return True

    def _unshare(self) -> None:
        """Back to private weights and slots (copies of the node's), all ranks stepping everything."""
        _to_private(self.model)
        record = _node.get(self.comm)
        if record is not None and _owner(record) is self.model:
            record["owner"] = None
        self.ready = False

    def _update_slice(self, lo: int, hi: int) -> None:
        """Add the penalty gradients that fall in [lo, hi), then step that slice."""
        model = self.model
        for v, (a, b) in self.regularized:
            x, y = max(a, lo), min(b, hi)
            if x < y:
                model.grads[x:y] += v.regularizer.gradient(v.value).reshape(-1)[x - a:y - a]
        model.optimizer.update_slice(model.params, model.grads, lo, hi)


def _to_private(model) -> None:
    """Give a model private copies of its weights and optimizer slots (all ranks at once)."""
    model.trainable_arena.move_params(model.params.copy(), copy=False)
    model.params = model.trainable_arena.params
    opt = model.optimizer
    opt.move_slots({k: a.copy() for k, a in opt.get_state().items()}, copy=False)
