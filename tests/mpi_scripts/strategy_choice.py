"""Which update strategy a fit picks, on 1, 2 or 3 ranks.

usage: python strategy_choice.py MODE OUT_PREFIX   (run with DISTDL_ALLREDUCE=MODE: auto, shm
or mpi; saves the weights of a model refitted with another sharded optimizer, per rank)
"""
import sys

import numpy as np

from distdl import utils
from distdl.comm import world
from distdl.comm.strategies import AllreduceUpdate, NodeSharedUpdate, SerialUpdate
from distdl.layers import Dense
from distdl.models import Sequential
from distdl.optimizers import SGD

mode, out = sys.argv[1], sys.argv[2]
comm = world()


def fit(width, optimizer="adam", constraint=None, model=None):
    if model is None:
        utils.set_random_seed(width)
        model = Sequential([Dense(width, activation="relu", input_shape=(20,), kernel_constraint=constraint),
                            Dense(4)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((40, 20)).astype("float32"), rng.standard_normal((40, 4)).astype("float32"),
              batch_size=8, epochs=1, verbose=0)
    return model


def kind(model):
    strategy = model.train_state.strategy
    if isinstance(strategy, NodeSharedUpdate):
        return "node-shared" if strategy.sharded else "allreduce"
    return "allreduce" if isinstance(strategy, AllreduceUpdate) else "serial"


big = fit(1024)  # 100 KiB of gradients: through shared memory in auto mode too
expect = "serial" if comm.size == 1 else "node-shared" if comm.size > 1 and mode != "mpi" else "allreduce"
assert kind(big) == expect, (kind(big), expect)
fit(0, SGD(0.01, momentum=0.9), model=big)  # other slots: the node buffer is laid out anew
assert kind(big) == expect, (kind(big), expect)
np.save(f"{out}_rank{comm.rank}.npy", big.params)
small = fit(8)   # 800 bytes: MPI's own allreduce in auto mode
clipped = fit(1024, SGD(0.01, clipnorm=1.0))
constrained = fit(1024, constraint="max_norm")
shared = comm.size > 1 and mode != "mpi"
assert kind(small) == ("serial" if comm.size == 1 else "node-shared" if mode == "shm" else "allreduce")
assert kind(clipped) == kind(constrained) == ("serial" if comm.size == 1 else "allreduce")
assert isinstance(SerialUpdate(big), SerialUpdate)
# the node buffer went from `big` to `small` (shm mode) or stayed with `big` (auto); refitting
# `big` with an optimizer that cannot be sharded gives it private weights before all ranks step them
fit(0, SGD(0.01, clipnorm=1.0), model=big)
assert kind(big) == ("serial" if comm.size == 1 else "allreduce")
for m in (small, clipped, constrained):
    assert not np.may_share_memory(big.params, m.params)
if shared:
    buffers = [w.segs[0] for w in comm._shm._node_wins]
    assert not any(np.may_share_memory(big.params, b) for b in buffers), "unsharded weights in node memory"
digest = np.array([float(np.sum(m.params, dtype=np.float64)) for m in (big, small, clipped, constrained)])
assert all(np.array_equal(d, digest) for d in comm.allgather_obj(digest.tolist())), "ranks diverged"
print(f"choice ok rank {comm.rank}", flush=True)
