"""Train and predict a model whose input and output have a None (variable) time axis, per rank.

usage: python variable_dims.py OUT_PREFIX
Input(shape=(None, 3)) -> Conv1D(stride 2) -> SimpleRNN(return_sequences) -> Dense: the output is
(None, None, 2). 21 rows of 9 steps, global batch 4 (the last batch has 1 row, so on 2 and 3 ranks
some ranks get none); then predict 1 row (every rank but rank 0 has only empty parts, whose
None axis must take the real length for the gather) and 21 rows of 13 steps.
"""
import sys

import numpy as np

from distdl import utils
from distdl.comm import world
from distdl.layers import Conv1D, Dense, Input, SimpleRNN
from distdl.models import Model

out = sys.argv[1]
comm = world()
utils.set_random_seed(3 + 100 * comm.rank)  # ranks start apart: rank 0's weights must win
rng = np.random.default_rng(0)
x9 = rng.standard_normal((21, 9, 3)).astype("float32")
x13 = rng.standard_normal((21, 13, 3)).astype("float32")
inp = Input(shape=(None, 3))
model = Model(inp, Dense(2)(SimpleRNN(4, return_sequences=True)(Conv1D(5, 3, strides=2)(inp))))
model.compile(optimizer="adam", loss="mse")
y = rng.standard_normal((21, 4, 2)).astype("float32")   # (9 - 3) // 2 + 1 = 4 steps out
utils.set_random_seed(11)  # same data order everywhere
hist = model.fit(x9, y, batch_size=4, epochs=2, verbose=0)
one = model.predict(x9[:1], batch_size=4, verbose=0)
pred13 = model.predict(x13, batch_size=4, verbose=0)
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, loss=np.array(hist.history["loss"]),
         one=one, pred13=pred13)
