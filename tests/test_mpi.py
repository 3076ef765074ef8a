"""Data-parallel behaviour with real `mpirun -n 2` and `-n 3` processes (oversubscribed), with
DISTDL_ALLREDUCE=auto (these small gradients stay on MPI's allreduce) and =shm (every float
allreduce through node-shared memory, the sharded optimizer step)."""
import re
import time

import numpy as np
import pytest

from mpirun import run_mpi, run_ranks

pytestmark = pytest.mark.mpi
DTYPES, MODES = ["float64", "float32"], ["auto", "shm"]
KEYS = ("params", "pred", "scores", "loss", "val_loss", "acc")  # every number trajectory.py saves


@pytest.mark.parametrize("n", [1, 2, 3])
def test_communicator_collectives(n):
    p = run_mpi(n, "comm_check.py")
    assert p.returncode == 0, p.stderr
    found = sorted(re.findall(r"comm ok rank (\d+) of (\d+)", p.stdout))
    assert found == [(str(r), str(n)) for r in range(n)], p.stdout


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory):
    """trajectories(dtype, mode) -> {n: [what rank r saved]} for 1, 2 and 3 ranks, run on first
    use. For auto, 1 rank is a plain process (no MPI): the reference of every comparison; for
    shm it is `mpirun -n 1`, which must change nothing."""
    cache = {}

    def get(dtype, mode):
        if (dtype, mode) not in cache:
            d = tmp_path_factory.mktemp(f"{dtype}_{mode}")
            runs = run_ranks("trajectory.py", d, dtype, ranks=(1,), env=None) if mode == "auto" else {}
            runs.update(run_ranks("trajectory.py", d, dtype, ranks=(2, 3) if mode == "auto" else (1, 2, 3),
                                  env={"DISTDL_ALLREDUCE": mode}))
            cache[dtype, mode] = runs
        return cache[dtype, mode]
    return get


def _rel(got, ref):
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    return np.max(np.abs(got - ref)) / np.max(np.abs(ref))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_n_ranks_follow_the_single_process_trajectory(trajectories, dtype, mode):
    """Dropout, 101 rows, batch 10 (last batch of 1 row leaves ranks empty): same weights."""
    tol = 1e-12 if dtype == "float64" else 1e-5
    ref = trajectories(dtype, "auto")[1][0]["params"]
    runs = trajectories(dtype, mode)
    for n in (2, 3):
        assert _rel(runs[n][0]["params"], ref) <= tol, (n, _rel(runs[n][0]["params"], ref))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_are_bitwise_identical_on_every_rank(trajectories, dtype, mode):
    runs = trajectories(dtype, mode)
    for n in (2, 3):
        assert len({runs[n][r]["digest"].tobytes() for r in range(n)}) == 1, n
        assert all(np.array_equal(runs[n][r]["params"], runs[n][0]["params"]) for r in range(n))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_global_metrics_and_predictions_match_one_process(trajectories, dtype, mode):
    tol = 1e-10 if dtype == "float64" else 2e-5
    ref = trajectories(dtype, "auto")[1][0]
    runs = trajectories(dtype, mode)
    assert ref["loss"][-1] < ref["loss"][0]  # it learns
    for n in (2, 3):
        for r in range(n):
            got = runs[n][r]
            for key in ("loss", "val_loss", "acc", "scores"):
                np.testing.assert_allclose(got[key], ref[key], rtol=tol, atol=tol, err_msg=f"{key} n={n} r={r}")
            np.testing.assert_allclose(got["pred"], ref["pred"], rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forced_shared_memory_takes_the_sharded_step_and_equals_mpi_allreduce(trajectories, dtype):
    """shm: the weights are one node-shared copy (the sharded step); auto keeps these 163
    weights' gradients on MPI's allreduce and a full update, a private copy per rank. The sharded step sums every element
    in rank order and updates it once, so it gives what an allreduce and a full update give:
    bitwise on 2 ranks (a + b = b + a, whatever order MPI adds in), and on 3 ranks up to the
    order MPI's allreduce adds three terms in, which MPI leaves open. 1 rank under mpirun has
    nothing to share and is bitwise the plain process."""
    auto, shm = trajectories(dtype, "auto"), trajectories(dtype, "shm")
    tol = 1e-12 if dtype == "float64" else 1e-5
    for n in (2, 3):
        assert [bool(s["node_shared"]) for s in shm[n]] == [True] * n, n
        assert [bool(a["node_shared"]) for a in auto[n]] == [False] * n, n
    for key in KEYS:
        assert np.array_equal(shm[1][0][key], auto[1][0][key]), key
        for r in range(2):
            assert np.array_equal(shm[2][r][key], auto[2][r][key]), (key, r)
        for r in range(3):
            assert _rel(shm[3][r][key], auto[3][r][key]) <= tol, (key, r)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_accumulation_follows_one_process_on_three_ranks(tmp_path, mode):
    """steps_per_update=2 with batch 10 follows the same trajectory on 1 and 3 ranks, the
    accumulated sum going through shared memory and the sharded step too (test_accumulation.py
    shows that it is the trajectory of batch 20)."""
    runs = run_ranks("trajectory.py", tmp_path / "1", "float64", "--steps-per-update", "2", ranks=(1,))
    runs.update(run_ranks("trajectory.py", tmp_path / mode, "float64", "--steps-per-update", "2", ranks=(3,),
                          env={"DISTDL_ALLREDUCE": mode}))
    np.testing.assert_allclose(runs[3][0]["params"], runs[1][0]["params"], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(runs[3][0]["loss"], runs[1][0]["loss"], rtol=1e-10)
    assert runs[1][0]["loss"].shape == (2,)
    assert [bool(r["node_shared"]) for r in runs[3]] == [mode == "shm"] * 3


def test_exception_on_one_rank_ends_the_job_fast():
    start = time.monotonic()
    p = run_mpi(2, "fail_on_rank1.py", timeout=60)
    elapsed = time.monotonic() - start
    assert p.returncode != 0
    assert elapsed < 10, elapsed
    assert p.stderr.count("RuntimeError: boom from rank 1 at batch 3") == 1, p.stderr
    assert "[rank 1]" in p.stderr
