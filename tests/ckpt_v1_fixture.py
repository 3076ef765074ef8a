"""The run behind tests/fixtures/ckpt-v1-e0000-s000003.h5: a checkpoint in format version 1.

Version 1 stored the epoch's running totals as one positional list (the step's raw float64
buffer); version 2 names them. The fixture was written by the code of commit bb9fb26 (the last
to write version 1), so that the test can check that such a file still resumes exactly:

    PYTHONPATH=/path/to/bb9fb26-tree python tests/ckpt_v1_fixture.py tests/fixtures

Two outputs (softmax + accuracy, linear + mae) give per-output loss sums and metric states;
37 rows in batches of 8 give 5 steps per epoch; a backup every 3 steps and a crash after step 4
leave one mid-epoch backup (epoch 0, step 3) whose totals the resumed epoch's logs need.
Only the public API is used, so the old and the new code run the same function.
"""
import os
import shutil
import sys

import numpy as np

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ckpt-v1-e0000-s000003.h5")


class Crash(Exception):
    """Raised after `crash_at` steps, as a killed job would stop."""


def run(backup_dir, crash_at=0, seed=11, resume_from=None):
    """Fit the two-output model for 2 epochs with BackupAndRestore; returns (model, history)."""
    from distdl import utils
    from distdl.callbacks import BackupAndRestore, LambdaCallback
    from distdl.layers import Dense, Dropout, Input
    from distdl.models import Model
    utils.set_random_seed(3)
    inp = Input(shape=(4,))
    h = Dropout(0.3)(Dense(6, activation="relu")(inp))
    model = Model(inp, [Dense(3, activation="softmax", name="cls")(h), Dense(1, name="reg")(h)])
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"],
                  metrics={"cls": ["accuracy"], "reg": ["mae"]})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 4)).astype("float32")
    y_cls = ((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)).astype(np.int64)
    y_reg = (x[:, 2] - x[:, 3]).astype("float32")[:, None]
    utils.set_random_seed(seed)
    steps = []

    def maybe_crash(batch, logs):
        steps.append(batch)
        if len(steps) == crash_at:
            raise Crash()
    cbs = [BackupAndRestore(backup_dir, save_freq=3, resume_from=resume_from),
           LambdaCallback(on_train_batch_end=maybe_crash)]
    hist = model.fit(x, [y_cls, y_reg], batch_size=8, epochs=2, verbose=0, callbacks=cbs)
    return model, hist


if __name__ == "__main__":
    out = sys.argv[1]
    backup = os.path.join(out, "v1-backup")
    try:
        run(backup, crash_at=4)
    except Crash:
        pass
    shutil.copy(os.path.join(backup, "ckpt-e0000-s000003.h5"), os.path.join(out, os.path.basename(FIXTURE)))
    shutil.rmtree(backup)
