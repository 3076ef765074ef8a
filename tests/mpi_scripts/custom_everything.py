"""Train a model made of user-written pieces and save, per rank, what N ranks must agree on.

usage: python custom_everything.py OUT_PREFIX
A recorded custom layer (nested Dense, add_loss of a batch mean, a normal draw on the batch rows),
ops on symbolic tensors (TensorOp nodes), a Lambda, a custom loss function and a custom Metric
subclass; float64, 23 rows, global batch 5 (the last batch has 3 rows: on 2 and 3 ranks some
ranks get 1 row or none). Saves the weights, the history's losses and metrics, evaluate's logs.
"""
import sys

import numpy as np

from distdl import backend, ops, utils
from distdl.comm import world
from distdl.layers import Dense, Input, Lambda, Layer
from distdl.metrics import Metric
from distdl.models import Model
from distdl.random import SeedGenerator, normal

backend.set_floatx("float64")


class NoisyBlock(Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.inner = Dense(units, activation="tanh")
        self.seed = SeedGenerator(4)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, inputs, training=None):
        x = inputs * self.scale
        if training:
            x = x + 0.1 * normal(ops.shape(x), seed=self.seed, dtype=x.dtype)
        h = self.inner(x)
        self.add_loss(0.01 * ops.mean(ops.square(h)))
        return h


def smooth_l1(y_true, y_pred):
    d = ops.abs(y_true - y_pred)
    return ops.mean(ops.where(d < 1.0, 0.5 * d * d, d - 0.5), axis=-1)


class SignAgreement(Metric):
    """Counts rows whose prediction has the sign of the target's first column."""

    def __init__(self, name="sign_agreement", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.rows = self.add_variable(shape=(), initializer="zeros", name="rows")

    def update_state(self, y_true, y_pred, sample_weight=None):
        same = ops.cast(ops.equal(ops.sign(y_true[:, 0]), ops.sign(y_pred[:, 0])), "float64")
        self.hits.assign_add(ops.sum(same))
        self.rows.assign_add(ops.cast(ops.shape(y_true)[0], "float64"))

    def result(self):
        return self.hits / ops.maximum(self.rows, 1.0)


def shifted(t):
    return t - 0.5


out = sys.argv[1]
comm = world()
utils.set_random_seed(3 + 100 * comm.rank)  # ranks start apart: rank 0's weights must win
rng = np.random.default_rng(0)
x = rng.standard_normal((23, 4))
y = np.stack([x[:, 0] - x[:, 1], x[:, 2] * 0.5], axis=-1)
inp = Input(shape=(4,))
h = NoisyBlock(6)(inp)
h = ops.relu(h) * 2.0 + Lambda(shifted)(h)
model = Model(inp, Dense(2)(h))
model.compile(optimizer="adam", loss=smooth_l1, metrics=[SignAgreement(), "mae"])
utils.set_random_seed(11)  # the same data order everywhere
hist = model.fit(x, y, batch_size=5, epochs=3, verbose=0)
logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params,
         **{f"hist_{k}": np.array(v) for k, v in hist.history.items()},
         **{f"eval_{k}": np.array(v) for k, v in logs.items()})
