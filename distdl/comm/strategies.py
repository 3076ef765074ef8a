"""Update strategies: how one optimizer step is taken across ranks. A communicator picks one
per fit (`Communicator.update_strategy(model)`, collective), from the world, the optimizer and
DISTDL_ALLREDUCE; the training step then calls its `step()` once per optimizer step.

- `SerialUpdate` (one rank): the penalty gradients, the optimizer over the whole arena, then
  the constraints.
- `AllreduceUpdate` (`MPIComm`): every rank starts from rank 0's weights, state and optimizer
  state; per step one allreduce of the gradient arena (which sits in the node's shared segment
  where there is one, so the sum needs no copy), then the serial update on every rank.
- `NodeSharedUpdate` (all ranks on one node, an elementwise optimizer without norm clipping, no
  constraints): the weights and optimizer slots live in memory the whole node shares, one copy;
  rank r sums slice r of every rank's gradients and steps slice r of the weights. Each rank
  streams 1/n of the optimizer's arrays instead of all of them (the update is bound by the one
  memory bus the cores share), nothing is copied back, and rank 0 always holds the complete
  weights and optimizer state for a checkpoint. Every element is summed in rank order and
  updated once, so the result is bitwise what an allreduce and a full update give.

`NodeMemory`, owned by an `MPIComm`, records which model uses its shared memory.
"""
from __future__ import annotations

import weakref

import numpy as np

__all__ = ["SerialUpdate", "AllreduceUpdate", "NodeSharedUpdate", "start_update", "NodeMemory"]


class SerialUpdate:
    """One rank: the step needs no sum. `sharded` says whether ranks step slices.

    Args:
        model: the compiled model it steps.
    """

    sharded = False

    def __init__(self, model):
        self.model = model

    def step(self) -> None:
        """Add the penalty gradients, step the optimizer over the arena, apply constraints."""
        model = self.model
        arena = model.trainable_arena
        for v in model.regularized:
            v.grad += v.regularizer.gradient(v.value)
        model.optimizer.update(arena.params, arena.grads)
        for v in model.constrained:
            v.value[...] = v.constraint(v.value)


class AllreduceUpdate(SerialUpdate):
    """Every rank sums the gradient arena with one allreduce, then steps all of it.

    Args:
        model: the compiled model it steps.
        comm: the ranks it sums over.
    """

    def __init__(self, model, comm):
        super().__init__(model)
        self.comm = comm

    def step(self) -> None:
        self.comm.allreduce_sum(self.model.trainable_arena.grads)
        super().step()


class NodeSharedUpdate(AllreduceUpdate):
    """The sharded step (see the module docstring); if the node cannot take it (e.g. another
    model's gradients took the shared segment), the model gets private copies back and every
    rank steps everything from then on (decided alike on all ranks).

    Args:
        model: the compiled model it steps.
        comm: the ranks of the node.
        memory: the communicator's NodeMemory, which lends the shared buffers.
    """

    sharded = True

    def __init__(self, model, comm, memory: "NodeMemory"):
        super().__init__(model, comm)
        self.memory = memory
        arena = model.trainable_arena
        spans = dict(zip(map(id, arena.variables), arena.segments()))
        self.regularized = [(v, spans[id(v)]) for v in model.regularized]

    def step(self) -> None:
        if self.sharded:
            if self.comm.reduce_update(self.model.trainable_arena.grads, self._step_slice):
                return
            self.memory.release(self.model)
            self.sharded = False
        super().step()

    def _step_slice(self, lo: int, hi: int) -> None:
        """Add the penalty gradients that fall in [lo, hi), then step that slice."""
        model = self.model
        arena, opt = model.trainable_arena, model.optimizer
        grads = arena.grads
        for v, (a, b) in self.regularized:
            x, y = max(a, lo), min(b, hi)
            if x < y:
                grads[x:y] += v.regularizer.gradient(v.value).reshape(-1)[x - a:y - a]
        opt.update(arena.params[lo:hi], grads[lo:hi], {k: s[lo:hi] for k, s in opt.get_state().items()})


def start_update(model, comm, memory: "NodeMemory") -> AllreduceUpdate:
    """The update of `model` on `comm` (size > 1) for one fit; collective, at the fit's start.

    Every rank starts from rank 0's values; the gradient arena goes into this rank's shared
    segment where allreduces of its size go through shared memory; the step is sharded where
    the optimizer and the model allow it and the node has room for the weights and slots.

    Args:
        model: the compiled model about to train.
        comm: the communicator.
        memory: the communicator's NodeMemory.
    """
    _sync_start(model, comm, memory.held(model))
    opt = model.optimizer
    if (memory.lend_segment(model) and opt.sliceable and not model.constrained
            and memory.lend_buffer(model)):  # a constraint needs a whole variable: no rank owns one
        comm.node_fence()  # rank 0's copies are seen before any rank's forward reads them
        return NodeSharedUpdate(model, comm, memory)
    memory.release(model)  # every rank steps every weight: each needs its own copy
    return AllreduceUpdate(model, comm)


