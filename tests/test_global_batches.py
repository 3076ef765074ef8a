"""`predict`/`evaluate` take a global batch_size (issue 19 point 5): each global batch is split
across ranks as in `fit`, so the number of batches and batch callbacks is the same on 1, 2 and 3
ranks, every rank returns all predictions in order, and the scores equal one process's."""
import numpy as np
import pytest

from mpirun import run_ranks

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("rows, batch", [(23, 5), (2, 4)])  # 2 rows on 3 ranks: one rank holds none
def test_batches_predictions_and_scores_do_not_depend_on_the_rank_count(tmp_path, rows, batch):
    runs = run_ranks("global_batches.py", tmp_path, rows, batch)
    one = runs[1][0]
    batches = -(-rows // batch)
    for n, per_rank in runs.items():
        assert sum(int(r["local_rows"]) for r in per_rank) == rows  # each row predicted once
        for rank, r in enumerate(per_rank):
            assert int(r["predict_batches"]) == batches and int(r["test_batches"]) == batches, (n, rank)
            assert r["pred"].shape == (rows, 3) and r["pred2"].shape == (rows, 1)
            # same rows in the same order as one process (a row alone in its slice may take another
            # BLAS kernel: float64 rounding only)
            np.testing.assert_allclose(r["pred"], one["pred"], rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(r["pred2"], one["pred2"], rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(r["scores"], one["scores"], rtol=1e-12, atol=0)
