"""The HDF5 checkpoint: exact round trips, atomic writes under SIGKILL, and precise corruption errors."""
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from ckpt_edit import resign

from distdl.errors import CheckpointError, ConfigError
from distdl.saving import checkpoint as ck
from distdl.saving.checkpoint import (CheckpointData, checkpoint_name, checkpoint_paths, clean_temp_files,
                                      inspect_checkpoint, latest_valid_checkpoint, load_checkpoint,
                                      prune_checkpoints, save_checkpoint, verify_checkpoint)


def make_data(dtype="float32", seed=0, epoch=3, step=7) -> CheckpointData:
    """A checkpoint of a small Dense + BatchNorm model with every field filled in."""
    rng = np.random.default_rng(seed)
    variables = [
        {"name": "dense/kernel", "shape": [4, 3], "trainable": True},
        {"name": "dense/bias", "shape": [3], "trainable": True},
        {"name": "bn/gamma", "shape": [3], "trainable": True},
        {"name": "bn/beta", "shape": [3], "trainable": True},
        {"name": "bn/moving_mean", "shape": [3], "trainable": False},
        {"name": "bn/moving_variance", "shape": [3], "trainable": False},
    ]
    n = 12 + 3 + 3 + 3
    philox = np.random.Generator(np.random.Philox(5)).bit_generator.state
    return CheckpointData(
        model_config={"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "units": 3}]}},
        variables=variables,
        params=rng.standard_normal(n).astype(dtype),
        state=rng.standard_normal(6).astype(dtype),
        compile_config={"loss": "mse", "metrics": ["mae"], "loss_weights": None},
        optimizer_config={"class_name": "Adam", "config": {"learning_rate": 0.001, "beta_1": 0.9}},
        optimizer_state={"m": rng.standard_normal(n).astype(dtype), "v": rng.random(n).astype(dtype)},
        optimizer_iterations=123,
        epoch=epoch, step=step, seed=42, world_size=3,
        history={"loss": [0.5, 0.25, 0.125], "val_mae": [1.0, 0.75, float("inf")]},
        rng_state={"numpy": np.random.default_rng(9).bit_generator.state, "philox": philox},
        extra={"early_stopping": {"best": 0.125, "wait": 1}},
    )


def assert_same(a: CheckpointData, b: CheckpointData) -> None:
    for name in ("params", "state"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
    assert a.optimizer_state.keys() == b.optimizer_state.keys()
    for k in a.optimizer_state:
        assert a.optimizer_state[k].dtype == b.optimizer_state[k].dtype
        assert np.array_equal(a.optimizer_state[k], b.optimizer_state[k])
    for name in ("model_config", "variables", "compile_config", "optimizer_config", "optimizer_iterations",
                 "epoch", "step", "seed", "world_size", "history", "extra", "format_version",
                 "distdl_version"):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_exact(tmp_path, dtype):
    data = make_data(dtype)
    path = tmp_path / checkpoint_name(3, 7)
    save_checkpoint(path, data)
    back = load_checkpoint(path)
    assert_same(data, back)
    # RNG states come back usable: the restored generator continues the same stream.
    g = np.random.default_rng()
    g.bit_generator.state = back.rng_state["numpy"]
    assert np.array_equal(g.random(4), np.random.default_rng(9).random(4))
    p = np.random.Generator(np.random.Philox())
    p.bit_generator.state = back.rng_state["philox"]
    assert np.array_equal(p.random(3), np.random.Generator(np.random.Philox(5)).random(3))
    assert verify_checkpoint(path) == (True, "ok")
    assert os.listdir(tmp_path) == [checkpoint_name(3, 7)]  # no temp file left behind


def test_round_trip_with_empty_optional_fields(tmp_path):
    data = CheckpointData(model_config={}, variables=[], params=np.zeros(0, "float32"),
                          state=np.zeros(0, "float32"))
    save_checkpoint(tmp_path / "a.h5", data)
    back = load_checkpoint(tmp_path / "a.h5")
    assert_same(data, back)
    assert back.compile_config is None and back.optimizer_config is None and back.optimizer_state == {}


def test_save_rejects_arrays_that_do_not_fit_the_variables(tmp_path):
    data = make_data()
    data.params = data.params[:-1]
    with pytest.raises(CheckpointError, match=r"params has shape \(20,\) but the variables need \(21,\)"):
        save_checkpoint(tmp_path / "a.h5", data)
    data = make_data()
    data.optimizer_state["m"] = data.optimizer_state["m"][:5]
    with pytest.raises(CheckpointError, match="optimizer slot 'm' has shape"):
        save_checkpoint(tmp_path / "a.h5", data)
    data = make_data()
    data.extra = {"fn": object()}
    with pytest.raises(CheckpointError, match="field extra is not JSON-able"):
        save_checkpoint(tmp_path / "a.h5", data)
    # nothing is written that a load would refuse
    for change, words in [({"epoch": -1}, "training attribute 'epoch' is -1, outside [0, "),
                          ({"history": {"loss": ["x"]}}, "the history is {'loss': ['x']}"),
                          ({"optimizer_state": {"a/b": np.zeros(21, "float32")}}, "slot name 'a/b'")]:
        with pytest.raises(CheckpointError, match=re.escape(words)):
            save_checkpoint(tmp_path / "a.h5", dataclasses.replace(make_data(), **change))
    assert os.listdir(tmp_path) == []


def test_checksum_covers_every_array_and_the_iteration_count():
    d = make_data()
    base = ck.compute_checksum(d.params, d.state, d.optimizer_state, d.optimizer_iterations)
    assert base == ck.compute_checksum(d.params.copy(), d.state, dict(reversed(d.optimizer_state.items())), 123)
    assert base != ck.compute_checksum(d.params, d.state, d.optimizer_state, 124)
    for target in ("params", "state", "m", "v"):
        e = make_data()
        arr = getattr(e, target) if target in ("params", "state") else e.optimizer_state[target]
        arr[1] = np.nextafter(arr[1], np.float32(np.inf))
        assert ck.compute_checksum(e.params, e.state, e.optimizer_state, 123) != base, target


# ---------------------------------------------------------------- atomicity under SIGKILL

WRITER = r"""
import sys, numpy as np
from distdl.saving.checkpoint import CheckpointData, save_checkpoint
path, n = sys.argv[1], int(sys.argv[2])
params = np.empty(n, "float32")
print("ready", flush=True)
i = 0
while True:
    params.fill(i)   # every save has one distinct value throughout, so a mix of two saves shows up
    save_checkpoint(path, CheckpointData(model_config={"i": i},
                    variables=[{"name": "w", "shape": [n], "trainable": True}],
                    params=params, state=np.zeros(0, "float32"), optimizer_iterations=i))
    i += 1
"""


@pytest.mark.slow
def test_sigkill_during_save_never_leaves_a_partial_file(tmp_path):
    n = 50 * 2**20 // 4  # 50 MB of float32 params
    path = tmp_path / checkpoint_name(1, 0)
    rng = np.random.default_rng(1)
    loaded = 0
    for _ in range(8):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)], stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"ready\n"  # imports done: the kill lands within the saves,
        time.sleep(rng.uniform(0.2, 1.2))              # however slow a loaded machine starts Python
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        if not path.exists():
            continue
        data = load_checkpoint(path)  # raises on any partial or mixed file
        i = data.model_config["i"]
        assert data.optimizer_iterations == i and data.params[0] == i and data.params[-1] == i
        loaded += 1
    assert loaded >= 1
    # Whatever temp files the kills left are invisible to resume and cleaned up on request.
    best, skipped = latest_valid_checkpoint(tmp_path)
    assert best == str(path) and skipped == []
    clean_temp_files(tmp_path)
    assert os.listdir(tmp_path) == [path.name]


