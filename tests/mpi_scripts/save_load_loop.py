"""Save and load in a loop on every rank: what each rank read back, and the errors each raised.

usage: python save_load_loop.py FOLDER ROUNDS
Writes FOLDER/result_rank<r>.json: {"rounds": [per round, max |loaded - saved| for save/load_model,
save_weights/load_weights (.h5 and .weights.h5)], "errors": {case: [class, sentence] or None}}.
Every round first gives the model new weights (the round's number), so a rank that read the
previous round's file, or none, is seen.
"""
import json
import os
import sys

import numpy as np

from distdl import layers
from distdl.comm import world
from distdl.models import Sequential, load_model

folder, rounds = sys.argv[1], int(sys.argv[2])
comm = world()
model = Sequential([layers.Dense(4, activation="relu", input_shape=(3,)), layers.Dense(2)])
model.compile(optimizer="adam", loss="mse")
x, y = np.linspace(0, 1, 24).reshape(8, 3), np.linspace(0, 1, 16).reshape(8, 2)
out = {"rounds": [], "errors": {}}
model.summary()  # before any fit: printed by rank 0 alone


def errors_of(case, fn):
    try:
        fn()
        out["errors"][case] = None
    except Exception as e:
        out["errors"][case] = [type(e).__name__, str(e)]


for r in range(rounds):
    if r == rounds // 2:  # from here on the model holds the fit's MPI communicator
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.params[...] = r + np.arange(model.params.size) / 1000.0
    expected = model.params.copy()
    model.save(os.path.join(folder, "m.h5"))
    a = load_model(os.path.join(folder, "m.h5"))
    model.save_weights(os.path.join(folder, "w.h5"))
    model.save_weights(os.path.join(folder, "k.weights.h5"))
    model.params[...] = -1.0
    model.load_weights(os.path.join(folder, "w.h5"))
    b = model.params.copy()
    model.params[...] = -1.0
    model.load_weights(os.path.join(folder, "k.weights.h5"))
    c = model.params.copy()
    out["rounds"].append([float(np.abs(v - expected).max()) for v in (a.params, b, c)])

# a save that fails on rank 0 fails on every rank, with rank 0's sentence
errors_of("save_missing_folder", lambda: model.save(os.path.join(folder, "no", "such", "m.h5")))
errors_of("save_no_overwrite", lambda: model.save(os.path.join(folder, "m.h5"), overwrite=False))
# a read that fails on one rank fails on all
missing = os.path.join(folder, "m.h5" if comm.rank == 0 else "absent.h5")
errors_of("load_missing_on_one_rank", lambda: model.load_weights(missing))
errors_of("load_model_missing_on_one_rank", lambda: load_model(missing))
# ranks that read different contents are refused
model.params[...] = 7.0
model.save_weights(os.path.join(folder, "seven.h5"))
errors_of("load_different", lambda: model.load_weights(
    os.path.join(folder, "seven.h5" if comm.rank == 0 else "w.h5")))
with open(os.path.join(folder, f"result_rank{comm.rank}.json"), "w") as f:
    json.dump(out, f)
