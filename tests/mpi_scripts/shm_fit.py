"""Two models trained in turn: each fit puts its gradient arena in the shared segment.

usage: python shm_fit.py OUT_PREFIX   (saves both models' weights per rank)
"""
import sys

import numpy as np

from distdl import utils
from distdl.comm import world
from distdl.layers import Dense
from distdl.models import Sequential

out = sys.argv[1]
comm = world()


def make(width):
    utils.set_random_seed(width)
    m = Sequential([Dense(width, activation="relu", input_shape=(20,)), Dense(4, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return m


def in_segment(model):
    """Whether the model's gradients (and every weight's grad view) sit in this rank's segment."""
    seg = comm.shared_segment(model.grads.nbytes)
    if seg is None or model.grads.ctypes.data != seg.ctypes.data:
        return False
    return all(np.shares_memory(v.grad, model.grads) for v in model.trainable_arena.variables)


rng = np.random.default_rng(0)
x = rng.standard_normal((203, 20)).astype("float32")
y = (x[:, :4].argmax(axis=1)).astype(np.int64)
shared = comm.size > 1 and comm.allreduce_mode != "mpi"
a, b = make(64), make(1024)  # b needs a larger window than a: the segment grows
for model in (a, b, a, b):
    utils.set_random_seed(3)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert in_segment(model) == shared, "the model being fitted must own the segment"
    other = b if model is a else a
    assert not np.may_share_memory(other.grads, model.grads), "two models share gradient memory"
    assert not np.may_share_memory(other.params, model.params), "two models share weights"
    if shared:  # the sharded step: weights in the node buffer, one buffer lent in turn
        assert comm.node_array  # noqa: the communicator offers node memory
        windows = len(comm._shm._node_wins)
        assert windows <= 2, f"{windows} node buffers for two models: they must be reused"
np.savez(f"{out}_rank{comm.rank}.npz", a=a.params, b=b.params)
print(f"fit ok rank {comm.rank}", flush=True)
