"""The `distdl` command: training from configs, errors for people, `info` under MPI."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mpirun import mpirun_path

ROOT = Path(__file__).parent.parent


def distdl(*args, mpi=0, timeout=300):
    cmd = [sys.executable, "-m", "distdl.cli", *map(str, args)]
    if mpi:
        cmd = [mpirun_path(), "-n", str(mpi)] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.mpi
def test_default_config_trains_to_095_on_one_and_two_ranks():
    one = distdl("train", "digits_mlp")
    assert one.returncode == 0, one.stderr
    acc = float(re.search(r"Test loss: [\d.]+ - accuracy: ([\d.]+)", one.stdout).group(1))
    assert acc >= 0.95
    two = distdl("train", "digits_mlp", mpi=2)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("Test loss") == 1  # only rank 0 prints
    acc2 = float(re.search(r"accuracy: ([\d.]+)\n", two.stdout.split("Test loss")[1]).group(1))
    assert acc2 == pytest.approx(acc, abs=0.003)


def test_breast_cancer_config_reaches_093():
    p = distdl("train", "breast_cancer_mlp")
    assert p.returncode == 0, p.stderr
    assert float(re.search(r"Test loss: [\d.]+ - accuracy: ([\d.]+)", p.stdout).group(1)) >= 0.93


BAD_CONFIGS = {
    "unknown_key": ('[data]\nname = "digits"\n[model]\nlayers = [{type = "Dense", units = 10}]\n'
                    '[compile]\nloss = "mse"\n[training]\nepochz = 3\n', "unknown key [training].epochz"),
    "unknown_layer": ('[data]\nname = "digits"\nflatten = true\n[model]\nlayers = [{type = "Dence", units = 10}]\n'
                      '[compile]\nloss = "mse"\n', "layers[0] (Dence)"),
    "bad_type": ('[data]\nname = "digits"\n[model]\nlayers = [{type = "Dense", units = 10}]\n'
                 '[compile]\nloss = "mse"\n[training]\nepochs = "ten"\n', "[training].epochs must be int"),
    "unknown_loss": ('[data]\nname = "digits"\nflatten = true\n[model]\nlayers = [{type = "Dense", units = 10}]\n'
                     '[compile]\nloss = "msq"\n', "Unknown loss 'msq'"),
    "no_model": ('[data]\nname = "digits"\n[compile]\nloss = "mse"\n', "missing [model] section"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_sentence_and_exit_2(tmp_path, case):
    text, words = BAD_CONFIGS[case]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    p = distdl("train", cfg)
    assert p.returncode == 2
    assert words in p.stderr and str(cfg) in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    debug = distdl("train", cfg, "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_missing_config_file():
    p = distdl("train", "no/such.toml")
    assert p.returncode == 2 and "no/such.toml does not exist" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.mpi
def test_bad_config_under_mpi_prints_once_and_exits_2(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD_CONFIGS["unknown_key"][0])
    p = distdl("train", cfg, mpi=2)
    assert p.returncode == 2
    assert p.stderr.count("unknown key [training].epochz") == 1


@pytest.mark.mpi
def test_info_serial_and_on_two_ranks():
    p = distdl("info")
    assert p.returncode == 0 and "world size: 1" in p.stdout
    q = distdl("info", mpi=2)
    assert q.returncode == 0, q.stderr
    assert "world size: 2" in q.stdout and "MPICH" in q.stdout
    assert "rank 0: host" in q.stdout and "rank 1: host" in q.stdout and "BLAS threads" in q.stdout
