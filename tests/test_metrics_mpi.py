"""Metrics are global under N ranks (issue 15): AUC, F1Score, FBetaScore, MeanIoU, PrecisionAtRecall,
R2Score and a cross-entropy metric, evaluated (with and without sample weights) and fitted on 2 and 3
real mpirun ranks, equal one process's on every rank (tests/mpi_scripts/global_metrics.py)."""
import numpy as np
import pytest

from mpirun import run_ranks


@pytest.mark.mpi
@pytest.mark.slow
def test_metrics_on_2_and_3_ranks_equal_one_process(tmp_path):
    runs = run_ranks("global_metrics.py", tmp_path)
    ref = runs[1][0]
    assert {"auc", "pr_auc", "f1", "fbeta", "miou", "p_at_r", "r2", "cce"} <= set(ref["names"].tolist())
    for key in ("plain", "weighted"):
        assert not np.allclose(ref[key], ref["weighted" if key == "plain" else "plain"])  # weights matter
    for n in (2, 3):
        for rank, got in enumerate(runs[n]):
            assert got["names"].tolist() == ref["names"].tolist()
            for key in ("plain", "weighted"):
                np.testing.assert_allclose(got[key], ref[key], rtol=1e-10, err_msg=f"{key}, {n} ranks, rank {rank}")
            np.testing.assert_allclose(got["fit"], ref["fit"], rtol=1e-8, err_msg=f"fit, {n} ranks, rank {rank}")
