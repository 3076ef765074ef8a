"""Ranks given different arguments or data: every case must be refused on every rank alike,
and the ranks must stay in step for the next case (nothing hangs).

usage: python disagree.py OUT_FOLDER [--uncaught CASE]
Writes OUT_FOLDER/rank<r>.json: {case: [error class, sentence] or None}. With --uncaught CASE,
runs only that case and lets its error end the script (the library's path in a user's script).
"""
import json
import os
import sys

import numpy as np

from distdl import layers
from distdl.comm import world
from distdl.models import Sequential

folder = sys.argv[1]
comm = world()
r = comm.rank
rng = np.random.default_rng(0)
x, y = rng.standard_normal((32, 3)), rng.standard_normal((32, 1))


def model(compiled=True):
    m = Sequential([layers.Dense(1, input_shape=(3,))])
    if compiled:
        m.compile(optimizer="sgd", loss="mse")
    return m


bad_x = x.copy()
bad_x[7, 1] = np.nan
CASES = {
    "fit_rows": lambda: model().fit(x if r == 0 else x[:8], y if r == 0 else y[:8], verbose=0),
    "fit_epochs": lambda: model().fit(x, y, epochs=1 if r == 0 else 2, verbose=0),
    "fit_batch_size": lambda: model().fit(x, y, batch_size=8 if r == 0 else 4, verbose=0),
    "fit_nan_on_last_rank": lambda: model().fit(bad_x if r == comm.size - 1 else x, y, verbose=0),
    "fit_not_compiled_on_rank_1": lambda: model(compiled=r != 1).fit(x, y, verbose=0),
    "evaluate_rows": lambda: model().evaluate(x[:32 - r], y[:32 - r], verbose=0),
    "predict_batch_size": lambda: model().predict(x, batch_size=4 + r, verbose=0),
    "predict_features": lambda: model().predict(x if r == 0 else np.zeros((32, 3 + r)), verbose=0),
    "agreeing": lambda: model().fit(x, y, epochs=2, batch_size=8, verbose=0),
}

if "--uncaught" in sys.argv:
    CASES[sys.argv[sys.argv.index("--uncaught") + 1]]()
    sys.exit(0)
found = {}
for name, case in CASES.items():
    try:
        case()
        found[name] = None
    except Exception as e:
        found[name] = [type(e).__name__, str(e)]
with open(os.path.join(folder, f"rank{r}.json"), "w") as f:
    json.dump(found, f)
