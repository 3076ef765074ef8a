"""distdlrun without running MPI: argv per implementation, host parsing, bad input."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from distdl.errors import ConfigError
from distdl_launch import cli, hosts as hostmod
from distdl_launch.hosts import Host
from distdl_launch.mpirun import (PYRUN, RANKWRAP, MpirunOptions, blas_threads, build_argv, find_mpirun,
                                  format_hostfile, impl_from_version, needs_hostfile, python_command, rank_env)
from distdl_launch.supervise import describe_exit, shrink_hosts

PY = "/opt/py/bin/python"
WRAP = [PY, RANKWRAP, "--", "python", "train.py"]
ENV = {"OMP_NUM_THREADS": "2", "DISTDL_STALL_TIMEOUT": "300"}
TWO = (Host("node1", 4), Host("node2", 4))


def _opts(**kw) -> MpirunOptions:
    base = dict(np=8, command=("python", "train.py"), env=ENV, python=PY)
    base.update(kw)
    return MpirunOptions(**base)


# ---- argv per implementation, from the same options ----------------------------------------

def test_argv_mpich_hosts_and_env():
    assert build_argv("mpich", "mpirun", _opts(hosts=TWO)) == [
        "mpirun", "-n", "8", "-hosts", "node1:4,node2:4",
        "-genv", "OMP_NUM_THREADS", "2", "-genv", "DISTDL_STALL_TIMEOUT", "300", *WRAP]


def test_argv_openmpi_hosts_env_oversubscribe():
    assert build_argv("openmpi", "mpirun", _opts(hosts=TWO, oversubscribe=True)) == [
        "mpirun", "-n", "8", "-H", "node1:4,node2:4", "--oversubscribe",
        "-x", "OMP_NUM_THREADS=2", "-x", "DISTDL_STALL_TIMEOUT=300", *WRAP]


def test_argv_intel_hosts_env():
    assert build_argv("intel", "mpirun", _opts(hosts=TWO)) == [
        "mpirun", "-n", "8", "-hosts", "node1,node2", "-ppn", "4",
        "-genv", "OMP_NUM_THREADS", "2", "-genv", "DISTDL_STALL_TIMEOUT", "300", *WRAP]


def test_argv_hostfiles_per_implementation():
    got = {impl: build_argv(impl, "mpiexec", _opts(np=2, hosts=TWO, hostfile="/t/h", env={}))
           for impl in ("mpich", "openmpi", "intel")}
    assert got["mpich"] == ["mpiexec", "-n", "2", "-f", "/t/h", *WRAP]
    assert got["openmpi"] == ["mpiexec", "-n", "2", "--hostfile", "/t/h", *WRAP]
    assert got["intel"] == ["mpiexec", "-n", "2", "-machinefile", "/t/h", *WRAP]


def test_argv_single_node_oversubscribe_only_matters_for_openmpi():
    opts = _opts(np=3, env={}, oversubscribe=True)
    assert build_argv("mpich", "m", opts) == ["m", "-n", "3", *WRAP]
    assert build_argv("intel", "m", opts) == ["m", "-n", "3", *WRAP]
    assert build_argv("openmpi", "m", opts) == ["m", "-n", "3", "--oversubscribe", *WRAP]


def test_hostfile_translation_and_when_needed():
    hosts = [Host("a", 2), Host("b", 1)]
    assert format_hostfile(hosts, "openmpi") == "a slots=2\nb slots=1\n"
    assert format_hostfile(hosts, "mpich") == "a:2\nb:1\n"
    assert needs_hostfile("intel", hosts, from_file=False)  # -hosts cannot say 2 and 1
    assert not needs_hostfile("intel", list(TWO), from_file=False)
    assert not needs_hostfile("mpich", hosts, from_file=False)
    assert needs_hostfile("openmpi", hosts, from_file=True)
    assert not needs_hostfile("mpich", [], from_file=False)


def test_bad_np_and_impl_raise():
    with pytest.raises(ConfigError, match="-np must be at least 1, got 0"):
        build_argv("mpich", "m", _opts(np=0))
    with pytest.raises(ConfigError, match="valid names are: mpich, openmpi, intel"):
        build_argv("lam", "m", _opts())


@pytest.mark.parametrize("text,impl", [
    ("HYDRA build details:\n    Version: 4.2.0", "mpich"),
    ("mpirun (Open MPI) 4.1.5\n\nReport bugs to http://www.open-mpi.org/community/help/", "openmpi"),
    ("Intel(R) MPI Library for Linux* OS, Version 2021.10", "intel"),
])
def test_impl_from_version(text, impl):
    assert impl_from_version(text) == impl


def test_impl_from_version_unknown():
    with pytest.raises(ConfigError, match="'mystery mpi 1.0'"):
        impl_from_version("mystery mpi 1.0\n")


# ---- hosts --------------------------------------------------------------------------------

def test_parse_host_spec():
    assert hostmod.parse_host_spec("node1:4,node2") == [Host("node1", 4), Host("node2", 1)]
    for bad, culprit in [("node1:0", "'0'"), ("a:2,,b", "Empty entry"), ("bad host:2", "'bad host'"),
                         ("-x:2", "'-x'"), ("n;rm:2", "'n;rm'"), ("n:two", "'two'")]:
        with pytest.raises(ConfigError, match=culprit):
            hostmod.parse_host_spec(bad)


def test_read_hostfile_all_syntaxes(tmp_path):
    f = tmp_path / "hosts.txt"
    f.write_text("# cluster\nnode1:4\nnode2 slots=2  # fast one\n\nnode3\n")
    assert hostmod.read_hostfile(str(f)) == [Host("node1", 4), Host("node2", 2), Host("node3", 1)]
    f.write_text("node1:4\nnode2 cpus=2\n")
    with pytest.raises(ConfigError, match="line 2"):
        hostmod.read_hostfile(str(f))
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="lists no hosts"):
        hostmod.read_hostfile(str(f))
    with pytest.raises(ConfigError, match="Cannot read hostfile"):
        hostmod.read_hostfile(str(tmp_path / "missing"))


def test_slurm_allocation():
    assert hostmod.expand_nodelist("gpu[01-03,07],login1") == ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]
    assert hostmod.parse_tasks_per_node("4(x2),2") == [4, 4, 2]
    env = {"SLURM_JOB_NODELIST": "c[8-10]", "SLURM_TASKS_PER_NODE": "2(x3)"}
    assert hostmod.slurm_hosts(env) == [Host("c8", 2), Host("c9", 2), Host("c10", 2)]
    assert hostmod.slurm_hosts({}) is None
    with pytest.raises(ConfigError, match="SLURM_TASKS_PER_NODE"):
        hostmod.parse_tasks_per_node("4(y2)")


def test_ranks_per_host_and_blas_threads():
    assert hostmod.ranks_per_host([Host("a", 4), Host("b", 4)], 6) == [4, 2]
    assert hostmod.ranks_per_host([Host("a", 1), Host("b", 1)], 5) == [3, 2]  # oversubscribed
    assert blas_threads(16, 4) == 4
    assert blas_threads(16, 3) == 5
    assert blas_threads(2, 3) == 1


def test_rank_env_keeps_what_the_user_set():
    env = rank_env({"MKL_NUM_THREADS": "7"}, threads=3, stall_timeout=300.0, extra={"A": "b"})
    assert env == {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "PYTHONUNBUFFERED": "1",
                   "DISTDL_STALL_TIMEOUT": "300", "A": "b"}


def test_python_commands_go_through_pyrun():
    assert python_command(["python3", "t.py", "-n", "2"]) == ["python3", PYRUN, "t.py", "-n", "2"]
    assert python_command(["/v/bin/python3.11", "-m", "pkg"]) == ["/v/bin/python3.11", PYRUN, "-m", "pkg"]
    assert python_command(["python", "-c", "print(1)"]) == ["python", "-c", "print(1)"]
    assert python_command(["hostname"]) == ["hostname"]


def test_pyrun_dash_m_imports_from_the_current_folder_like_python(tmp_path):
    # `python -m pkg.mod` puts the current folder first on sys.path; pyrun.py must too, and
    # must not leave its own folder there (its cli.py / hosts.py would shadow the user's).
    import subprocess
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text("import hosts\nprint(hosts.WHERE)\n")
    (tmp_path / "hosts.py").write_text("WHERE = 'user'\n")
    done = subprocess.run([sys.executable, PYRUN, "-m", "pkg.job"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "user"


def test_shrink_hosts_after_a_lost_host():
    hosts = [Host("a", 4), Host("b", 4), Host("c", 2)]
    assert shrink_hosts(hosts, set(), 10, None) == (hosts, 10)
    assert shrink_hosts(hosts, {"b"}, 10, None) is None
    assert shrink_hosts(hosts, {"b"}, 10, 6) == ([Host("a", 4), Host("c", 2)], 6)
    assert shrink_hosts(hosts, {"a"}, 10, 7) is None


def test_describe_exit():
    assert describe_exit(-9) == "was killed by signal 9 (SIGKILL)"
    assert describe_exit(3) == "exited with code 3"


# ---- finding mpirun ------------------------------------------------------------------------

def _fake_mpirun(folder: Path, banner: str, name: str = "mpirun") -> Path:
    """A stand-in mpirun that prints `banner` for --version and records any other call."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{banner}'; exit 0; fi\n"
                   f"touch '{folder}/started'\n")
    exe.chmod(0o755)
    return exe


