"""Fit with the sharded optimizer step (each rank steps its slice) or with every rank stepping
everything, and save what each rank ends with.

usage: python sharded_fit.py OUT_PREFIX sharded|full
Run with DISTDL_ALLREDUCE=shm. AdamW (weight decay), clipvalue and an L2 penalty on one kernel
exercise every part of the update; fit runs twice, so the second fit reuses the node-shared
weights and slots; rank 0 writes a checkpoint every epoch. A model with a constraint is never
sharded (a constraint needs a whole variable).
"""
import sys

import numpy as np

from distdl import utils
from distdl.callbacks import ModelCheckpoint
from distdl.comm import world
from distdl.layers import Dense
from distdl.models import Sequential
from distdl.optimizers import AdamW

out, mode = sys.argv[1], sys.argv[2]
comm = world()
if mode == "full":
    AdamW.elementwise = False  # the optimizer then refuses slices: every rank steps everything

utils.set_random_seed(5)
model = Sequential([Dense(37, activation="relu", kernel_regularizer="l2", input_shape=(13,)),
                    Dense(29, activation="tanh"),
                    Dense(3)])
model.compile(optimizer=AdamW(learning_rate=0.01, weight_decay=0.05, clipvalue=0.5),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
rng = np.random.default_rng(0)
x = rng.standard_normal((101, 13)).astype("float32")
y = rng.integers(0, 3, 101)
ckpt = ModelCheckpoint(f"{out}_ckpt.h5")
model.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[ckpt])
assert model.train_state.strategy.sharded == (mode == "sharded"), "the step was not taken the expected way"
model.fit(x, y, batch_size=10, epochs=3, initial_epoch=2, verbose=0, callbacks=[ckpt])
assert model.train_state.strategy.sharded == (mode == "sharded")
constrained = Sequential([Dense(3, kernel_constraint="max_norm", input_shape=(13,))])
constrained.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
constrained.fit(x, y, batch_size=10, epochs=1, verbose=0)
assert constrained.train_state.strategy.sharded is False
state = model.optimizer.get_state()
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, iterations=model.optimizer.iterations,
         **{f"slot_{k}": v for k, v in state.items()})
print(f"{mode} ok rank {comm.rank}", flush=True)
