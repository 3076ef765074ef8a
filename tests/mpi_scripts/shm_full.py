"""Training when the node's shared-memory file system has no room: MPI's allreduce instead.

usage: python shm_full.py OUT_PREFIX   (pretends /dev/shm has 100 KiB free; saves each rank's weights)
"""
import sys
import types

import numpy as np

from distdl import utils
from distdl.comm import shm, world
from distdl.layers import Dense
from distdl.models import Sequential

FREE = 100 << 10
real_os = shm.os
shm.os = types.SimpleNamespace(statvfs=lambda path: types.SimpleNamespace(f_bavail=FREE, f_frsize=1))

out = sys.argv[1]
comm = world()
utils.set_random_seed(2)
model = Sequential([Dense(512, activation="relu", input_shape=(64,)), Dense(4)])  # 133 KiB of gradients
model.compile(optimizer="adam", loss="mse")
rng = np.random.default_rng(0)
x, y = rng.standard_normal((90, 64)).astype("float32"), rng.standard_normal((90, 4)).astype("float32")
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
assert comm.shared_segment(model.grads.nbytes) is None, "a window was made without room for it"
assert model.train_state.strategy.sharded is False
np.save(f"{out}_rank{comm.rank}.npy", model.params)
print(f"full ok rank {comm.rank}", flush=True)
