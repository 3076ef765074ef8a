"""Train a small model with Dropout; save weights, hashes, history and scores per rank, and
whether the weights ended up in node-shared memory (the sharded step).

usage: python trajectory.py OUT_PREFIX DTYPE [--steps-per-update K] [--bn]
"""
import hashlib
import sys

import numpy as np

from distdl import backend, utils
from distdl.comm import world
from distdl.layers import Dense, Dropout
from distdl.models import Sequential
from node_memory import weights_shared_by_node

out, dtype = sys.argv[1], sys.argv[2]
k = int(sys.argv[sys.argv.index("--steps-per-update") + 1]) if "--steps-per-update" in sys.argv else 1
backend.set_floatx(dtype)
comm = world()
utils.set_random_seed(5 + 100 * comm.rank)  # ranks start apart: rank 0's weights must win
rng = np.random.default_rng(0)
x = rng.standard_normal((101, 6)).astype(dtype)            # 101 rows, batch 10: last batch has 1 row
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5)
# an L2 penalty and AdamW's weight decay must enter the update once, not once per rank
model = Sequential([Dense(16, activation="relu", input_shape=(6,), kernel_regularizer="l2"), Dropout(0.3),
                    Dense(3, activation="softmax")])
model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
utils.set_random_seed(11)  # same data order / dropout seed everywhere
hist = model.fit(x, y, batch_size=10, epochs=2, verbose=0, validation_split=0.2, steps_per_update=k)
scores = model.evaluate(x, y, batch_size=7, verbose=0)
pred = model.predict(x, batch_size=9, verbose=0)
shared = weights_shared_by_node(model, comm)
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, pred=pred, scores=np.array(scores),
         loss=np.array(hist.history["loss"]), val_loss=np.array(hist.history["val_loss"]),
         acc=np.array(hist.history["accuracy"]), node_shared=np.array(shared),
         digest=np.frombuffer(hashlib.sha256(model.params.tobytes()).digest(), dtype=np.uint8))
