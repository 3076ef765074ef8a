"""Freeze the first layer of a fitted model, recompile, fit again with the node-shared sharded
step (run with DISTDL_ALLREDUCE=shm on 2 ranks): the frozen weights stay bitwise unchanged on
every rank, the others move, and the step taken is the sharded one.

usage: python frozen_fit.py OUT_PREFIX
"""
import numpy as np

from distdl import utils
from distdl.comm import world
from distdl.layers import Dense
from distdl.models import Sequential
from distdl.optimizers import AdamW

comm = world()
utils.set_random_seed(5)
model = Sequential([Dense(17, activation="relu", input_shape=(13,), name="base"), Dense(3, name="head")])
model.compile(optimizer=AdamW(learning_rate=0.01, weight_decay=0.05), loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 13)).astype("float32")
y = rng.integers(0, 3, 64)
model.fit(x, y, batch_size=8, epochs=1, verbose=0)
assert model.train_state.strategy.sharded, "the first fit was not sharded"
model.get_layer("base").trainable = False
model.compile(optimizer=AdamW(learning_rate=0.01, weight_decay=0.05), loss="sparse_categorical_crossentropy")
frozen = [w.copy() for w in model.get_layer("base").get_weights()]
head = [w.copy() for w in model.get_layer("head").get_weights()]
model.fit(x, y, batch_size=8, epochs=2, verbose=0)
assert model.train_state.strategy.sharded, "the fit after the freeze was not sharded"
assert all(np.array_equal(a, b) for a, b in zip(frozen, model.get_layer("base").get_weights()))
assert all(not np.array_equal(a, b) for a, b in zip(head, model.get_layer("head").get_weights()))
print(f"frozen ok rank {comm.rank}", flush=True)
