"""Exact resume with BackupAndRestore: interrupted mid-epoch, restarted on 1, 2 or 3 ranks.

Each crashed run dies with os._exit(1) after 10 steps (epoch 2, step 4 of 6), having saved
a backup every 4 steps (the newest at epoch 2, step 2), so the resumed run also replays
two steps. Model: Dense -> BatchNormalization -> Dropout -> Dense, 47 training rows in
batches of 8 (the last has 7 rows): no rank count divides the batches evenly.
"""
import json
import os

import numpy as np
import pytest
from mpirun import run_mpi, run_serial

from distdl.saving import checkpoint as ckpt

SCRIPT = "ckpt_resume.py"


def _run(n, *args, env=None):
    return run_serial(SCRIPT, *args) if n == 1 else run_mpi(n, SCRIPT, *args, env=env)


def _load(prefix, rank):
    z = np.load(f"{prefix}_rank{rank}.npz")
    return {"params": z["params"], "state": z["state"], "history": json.loads(str(z["history"])),
            "epochs": z["epochs"].tolist(), "writes": json.loads(str(z["writes"])), "digest": z["digest"]}


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    p = _run(1, d / "ref", d / "backup", 4, 0, 11)
    assert p.returncode == 0, p.stderr
    assert not ckpt.checkpoint_paths(d / "backup")  # delete_checkpoint=True cleans up after a full run
    return _load(d / "ref", 0)


@pytest.mark.mpi
@pytest.mark.parametrize("crash_ranks,resume_ranks", [(1, 2), (2, 3), (3, 1), (2, 2)])
def test_interrupted_run_resumes_exactly_on_another_rank_count(tmp_path, reference, crash_ranks, resume_ranks):
    backup = tmp_path / "backup"
    p = _run(crash_ranks, tmp_path / "crashed", backup, 4, 10, 11)
    assert p.returncode != 0
    assert not list(tmp_path.glob("crashed_rank*.npz"))  # it really died before the end
    names = [os.path.basename(q) for q in ckpt.checkpoint_paths(backup)]
    assert names == ["ckpt-e0001-s000002.h5", "ckpt-e0000-s000004.h5"]  # keep=2, mid-epoch positions
    info = ckpt.inspect_checkpoint(backup / names[0])
    assert (info["epoch"], info["step"], info["world_size"]) == (1, 2, crash_ranks)

    # another seed for the resumed process: the checkpoint's seed must win
    p = _run(resume_ranks, tmp_path / "resumed", backup, 4, 0, 999)
    assert p.returncode == 0, p.stderr
    assert "Resuming from" in p.stdout and "(epoch 2, step 2)" in p.stdout
    assert p.stdout.count("Resuming from") == 1  # rank 0 speaks alone
    for r in range(resume_ranks):
        got = _load(tmp_path / "resumed", r)
        assert _rel(got["params"], reference["params"]) <= 1e-6
        np.testing.assert_allclose(got["state"], reference["state"], rtol=1e-6, atol=1e-7)
        assert got["epochs"] == reference["epochs"] == [0, 1, 2]
        assert sorted(got["history"]) == sorted(reference["history"]) == ["accuracy", "loss", "val_accuracy",
                                                                           "val_loss"]
        for k, v in reference["history"].items():
            np.testing.assert_allclose(got["history"][k], v, rtol=1e-6, err_msg=k)
        assert bytes(got["digest"]) == bytes(_load(tmp_path / "resumed", 0)["digest"])  # ranks agree bitwise


def test_resuming_with_a_different_seed_but_no_backup_diverges(tmp_path, reference):
    """Control: the comparison above can fail. Without a backup, seed 999 gives another run."""
    p = _run(1, tmp_path / "fresh", tmp_path / "backup", 4, 0, 999)
    assert p.returncode == 0, p.stderr
    assert _rel(_load(tmp_path / "fresh", 0)["params"], reference["params"]) > 1e-3


@pytest.mark.mpi
def test_only_rank_zero_writes_checkpoints_under_mpi(tmp_path):
    mc = tmp_path / "mc"
    mc.mkdir()
    p = run_mpi(3, SCRIPT, tmp_path / "w", tmp_path / "backup", 5, 0, 11, mc, env={"CKPT_LOG_WRITES": "1"})
    assert p.returncode == 0, p.stderr
    writes = [_load(tmp_path / "w", r)["writes"] for r in range(3)]
    assert writes[1] == [] and writes[2] == []
    names = [os.path.basename(w) for w in writes[0]]
    # 18 steps: backups after steps 5, 10, 15; ModelCheckpoint after each of 3 epochs
    assert names == ["ckpt-e0000-s000005.h5", "m-01.h5", "ckpt-e0001-s000004.h5", "m-02.h5",
                     "ckpt-e0002-s000003.h5", "m-03.h5"]
    assert sorted(os.listdir(mc)) == ["m-01.h5", "m-02.h5", "m-03.h5"]
    assert ckpt.inspect_checkpoint(mc / "m-03.h5")["world_size"] == 3


class _Boom(Exception):
    pass


def _inprocess_run(backup, crash_at=0, seed=11, steps_per_update=1, save_freq=3):
    """In one process: the ckpt_resume.py model, optionally stopped by an exception after `crash_at` steps."""
    from distdl import utils
    from distdl.callbacks import BackupAndRestore, LambdaCallback
    from distdl.layers import Dense, Dropout
    from distdl.models import Sequential
    utils.set_random_seed(seed + 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((53, 5)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    model = Sequential([Dense(12, activation="relu", input_shape=(5,)), Dropout(0.4), Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    utils.set_random_seed(seed)
    seen = []

    def maybe_crash(batch, logs):
        seen.append(batch)
        if len(seen) == crash_at:
            raise _Boom()
    cbs = [BackupAndRestore(backup, save_freq=save_freq), LambdaCallback(on_train_batch_end=maybe_crash)]
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=cbs, steps_per_update=steps_per_update)
    return model, hist


def _crash_resume_and_compare(tmp_path, crash_at, backup_name, **kw):
    """Reference run; a run that crashes after `crash_at` steps leaving only `backup_name`; a
    resumed run (another seed, so only the backup can make it match) whose weights and history
    match the reference. Returns (reference history, resumed history)."""
    ref, ref_hist = _inprocess_run(tmp_path / "ref", **kw)
    with pytest.raises(_Boom):
        _inprocess_run(tmp_path / "b", crash_at=crash_at, **kw)
    assert [os.path.basename(p) for p in ckpt.checkpoint_paths(tmp_path / "b")] == [backup_name]
    got, hist = _inprocess_run(tmp_path / "b", seed=5, **kw)
    assert _rel(got.params, ref.params) <= 1e-6
    for k, v in ref_hist.history.items():
        np.testing.assert_allclose(hist.history[k], v, rtol=1e-6, err_msg=k)
    return ref_hist, hist


def test_backups_fall_on_update_boundaries_with_gradient_accumulation(tmp_path):
    """steps_per_update=2 and save_freq=3: a backup after step 3 would lose half a gradient sum."""
    _crash_resume_and_compare(tmp_path, 5, "ckpt-e0000-s000004.h5", steps_per_update=2)


def test_resume_from_a_backup_after_an_epochs_last_step_keeps_that_epochs_logs(tmp_path):
    """7 steps per epoch, save_freq=7: the backup holds (epoch 0, step 7); the resumed run must
    still end epoch 0 with its training loss and accuracy, not with empty logs."""
    ref_hist, hist = _crash_resume_and_compare(tmp_path, 8, "ckpt-e0000-s000007.h5", save_freq=7)
    assert sorted(hist.history) == sorted(ref_hist.history)
