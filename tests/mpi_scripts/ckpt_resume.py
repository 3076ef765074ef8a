"""Train a small Dropout + BatchNormalization model with BackupAndRestore; optionally crash mid-run.

usage: python ckpt_resume.py OUT BACKUP_DIR SAVE_FREQ CRASH_AT SEED [MODELCKPT_DIR]
CRASH_AT > 0: after that many steps, every rank leaves with os._exit(1) (after
BackupAndRestore had its turn), as a killed job would; 0: run to the end and
write params / state / history / digest per rank to OUT_rank<r>.npz.
SEED: the training seed (data order, dropout) a fresh run would use.
MODELCKPT_DIR: also run a ModelCheckpoint writing there (only rank 0 may write).
"""
import hashlib
import json
import os
import sys

import numpy as np

from distdl import utils
from distdl.callbacks import BackupAndRestore, Callback, ModelCheckpoint
from distdl.comm import world
from distdl.layers import BatchNormalization, Dense, Dropout
from distdl.models import Sequential

out, backup_dir, save_freq, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5])
mc_dir = sys.argv[6] if len(sys.argv) > 6 else None
comm = world()
writes = []
if os.environ.get("CKPT_LOG_WRITES"):  # record every file this rank writes (only rank 0 may)
    from distdl.saving import checkpoint as _ck
    from distdl.saving import keras_format as _kf
    _real = _ck.atomic_h5_write

    def _logged(path, write, what, **options):
        writes.append(os.fspath(path))
        _real(path, write, what, **options)
    _ck.atomic_h5_write = _kf.atomic_h5_write = _logged


class Crash(Callback):
    """Die like a killed job after `at` steps of this fit (all ranks, once rank 0 has saved)."""

    def __init__(self, at):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            comm.barrier()
            os._exit(1)


utils.set_random_seed(3 + 7 * comm.rank)  # initial weights differ per rank and per run: restore must win
rng = np.random.default_rng(0)
x = rng.standard_normal((53, 5)).astype("float32")  # 53 rows: 47 train (batch 8 -> 6 steps, last 7 rows)
y = ((x[:, 0] - x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.4)).astype(np.int64)
model = Sequential([Dense(12, activation="relu", input_shape=(5,)), BatchNormalization(), Dropout(0.4),
                    Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
utils.set_random_seed(seed + comm.rank)  # resumed runs must use the saved seed
cbs = [BackupAndRestore(backup_dir, save_freq=save_freq, keep=2)]
if mc_dir:
    cbs.append(ModelCheckpoint(os.path.join(mc_dir, "m-{epoch:02d}.h5"), monitor="loss", save_freq="epoch"))
if crash_at:
    cbs.append(Crash(crash_at))
hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_split=0.1, callbacks=cbs)
np.savez(f"{out}_rank{comm.rank}.npz", params=model.params, state=model.state,
         history=np.array(json.dumps(hist.history)), epochs=np.array(hist.epoch),
         writes=np.array(json.dumps(writes)),
         digest=np.frombuffer(hashlib.sha256(model.params.tobytes()).digest(), dtype=np.uint8))
