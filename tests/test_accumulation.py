"""Gradient accumulation in one process: steps_per_update=k with batch b is training with batch k*b.

Multi-rank runs of the same (test_mpi.py) follow the 1-process trajectory; this file shows that
the trajectory is the larger batch's.
"""
import numpy as np
import pytest

from distdl import utils
from distdl.layers import Dense
from distdl.models import Sequential
from distdl.optimizers import SGD, AdamW

# 67 rows: with b=10, k=2 the micro-batches are 6 x 10 + 7, so the last group is one partial
# micro-batch (7 rows), as batch 20 ends with 7 rows; with b=7, k=3: 9 x 7 + 4 in groups of
# 21, 21, 21, 4, as batch 21
ROWS = 67
OPTIMIZERS = {"adamw": lambda: AdamW(0.01, weight_decay=0.05), "momentum": lambda: SGD(0.1, momentum=0.9)}


def _fit(batch_size, steps_per_update, optimizer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5)
    utils.set_random_seed(3)
    # no Dropout or BatchNormalization: their masks and statistics are per micro-batch by design
    model = Sequential([Dense(16, activation="relu", input_shape=(6,), kernel_regularizer="l2"),
                        Dense(3, activation="softmax")])
    model.compile(optimizer=OPTIMIZERS[optimizer](), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    utils.set_random_seed(11)  # the same data order for every run
    hist = model.fit(x, y, batch_size=batch_size, epochs=3, verbose=0, steps_per_update=steps_per_update)
    return model, hist.history


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("batch,k", [(10, 2), (7, 3)])
def test_gradient_accumulation_matches_larger_batches(float64, batch, k, optimizer):
    """Same weights, optimizer steps and epoch logs as one batch of k*b rows, partial last group
    included (its gradient is the mean over its own rows, as the last partial batch's).

    Tolerance: float64, and the only difference is how each gradient element's sum over rows is
    grouped (k GEMMs of b rows added up vs one GEMM of k*b rows), about 1 ulp per step: measured
    2e-16 after 12 steps; 1e-12 leaves room for BLAS kernels that group differently, while a
    wrong scale (dividing by b instead of the group's rows) or a lost or doubled micro-batch
    moves the weights by 1e-1 (the run without accumulation below)."""
    big, big_logs = _fit(batch * k, 1, optimizer)
    acc, acc_logs = _fit(batch, k, optimizer)
    assert acc.optimizer.iterations == big.optimizer.iterations == 3 * -(-ROWS // (batch * k))
    assert _rel(acc.params, big.params) <= 1e-12, _rel(acc.params, big.params)
    np.testing.assert_allclose(acc_logs["loss"], big_logs["loss"], rtol=1e-12)
    assert acc_logs["accuracy"] == big_logs["accuracy"]
    # the comparison can fail: updating after every micro-batch is another trajectory
    plain, _ = _fit(batch, 1, optimizer)
    assert plain.optimizer.iterations == 3 * -(-ROWS // batch)
    assert _rel(plain.params, big.params) > 1e-2
