"""Train with a custom loss and custom metrics; save weights, history and scores per rank.

The loss is a function written with distdl.ops (a sparse cross-entropy on integer labels, or with
`scalar`, the same as a batch mean); the metrics are Keras's guide `CategoricalTruePositives`
(a Metric subclass with add_variable), a per-sample function and a scalar function.

usage: python custom_objectives.py OUT_PREFIX [scalar]
"""
import sys

import numpy as np

from distdl import ops, utils
from distdl.comm import world
from distdl.layers import Dense
from distdl.metrics import Metric
from distdl.models import Sequential

out = sys.argv[1]
scalar = "scalar" in sys.argv[2:]


def sparse_ce(y_true, y_pred):
    labels = ops.cast(y_true, "int32")[:, 0]
    per = -ops.log(y_pred[np.arange(len(labels)), labels])
    return ops.mean(per) if scalar else per


def abs_err(y_true, y_pred):      # per sample: 1 - probability of the label
    labels = np.asarray(y_true, dtype=int)[:, 0]
    return 1.0 - ops.convert_to_tensor(y_pred)[np.arange(len(labels)), labels]


def scalar_mse(y_true, y_pred):   # a batch mean
    return ops.mean(ops.square(ops.convert_to_tensor(y_pred)))


class CategoricalTruePositives(Metric):
    def __init__(self, name="ctp", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.argmax(y_pred, axis=1).reshape(-1, 1)
        values = ops.cast(ops.cast(y_true, "int32") == ops.cast(y_pred, "int32"), "float32")
        if sample_weight is not None:
            values = ops.multiply(values, ops.cast(sample_weight, "float32")[:, None])
        self.true_positives.assign_add(ops.sum(values))

    def result(self):
        return self.true_positives.value

    def reset_state(self):
        self.true_positives.assign(0.0)


comm = world()
utils.set_random_seed(5 + 100 * comm.rank)  # ranks start apart: rank 0's weights must win
rng = np.random.default_rng(0)
x = rng.standard_normal((101, 6)).astype("float32")     # 101 rows, batch 10: last batch has 1 row
y = ((x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5))[:, None]
model = Sequential([Dense(16, activation="relu", input_shape=(6,)), Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss=sparse_ce, metrics=[CategoricalTruePositives(), abs_err, scalar_mse])
utils.set_random_seed(11)
hist = model.fit(x, y, batch_size=10, epochs=2, verbose=0)
scores = model.evaluate(x, y, batch_size=7, verbose=0)
h = hist.history
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, loss=np.array(h["loss"]), ctp=np.array(h["ctp"]),
         abs_err=np.array(h["abs_err"]), scalar_mse=np.array(h["scalar_mse"]), scores=np.array(scores))
