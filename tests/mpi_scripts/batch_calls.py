"""train_on_batch x3 (batches of 7, 5 and 2 rows: some ranks get none), test_on_batch x2 and
predict_on_batch on every rank; saves the weights and the logs per rank.

usage: python batch_calls.py OUT_PREFIX
"""
import sys

import numpy as np

from distdl import backend, utils
from distdl.comm import world
from distdl.layers import Dense, Dropout, Input
from distdl.models import Sequential

backend.set_floatx("float64")
out = sys.argv[1]
comm = world()
utils.set_random_seed(3 + 100 * comm.rank)  # ranks start apart: rank 0's weights must win
rng = np.random.default_rng(0)
x = rng.standard_normal((14, 4))
y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
model = Sequential([Input(shape=(4,)), Dense(8, activation="tanh"), Dropout(0.3), Dense(3, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
logs = [model.train_on_batch(x[a:b], y[a:b]) for a, b in ((0, 7), (7, 12), (12, 14))]
tests = [model.test_on_batch(x[a:b], y[a:b]) for a, b in ((0, 9), (9, 14))]
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, train=np.array(logs), test=np.array(tests),
         pred=model.predict_on_batch(x))
