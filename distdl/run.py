"""Running a TOML config end to end: data, model, fit, and the final test score."""
from __future__ import annotations

import numpy as np

from . import utils
from .comm import world
from .config import build_model, load_config, load_data


def train_from_config(path, epochs=None, checkpoint_dir=None, resume=None):
    """Train as the config says; prints the test loss and metrics (rank 0). Returns the model."""
    cfg = load_config(path)
    (x_train, y_train), (x_test, y_test) = load_data(cfg)
    t = cfg.training
    utils.set_random_seed(t.get("seed", 0))
    model = build_model(cfg, np.shape(x_train)[1:])
    comm = world()
    callbacks = []
    if checkpoint_dir or cfg.checkpoint.get("dir") or resume:
        from .saving import checkpoint_callback
        callbacks.append(checkpoint_callback(checkpoint_dir or cfg.checkpoint.get("dir"), cfg.checkpoint, resume))
    model.fit(x_train, y_train, batch_size=t.get("batch_size", 32), epochs=epochs or t.get("epochs", 1),
              verbose=t.get("verbose", 2), validation_split=t.get("validation_split", 0.0),
              shuffle=t.get("shuffle", True), steps_per_update=t.get("steps_per_update", 1),
              callbacks=callbacks, comm=comm)
    if len(x_test):
        scores = model.evaluate(x_test, y_test, batch_size=t.get("batch_size", 32), verbose=0,
                                return_dict=True, comm=comm)
        if comm.rank == 0:
            print("Test " + " - ".join(f"{k}: {v:.4f}" for k, v in scores.items()), flush=True)
    return model
