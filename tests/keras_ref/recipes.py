"""Keras 3's transfer-learning and fine-tuning recipes from given weights, for
tests/test_trainable.py (run with a Python that has keras and jax; not imported by distdl).

usage: KERAS_BACKEND=jax JAX_ENABLE_X64=1 python recipes.py IN.npz OUT.npz
IN: x, y, transfer_0..7 (Dense, BatchNormalization, Dense weights), fine_0..3 (two Dense).
OUT: transfer_0..7 after freezing the base and fitting SGD(0.1) 3 epochs; fine_0..3 after
fitting with the base frozen (Adam 1e-2, 1 epoch), unfreezing and fitting Adam(1e-4) 3 epochs.
"""
import sys

import keras
import numpy as np

keras.backend.set_floatx("float64")
src = np.load(sys.argv[1])
x, y = src["x"], src["y"]
L = keras.layers


def fit(model, lr_opt, epochs):
    model.compile(lr_opt, "mse")
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)


transfer = keras.Sequential([keras.Input((5,)), L.Dense(4), L.BatchNormalization(), L.Dense(2)])
transfer.set_weights([src[f"transfer_{i}"] for i in range(8)])
for layer in transfer.layers[:-1]:
    layer.trainable = False
fit(transfer, keras.optimizers.SGD(0.1), 3)

fine = keras.Sequential([keras.Input((5,)), L.Dense(4), L.Dense(2)])
fine.set_weights([src[f"fine_{i}"] for i in range(4)])
fine.layers[0].trainable = False
fit(fine, keras.optimizers.Adam(1e-2), 1)
fine.layers[0].trainable = True
fit(fine, keras.optimizers.Adam(1e-4), 3)
out = {f"transfer_{i}": w for i, w in enumerate(transfer.get_weights())}
out.update({f"fine_{i}": w for i, w in enumerate(fine.get_weights())})
np.savez(sys.argv[2], **out)
