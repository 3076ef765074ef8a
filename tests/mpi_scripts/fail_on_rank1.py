"""Rank 1 raises in the middle of the first epoch; the job must end fast."""
import numpy as np

from distdl.callbacks import Callback
from distdl.comm import world
from distdl.layers import Dense
from distdl.models import Sequential


class Boom(Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 3 and world().rank == 1:
            raise RuntimeError("boom from rank 1 at batch 3")


x = np.random.default_rng(0).standard_normal((4000, 8)).astype(np.float32)
model = Sequential([Dense(4, input_shape=(8,))])
model.compile(optimizer="sgd", loss="mse")
model.fit(x, x[:, :4], batch_size=8, epochs=1000, verbose=0, callbacks=[Boom()])
