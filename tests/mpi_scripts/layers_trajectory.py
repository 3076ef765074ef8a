"""Train a CNN with BatchNormalization or an LSTM model; save weights, state, history per rank,
and whether the weights ended up in node-shared memory (the sharded step).

usage: python layers_trajectory.py OUT_PREFIX DTYPE MODEL
MODEL: cnn (Conv2D + synchronized BatchNormalization), lstm (two stacked LSTMs, input
and recurrent dropout), bn_local (the CNN with BatchNormalization(synchronized=False)),
winograd (a 32-channel 3x3 Conv2D, which runs Winograd), masked (Embedding(mask_zero=True),
an LSTM over padded sequences, a loss per time step that the mask weights: the valid
count is the global batch's).
101 rows, global batch 10: the last batch has 1 row, so on 2 and 3 ranks some ranks get none.
"""
import hashlib
import sys

import numpy as np

from distdl import backend, utils
from distdl.comm import world
from distdl.layers import (LSTM, Activation, BatchNormalization, Conv2D, Dense, Embedding, Flatten,
                           MaxPooling2D)
from distdl.models import Sequential
from node_memory import weights_shared_by_node

out, dtype, kind = sys.argv[1], sys.argv[2], sys.argv[3]
backend.set_floatx(dtype)
comm = world()
utils.set_random_seed(5 + 100 * comm.rank)  # ranks start apart: rank 0's weights must win
rng = np.random.default_rng(0)
if kind == "masked":
    lengths = rng.integers(0, 7, 101)  # some sequences are all padding
    x = np.where(np.arange(6) < lengths[:, None], rng.integers(1, 9, (101, 6)), 0)
    y = (x % 3).astype(np.int64)
    layers = [Embedding(9, 4, mask_zero=True, input_shape=(6,)), LSTM(5, return_sequences=True),
              Dense(3, activation="softmax")]
elif kind == "lstm":
    x = rng.standard_normal((101, 5, 3)).astype(dtype)      # 5 time steps of 3 features
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64) + (x[:, -1, 1] > 0.5)
    layers = [LSTM(7, return_sequences=True, dropout=0.2, recurrent_dropout=0.1, input_shape=(5, 3)),
              LSTM(6), Dense(3, activation="softmax")]
elif kind == "winograd":  # the second Conv2D (32 channels, 3x3) takes the Winograd path
    x = rng.standard_normal((101, 7, 6, 2)).astype(dtype)
    y = (x[:, :3, :, 0].mean(axis=(1, 2)) > 0).astype(np.int64) + (x[:, 4:, :, 1].mean(axis=(1, 2)) > 0.2)
    layers = [Conv2D(32, 3, padding="same", activation="relu", input_shape=(7, 6, 2)),
              Conv2D(32, 3, padding="same", activation="relu"), MaxPooling2D(2), Flatten(),
              Dense(3, activation="softmax")]
else:
    x = rng.standard_normal((101, 7, 6, 2)).astype(dtype)   # non-square 7x6 images, 2 channels
    y = (x[:, :3, :, 0].mean(axis=(1, 2)) > 0).astype(np.int64) + (x[:, 4:, :, 1].mean(axis=(1, 2)) > 0.2)
    layers = [Conv2D(4, 3, padding="same", use_bias=False, input_shape=(7, 6, 2)),
              BatchNormalization(synchronized=kind != "bn_local"), Activation("relu"),
              MaxPooling2D(2), Flatten(), Dense(8, use_bias=False), BatchNormalization(momentum=0.5, synchronized=kind != "bn_local"),
              Activation("tanh"), Dense(3, activation="softmax")]
model = Sequential(layers)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
utils.set_random_seed(11)  # same data order / dropout seed everywhere
hist = model.fit(x, y, batch_size=10, epochs=2, verbose=0, validation_split=0.2)
scores = model.evaluate(x, y, batch_size=7, verbose=0)
pred = model.predict(x, batch_size=9, verbose=0)
shared = weights_shared_by_node(model, comm)
state = [v.value.ravel() for v in model.non_trainable_weights]
state = np.concatenate(state) if state else np.zeros(0, dtype)
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, state=state, pred=pred, scores=np.array(scores),
         loss=np.array(hist.history["loss"]), val_loss=np.array(hist.history["val_loss"]),
         acc=np.array(hist.history["accuracy"]), node_shared=np.array(shared),
         digest=np.frombuffer(hashlib.sha256(model.params.tobytes()).digest(), dtype=np.uint8))
