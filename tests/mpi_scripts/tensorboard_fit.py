"""Fit with a TensorBoard callback on every rank (batch scalars every batch): only rank 0 writes.

usage: python tensorboard_fit.py OUT_DIR   (events under OUT_DIR/tb, the loss history in OUT_DIR/loss.npy)
"""
import sys
from pathlib import Path

import numpy as np

from distdl import callbacks, layers, models, utils
from distdl.comm import world

out = Path(sys.argv[1])
comm = world()
utils.set_random_seed(3)
model = models.Sequential([layers.Input((4,)), layers.Dense(1)])
model.compile("sgd", "mse")
rng = np.random.default_rng(0)
x, y = rng.normal(size=(12, 4)).astype("float32"), rng.normal(size=(12, 1)).astype("float32")
history = model.fit(x, y, batch_size=4, epochs=2, verbose=0,
                    callbacks=[callbacks.TensorBoard(out / "tb", update_freq="batch")])
if comm.rank == 0:
    np.save(out / "loss.npy", np.array(history.history["loss"]))
