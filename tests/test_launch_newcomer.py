"""distdlrun for a newcomer: `python` is the interpreter distdlrun runs under (a venv works without
being activated), `distdl train` options after the config, a warning when ranks outnumber cores,
--log-dir with one file per rank, --version."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from distdl_launch import cli
from distdl_launch import hosts as hostmod
from distdl_launch.cli import core_warning, make_plan, rank_command
from distdl_launch.hosts import Host
from distdl_launch.mpirun import local_command

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
needs_mpirun = pytest.mark.skipif(not (BIN / "mpirun").exists(), reason="needs the mpich wheel's mpirun")


# ---- which program a rank runs ----------------------------------------------------------------

def test_python_is_the_interpreter_distdlrun_runs_under(tmp_path):
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for name in ("python", "python3", here):
        assert local_command([name, "train.py"]) == ([sys.executable, "train.py"], name)
    other = "python3.99"
    assert local_command([other, "t.py"]) == ([other, "t.py"], None)  # another version: left to PATH
    assert local_command(["/usr/bin/python3", "t.py"]) == (["/usr/bin/python3", "t.py"], None)  # a path: as given
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").touch()
    tool = fake / "sometool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert local_command(["sometool", "-x"], python=str(fake / "python")) == ([str(tool), "-x"], "sometool")
    assert local_command(["hostname"], python=str(fake / "python")) == (["hostname"], None)


def test_dry_run_says_which_python_runs(capsys, monkeypatch):
    monkeypatch.setattr(hostmod, "local_cores", lambda environ=None: 8)
    assert cli.main(["-np", "2", "--dry-run", "--", "python", "-c", "print(1)"]) == 0
    out, err = capsys.readouterr()
    assert shlex.split(out)[-3:] == [sys.executable, "-c", "print(1)"]
    assert err == f"distdlrun: note: 'python' runs as {sys.executable}, the Python distdlrun runs under.\n"


@pytest.mark.mpi
@needs_mpirun
def test_python_on_two_ranks_is_the_venvs_whatever_path_says(tmp_path):
    """A PATH whose `python` is another program, and no venv on it: the ranks still run the venv's."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    for name in ("python", "python3"):
        (decoy / name).write_text("#!/bin/sh\necho WRONG PYTHON\nexit 3\n")
        (decoy / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{decoy}{os.pathsep}/usr/bin{os.pathsep}/bin"
    code = "import sys, distdl; from distdl.comm import world; print('rank', world().rank, sys.executable)"
    p = subprocess.run([str(BIN / "distdlrun"), "-np", "2", "--", "python", "-c", code], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "WRONG PYTHON" not in p.stdout
    assert sorted(p.stdout.splitlines()) == [f"[0] rank 0 {sys.executable}", f"[1] rank 1 {sys.executable}"]


# ---- distdl train options after the config ------------------------------------------------------

def test_train_options_after_the_config_reach_every_rank(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("# a config\n")
    plan = make_plan(2, None, None, (str(cfg), "--epochs", "2", "--checkpoint-dir", str(tmp_path / "ck"),
                                     "--resume", "auto"), None, None, (), False)
    assert rank_command(plan, restart=False)[3:] == ["train", str(cfg), "--epochs", "2", "--checkpoint-dir",
                                                     str(tmp_path / "ck"), "--resume", "auto"]
    shipped = make_plan(2, None, None, ("digits_mlp", "--epochs", "1"), None, None, (), False)
    assert shipped.config == "digits_mlp" and rank_command(shipped, restart=False)[-3:] == ["digits_mlp", "--epochs", "1"]


@pytest.mark.parametrize("args,words", [
    (["CFG", "--epoch", "2"], "No such option '--epoch'. Did you mean '--epochs'?"),
    (["CFG", "--epochs", "two"], "'two' is not a valid integer"),
    (["--checkpoint-dir", "A", "CFG", "--checkpoint-dir", "B"], "--checkpoint-dir is given twice"),
    (["digits_mpl"], "It is not a shipped config either. Did you mean 'digits_mlp'?"),
])
def test_bad_train_options_are_one_sentence(tmp_path, capsys, args, words):
    cfg = tmp_path / "c.toml"
    cfg.write_text("# a config\n")
    subs = {"CFG": str(cfg), "A": str(tmp_path / "a"), "B": str(tmp_path / "b")}
    assert cli.main(["-np", "2", *[subs.get(a, a) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("distdlrun: error: ") and words in err, err


def test_only_toml_files_and_shipped_names_are_configs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits_mlp").write_text("not a config\n")  # a local file of a shipped config's name
    assert cli.main(["-np", "2", "digits_mlp"]) == 2
    assert "Command 'digits_mlp' was not found or is not executable" in capsys.readouterr().err


@pytest.mark.mpi
@needs_mpirun
def test_config_mode_trains_with_the_options_given_after_it(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "distdl_launch.cli", "-np", "2", "digits_mlp", "--epochs", "2",
                        "--checkpoint-dir", str(tmp_path / "ck")], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(tmp_path / "ck")) == ["ckpt-e0001-s000000.h5", "ckpt-e0002-s000000.h5"]
    assert p.stdout.count("[0] Test loss: ") == 1 and "Epoch 2/2" in p.stdout and "Epoch 3/" not in p.stdout


# ---- more ranks than cores ---------------------------------------------------------------------

def test_oversubscription_is_warned_with_the_thread_split():
    assert core_warning(2, [], cores=2, environ={}) is None
    assert core_warning(8, [], cores=2, environ={}) == (
        "warning: 8 ranks on this host's 2 cores: oversubscribed, so ranks take turns on the cores and every "
        "step waits for the slowest; expect many times slower steps than with one rank per core "
        "(1 BLAS thread per rank).")
    assert "(BLAS threads as you set them (OMP_NUM_THREADS=4))" in core_warning(3, [], 2, {"OMP_NUM_THREADS": "4"})
    remote = [Host("node1", 2), Host("node2", 2)]
    assert core_warning(4, remote, cores=2, environ={}) is None
    assert core_warning(6, remote, cores=2, environ={}).startswith("warning: 6 ranks for the 4 slots of the hosts")


def test_dry_run_warns_when_ranks_outnumber_cores(capsys, monkeypatch):
    monkeypatch.setattr(hostmod, "local_cores", lambda environ=None: 2)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["-np", "8", "--dry-run", "--", "hostname"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("distdlrun: warning: 8 ranks on this host's 2 cores") and "1 BLAS thread per rank" in err
    assert cli.main(["-np", "2", "--dry-run", "--", "hostname"]) == 0
    assert capsys.readouterr().err == ""


# ---- --log-dir -----------------------------------------------------------------------------------

@pytest.mark.mpi
@needs_mpirun
def test_log_dir_has_one_file_per_rank_and_the_terminal_keeps_its_prefix(tmp_path):
    code = ("import sys; from distdl.comm import world; r = world().rank; print('out', r, flush=True); "
            "print('err', r, file=sys.stderr, flush=True); print('\\x1b[1mbold\\x1b[0m', r, flush=True)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "distdl_launch.cli", "-np", "2", "--log-dir", str(tmp_path / "logs"),
                        "--", "python", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(tmp_path / "logs")) == ["rank.0.log", "rank.1.log"]
    for r in (0, 1):
        lines = sorted((tmp_path / "logs" / f"rank.{r}.log").read_text().splitlines())
        assert lines == sorted([f"out {r}", f"err {r}", f"bold {r}"])  # no prefix, no colour codes
        assert f"[{r}] out {r}" in p.stdout.splitlines() and f"[{r}] err {r}" in p.stderr.splitlines()


def test_log_dir_that_cannot_be_made_is_refused_before_start(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert cli.main(["-np", "2", "--log-dir", str(tmp_path / "file" / "logs"), "--", "hostname"]) == 2
    assert "--log-dir" in capsys.readouterr().err
