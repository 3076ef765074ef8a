"""distdlrun with real mpirun (MPICH from the wheel): runs, dead ranks, restarts, SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from mpirun import assert_nothing_left, distdlrun, finish

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(not (Path(sys.executable).parent / "mpirun").exists(),
                                 reason="needs the mpich wheel's mpirun next to python")]

# A tiny data-parallel least-squares fit: each rank takes every size-th row, one Allreduce per
# step (which also carries a stop flag so that all ranks stop after the same step), rank 0
# checkpoints every 3 steps and on stop; it resumes from the checkpoint when there is one.
JOB = r'''
import os, signal, sys, time
import numpy as np
from mpi4py import MPI
out, steps, mode, at, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
stop = 0
def on_signal(signum, frame):
    global stop
    stop = signum
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
with open(f"{out}/pid{rank}", "w") as fh:
    fh.write(str(os.getpid()))
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 8))
y = X @ rng.normal(size=8) + 0.1 * rng.normal(size=64)
w, step = np.linspace(-1.0, 1.0, 8), 0
ckpt = f"{out}/ckpt.npz"
if os.path.exists(ckpt):
    with np.load(ckpt) as z:
        w, step = z["w"].copy(), int(z["step"])
    print(f"resumed at step {step}", flush=True)
while step < steps:
    Xr, yr = X[rank::size], y[rank::size]
    mine = np.append(Xr.T @ (Xr @ w - yr) / len(X), float(stop))
    total = np.empty_like(mine)
    comm.Allreduce(mine, total)
    w -= 0.05 * total[:-1]
    step += 1
    if rank == 0:
        if step % 3 == 0 or total[-1] > 0:
            np.savez(f"{out}/tmp.npz", w=w, step=step)
            os.replace(f"{out}/tmp.npz", ckpt)
        with open(f"{out}/progress", "w") as fh:
            fh.write(str(step))
    if total[-1] > 0:
        print(f"stopping after step {step}", flush=True)
        comm.Barrier()  # leave together: mpirun kills the others once one rank exits non-zero
        sys.exit(128 + int(total[-1]))
    if rank == 1 and step == at and mode == "die" and not os.path.exists(f"{out}/died"):
        open(f"{out}/died", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    if rank == 1 and step == at and mode == "raise":
        raise ValueError(f"boom at step {step}")
    time.sleep(delay)
if rank == 0:
    np.save(f"{out}/final.npy", w)
print(f"rank {rank} done", flush=True)
'''


def _job(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "job.py").write_text(JOB)
    return folder


def _run_job(folder: Path, steps: int, mode: str = "none", at: int = 0, delay: float = 0.0,
             *extra: str) -> tuple[int, str, str]:
    proc = distdlrun("-np", "2", *extra, "--", sys.executable, str(folder / "job.py"), str(folder),
                     str(steps), mode, str(at), str(delay))
    return finish(proc)


def _wait_for_step(folder: Path, step: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            if int((folder / "progress").read_text() or 0) >= step:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the job did not reach step {step}: {proc.communicate()}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> np.ndarray:
    """Weights of an uninterrupted 12-step run."""
    folder = _job(tmp_path_factory.mktemp("ref"), "job")
    code, out, err = _run_job(folder, 12)
    assert code == 0, err
    return np.load(folder / "final.npy")


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def test_plain_command_three_ranks_oversubscribed(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import os\nfrom mpi4py import MPI\nimport numpy as np\n"
                      "c = MPI.COMM_WORLD\nt = np.zeros(1)\nc.Allreduce(np.ones(1), t)\n"
                      "print('rank', c.Get_rank(), 'of', c.Get_size(), 'sum', t[0], "
                      "'threads', os.environ['OMP_NUM_THREADS'], os.environ['DISTDL_STALL_TIMEOUT'])\n")
    env_threads = os.environ.get("OMP_NUM_THREADS")
    code, out, err = finish(distdlrun("-np", "3", "--stall-timeout", "300", "--", sys.executable, str(script)))
    assert code == 0, err
    want = env_threads or str(max(1, len(os.sched_getaffinity(0)) // 3))
    assert sorted(out.splitlines()) == [f"[{r}] rank {r} of 3 sum 3.0 threads {want} 300" for r in range(3)]


def test_uninterrupted_reference_is_full_batch_gradient_descent(reference):
    """Two ranks, each summing the gradient of its rows, take the steps one process takes on all
    rows (up to the order of the sums): 12 steps of w -= 0.05 X^T (X w - y) / 64."""
    rng = np.random.default_rng(0)  # the job's data, drawn in the job's order
    X = rng.normal(size=(64, 8))
    y = X @ rng.normal(size=8) + 0.1 * rng.normal(size=64)
    w = np.linspace(-1.0, 1.0, 8)
    start = w.copy()
    for _ in range(12):
        w = w - 0.05 * (X.T @ (X @ w - y) / len(X))
    assert _max_rel(reference, w) <= 1e-12
    assert _max_rel(reference, start) > 0.1  # the 12 steps went somewhere


def test_sigkill_of_one_rank_ends_the_job_fast_and_leaves_nothing(tmp_path):
    folder, token = _job(tmp_path, "kill"), uuid.uuid4().hex
    proc = distdlrun("-np", "2", "--", sys.executable, str(folder / "job.py"), str(folder),
                     "100000", "none", "0", "0.02", token=token)
    _wait_for_step(folder, 5, proc)
    os.kill(int((folder / "pid1").read_text()), signal.SIGKILL)
    killed = time.monotonic()
    code, out, err = finish(proc, timeout=15)
    assert time.monotonic() - killed < 10
    assert code == 128 + signal.SIGKILL
    assert "rank 1 on" in err and "was killed by signal 9 (SIGKILL)" in err
    assert_nothing_left(token)


def test_exception_on_one_rank_ends_fast_and_shows_it_once(tmp_path):
    folder, token = _job(tmp_path, "raise"), uuid.uuid4().hex
    start = time.monotonic()
    proc = distdlrun("-np", "2", "--", sys.executable, str(folder / "job.py"), str(folder),
                     "100000", "raise", "4", "0.02", token=token)
    code, out, err = finish(proc, timeout=20)
    assert time.monotonic() - start < 10
    assert code == 1
    assert (out + err).count("ValueError: boom at step 4") == 1
    assert "[1] ValueError: boom at step 4" in err and "rank 1 on" in err and "exited with code 1" in err
    assert "BAD TERMINATION" not in out + err  # mpirun's noise is not shown
    assert_nothing_left(token)


def test_restart_after_a_dead_rank_ends_with_uninterrupted_weights(tmp_path, reference):
    folder = _job(tmp_path, "restart")
    code, out, err = _run_job(folder, 12, "die", 7, 0.0, "--restarts", "1")
    assert code == 0, err
    assert (folder / "died").exists()  # it really died once
    assert "restart 1 of 1: relaunching on 2 ranks" in err
    assert "[0] resumed at step 6" in out
    assert _max_rel(np.load(folder / "final.npy"), reference) <= 1e-6


def test_without_restarts_a_dead_rank_fails(tmp_path):
    folder = _job(tmp_path, "norestart")
    code, out, err = _run_job(folder, 12, "die", 7, 0.0)
    assert code == 137 and not (folder / "final.npy").exists()
    assert "job failed; exit code 137" in err


@pytest.mark.parametrize("signum,exit_code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_checkpoints_exits_143_or_130_and_resumes_exactly(tmp_path, reference, signum, exit_code):
    folder, token = _job(tmp_path, "preempt"), uuid.uuid4().hex
    args = ("--", sys.executable, str(folder / "job.py"), str(folder), "12", "none", "0", "0.3")
    proc = distdlrun("-np", "2", *args, token=token)
    _wait_for_step(folder, 2, proc)
    proc.send_signal(signum)
    code, out, err = finish(proc, timeout=20)
    assert code == exit_code, err
    assert "[0] stopping after step" in out and "[1] stopping after step" in out
    with np.load(folder / "ckpt.npz") as z:
        stopped_at = int(z["step"])
    assert 2 <= stopped_at < 12 and not (folder / "final.npy").exists()
    assert_nothing_left(token)
    code, out, err = finish(distdlrun("-np", "2", *args))
    assert code == 0, err
    assert f"[0] resumed at step {stopped_at}" in out
    assert _max_rel(np.load(folder / "final.npy"), reference) <= 1e-6


def test_config_shortcut_runs_distdl_train_on_two_ranks(tmp_path):
    """`distdlrun -np 2 CONFIG` is `distdl train CONFIG` on 2 ranks: rank 0 alone reports the
    test score (0.95 or more, as in one process) and writes a checkpoint per epoch, the newest 3 kept."""
    from distdl.saving.checkpoint import inspect_checkpoint
    code, out, err = finish(distdlrun("-np", "2", "--checkpoint-dir", str(tmp_path / "ck"),
                                       "digits_mlp"), timeout=300)
    assert code == 0, err
    tests = [line for line in out.splitlines() if "Test loss" in line]
    assert len(tests) == 1 and tests[0].startswith("[0] Test loss: "), out
    assert float(tests[0].rsplit("accuracy: ", 1)[1]) >= 0.95
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == [f"ckpt-e{e:04d}-s000000.h5" for e in (18, 19, 20)]  # 20 epochs
    info = inspect_checkpoint(tmp_path / "ck" / names[-1])
    assert (info["world_size"], info["epoch"], info["step"], info["checksum"]) == (2, 20, 0, "ok")
