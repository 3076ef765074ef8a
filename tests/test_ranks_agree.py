"""Ranks that disagree are refused, not hung (issue 20 point 8): at the start of
fit/evaluate/predict one small collective compares row counts, row shapes, epochs, batch size and
the other arguments that must match, and an error on any rank is raised on every rank."""
import json
import time

import pytest

from mpirun import run_mpi

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("n", [2, 3])
def test_disagreeing_ranks_are_refused_alike_and_stay_in_step(tmp_path, n):
    p = run_mpi(n, "disagree.py", tmp_path, timeout=90)
    assert p.returncode == 0, p.stdout + p.stderr
    found = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]
    for case in found[0]:
        kinds = [f[case] and f[case][0] for f in found]
        assert kinds == [kinds[0]] * n, (case, [f[case] for f in found])
    zero = found[0]
    assert zero["agreeing"] is None
    rows = zero["fit_rows"]
    assert rows[0] == "ConfigError"
    assert "number of rows" in rows[1] and "rank 0 has 32" in rows[1] and "rank 1 has 8" in rows[1]
    assert "epochs" in zero["fit_epochs"][1] and "rank 1 has 2" in zero["fit_epochs"][1]
    assert "batch_size" in zero["fit_batch_size"][1] and "rank 1 has 4" in zero["fit_batch_size"][1]
    nan = zero["fit_nan_on_last_rank"]
    assert nan[0] == "DataError" and f"on rank {n - 1}" in nan[1] and "row 7" in nan[1], nan
    assert nan[1] == found[n - 1]["fit_nan_on_last_rank"][1] + f" (on rank {n - 1})"  # there: its own
    assert "compile()" in zero["fit_not_compiled_on_rank_1"][1] and "on rank 1" in zero["fit_not_compiled_on_rank_1"][1]
    assert "evaluate's number of rows" in zero["evaluate_rows"][1] and "rank 1 has 31" in zero["evaluate_rows"][1]
    assert "predict's batch_size" in zero["predict_batch_size"][1]
    assert "(32, 4)" in zero["predict_features"][1] and "on rank 1" in zero["predict_features"][1]


def test_a_disagreement_left_uncaught_ends_the_job_with_one_sentence(tmp_path):
    t = time.monotonic()
    p = run_mpi(2, "disagree.py", tmp_path, "--uncaught", "fit_rows", timeout=60)
    assert time.monotonic() - t < 30
    assert p.returncode != 0
    told = [line for line in p.stderr.splitlines() if "disagree on fit's number of rows" in line]
    assert len(told) == 1 and told[0].startswith("[rank 0] ConfigError:"), p.stderr
    assert "Traceback" not in p.stderr
