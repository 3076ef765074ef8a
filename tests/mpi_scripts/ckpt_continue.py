"""Load a saved model in a fresh process and train it on.

usage: python ckpt_continue.py MODEL.h5 DATA.npz OUT.npz SEED
DATA.npz holds x0[, x1] and y; writes params, state, optimizer slots and iterations to OUT.npz.
"""
import sys

import numpy as np

from distdl import utils
from distdl.models import load_model

path, data, out, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = load_model(path)
with np.load(data) as z:
    xs = [z[k] for k in sorted(z.files) if k.startswith("x")]
    y = z["y"]
utils.set_random_seed(seed)
model.fit(xs if len(xs) > 1 else xs[0], y, batch_size=7, epochs=2, verbose=0)
slots = {f"slot_{k}": v for k, v in model.optimizer.get_state().items()}
np.savez(out, params=model.params, state=model.state, iterations=np.array(model.optimizer.iterations), **slots)
