"""Fit a small model with one of the newer optimizers; save the weights, the optimizer slots and
whether the weights ended up in node-shared memory (the sharded step) per rank.

usage: python optimizer_trajectory.py OUT_PREFIX OPTIMIZER
Nadam is elementwise (with DISTDL_ALLREDUCE=shm each rank steps its slice, its schedule product
derived per rank from `iterations`); Lamb and Adafactor need whole variables, so every rank takes
the allreduce path and steps the whole arena. Weight decay and an L2 penalty enter the update once.
"""
import sys

import numpy as np

from distdl import backend, optimizers, utils
from distdl.comm import world
from distdl.layers import Dense
from distdl.models import Sequential
from node_memory import weights_shared_by_node

out, name = sys.argv[1], sys.argv[2]
backend.set_floatx("float64")
comm = world()
utils.set_random_seed(5 + 100 * comm.rank)  # ranks start apart: rank 0's weights must win
rng = np.random.default_rng(0)
x = rng.standard_normal((53, 6))                            # batch 8: the last batch has 5 rows
y = np.stack([x[:, 0] * x[:, 1], np.tanh(x[:, 2] - x[:, 3])], axis=1)
model = Sequential([Dense(16, activation="tanh", input_shape=(6,), kernel_regularizer="l2"),
                    Dense(7, activation="relu"), Dense(2)])
opt = optimizers.get({"class_name": name, "config": {"learning_rate": 0.01, "weight_decay": 0.004}})
model.compile(optimizer=opt, loss="mse")
utils.set_random_seed(11)
hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
shared = weights_shared_by_node(model, comm)
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, loss=np.array(hist.history["loss"]),
         iterations=np.array(opt.iterations), node_shared=np.array(shared),
         **{"slot_" + k: v for k, v in opt.get_state().items()})
