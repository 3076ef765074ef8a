"""The shared-memory gradient allreduce (`distdl.comm.shm`) with real `mpirun -n 2` and `-n 3`."""
import re
import time

import numpy as np
import pytest
from mpirun import run_mpi

from distdl.comm.mpi import _mode_from_env
from distdl.errors import CommError


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_shm_allreduce_sums_exactly_at_every_size(n):
    """Sizes 0, 1, odd and not divisible by n, float32 and float64, window and plain buffers,
    repeated calls: the rank-order sum, bitwise the same on every rank."""
    p = run_mpi(n, "shm_allreduce.py")
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(re.findall(r"shm ok rank (\d+) of (\d+)", p.stdout)) == [(str(r), str(n)) for r in range(n)]


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_models_fitted_in_turn_match_mpi_allreduce(n, tmp_path):
    """Each fit moves its gradient arena into the shared segment (growing it, taking it from the
    model that had it); the weights match MPI's allreduce (bitwise on 2 ranks: a + b = b + a)."""
    runs = {}
    for mode in ("shm", "mpi"):
        p = run_mpi(n, "shm_fit.py", tmp_path / mode, env={"DISTDL_ALLREDUCE": mode})
        assert p.returncode == 0, p.stdout + p.stderr
        runs[mode] = [dict(np.load(tmp_path / f"{mode}_rank{r}.npz")) for r in range(n)]
    for r in range(n):
        for key in ("a", "b"):
            got, ref = runs["shm"][r][key], runs["mpi"][r][key]
            assert np.array_equal(got, runs["shm"][0][key]), "ranks diverged"
            if n == 2:
                assert np.array_equal(got, ref), key
            else:
                np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_allreduce_mode_is_checked(monkeypatch):
    monkeypatch.setenv("DISTDL_ALLREDUCE", "SHM")
    assert _mode_from_env() == "shm"
    assert _mode_from_env("mpi") == "mpi"
    monkeypatch.setenv("DISTDL_ALLREDUCE", "nccl")
    with pytest.raises(CommError, match="DISTDL_ALLREDUCE must be one of auto, shm, mpi"):
        _mode_from_env()


@pytest.mark.mpi
def test_exception_on_one_rank_ends_a_shared_memory_job_fast():
    start = time.monotonic()
    p = run_mpi(2, "fail_on_rank1.py", timeout=60, env={"DISTDL_ALLREDUCE": "shm"})
    assert p.returncode != 0
    assert time.monotonic() - start < 10
    assert p.stderr.count("RuntimeError: boom from rank 1 at batch 3") == 1, p.stderr


@pytest.mark.mpi
def test_stall_watchdog_covers_the_shared_memory_allreduce():
    start = time.monotonic()
    p = run_mpi(2, "shm_stall.py", timeout=60, env={"DISTDL_STALL_TIMEOUT": "1"})
    assert p.returncode != 0
    assert time.monotonic() - start < 20
    assert "[rank 0] stalled: one allreduce has waited more than 1 s" in p.stderr, p.stderr


def test_arena_move_grads_repoints_every_view():
    from distdl.arena import Arena, Variable
    vs = [Variable("k", np.ones((2, 3), np.float32)), Variable("b", np.zeros(3, np.float32))]
    arena = Arena(vs, "float32")
    arena.grads[...] = np.arange(9)
    buf = np.empty(9, np.float32)
    arena.move_grads(buf)
    assert arena.grads is buf and np.array_equal(buf, np.arange(9))
    vs[1].grad[...] = -1  # a layer writing its gradient writes the new buffer
    assert np.array_equal(buf[6:], [-1, -1, -1]) and np.shares_memory(vs[0].grad, buf)
    with pytest.raises(ValueError, match=r"\(9,\) float32"):
        arena.move_grads(np.empty(9, np.float64))


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_sharded_optimizer_step_is_bitwise_the_full_update(n, tmp_path):
    """Each rank stepping only its slice (slots in node-shared memory) gives bitwise the weights
    and optimizer state of every rank stepping everything, on every rank, with weight decay,
    clipvalue, an L2 penalty and a constraint; rank 0's checkpoint holds the complete slots."""
    from distdl.saving import checkpoint as ckpt
    runs = {}
    for mode in ("sharded", "full"):
        p = run_mpi(n, "sharded_fit.py", tmp_path / mode, mode, env={"DISTDL_ALLREDUCE": "shm"})
        assert p.returncode == 0, p.stdout + p.stderr
        runs[mode] = [dict(np.load(tmp_path / f"{mode}_rank{r}.npz")) for r in range(n)]
    ref = runs["full"][0]
    assert int(ref["iterations"]) == 33  # 11 steps per epoch, 3 epochs
    assert any(k.startswith("slot_") for k in ref)
    for mode in ("sharded", "full"):
        for r in range(n):
            assert runs[mode][r].keys() == ref.keys()
            for key, arr in runs[mode][r].items():
                assert np.array_equal(arr, ref[key]), (mode, r, key)
    saved = {mode: ckpt.load_checkpoint(tmp_path / f"{mode}_ckpt.h5") for mode in ("sharded", "full")}
    assert saved["full"].optimizer_state and saved["full"].optimizer_iterations == 33
    for name, arr in saved["full"].optimizer_state.items():
        assert np.array_equal(saved["sharded"].optimizer_state[name], arr), name
    assert np.array_equal(saved["sharded"].params, saved["full"].params)


@pytest.mark.mpi
def test_no_room_in_dev_shm_keeps_mpi_allreduce(tmp_path):
    """With less free space in /dev/shm than the windows need, training uses MPI's allreduce
    (a full tmpfs would kill the job with SIGBUS) and gives the same weights."""
    p = run_mpi(2, "shm_full.py", tmp_path / "full")
    assert p.returncode == 0, p.stdout + p.stderr
    # the fallback is told once, by rank 0, through the `distdl` logger
    assert p.stdout.count("gradients are summed with MPI's allreduce instead") == 1, p.stdout
    ref = run_mpi(2, "shm_full.py", tmp_path / "mpi", env={"DISTDL_ALLREDUCE": "mpi"})
    assert ref.returncode == 0, ref.stdout + ref.stderr
    for r in range(2):
        assert np.array_equal(np.load(tmp_path / f"full_rank{r}.npy"), np.load(tmp_path / f"mpi_rank{r}.npy"))
