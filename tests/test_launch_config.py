"""distdlrun on the CONFIG path with real processes: restart after a killed rank, preemption
by SIGTERM/SIGINT with exact resume, and a stalled collective ended by --stall-timeout."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from mpirun import assert_nothing_left, distdlrun, finish, job_processes

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(not (Path(sys.executable).parent / "mpirun").exists(),
                                 reason="needs the mpich wheel's mpirun next to python")]

EPOCHS = 4
SAVE_FREQ = 25
FINAL = f"ckpt-e{EPOCHS:04d}-s000000.h5"
_CKPT = re.compile(r"^ckpt-e(\d+)-s(\d+)\.h5$")
_RESUMED = re.compile(r"^\[0\] Resuming from (\S+) \(epoch (\d+), step (\d+)\)\.$", re.M)

# The shape of distdl/configs/digits_mlp.toml, a little heavier (about 650 steps of ~2 ms on 2 ranks) so
# that a signal or a kill lands mid-epoch, with a checkpoint every SAVE_FREQ steps, all kept.
CONFIG = f"""
[data]
name = "digits"
flatten = true

[model]
layers = [
  {{ type = "Dense", units = 256, activation = "relu" }},
  {{ type = "Dense", units = 10, activation = "softmax" }},
]

[compile]
optimizer = "adam"
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]

[training]
epochs = {EPOCHS}
batch_size = 8
seed = 1
validation_split = 0.1
verbose = 2

[checkpoint]
save_freq = {SAVE_FREQ}
keep = 1000
"""

# Rank 0 waits in an allreduce that rank 1 reaches only after 30 s.
STALL = """
import time
import numpy as np
from distdl.comm import world
comm = world()
buf = np.ones(4)
comm.allreduce_sum(buf)
print("first allreduce done", flush=True)
if comm.rank == 1:
    time.sleep(30)
comm.allreduce_sum(buf)
print("second allreduce done", flush=True)
"""


# ----------------------------------------------------------------- processes

def _kill_everything(proc: subprocess.Popen, token: str) -> None:
    """Cleanup for finally blocks: the launcher's group and anything that carries our token."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in job_processes(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def _run(*args: str, timeout: float = 40.0) -> tuple[int, str, str]:
    token = uuid.uuid4().hex
    proc = distdlrun(*args, token=token)
    try:
        result = finish(proc, timeout)
    finally:
        _kill_everything(proc, token)
    assert_nothing_left(token)
    return result


# ----------------------------------------------------------------- checkpoints

def _checkpoints(folder: Path) -> list[tuple[int, int]]:
    """(epoch, step) of the checkpoint files in `folder`, oldest first."""
    found = []
    for p in folder.glob("ckpt-*.h5"):
        m = _CKPT.match(p.name)
        if m:
            found.append((int(m[1]), int(m[2])))
    return sorted(found)


def _wait_for_checkpoint(folder: Path, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Return as soon as the first periodic checkpoint exists (training is then mid-epoch 1)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if _checkpoints(folder):
            return
        time.sleep(0.01)
    pytest.fail(f"no checkpoint appeared in {folder} (distdlrun exit code {proc.poll()})")


def _params(path: Path) -> np.ndarray:
    from distdl.saving.checkpoint import load_checkpoint
    return np.asarray(load_checkpoint(path).params, dtype=np.float64)


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def _test_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("[0] Test loss:")]
    assert len(lines) == 1, out
    return lines[0]


def _assert_like_reference(folder: Path, out: str, reference) -> None:
    params, test_line, _ = reference
    assert (folder / FINAL).is_file(), sorted(p.name for p in folder.iterdir())
    assert _max_rel(_params(folder / FINAL), params) <= 1e-6
    assert _test_line(out) == test_line


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "digits_small.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory):
    """(final params, test line, checkpoint names) of an uninterrupted 2-rank run of the config."""
    folder = tmp_path_factory.mktemp("reference") / "ck"
    code, out, err = _run("-np", "2", "--checkpoint-dir", str(folder), str(config))
    assert code == 0, err
    assert (folder / FINAL).is_file()
    return _params(folder / FINAL), _test_line(out), _checkpoints(folder)


# ----------------------------------------------------------------- tests

