"""Fit a functional model that calls a nested Sequential twice (shared weights) and a Sequential
that nests a functional model, in float64, and save the weights each rank ends with.

usage: python nested_fit.py OUT_PREFIX   (run as 1 process and on 2 ranks with mpirun)
"""
import sys

import numpy as np

from distdl import utils
from distdl.comm import world
from distdl.layers import Dense, Input
from distdl.models import Model, Sequential

out = sys.argv[1]
comm = world()
utils.set_random_seed(7)
inner = Sequential([Input((6,), dtype="float64"), Dense(5, activation="tanh", dtype="float64"),
                    Dense(4, dtype="float64")])
a = Input((6,), dtype="float64")
merged = inner(a) * inner(a) + inner(a)
model = Model(a, Dense(3, dtype="float64")(merged))
a2 = Input((6,), dtype="float64")
func = Model(a2, Dense(4, activation="relu", dtype="float64")(a2))
seq = Sequential([func, Dense(2, dtype="float64")])
rng = np.random.default_rng(1)
x = rng.standard_normal((48, 6))
y = rng.integers(0, 3, 48)
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(x, y, batch_size=12, epochs=3, shuffle=False, verbose=0)
seq.compile("sgd", "mse")
seq.fit(x, rng.standard_normal((48, 2)), batch_size=12, epochs=3, shuffle=False, verbose=0)
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, seq=seq.params)
