"""The checkpoint side of the `distdl` CLI: train with checkpoints, resume, inspect, evaluate, predict,
and every bad checkpoint as one sentence with exit code 2 and no traceback."""
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from distdl.layers import Dense
from distdl.models import Sequential, load_model
from distdl.saving import checkpoint as ckpt

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "distdl" / "configs" / "digits_mlp.toml")


def distdl(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "distdl.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_line(p):
    lines = [l for l in p.stdout.splitlines() if l.startswith("Test ")]
    assert len(lines) == 1, p.stdout + p.stderr
    return lines[0]


test_line.__test__ = False


def flip_bytes(path, dataset="model/params"):
    """Corrupt a few bytes inside `dataset` without touching the HDF5 structure."""
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset + 16)
        raw = bytearray(fh.read(4))
        fh.seek(offset + 16)
        fh.write(bytes(b ^ 0xFF for b in raw))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 3-epoch run, and a 2-epoch run with checkpoints to continue from."""
    d = tmp_path_factory.mktemp("cli")
    full = distdl("train", CONFIG, "--checkpoint-dir", d / "full", "--epochs", 3, cwd=d)
    assert full.returncode == 0, full.stderr
    part = distdl("train", CONFIG, "--checkpoint-dir", d / "part", "--epochs", 2, cwd=d)
    assert part.returncode == 0, part.stderr
    assert sorted(os.listdir(d / "part")) == ["ckpt-e0001-s000000.h5", "ckpt-e0002-s000000.h5"]
    return d, full


def _copy_part(d, work):
    work.mkdir()
    for name in os.listdir(d / "part"):
        work.joinpath(name).write_bytes((d / "part" / name).read_bytes())
    return work


def _same_final(d, other_dir, full):
    a = load_model(d / "full" / "ckpt-e0003-s000000.h5")
    b = load_model(other_dir / "ckpt-e0003-s000000.h5")
    assert np.array_equal(a.params, b.params)


def test_resume_auto_and_resume_command_match_an_uninterrupted_run(runs, tmp_path):
    d, full = runs
    assert test_line(full) != test_line(distdl("train", CONFIG, "--epochs", 2, cwd=tmp_path))  # numbers move
    work = _copy_part(d, tmp_path / "auto")
    p = distdl("train", CONFIG, "--checkpoint-dir", work, "--resume", "auto", "--epochs", 3, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Resuming from" in p.stdout and "ckpt-e0002-s000000.h5 (epoch 3, step 0)" in p.stdout
    assert test_line(p) == test_line(full)
    _same_final(d, work, full)

    os.remove(work / "ckpt-e0003-s000000.h5")
    p = distdl("resume", work / "ckpt-e0002-s000000.h5", "--epochs", 3, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(d / "part")) == ["ckpt-e0001-s000000.h5", "ckpt-e0002-s000000.h5"]
    assert test_line(p) == test_line(full)
    _same_final(d, work, full)


def test_resume_auto_skips_a_corrupt_newest_checkpoint_with_a_warning(runs, tmp_path):
    d, full = runs
    work = _copy_part(d, tmp_path / "ck")
    flip_bytes(work / "ckpt-e0002-s000000.h5")
    p = distdl("train", CONFIG, "--checkpoint-dir", work, "--resume", "auto", "--epochs", 3, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert re.search(r"warning: skipping checkpoint \S*ckpt-e0002-s000000\.h5: .*fails its checksum", p.stdout)
    assert "ckpt-e0001-s000000.h5 (epoch 2, step 0)" in p.stdout
    assert test_line(p) == test_line(full)  # replaying epoch 2 from epoch 1's checkpoint gives the same run


def test_keep_limits_the_generations_on_disk(tmp_path):
    cfg = tmp_path / "keep.toml"
    cfg.write_text(Path(CONFIG).read_text().replace("[training]", "[checkpoint]\nkeep = 2\n\n[training]"))
    p = distdl("train", cfg, "--checkpoint-dir", tmp_path / "k", "--epochs", 4, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(tmp_path / "k")) == ["ckpt-e0003-s000000.h5", "ckpt-e0004-s000000.h5"]


def test_inspect_evaluate_and_predict(runs, tmp_path):
    d, full = runs
    path = d / "full" / "ckpt-e0003-s000000.h5"
    p = distdl("inspect", path, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"format version: {ckpt.FORMAT_VERSION}" in out and "position: epoch 3, step 0 within it (seed 1)" in out
    assert "world size at save: 1" in out and "checksum: ok" in out
    # digits: 1797 images, 10 % test split; 1617 * 0.9 -> 41 steps of 32 per epoch
    assert "optimizer: Adam after 123 updates" in out
    assert "parameters: 4,810 (4,810 trainable, 0 non-trainable, float32)" in out
    assert re.search(r"dense/kernel\s+\(64, 64\)\s+4,096", out)
    assert re.search(r"dense \(Dense\)\s+4,160 params", out) and re.search(r"dense_1 \(Dense\)\s+650 params", out)

    p = distdl("evaluate", path, "--data", "digits", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Test " + p.stdout.strip().splitlines()[-1] == test_line(full)

    p = distdl("predict", path, "--data", "digits", "--out", tmp_path / "preds.npy", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    preds = np.load(tmp_path / "preds.npy")
    from distdl.datasets import load
    (_, _), (x_test, y_test) = load({"name": "digits"}, base_dir=".")
    want = load_model(path).predict(np.asarray(x_test).reshape(len(x_test), -1), verbose=0)
    assert preds.shape == (len(x_test), 10) and np.array_equal(preds, want)
    acc = float(re.search(r"accuracy: ([0-9.]+)", test_line(full))[1])
    assert abs(np.mean(preds.argmax(1) == y_test) - acc) < 5e-5


def test_predict_into_a_missing_folder_is_one_sentence(runs, tmp_path):
    path = runs[0] / "full" / "ckpt-e0003-s000000.h5"
    p = distdl("predict", path, "--data", "digits", "--out", tmp_path / "nowhere" / "p.npy", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip() == f"error: Cannot write predictions to {tmp_path / 'nowhere' / 'p.npy'} " \
                               f"(No such file or directory)."


def _bad_files(good, tmp_path):
    """(file, expected words) for each bad input of the issue."""
    data = good.read_bytes()
    cases = {}
    cases["not_hdf5.h5"] = (b"this is not an HDF5 file\n" * 40, "is not an HDF5 file")
    cases["truncated.h5"] = (data[: len(data) // 2], "truncated or damaged")
    files = {}
    for name, (blob, words) in cases.items():
        (tmp_path / name).write_bytes(blob)
        files[name] = words
    for name, words, edit in [
        ("flipped.h5", "fails its checksum", lambda p: flip_bytes(p)),
        ("missing.h5", "has no group or dataset 'model/state'", lambda p: _h5_edit(p, lambda f: f.__delitem__("model/state"))),
        ("newer.h5", "format version 99", lambda p: _h5_edit(p, lambda f: f.attrs.__setitem__("format_version", 99))),
    ]:
        (tmp_path / name).write_bytes(data)
        edit(tmp_path / name)
        files[name] = words
    return files


def _h5_edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _assert_friendly(p, name, words):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert name in lines[0] and words in lines[0], lines[0]


@pytest.mark.slow
def test_bad_checkpoints_give_one_sentence_and_exit_2(runs, tmp_path):
    d, _ = runs
    files = _bad_files(d / "part" / "ckpt-e0001-s000000.h5", tmp_path)
    for name, words in files.items():
        _assert_friendly(distdl("evaluate", tmp_path / name, "--data", "digits", cwd=tmp_path), name, words)
    _assert_friendly(distdl("resume", tmp_path / "truncated.h5", cwd=tmp_path), "truncated.h5",
                     files["truncated.h5"])
    _assert_friendly(distdl("train", CONFIG, "--checkpoint-dir", tmp_path / "t", "--resume", tmp_path / "newer.h5",
                            cwd=tmp_path), "newer.h5", files["newer.h5"])
    _assert_friendly(distdl("inspect", tmp_path / "not_hdf5.h5", cwd=tmp_path), "not_hdf5.h5", files["not_hdf5.h5"])
    p = distdl("evaluate", tmp_path / "flipped.h5", "--data", "digits", "--debug", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" in p.stderr and "CheckpointError" in p.stderr


def test_resume_with_another_architecture_names_the_layer_and_shapes(tmp_path):
    other = Sequential([Dense(32, activation="relu", input_shape=(64,)), Dense(10, activation="softmax")])
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    other.save(tmp_path / "other.h5")
    p = distdl("train", CONFIG, "--checkpoint-dir", tmp_path / "o", "--resume", tmp_path / "other.h5",
               "--epochs", 1, cwd=tmp_path)
    _assert_friendly(p, "other.h5", "(64, 64) in the model but (64, 32) in the checkpoint")


def _mpi_distdl(n, *args, cwd):
    from mpirun import mpirun_path
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([mpirun_path(), "-n", str(n), sys.executable, "-m", "distdl.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.mpi
def test_under_mpi_resume_on_three_ranks_and_a_bad_file_is_one_sentence(runs, tmp_path):
    d, full = runs
    work = _copy_part(d, tmp_path / "w")
    p = _mpi_distdl(3, "train", CONFIG, "--checkpoint-dir", work, "--resume", "auto", "--epochs", 3, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert test_line(p) == test_line(full)  # a 1-rank run continued on 3 ranks
    assert ckpt.inspect_checkpoint(work / "ckpt-e0003-s000000.h5")["world_size"] == 3
    a = load_model(d / "full" / "ckpt-e0003-s000000.h5").params
    b = load_model(work / "ckpt-e0003-s000000.h5").params
    assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(a))

    flip_bytes(work / "ckpt-e0001-s000000.h5")
    _assert_friendly(_mpi_distdl(2, "evaluate", work / "ckpt-e0001-s000000.h5", "--data", "digits", cwd=tmp_path),
                     "ckpt-e0001-s000000.h5", "fails its checksum")