def _sync_start(model, comm, shared: list[np.ndarray]) -> None:
    """Every rank starts from rank 0's weights, state and optimizer state (`shared`: arrays the
    node holds once already, nothing to send)."""
    opt = model.optimizer
    for arr in [model.params, model.state, *opt.get_state().values()]:
        if not any(arr is a for a in shared):
            comm.bcast(arr)
    opt.iterations = int(comm.bcast_obj(int(opt.iterations)))


class NodeMemory:
    """Which model uses a communicator's node-shared memory (one per `MPIComm`): its shared
    segment serves one model's gradient arena at a time, its node buffer one model's weights and
    optimizer slots at a time. A model that loses either gets private memory back, holding its
    values, so /dev/shm use stays bounded. All calls are collective.

    Args:
        comm: the MPIComm whose node memory it tracks.
    """

    def __init__(self, comm):
        self.comm = comm
        self._grads_of = None  # weakref to the model whose gradient arena is the segment
        self._buf = None       # the node buffer (uint8), or None
        self._holder = None    # weakref to the model whose weights and slots are views into it
        self._views: dict[str, np.ndarray] = {}  # "params" / "slot_<name>" -> the holder's view

    def lend_segment(self, model) -> bool:
        """Move the model's gradient arena into this rank's segment of the shared window, where
        the allreduce sums it without copies; False where the segment is not for it.

        Args:
            model: the model whose gradients move.
        """
        arena = model.trainable_arena
        seg = self.comm.shared_segment(arena.grads.nbytes)
        if seg is None:
            return False
        if arena.grads.ctypes.data != seg.ctypes.data:
            holder = _alive(self._grads_of)
            if holder is not None and np.may_share_memory(holder.grads, seg):
                holder.trainable_arena.move_grads(np.zeros_like(holder.grads))
            arena.move_grads(seg[:arena.grads.nbytes].view(arena.dtype))
            self._grads_of = weakref.ref(model)
        return True

    def held(self, model) -> list[np.ndarray]:
        """The model's arrays that live in the node buffer (its weights and optimizer slots while
        it holds the buffer), as the model and its optimizer use them now.

        Args:
            model: the model.
        """
        if _alive(self._holder) is not model:
            return []
        return [a for a in _placed(model).values() if any(a is v for v in self._views.values())]

    def lend_buffer(self, model) -> bool:
        """Put the model's weights and optimizer slots in the node buffer (False: no room).
        Every rank holds the same values: rank 0 copies them in; the caller fences.

        Args:
            model: the model whose weights and slots move.
        """
        comm, opt = self.comm, model.optimizer
        arrays = _placed(model)
        holder = _alive(self._holder)
        if holder is model and all(self._views.get(k) is a for k, a in arrays.items()):
            return True  # a later fit of the same model
        offsets, end = {}, 0
        for name, arr in arrays.items():
            offsets[name] = end
            end += -(-arr.nbytes // 64) * 64  # every array starts on a cache line
        if holder is not None:
            self.release(holder)  # every rank has copied the holder's values out before rank 0 writes
            arrays = _placed(model)  # private again if the holder was this model
        if self._buf is not None and self._buf.nbytes < end:
            self._buf = None
        if self._buf is None:
            self._buf = self.comm.node_array(max(64 << 10, 1 << (max(end, 1) - 1).bit_length()))
            if self._buf is None:
                return False
        views = {name: self._buf[o:o + a.nbytes].view(a.dtype).reshape(a.shape)
                 for (name, a), o in zip(arrays.items(), offsets.values())}
        if comm.rank == 0:
            for name, a in arrays.items():
                views[name][...] = a
        self._holder, self._views = weakref.ref(model), views
        model.trainable_arena.move_params(views["params"], copy=False)
        opt.set_state({k[5:]: a for k, a in views.items() if k.startswith("slot_")}, copy=False)
        return True

    def release(self, model) -> None:
        """Give the model private copies of its weights and optimizer slots if it holds the node
        buffer; the barrier keeps anyone from rewriting the buffer before every rank has copied.

        Args:
            model: the model.
        """
        if _alive(self._holder) is not model:
            return
        model.trainable_arena.move_params(model.params.copy(), copy=False)
        opt = model.optimizer
        opt.set_state({k: a.copy() for k, a in opt.get_state().items()}, copy=False)
        self._holder, self._views = None, {}
        self.comm.barrier()


def _placed(model) -> dict[str, np.ndarray]:
    """What the node buffer holds for a model: its weights and optimizer slots, by name."""
    return {"params": model.params, **{"slot_" + k: a for k, a in model.optimizer.get_state().items()}}


def _alive(ref):
    """The object behind a weakref, or None."""
    return ref() if ref is not None else None