def test_find_mpirun_prefers_the_one_next_to_python(tmp_path):
    venv = _fake_mpirun(tmp_path / "venv" / "bin", "HYDRA build details:")
    system = _fake_mpirun(tmp_path / "usr" / "bin", "mpirun (Open MPI) 4.1", name="mpiexec")
    assert find_mpirun(python=str(venv.parent / "python"), path=str(system.parent)) == str(venv)
    assert find_mpirun(python=str(tmp_path / "python"), path=str(system.parent)) == str(system)
    with pytest.raises(ConfigError, match="pip install mpich"):
        find_mpirun(python=str(tmp_path / "python"), path=str(tmp_path / "empty"))


# ---- the CLI: dry run and bad input --------------------------------------------------------

@pytest.fixture
def config(tmp_path) -> Path:
    cfg = tmp_path / "run.toml"
    cfg.write_text("# config\n")
    return cfg


def test_dry_run_config_shortcut_mpich(tmp_path, config, capsys, monkeypatch):
    mpirun = _fake_mpirun(tmp_path / "bin", "HYDRA build details:")
    monkeypatch.setattr(hostmod, "local_cores", lambda environ=None: 8)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    code = cli.main(["-np", "4", "--mpirun", str(mpirun), "--stall-timeout", "300", "--dry-run",
                     "--checkpoint-dir", str(tmp_path / "ck"), str(config)])
    assert code == 0
    assert capsys.readouterr().out.split() == [
        str(mpirun), "-n", "4", "-genv", "OMP_NUM_THREADS", "2", "-genv", "OPENBLAS_NUM_THREADS", "2",
        "-genv", "MKL_NUM_THREADS", "2", "-genv", "DISTDL_STALL_TIMEOUT", "300",
        sys.executable, RANKWRAP, "--", sys.executable, "-m", "distdl.cli", "train", str(config),
        "--checkpoint-dir", str(tmp_path / "ck")]
    assert not (tmp_path / "bin" / "started").exists() and not (tmp_path / "ck").exists()