def test_stray_temp_files_are_ignored_and_cleaned(tmp_path):
    save_checkpoint(tmp_path / checkpoint_name(1, 0), make_data())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stray = tmp_path / f".{checkpoint_name(2, 0)}.tmp-{dead}-abcd1234"
    stray.write_bytes(b"\x89HDF\r\n\x1a\n half written")
    live = tmp_path / f".{checkpoint_name(3, 0)}.tmp-{os.getppid()}-abcd1234"
    live.write_bytes(b"in progress")
    assert checkpoint_paths(tmp_path) == [str(tmp_path / checkpoint_name(1, 0))]
    assert latest_valid_checkpoint(tmp_path) == (str(tmp_path / checkpoint_name(1, 0)), [])
    assert clean_temp_files(tmp_path) == [str(stray)]
    assert live.exists()


# ---------------------------------------------------------------- failed saves keep the old file

def test_failed_fsync_keeps_previous_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    save_checkpoint(path, make_data(seed=1))

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match=r"Could not write checkpoint .*c\.h5.*No space left on device"):
        save_checkpoint(path, make_data(seed=2))
    monkeypatch.undo()
    assert_same(load_checkpoint(path), make_data(seed=1))
    assert os.listdir(tmp_path) == ["c.h5"]


def test_failed_rename_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    save_checkpoint(path, make_data(seed=1))

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ck.os, "replace", refuse)
    with pytest.raises(CheckpointError, match="Permission denied"):
        save_checkpoint(path, make_data(seed=2))
    monkeypatch.undo()
    assert_same(load_checkpoint(path), make_data(seed=1))
    assert os.listdir(tmp_path) == ["c.h5"]


