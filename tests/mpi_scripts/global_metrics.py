"""Evaluate, then fit, a 3-class softmax model with AUC (ROC and PR), F1Score, FBetaScore,
MeanIoU, PrecisionAtRecall, R2Score and the cross-entropy metric; save the results per rank.

Every metric's state is a vector of sums that the ranks add, so 1, 2 and 3 ranks must report
the same numbers. 101 rows with batch 7 leave ranks with unequal (and, on 3 ranks, some empty)
shares of the last batch; float64 keeps every score's side of every threshold the same.

usage: python global_metrics.py OUT_PREFIX
"""
import sys

import numpy as np

from distdl import backend, metrics, utils
from distdl.comm import world
from distdl.layers import Dense
from distdl.models import Sequential

out = sys.argv[1]
comm = world()
backend.set_floatx("float64")
utils.set_random_seed(5)  # the same weights on every rank: evaluate runs before any fit
rng = np.random.default_rng(0)
x = rng.standard_normal((101, 6))
labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5)
y = np.eye(3)[labels]
w = rng.uniform(0.2, 2.0, 101)
model = Sequential([Dense(16, activation="relu", input_shape=(6,)), Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=[
    metrics.AUC(name="auc"), metrics.AUC(curve="PR", num_thresholds=50, name="pr_auc"),
    metrics.F1Score(average="macro", name="f1"), metrics.FBetaScore("weighted", 2.0, 0.4, name="fbeta"),
    metrics.MeanIoU(3, sparse_y_true=False, sparse_y_pred=False, name="miou"),
    metrics.PrecisionAtRecall(0.5, name="p_at_r"), metrics.R2Score(name="r2"),
    metrics.CategoricalCrossentropy(name="cce")])
plain = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
weighted = model.evaluate(x, y, batch_size=7, verbose=0, sample_weight=w, return_dict=True)
hist = model.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False).history
names = sorted(plain)
np.savez(f"{out}_rank{comm.rank}.npz", names=np.array(names), plain=np.array([plain[k] for k in names]),
         weighted=np.array([weighted[k] for k in names]), fit=np.array([hist[k][0] for k in names]))