def test_reference_run_writes_periodic_and_final_checkpoints(reference):
    params, test_line, names = reference
    assert np.all(np.isfinite(params)) and test_line.startswith("[0] Test loss: ")
    assert float(test_line.rsplit("accuracy: ", 1)[1]) >= 0.9  # it trained (about 0.97)
    assert (EPOCHS, 0) in names and len(names) > EPOCHS * 3  # every SAVE_FREQ steps, mid-epoch
    assert all(step > 0 for epoch, step in names if epoch < EPOCHS)


def test_restart_after_sigkill_of_a_rank_resumes_from_checkpoint_exactly(config, reference, tmp_path):
    folder, token = tmp_path / "ck", uuid.uuid4().hex
    proc = distdlrun("-np", "2", "--restarts", "1", "--checkpoint-dir", str(folder), str(config),
                     token=token)
    try:
        _wait_for_checkpoint(folder, proc)
        # rank 1's Python process itself (not its rankwrap parent, not mpirun)
        victims = job_processes(token, b"PMI_RANK=1\0", b"-m\0distdl.cli\0train\0",
                                 without=b"rankwrap.py")
        assert len(victims) == 1, victims
        os.kill(victims[0], signal.SIGKILL)
        code, out, err = finish(proc, timeout=40)
    finally:
        _kill_everything(proc, token)
    assert code == 0, err
    assert "was killed by signal 9 (SIGKILL)" in err and "rank 1 on" in err
    assert f"restart 1 of 1: relaunching on 2 ranks, resuming from {folder}" in err
    resumed = _RESUMED.findall(out)
    assert len(resumed) == 1, out  # only the restart resumed; the first attempt started fresh
    path, epoch, step = resumed[0]
    assert Path(path).parent == folder and int(step) > 0  # from a mid-epoch checkpoint
    assert int(epoch) <= EPOCHS and _CKPT.match(Path(path).name)
    _assert_like_reference(folder, out, reference)
    assert_nothing_left(token)


@pytest.mark.parametrize("signum,exit_code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_checkpoints_the_current_step_and_resume_auto_finishes_exactly(
        config, reference, tmp_path, signum, exit_code):
    folder, token = tmp_path / "ck", uuid.uuid4().hex
    proc = distdlrun("-np", "2", "--checkpoint-dir", str(folder), str(config), token=token)
    try:
        _wait_for_checkpoint(folder, proc)
        proc.send_signal(signum)
        code, out, err = finish(proc, timeout=30)
    finally:
        _kill_everything(proc, token)
    assert code == exit_code, err
    assert f"got {signal.Signals(signum).name}; asking every rank to stop" in err
    assert f"[0] Stopped by signal {int(signum)};" in out
    assert "Test loss" not in out
    assert_nothing_left(token)

    # The stop wrote one checkpoint at the step where training stopped: every other file is a
    # periodic one that the uninterrupted run wrote too, and nothing after it exists.
    names = _checkpoints(folder)
    stopped = names[-1]
    assert stopped < (EPOCHS, 0) and stopped[1] > 0, names  # mid-epoch
    assert names[:-1] == [n for n in reference[2] if n < stopped], names
    stopped_path = folder / f"ckpt-e{stopped[0]:04d}-s{stopped[1]:06d}.h5"
    from distdl.saving.checkpoint import verify_checkpoint
    assert verify_checkpoint(stopped_path)[0]

    code, out, err = _run("-np", "2", "--checkpoint-dir", str(folder), "--resume", "auto", str(config))
    assert code == 0, err
    assert _RESUMED.findall(out) == [(str(stopped_path), str(stopped[0] + 1), str(stopped[1]))], out
    _assert_like_reference(folder, out, reference)


def test_stalled_allreduce_is_reported_and_the_job_ends(tmp_path):
    script = tmp_path / "stall.py"
    script.write_text(STALL)
    start = time.monotonic()
    code, out, err = _run("-np", "2", "--stall-timeout", "2", "--", sys.executable, str(script), timeout=20)
    took = time.monotonic() - start
    assert took < 10, f"took {took:.1f} s"
    assert code != 0
    assert "second allreduce done" not in out
    assert "[0] [rank 0] stalled: one allreduce has waited more than 2 s (DISTDL_STALL_TIMEOUT)" in err
    assert "distdlrun: rank 0 on" in err and "exited with code 3" in err
