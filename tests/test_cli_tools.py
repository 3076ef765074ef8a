"""The `distdl` tools around training: `inspect` (exit codes, --json), `plot` (a PNG of the curves,
matplotlib optional), `configs` (the shipped examples), `--version` on both commands."""
import csv
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import distdl
from distdl.cli.plot import figure_pixels

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd, module="distdl.cli", env=None):
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    e.update(env or {})
    for key in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        e.pop(key, None)
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=120)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Three epochs of the shipped digits MLP with a checkpoint per epoch and a CSVLogger file."""
    d = tmp_path_factory.mktemp("tools")
    cfg = d / "mlp.toml"
    cfg.write_text(distdl.configs.text("digits_mlp"))
    p = cli("train", cfg, "--epochs", 3, "--checkpoint-dir", d / "ck", cwd=d)
    assert p.returncode == 0, p.stderr
    return d


def _flip(path: Path, dataset="model/params") -> None:
    with h5py.File(path, "r") as f:
        offset = f[dataset].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset + 16)
        raw = fh.read(4)
        fh.seek(offset + 16)
        fh.write(bytes(b ^ 0xFF for b in raw))


# ---- inspect ---------------------------------------------------------------------------------

def test_inspect_exit_0_when_verified_2_when_not_and_json_for_scripts(run, tmp_path):
    good = run / "ck" / "ckpt-e0003-s000000.h5"
    text = cli("inspect", good, cwd=tmp_path)
    assert text.returncode == 0 and "checksum: ok" in text.stdout and text.stderr == ""
    as_json = cli("inspect", good, "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    info = json.loads(as_json.stdout)
    assert info["checksum"] == "ok" and info["epoch"] == 3 and info["step"] == 0 and info["world_size"] == 1
    assert info["total_params"] == 64 * 64 + 64 + 64 * 10 + 10
    assert [layer["class_name"] for layer in info["layers"]] == ["Dense", "Dense"]
    assert info["history_metrics"] == ["accuracy", "loss", "val_accuracy", "val_loss"]

    bad = tmp_path / "bad.h5"
    bad.write_bytes(good.read_bytes())
    _flip(bad)
    for extra in ((), ("--json",)):
        p = cli("inspect", bad, *extra, cwd=tmp_path)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert p.stderr.strip().splitlines() == [
            f"error: Checkpoint {bad} fails its checksum: its contents were changed or damaged after it was written."]
    assert "checksum: mismatch" in p.stdout or json.loads(p.stdout)["checksum"] == "mismatch"
    assert json.loads(p.stdout)["epoch"] == 3  # everything readable is still printed

    missing = cli("inspect", tmp_path / "nope.h5", "--json", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == "" and "nope.h5" in missing.stderr


# ---- plot ------------------------------------------------------------------------------------

def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_from_a_csvlogger_file_and_a_checkpoint_folder(run, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread
    history = tmp_path / "history.csv"
    with open(history, "w", newline="") as fh:  # what CSVLogger writes, a learning rate column too
        w = csv.writer(fh)
        w.writerow(["epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"])
        for e in range(8):
            w.writerow([e, 0.5 + e / 20, 0.01, 2.0 / (e + 1), 0.45 + e / 20, 2.2 / (e + 1)])
    p = cli("plot", history, "-o", tmp_path / "csv.png", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == (f"Wrote {tmp_path / 'csv.png'} (1200x300 px): loss, accuracy, learning_rate "
                                f"over 8 epoch(s).")
    assert png_size(tmp_path / "csv.png") == figure_pixels(3) == (1200, 300)
    pixels = imread(tmp_path / "csv.png")[..., :3]
    assert pixels.shape == (300, 1200, 3)
    ink = (pixels < 0.9).any(axis=2)
    assert 0.01 < ink.mean() < 0.5  # axes, labels and curves, on a white page
    blue = (np.abs(pixels - np.array([0x1F, 0x77, 0xB4]) / 255).max(axis=2) < 0.1)  # train: C0
    orange = (np.abs(pixels - np.array([0xFF, 0x7F, 0x0E]) / 255).max(axis=2) < 0.1)  # validation: C1
    # the train curve in all three panels, the validation one in the first two only
    thirds = np.array_split(np.arange(1200), 3)
    assert [int(blue[:, t].sum() > 100) for t in thirds] == [1, 1, 1]
    assert [int(orange[:, t].sum() > 100) for t in thirds] == [1, 1, 0]

    p = cli("plot", run / "ck", "-o", tmp_path / "ck.png", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "loss, accuracy over 3 epoch(s)" in p.stdout and png_size(tmp_path / "ck.png") == (800, 300)


def test_plot_bad_input_is_one_sentence(run, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello\n")
    for source, words in ((tmp_path / "empty", "holds no checkpoint"), (tmp_path / "nope.csv", "does not exist"),
                          (tmp_path / "notes.txt", "has no 'epoch' column")):
        p = cli("plot", source, "-o", tmp_path / "x.png", cwd=tmp_path)
        assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "x.png").exists()


def test_plot_without_matplotlib_says_how_to_get_it(run, tmp_path):
    blocker = tmp_path / "blocked"
    (blocker / "matplotlib").mkdir(parents=True)
    (blocker / "matplotlib" / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    p = cli("plot", run / "ck", "-o", tmp_path / "x.png", cwd=tmp_path,
            env={"PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == ("error: distdl plot needs matplotlib, which is not installed: "
                                "pip install 'distdl[plot]' (or pip install matplotlib).")


def test_plot_reads_nan_and_repeated_epochs_from_a_resumed_csv(tmp_path):
    from distdl.cli.plot import read_history
    path = tmp_path / "h.csv"
    path.write_text("epoch,loss,val_loss\r\n0,1.0,NA\r\n1,0.8,0.9\r\n1,0.7,0.85\r\n2,0.5,0.6\r\n")
    epochs, series, source = read_history(str(path))
    assert epochs == [1, 2, 3] and series["loss"] == [1.0, 0.7, 0.5] and source == str(path)
    assert math.isnan(series["val_loss"][0]) and series["val_loss"][1:] == [0.85, 0.6]


# ---- configs and versions --------------------------------------------------------------------

def test_configs_lists_and_shows_the_shipped_files(tmp_path):
    listed = cli("configs", cwd=tmp_path)
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == ["breast_cancer_mlp", "digits_cnn", "digits_lstm", "digits_mlp", "train.sbatch"]
    shown = cli("configs", "show", "digits_mlp", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout == (ROOT / "distdl" / "configs" / "digits_mlp.toml").read_text()
    sbatch = cli("configs", "show", "train.sbatch", cwd=tmp_path)
    assert sbatch.stdout.startswith("#!/bin/bash\n") and "distdlrun" in sbatch.stdout
    wrong = cli("configs", "show", "digits_cn", cwd=tmp_path)
    assert wrong.returncode == 2 and "Did you mean 'digits_cnn'?" in wrong.stderr


def test_version_on_both_commands_is_the_package_version(tmp_path):
    from importlib.metadata import version
    assert distdl.__version__ == version("distdl") == distdl.version()
    assert cli("--version", cwd=tmp_path).stdout == f"distdl {distdl.__version__}\n"
    assert cli("--version", cwd=tmp_path, module="distdl_launch.cli").stdout == f"distdlrun {distdl.__version__}\n"
