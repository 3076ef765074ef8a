"""Data-parallel behaviour with real `mpirun -n 2` and `-n 3` processes (oversubscribed)."""
import re
import time

import numpy as np
import pytest

from mpirun import run_mpi, run_serial


@pytest.mark.parametrize("n", [1, 2, 3])
def test_communicator_collectives(n):
    p = run_mpi(n, "comm_check.py")
    assert p.returncode == 0, p.stderr
    found = sorted(re.findall(r"comm ok rank (\d+) of (\d+)", p.stdout))
    assert found == [(str(r), str(n)) for r in range(n)], p.stdout


@pytest.fixture(scope="module", params=["float64", "float32"])
def trajectories(request, tmp_path_factory):
    dtype = request.param
    d = tmp_path_factory.mktemp(dtype)
    p = run_serial("trajectory.py", d / "n1", dtype)
    assert p.returncode == 0, p.stderr
    runs = {1: [dict(np.load(d / "n1_rank0.npz"))]}
    for n in (2, 3):
        p = run_mpi(n, "trajectory.py", d / f"n{n}", dtype)
        assert p.returncode == 0, p.stderr
        runs[n] = [dict(np.load(d / f"n{n}_rank{r}.npz")) for r in range(n)]
    return dtype, runs


def test_n_ranks_follow_the_single_process_trajectory(trajectories):
    """Dropout, 101 rows, batch 10 (last batch of 1 row leaves ranks empty): same weights."""
    dtype, runs = trajectories
    tol = 1e-12 if dtype == "float64" else 1e-5
    ref = runs[1][0]["params"].astype(np.float64)
    for n in (2, 3):
        got = runs[n][0]["params"].astype(np.float64)
        rel = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
        assert rel <= tol, (n, rel)


def test_weights_are_bitwise_identical_on_every_rank(trajectories):
    _, runs = trajectories
    for n in (2, 3):
        digests = {runs[n][r]["digest"].tobytes() for r in range(n)}
        assert len(digests) == 1


def test_global_metrics_and_predictions_match_one_process(trajectories):
    dtype, runs = trajectories
    tol = 1e-10 if dtype == "float64" else 2e-5
    ref = runs[1][0]
    for n in (2, 3):
        for r in range(n):
            got = runs[n][r]
            for key in ("loss", "val_loss", "acc", "scores"):
                np.testing.assert_allclose(got[key], ref[key], rtol=tol, atol=tol, err_msg=f"{key} n={n} r={r}")
            np.testing.assert_allclose(got["pred"], ref["pred"], rtol=tol * 10, atol=tol * 10)


def test_gradient_accumulation_matches_larger_batches(tmp_path):
    """steps_per_update=2 with batch 10 follows the same trajectory on 1 and 3 ranks."""
    p = run_serial("trajectory.py", tmp_path / "a", "float64", "--steps-per-update", "2")
    assert p.returncode == 0, p.stderr
    q = run_mpi(3, "trajectory.py", tmp_path / "b", "float64", "--steps-per-update", "2")
    assert q.returncode == 0, q.stderr
    a = np.load(tmp_path / "a_rank0.npz")["params"]
    b = np.load(tmp_path / "b_rank0.npz")["params"]
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
    single = np.load(tmp_path / "a_rank0.npz")
    assert single["loss"].shape == (2,)


def test_exception_on_one_rank_ends_the_job_fast():
    start = time.monotonic()
    p = run_mpi(2, "fail_on_rank1.py", timeout=60)
    elapsed = time.monotonic() - start
    assert p.returncode != 0
    assert elapsed < 10, elapsed
    assert p.stderr.count("RuntimeError: boom from rank 1 at batch 3") == 1, p.stderr
    assert "[rank 1]" in p.stderr