def test_parent_that_is_a_file_is_a_checkpoint_error(tmp_path):
    (tmp_path / "notadir").write_text("x")
    with pytest.raises(CheckpointError, match=r"Could not write checkpoint .*notadir/c\.h5"):
        save_checkpoint(tmp_path / "notadir" / "c.h5", make_data())


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "c.h5"
    save_checkpoint(path, make_data(seed=1))
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(CheckpointError, match="Could not write checkpoint"):
            save_checkpoint(path, make_data(seed=2))
    finally:
        tmp_path.chmod(0o755)
    assert_same(load_checkpoint(path), make_data(seed=1))


# ---------------------------------------------------------------- corruption is named precisely

@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "c.h5"
    save_checkpoint(path, make_data())
    return path


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"'.*nope\.h5' does not exist"):
        load_checkpoint(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path):
    p = tmp_path / "c.h5"
    p.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(CheckpointError, match=r"'.*c\.h5' is not an HDF5 file"):
        load_checkpoint(p)


def test_truncated(saved):
    raw = saved.read_bytes()
    saved.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=r"'.*c\.h5' is truncated or damaged"):
        load_checkpoint(saved)


def test_flipped_bytes_in_params(saved):
    with h5py.File(saved, "r") as f:
        offset = f["model/params"].id.get_offset()
    with open(saved, "r+b") as fh:
        fh.seek(offset + 9)
        byte = fh.read(1)
        fh.seek(offset + 9)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CheckpointError, match=r"'.*c\.h5' fails its checksum: the file was damaged or edited"):
        load_checkpoint(saved)
    ok, reason = verify_checkpoint(saved)
    assert not ok and "damaged or edited" in reason
    assert inspect_checkpoint(saved)["checksum"] == "mismatch"  # reported, not raised


@pytest.mark.parametrize("key", ["model/state", "optimizer/slots", "training/history"])
def test_missing_dataset_is_named(saved, key):
    with h5py.File(saved, "r+") as f:
        del f[key]
    with pytest.raises(CheckpointError, match=rf"'.*c\.h5' has no group or dataset '{key}'"):
        load_checkpoint(saved)


def test_newer_format_version(saved):
    with h5py.File(saved, "r+") as f:
        f.attrs["format_version"] = ck.FORMAT_VERSION + 1
    with pytest.raises(CheckpointError, match=rf"format version {ck.FORMAT_VERSION + 1}, but this distdl "
                                              rf"\(.*\) reads format versions up to {ck.FORMAT_VERSION}"):
        load_checkpoint(saved)


