"""Two ranks train a model together, save it as a .keras archive, and each loads it back.

usage: mpirun -n 2 python keras_archive.py OUT.keras
Prints `rank R <hash of the loaded model's predictions> <iterations>` per rank; the archive
must be written once (by rank 0) and load on every rank.
"""
import hashlib
import sys

import numpy as np

from distdl import utils
from distdl.comm import world
from distdl.layers import BatchNormalization, Dense
from distdl.models import Sequential, load_model

path = sys.argv[1]
comm = world()
utils.set_random_seed(3)
model = Sequential([Dense(6, activation="relu", input_shape=(4,)), BatchNormalization(), Dense(2)])
model.compile(optimizer="adam", loss="mse")
rng = np.random.default_rng(0)
x, y = rng.standard_normal((20, 4)).astype("float32"), rng.standard_normal((20, 2)).astype("float32")
model.fit(x, y, batch_size=8, epochs=2, verbose=0, comm=comm)
model.save(path)
comm.barrier()
back = load_model(path)
pred = back.predict(x, verbose=0)
assert np.array_equal(pred, model.predict(x, verbose=0))
print(f"rank {comm.rank} {hashlib.sha256(pred.tobytes()).hexdigest()} {back.optimizer.iterations}", flush=True)