def test_dry_run_openmpi_command_oversubscribed(tmp_path, capsys, monkeypatch):
    mpirun = _fake_mpirun(tmp_path / "bin", "mpirun (Open MPI) 4.1.5")
    monkeypatch.setattr(hostmod, "local_cores", lambda environ=None: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    code = cli.main(["-np", "3", "--mpirun", str(mpirun), "-x", "SEED=4", "--dry-run", "--", "hostname"])
    assert code == 0
    assert capsys.readouterr().out.split() == [
        str(mpirun), "-n", "3", "--oversubscribe", "-x", "SEED=4", sys.executable, RANKWRAP, "--", "hostname"]


@pytest.mark.parametrize("args,culprit", [
    (["-np", "0", "CFG"], "-np must be at least 1, got 0"),
    (["CFG"], "-np is required"),
    (["-np", "2", "-H", "node1:x", "CFG"], "'x'"),
    (["-np", "2", "--hostfile", "NOFILE", "CFG"], "Cannot read hostfile"),
    (["-np", "2", "-H", "a:1", "--hostfile", "NOFILE", "CFG"], "not both"),
    (["-np", "2", "missing.toml"], "Config file 'missing.toml' does not exist"),
    (["-np", "2"], "Nothing to run"),
    (["-np", "2", "--", "no-such-program-xyz"], "'no-such-program-xyz' was not found"),
    (["-np", "2", "--checkpoint-dir", "RO/sub", "CFG"], "is not writable"),
    (["-np", "2", "--checkpoint-dir", "CFG", "CFG"], "is not a directory"),
    (["-np", "2", "--checkpoint-dir", "CFG/sub", "CFG"], "cannot be created"),
    (["-np", "2", "-x", "1BAD=2", "CFG"], "'1BAD=2'"),
    (["-np", "2", "--min-np", "3", "CFG"], "--min-np 3 is larger than -np 2"),
    (["-np", "2", "--bogus", "CFG"], "No such option"),
])
def test_bad_input_is_one_sentence_exit_2_nothing_started(tmp_path, config, capsys, args, culprit):
    if "RO/sub" in args and os.geteuid() == 0:
        pytest.skip("root may write anywhere: a read-only folder cannot be tested")
    mpirun = _fake_mpirun(tmp_path / "bin", "HYDRA build details:")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    subs = {"CFG": str(config), "NOFILE": str(tmp_path / "nofile"), "RO": str(readonly)}
    argv = ["--mpirun", str(mpirun)] + [subs.get(a.split("/")[0], a.split("/")[0]) +
                                        ("/" + a.split("/", 1)[1] if "/" in a else "") for a in args]
    try:
        assert cli.main(argv) == 2
    finally:
        readonly.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("distdlrun: error: ") and culprit in err
    assert not (tmp_path / "bin" / "started").exists()


def test_missing_mpirun_says_how_to_install(tmp_path, config, capsys):
    assert cli.main(["-np", "2", "--mpirun", str(tmp_path / "nope"), str(config)]) == 2
    assert "is not an executable file" in capsys.readouterr().err