def test_shapes_inconsistent_with_variables(saved):
    with h5py.File(saved, "r+") as f:
        del f["model/state"]
        f.create_dataset("model/state", data=np.zeros(5, "float32"))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        load_checkpoint(saved)
    resign(saved)
    with pytest.raises(CheckpointError, match=r"inconsistent: state has shape \(5,\) but the variables need \(6,\)"):
        load_checkpoint(saved)


def test_hdf5_that_is_not_a_checkpoint(tmp_path):
    p = tmp_path / "model.weights.h5"
    with h5py.File(p, "w") as f:
        f.create_group("layers")
    with pytest.raises(CheckpointError, match="HDF5 file but not a distdl checkpoint"):
        load_checkpoint(p)


# ---------------------------------------------------------------- folders, pruning, inspect

def test_latest_valid_skips_corrupt_newest_and_prune_keeps_k(tmp_path):
    for e, s in [(1, 0), (2, 0), (2, 5), (10, 0)]:
        save_checkpoint(tmp_path / checkpoint_name(e, s), make_data(epoch=e, step=s))
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    names = [os.path.basename(p) for p in checkpoint_paths(tmp_path)]
    assert names == [checkpoint_name(10, 0), checkpoint_name(2, 5), checkpoint_name(2, 0), checkpoint_name(1, 0)]
    newest = tmp_path / checkpoint_name(10, 0)
    newest.write_bytes(newest.read_bytes()[:1000])
    best, skipped = latest_valid_checkpoint(tmp_path)
    assert best == str(tmp_path / checkpoint_name(2, 5))
    assert len(skipped) == 1 and skipped[0][0] == str(newest) and "truncated" in skipped[0][1]
    assert load_checkpoint(best).step == 5
    removed = prune_checkpoints(tmp_path, keep=2)
    assert sorted(os.path.basename(p) for p in removed) == [checkpoint_name(1, 0), checkpoint_name(2, 0)]
    assert sorted(os.listdir(tmp_path)) == sorted([checkpoint_name(10, 0), checkpoint_name(2, 5), "notes.txt"])
    with pytest.raises(ConfigError, match="keep must be an integer >= 0"):
        prune_checkpoints(tmp_path, keep=-1)


def test_empty_or_missing_folder(tmp_path):
    assert latest_valid_checkpoint(tmp_path / "none") == (None, [])
    assert checkpoint_paths(tmp_path) == []


def test_inspect_summary(saved):
    info = inspect_checkpoint(saved)
    assert info["checksum"] == "ok" and info["format_version"] == ck.FORMAT_VERSION
    assert (info["epoch"], info["step"], info["world_size"], info["seed"]) == (3, 7, 3, 42)
    assert info["optimizer"] == "Adam" and info["optimizer_iterations"] == 123
    assert info["variables"][0] == {"name": "dense/kernel", "shape": [4, 3], "trainable": True, "params": 12}
    assert (info["trainable_params"], info["non_trainable_params"], info["total_params"]) == (21, 6, 27)
    assert info["optimizer_slots"] == ["m", "v"]


def test_a_version_2_backup_still_resumes_exactly(tmp_path):
    """tests/fixtures/ckpt-v2-e0000-s000003.h5: ckpt_v1_fixture.run(dir, crash_at=4) under the code
    of e4d7517, the last to write format version 2; resumed here with another seed, it must give the
    uninterrupted run (only the file's position, seed, totals and arrays can make it match)."""
    from ckpt_v1_fixture import run
    v2 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ckpt-v2-e0000-s000003.h5")
    assert load_checkpoint(v2).format_version == 2
    ref, ref_hist = run(tmp_path / "ref")
    got, hist = run(tmp_path / "resumed", seed=5, resume_from=v2)
    assert float(np.max(np.abs(got.params - ref.params)) / np.max(np.abs(ref.params))) <= 1e-6
    assert hist.epoch == [0, 1] and sorted(hist.history) == sorted(ref_hist.history)
    for k, v in ref_hist.history.items():
        np.testing.assert_allclose(hist.history[k], v, rtol=1e-6, err_msg=k)
