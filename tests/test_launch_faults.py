"""distdlrun's faults with real mpirun: distdlrun itself killed (the job must follow it), a rank
killed (its shared memory must not stay in /dev/shm), a rank dead of SIGBUS (explained), and a
--restarts relaunch into a checkpoint folder that can no longer be written (refused)."""
from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
from mpirun import assert_nothing_left, distdlrun, finish, job_processes

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(not (Path(sys.executable).parent / "mpirun").exists(),
                                 reason="needs the mpich wheel's mpirun next to python")]

# Two ranks that allreduce every 20 ms for a long time; each writes its pid once MPI is up.
LONG = r"""
import os, sys, time
import numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
out = sys.argv[1]
with open(f"{out}/pid{comm.rank}.tmp", "w") as fh:
    fh.write(str(os.getpid()))
os.replace(f"{out}/pid{comm.rank}.tmp", f"{out}/pid{comm.rank}")
total = np.zeros(1)
for _ in range(100000):
    comm.Allreduce(np.ones(1), total)
    time.sleep(0.02)
"""


def _start_long_job(tmp_path: Path, token: str):
    (tmp_path / "long.py").write_text(LONG)
    proc = distdlrun("-np", "2", "--", sys.executable, str(tmp_path / "long.py"), str(tmp_path), token=token)
    end = time.monotonic() + 30
    while not all((tmp_path / f"pid{r}").exists() for r in (0, 1)):
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"the job did not start: {proc.communicate()}")
        time.sleep(0.05)
    return proc, [int((tmp_path / f"pid{r}").read_text()) for r in (0, 1)]


def _shm_files_of(pid: int) -> set[str]:
    """Names of the files in /dev/shm that process `pid` has mapped and that still exist."""
    names = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(None, 5)[5] if len(line.split(None, 5)) == 6 else ""
        if path.startswith("/dev/shm/") and not path.endswith("(deleted)"):
            names.add(path[len("/dev/shm/"):])
    return names


def _kill_all(token: str) -> None:
    for pid in job_processes(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sigkill_of_distdlrun_ends_every_process_of_its_job_and_cleans_dev_shm(tmp_path):
    token = uuid.uuid4().hex
    proc, rank_pids = _start_long_job(tmp_path, token)
    try:
        segments = _shm_files_of(rank_pids[0])
        assert any(n.startswith("mpich_shm_") for n in segments), segments  # MPICH's channel, in /dev/shm
        job = job_processes(token)
        # distdlrun, its guard, mpirun, hydra_pmi_proxy, 2 rank wrappers and 2 ranks
        assert len(job) >= 8 and set(rank_pids) <= set(job), job
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        while job_processes(token) and time.monotonic() - killed < 15:
            time.sleep(0.05)
        took = time.monotonic() - killed
        assert not job_processes(token), f"still running {took:.1f} s after: {job_processes(token)}"
    finally:
        _kill_all(token)
        proc.communicate()
    assert took < 10, f"took {took:.1f} s"
    assert not segments & set(os.listdir("/dev/shm")), "the job's segments stayed in /dev/shm"


def test_rank_killed_mid_run_leaves_nothing_in_dev_shm(tmp_path):
    token = uuid.uuid4().hex
    proc, rank_pids = _start_long_job(tmp_path, token)
    try:
        segments = {n for n in _shm_files_of(rank_pids[1]) if n.startswith("mpich_")}
        assert segments, "MPICH keeps no segment in /dev/shm: nothing to test"
        os.kill(rank_pids[1], signal.SIGKILL)
        code, out, err = finish(proc, timeout=20)
    finally:
        _kill_all(token)
    assert code == 128 + signal.SIGKILL and "was killed by signal 9 (SIGKILL)" in err
    assert not segments & set(os.listdir("/dev/shm")), "the job's segments stayed in /dev/shm"
    assert_nothing_left(token)


def test_rank_dead_of_sigbus_is_reported_with_the_dev_shm_hint(tmp_path):
    script = tmp_path / "bus.py"
    script.write_text("import os, resource, signal\nfrom mpi4py import MPI\n"
                      "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
                      "MPI.COMM_WORLD.Barrier()\n"
                      "if MPI.COMM_WORLD.rank == 1:\n    os.kill(os.getpid(), signal.SIGBUS)\n"
                      "MPI.COMM_WORLD.Barrier()\n")
    token = uuid.uuid4().hex
    code, out, err = finish(distdlrun("-np", "2", "--", sys.executable, str(script), token=token), timeout=30)
    assert code == 128 + signal.SIGBUS, err
    lines = err.splitlines()
    at = next(i for i, line in enumerate(lines) if "was killed by signal 7 (SIGBUS); stopping the job." in line)
    assert lines[at].startswith("distdlrun: rank 1 on ")
    assert lines[at + 1].startswith("distdlrun: SIGBUS in an MPI rank usually means /dev/shm ran out of room "
                                    "(now ")
    assert "`docker run --shm-size=1g`" in lines[at + 1] and "-x DISTDL_ALLREDUCE=mpi" in lines[at + 1]
    assert_nothing_left(token)


def test_signal_other_than_sigbus_gets_no_dev_shm_hint(tmp_path):
    script = tmp_path / "segv.py"
    script.write_text("import os, resource, signal\nfrom mpi4py import MPI\n"
                      "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
                      "if MPI.COMM_WORLD.rank == 1:\n    os.kill(os.getpid(), signal.SIGABRT)\n"
                      "MPI.COMM_WORLD.Barrier()\n")
    code, out, err = finish(distdlrun("-np", "2", "--", sys.executable, str(script)), timeout=30)
    assert code == 128 + signal.SIGABRT and "(SIGABRT)" in err and "/dev/shm" not in err


CONFIG = """
[data]
name = "digits"
flatten = true

[model]
layers = [{ type = "Dense", units = 64, activation = "relu" }, { type = "Dense", units = 10, activation = "softmax" }]

[compile]
optimizer = "adam"
loss = "sparse_categorical_crossentropy"

[training]
epochs = 200
batch_size = 8
seed = 1
verbose = 0

[checkpoint]
save_freq = 25
"""


def test_restarts_do_not_relaunch_into_a_checkpoint_folder_that_cannot_be_written(tmp_path):
    config, folder, token = tmp_path / "run.toml", tmp_path / "ck", uuid.uuid4().hex
    config.write_text(CONFIG)
    proc = distdlrun("-np", "2", "--restarts", "3", "--checkpoint-dir", str(folder), str(config), token=token)
    try:
        end = time.monotonic() + 60
        while not list(folder.glob("ckpt-*.h5")):
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()
            time.sleep(0.02)
        shutil.move(folder, tmp_path / "moved")  # the folder is gone and a file has its name
        folder.write_text("not a folder")
        victim = job_processes(token, b"PMI_RANK=1\0", b"-m\0distdl.cli\0train\0", without=b"rankwrap.py")
        assert len(victim) == 1, victim
        os.kill(victim[0], signal.SIGKILL)
        killed = time.monotonic()
        code, out, err = finish(proc, timeout=30)
        took = time.monotonic() - killed
    finally:
        _kill_all(token)
    assert code != 0
    assert f"distdlrun: not restarting: checkpoint folder {folder} exists but is not a folder." in err
    assert "restart 1 of 3" not in err and "job failed; exit code" in err
    assert took < 10, f"took {took:.1f} s"
    assert_nothing_left(token)
