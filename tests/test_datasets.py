"""Shipped datasets (fixed splits) and the .npz / HDF5 / IDX loaders."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from distdl import datasets
from distdl.datasets import shipped
from distdl.errors import DataError


# ---------------------------------------------------------------- shipped data

def _raw(name):
    with np.load(shipped.DATA_DIR / f"{name}.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_digits_shapes_dtypes_ranges():
    (x, y), (xt, yt) = datasets.load_digits()
    assert x.shape == (1437, 8, 8) and xt.shape == (360, 8, 8)
    assert y.shape == (1437,) and yt.shape == (360,)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0 and xt.max() <= 1.0
    # values are k/16 exactly
    np.testing.assert_array_equal(x * 16, np.round(x * 16))
    raw = _raw("digits")
    np.testing.assert_array_equal(x, raw["x_train"].astype(np.float32) / 16)
    assert set(np.unique(y)) == set(range(10)) == set(np.unique(yt))


def test_digits_stratified_and_disjoint():
    (_, y), (_, yt) = datasets.load_digits()
    counts, tcounts = np.bincount(y, minlength=10), np.bincount(yt, minlength=10)
    frac = tcounts / (counts + tcounts)
    assert np.all(np.abs(frac - 0.2) < 0.01)
    raw = _raw("digits")
    idx = np.concatenate([raw["idx_train"], raw["idx_test"]]).astype(np.int64)
    np.testing.assert_array_equal(np.sort(idx), np.arange(1797))  # a partition of the source rows
    rows = {r.tobytes() for r in raw["x_train"].reshape(len(y), -1)}
    assert not any(r.tobytes() in rows for r in raw["x_test"].reshape(len(yt), -1))


def test_breast_cancer_standardized_with_train_stats():
    (x, y), (xt, yt) = datasets.load_breast_cancer()
    assert x.shape == (455, 30) and xt.shape == (114, 30)
    assert x.dtype == np.float32 and y.dtype == np.int64 and yt.dtype == np.int64
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-5)
    raw = _raw("breast_cancer")
    mean = raw["x_train"].astype(np.float64).mean(axis=0)
    std = raw["x_train"].astype(np.float64).std(axis=0)
    np.testing.assert_allclose(xt, (raw["x_test"] - mean) / std, rtol=1e-5, atol=1e-5)
    # the test split is not standardized with its own statistics
    assert np.abs(xt.mean(axis=0)).max() > 1e-3
    # sklearn coding: 0 = malignant (212), 1 = benign (357)
    np.testing.assert_array_equal(np.bincount(y) + np.bincount(yt), [212, 357])
    np.testing.assert_array_equal(np.bincount(yt), [42, 72])
    idx = np.concatenate([raw["idx_train"], raw["idx_test"]]).astype(np.int64)
    np.testing.assert_array_equal(np.sort(idx), np.arange(569))
    rows = {r.tobytes() for r in raw["x_train"]}
    assert not any(r.tobytes() in rows for r in raw["x_test"])


def test_shipped_loads_are_deterministic_and_fresh():
    (a, b), (c, d) = datasets.load_digits()
    a[...] = -1  # mutating a result must not affect the next load
    (a2, b2), (c2, d2) = datasets.load_digits()
    assert a2.min() == 0.0
    np.testing.assert_array_equal(b, b2)
    np.testing.assert_array_equal(c, c2)
    (e, f), _ = datasets.load_breast_cancer()
    (e2, f2), _ = datasets.load_breast_cancer()
    np.testing.assert_array_equal(e, e2)
    np.testing.assert_array_equal(f, f2)
