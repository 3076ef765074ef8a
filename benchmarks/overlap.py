"""Experiment: overlap the gradient allreduce with backward, patched into a benchmark process only.

Each layer's gradients are one contiguous slice of the arena. As soon as a
layer's backward has written them, a non-blocking `Iallreduce` of that slice
(one bucket per layer, in reverse layer order) is posted; the training step's
own `allreduce_sum(model.grads)` then only waits for all of them. distdl itself
is not changed: this measures whether doing so would pay.
"""
from __future__ import annotations

import numpy as np


class BucketedOverlap:
    """Posts one Iallreduce per layer from inside backward; `finish` waits for all of them."""

    def __init__(self, model, comm):
        from mpi4py import MPI
        self.MPI, self.raw, self.grads = MPI, comm._comm, model.grads
        self.requests, self.posted = [], set()
        self.buckets = {}
        base = model.grads.__array_interface__["data"][0]
        item = model.grads.itemsize
        for layer in model.layers:
            views = [v.grad for v in layer.weights if v.trainable and v.grad is not None]
            if not views:
                continue
            starts = [(g.__array_interface__["data"][0] - base) // item for g in views]
            a, b = min(starts), max(s + g.size for s, g in zip(starts, views))
            self.buckets[id(layer)] = (a, b)
            for name in ("backward", "backward_preactivation"):
                if hasattr(layer, name):
                    self._wrap(layer, name)

    def _wrap(self, layer, name) -> None:
        fn = getattr(layer, name)
        key = id(layer)

        def wrapped(*a, **k):
            out = fn(*a, **k)
            if key not in self.posted:  # Dense.backward calls backward_preactivation: post once
                self.posted.add(key)
                s, e = self.buckets[key]
                self.requests.append(self.raw.Iallreduce(self.MPI.IN_PLACE, self.grads[s:e], op=self.MPI.SUM))
                self.MPI.Request.Testall(self.requests)  # give MPICH a chance to progress
            return out
        setattr(layer, name, wrapped)

    def owns(self, buf: np.ndarray) -> bool:
        return buf is self.grads

    def finish(self, buf: np.ndarray) -> np.ndarray:
        """Wait for every posted bucket (all layers' gradients are then summed)."""
        self.MPI.Request.Waitall(self.requests)
        self.requests, self.posted = [], set()
        return buf

    def bucket_bytes(self) -> list[int]:
        return [(e - s) * self.grads.itemsize for s, e in self.buckets.values()]
