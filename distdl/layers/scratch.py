"""`Scratch`: the one allocator of layer buffers, and the one rule for how long a buffer lives.

The rule: a buffer from `get(key, shape, dtype)` belongs to (layer, call slot, key) and
stays valid until the same layer's next forward in the same call slot; from then on that
forward, or its backward, may write into it again.

Why it suffices: the engine keeps what a layer hands out (outputs, what forward keeps for
backward, input gradients) for one step at most: forward, loss, backward. So a training step
allocates nothing once shapes settle, and what follows from the rule is explicit, never
guessed (no reference counting):
- A layer called several times per step (a shared layer of a functional model; a shared
  TimeDistributed or Bidirectional passes its slot to its inner layers) runs call n in slot
  n: the graph numbers the calls and `Layer.select_call(n)` picks the slot, and
  `Layer.call_state` records it beside the cache, so each call's backward uses its own buffers.
- An inference forward's output goes to the caller to keep (predict keeps every batch):
  it comes from `output(..., training=False)`, a new array, never from `get`. Whoever keeps
  a training forward's output or a backward's dx past that layer's next forward copies it.
- Within one call, buffers that are alive at the same time have distinct keys; a chunk loop
  reuses one key per chunk on purpose (each chunk is done with it before the next).
- A new shape or dtype for a key (an evaluation tail, a predict with another batch size)
  replaces that key's buffer; whoever still holds the old one keeps it intact.

Read-only constants shared by all layers (`distdl.special.constant`) are not scratch: nothing
writes them, so they need no lifetime.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Scratch"]

class Scratch:
    """One layer's named buffers, one set per call slot (the lifetime rule is the module's).

    `get` is the hot call: a dict lookup and a shape/dtype check, then the same array as last time.
    """

    __slots__ = ("_slots", "_bufs", "slot")

    def __init__(self):
        self._slots: list[dict] = [{}]
        self._bufs = self._slots[0]   # the current slot's buffers, by key
        self.slot = 0

    def select(self, slot: int) -> None:
        """Hand out one call slot's buffers from now on.

        Args:
            slot: the call slot (0 unless a layer runs several calls per step).
        """
        while len(self._slots) <= slot:
            self._slots.append({})
        self._bufs = self._slots[slot]
        self.slot = slot

    def get(self, key, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of `shape` and `dtype`: the one the last `get` of
        `key` in this slot returned when shape and dtype agree, else a new one that replaces it.

        Args:
            key: the buffer's name within this layer and slot.
            shape: the array's shape.
            dtype: the array's dtype.
        """
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[key] = np.empty(shape, dtype)
        return buf

    def output(self, key, shape: tuple, dtype, training: bool) -> np.ndarray:
        """Where a forward writes its output: `get(key, ...)` in training (the engine is done with
        it by the next forward), a new array in inference (the caller may keep it).

        Args:
            key: the buffer's name within this layer and slot.
            shape: the output's shape.
            dtype: the output's dtype.
            training: whether the forward is a training one.
        """
        return self.get(key, shape, dtype) if training else np.empty(shape, dtype)
