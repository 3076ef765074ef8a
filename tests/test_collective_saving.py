"""Saving and loading are collective on 1, 2 and 3 ranks (issue 19 point 2): every rank returns
from `save`/`save_weights` only when the file is in place, `load_model`/`load_weights` read the
same values on every rank, and errors are agreed: raised on every rank with one sentence."""
import json

import pytest

from mpirun import run_mpi, run_serial

pytestmark = pytest.mark.mpi
ROUNDS = 6


def _results(tmp_path, n):
    p = run_serial("save_load_loop.py", tmp_path, ROUNDS) if n == 1 else run_mpi(n, "save_load_loop.py", tmp_path, ROUNDS)
    assert p.returncode == 0, p.stdout + p.stderr
    return p, [json.loads((tmp_path / f"result_rank{r}.json").read_text()) for r in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_save_then_load_in_a_loop_reads_what_was_saved_on_every_rank(tmp_path, n):
    p, results = _results(tmp_path, n)
    for rank, res in enumerate(results):
        assert len(res["rounds"]) == ROUNDS
        for r, diffs in enumerate(res["rounds"]):  # save/load_model, .h5 weights, .weights.h5
            assert diffs == [0.0, 0.0, 0.0], f"rank {rank} round {r} read other values: {diffs}"
    # summary() printed once, by rank 0, even before the model had a communicator
    assert p.stdout.count("Total params") == 1, p.stdout
    assert not list(tmp_path.glob(".*tmp-*")), "a temp file was left behind"


@pytest.mark.parametrize("n", [2, 3])
def test_errors_are_agreed_across_ranks(tmp_path, n):
    _, results = _results(tmp_path, n)
    errors = [res["errors"] for res in results]
    for case in ("save_missing_folder", "save_no_overwrite", "load_missing_on_one_rank",
                 "load_model_missing_on_one_rank", "load_different"):
        kinds = [e[case] and e[case][0] for e in errors]
        assert kinds == [kinds[0]] * n and kinds[0] is not None, (case, errors)
    zero = errors[0]
    assert zero["save_missing_folder"][0] == "CheckpointError"
    assert "no/such/m.h5" in zero["save_missing_folder"][1]
    assert all(e["save_missing_folder"][1] == zero["save_missing_folder"][1] for e in errors)
    assert zero["save_no_overwrite"][0] == "ConfigError" and "overwrite=False" in zero["save_no_overwrite"][1]
    # rank 0's file exists; rank 1's does not: rank 0 names rank 1 and its missing file
    assert "absent.h5" in zero["load_missing_on_one_rank"][1] and "rank 1" in zero["load_missing_on_one_rank"][1]
    assert "absent.h5" in zero["load_model_missing_on_one_rank"][1]
    assert "different contents" in zero["load_different"][1] and "[1" in zero["load_different"][1]
