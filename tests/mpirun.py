"""Start real `mpirun -n N` and `distdlrun` jobs from tests (MPICH from the venv's mpich wheel)."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent

# conftest.py sets this before each test: only tests marked `mpi` may start ranks, so that
# `pytest -m "not mpi"` never launches MPI (True outside pytest)
MPI_ALLOWED = True


def _require_mpi_marker() -> None:
    if not MPI_ALLOWED:
        pytest.fail("this test starts MPI ranks: mark it @pytest.mark.mpi", pytrace=False)


def mpirun_path() -> str:
    _require_mpi_marker()
    cand = Path(sys.executable).parent / "mpirun"
    return str(cand) if cand.exists() else "mpirun"


def run_mpi(n, script, *args, timeout=120, env=None):
    """Run tests/mpi_scripts/SCRIPT on n ranks; returns the CompletedProcess."""
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
             PYTHONPATH=str(HERE.parent))
    e.update(env or {})
    argv = [mpirun_path(), "-n", str(n), sys.executable, str(HERE / "mpi_scripts" / script), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=e)


def run_serial(script, *args, timeout=120):
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(HERE.parent))
    for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        e.pop(k, None)
    return subprocess.run([sys.executable, str(HERE / "mpi_scripts" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=e)


def run_ranks(script, out, *args, ranks=(1, 2, 3), env=None) -> dict[int, list[dict]]:
    """Run `SCRIPT OUT/n<n> ARGS` on each of `ranks` and load what each rank saved to
    OUT/n<n>_rank<r>.npz: {n: [rank 0's arrays, rank 1's, ...]}. One rank is a plain process
    without MPI, unless `env` is given: then it is `mpirun -n 1` too. Every run must exit 0."""
    Path(out).mkdir(parents=True, exist_ok=True)
    runs = {}
    for n in ranks:
        prefix = Path(out) / f"n{n}"
        if n == 1 and env is None:
            p = run_serial(script, prefix, *args)
        else:
            p = run_mpi(n, script, prefix, *args, env=env)
        assert p.returncode == 0, f"{script} on {n} ranks ({env}):\n{p.stdout}{p.stderr}"
        runs[n] = [dict(np.load(f"{prefix}_rank{r}.npz")) for r in range(n)]
    return runs


# ----------------------------------------------------------------- distdlrun jobs
# Each job's processes inherit DISTDL_TEST_TOKEN=<token>, so a test can find (and kill) all of
# them: launcher, mpirun, proxy, wrappers and ranks.

def distdlrun(*args: str, token: str | None = None) -> subprocess.Popen:
    """Start `distdlrun ARGS` from the repo root in its own session, tagged with `token`."""
    _require_mpi_marker()
    env = {**os.environ, "DISTDL_TEST_TOKEN": token or uuid.uuid4().hex}
    return subprocess.Popen([sys.executable, "-m", "distdl_launch.cli", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 40.0) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); fails the test (after killing the launcher's group) on timeout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"distdlrun did not finish in {timeout} s:\n{out}\n{err}")
    return proc.returncode, out, err


def job_processes(token: str, *needles: bytes, without: bytes | None = None) -> list[int]:
    """Live processes that inherited our token (launcher, mpirun, proxy, wrappers, ranks), whose
    environ and command line together contain every one of `needles` and not `without`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                env = (entry / "environ").read_bytes()
                if f"DISTDL_TEST_TOKEN={token}".encode() not in env:
                    continue
                text = env + b"\0" + (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if all(n in text for n in needles) and not (without and without in text):
                found.append(int(entry.name))
    return found


def assert_nothing_left(token: str) -> None:
    """Fail (after killing them) if processes of the job are still alive 3 s from now."""
    end = time.monotonic() + 3.0
    while job_processes(token) and time.monotonic() < end:
        time.sleep(0.1)
    left = job_processes(token)
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the job still running: {left}"
