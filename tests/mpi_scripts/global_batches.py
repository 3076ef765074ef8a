"""predict and evaluate with a global batch_size: batches counted by callbacks, the outputs and
the scores, per rank, for N rows (few rows: some ranks hold none of a batch).

usage: python global_batches.py OUT_PREFIX ROWS BATCH
Saves OUT_PREFIX_rank<r>.npz: pred, pred2 (second output), scores, predict_batches, test_batches.
"""
import sys

import numpy as np

from distdl import backend, layers, utils
from distdl.callbacks import Callback
from distdl.comm import world
from distdl.models import Model

out, rows, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
comm = world()


class Count(Callback):
    def __init__(self):
        super().__init__()
        self.predict, self.test, self.rows = 0, 0, 0

    def on_predict_batch_end(self, batch, logs=None):
        self.predict += 1
        self.rows += len(logs["outputs"][0])

    def on_test_batch_end(self, batch, logs=None):
        self.test += 1


backend.set_floatx("float64")  # row results then agree to rounding across batch shapes
utils.set_random_seed(3)
inp = layers.Input(shape=(5,))
h = layers.Dense(8, activation="tanh")(inp)
model = Model(inp, [layers.Dense(3, activation="softmax")(h), layers.Dense(1)(h)])
model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], []])
rng = np.random.default_rng(0)
x = rng.standard_normal((rows, 5))
y = [rng.integers(0, 3, rows), rng.standard_normal((rows, 1))]
count = Count()
pred = model.predict(x, batch_size=batch, verbose=0, callbacks=[count])
scores = model.evaluate(x, y, batch_size=batch, verbose=0, callbacks=[count])
np.savez(f"{out}_rank{comm.rank}.npz", pred=pred[0], pred2=pred[1], scores=np.array(scores),
         predict_batches=np.array(count.predict), test_batches=np.array(count.test),
         local_rows=np.array(count.rows))
