"""Shipped datasets (fixed splits) and the .npz / HDF5 / IDX loaders."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from distdl import datasets
from distdl.datasets import shipped
from distdl.errors import ConfigError, DataError


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


# ------------------------------------------------------------------------- npz

def _xy(n=10, shape=(3, 2), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, 4, n)


def test_npz_single_set_and_custom_keys(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "one.npz", x=x, y=y)
    gx, gy = datasets.load_npz(tmp_path / "one.npz")
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)
    np.savez(tmp_path / "named.npz", images=x, labels=y)
    gx, gy = datasets.load_npz(str(tmp_path / "named.npz"), x_key="images", y_key="labels")
    np.testing.assert_array_equal(gx, x)


def test_npz_train_test_pairs(tmp_path):
    x, y = _xy(12)
    np.savez_compressed(tmp_path / "split.npz", x_train=x[:8], y_train=y[:8], x_test=x[8:], y_test=y[8:])
    (a, b), (c, d) = datasets.load_npz(tmp_path / "split.npz")
    np.testing.assert_array_equal(a, x[:8])
    np.testing.assert_array_equal(b, y[:8])
    np.testing.assert_array_equal(c, x[8:])
    np.testing.assert_array_equal(d, y[8:])


def test_npz_bad_inputs(tmp_path):
    with pytest.raises(DataError, match=r"missing\.npz does not exist"):
        datasets.load_npz(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match=r"text\.npz is not an \.npz archive"):
        datasets.load_npz(tmp_path / "text.npz")
    x, y = _xy()
    np.savez(tmp_path / "other.npz", a=x, b=y)
    with pytest.raises(DataError, match=r"other\.npz has neither keys 'x'/'y'.*its keys are: 'a', 'b'"):
        datasets.load_npz(tmp_path / "other.npz")
    np.savez(tmp_path / "uneven.npz", x=x, y=y[:7])
    with pytest.raises(DataError, match=r"uneven\.npz, 'x' has 10 rows but 'y' has 7"):
        datasets.load_npz(tmp_path / "uneven.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([1, "a"], dtype=object), y=y[:2])
    with pytest.raises(DataError, match=r"obj\.npz could not be read"):
        datasets.load_npz(tmp_path / "obj.npz")


# ------------------------------------------------------------------------ HDF5

def _h5(path, **arrays):
    import h5py
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path


def test_h5array_reads_like_numpy(tmp_path):
    x, _ = _xy(20, (2, 3))
    a = datasets.H5Array(_h5(tmp_path / "d.h5", x=x), "x")
    assert a.shape == (20, 2, 3) and a.dtype == np.float32 and a.ndim == 3 and len(a) == 20
    idx = np.array([7, 2, 19, 2, 0, -1, 11])  # unsorted, repeated, negative
    np.testing.assert_array_equal(a[idx], x[idx])
    np.testing.assert_array_equal(a[[3, 1]], x[[3, 1]])
    np.testing.assert_array_equal(a[5], x[5])
    np.testing.assert_array_equal(a[-3], x[-3])
    np.testing.assert_array_equal(a[2:17:3], x[2:17:3])
    np.testing.assert_array_equal(a[::-2], x[::-2])
    np.testing.assert_array_equal(a[x[:, 0, 0] > 0], x[x[:, 0, 0] > 0])
    np.testing.assert_array_equal(a[idx, 1, 2], x[idx, 1, 2])
    np.testing.assert_array_equal(np.asarray(a), x)
    assert a[np.array([], dtype=np.int64)].shape == (0, 2, 3) and a[5:5].shape == (0, 2, 3)
    with pytest.raises(IndexError):
        a[20]
    with pytest.raises(IndexError):
        a[np.array([0, 20])]
    a.close()


def test_h5array_views_are_lazy(tmp_path):
    x, _ = _xy(20, (2, 3))
    a = datasets.H5Array(_h5(tmp_path / "d.h5", x=x), "x")
    flat = a.with_flat_rows()
    assert flat.shape == (20, 6)
    np.testing.assert_array_equal(flat[[4, 0]], x.reshape(20, 6)[[4, 0]])
    tail = a.row_range(15, 20)
    assert isinstance(tail, datasets.H5Array) and tail.shape == (5, 2, 3)
    np.testing.assert_array_equal(tail[[4, 0, -1]], x[15:][[4, 0, -1]])
    np.testing.assert_array_equal(tail.with_flat_rows()[:], x[15:].reshape(5, 6))


def test_h5array_reads_only_requested_rows(tmp_path, monkeypatch):
    x, _ = _xy(20, (2,))
    a = datasets.H5Array(_h5(tmp_path / "d.h5", x=x), "x")
    a[0]  # open the handle
    seen = []
    real = a._ds

    class Spy:
        def __getitem__(self, key):
            seen.append(key)
            return real[key]

    monkeypatch.setattr(a, "_ds", Spy())
    np.testing.assert_array_equal(a[[9, 3, 9]], x[[9, 3, 9]])
    np.testing.assert_array_equal(seen[0], [3, 9])  # increasing, unique, nothing else


def test_load_hdf5_pairs_and_errors(tmp_path):
    x, y = _xy(12)
    p = _h5(tmp_path / "s.h5", x_train=x[:9], y_train=y[:9], x_test=x[9:], y_test=y[9:])
    (a, b), (c, d) = datasets.load_hdf5(p)
    assert all(isinstance(v, datasets.H5Array) for v in (a, b, c, d))
    np.testing.assert_array_equal(c[[2, 0]], x[9:][[2, 0]])
    np.testing.assert_array_equal(b[:], y[:9])
    gx, gy = datasets.load_hdf5(_h5(tmp_path / "o.h5", feats=x, labels=y), x="feats", y="labels")
    np.testing.assert_array_equal(gy[[5, 1]], y[[5, 1]])
    with pytest.raises(DataError, match=r"o\.h5 has neither datasets 'x'/'y'.*are: 'feats', 'labels'"):
        datasets.load_hdf5(tmp_path / "o.h5")
    with pytest.raises(DataError, match=r"o\.h5, dataset 'nope' does not exist; its datasets are: 'feats'"):
        datasets.H5Array(tmp_path / "o.h5", "nope")
    with pytest.raises(DataError, match=r"u\.h5, 'x' has 12 rows but 'y' has 5"):
        datasets.load_hdf5(_h5(tmp_path / "u.h5", x=x, y=y[:5]))
    (tmp_path / "t.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match=r"t\.h5 is not an HDF5 file"):
        datasets.load_hdf5(tmp_path / "t.h5")
    with pytest.raises(DataError, match=r"none\.h5 does not exist"):
        datasets.load_hdf5(tmp_path / "none.h5")


# ------------------------------------------------------------------------- IDX

def _idx_bytes(a: np.ndarray, code: int) -> bytes:
    """IDX by hand: 0x00 0x00, type code, ndim, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def _write_mnist(folder: Path, gz: bool, seed=0):
    rng = np.random.default_rng(seed)
    parts = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 4, 5), dtype=np.uint8),
             "train-labels-idx1-ubyte": rng.integers(0, 10, 6, dtype=np.uint8),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 4, 5), dtype=np.uint8),
             "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8)}
    folder.mkdir(exist_ok=True)
    for name, a in parts.items():
        data = _idx_bytes(a, 0x08)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return parts


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_round_trip(tmp_path, gz):
    parts = _write_mnist(tmp_path / "m", gz)
    (x, y), (xt, yt) = datasets.load_idx(tmp_path / "m")
    assert x.shape == (6, 4, 5) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x, parts["train-images-idx3-ubyte"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, parts["train-labels-idx1-ubyte"])
    np.testing.assert_allclose(xt * 255, parts["t10k-images-idx3-ubyte"], rtol=1e-5)
    np.testing.assert_array_equal(yt, parts["t10k-labels-idx1-ubyte"])


def test_read_idx_wider_types(tmp_path):
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 4) * 1000
    (tmp_path / "s").write_bytes(_idx_bytes(a, 0x0B))
    got = datasets.read_idx(tmp_path / "s")
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, a)
    f = np.linspace(-1, 1, 6).reshape(2, 3)
    (tmp_path / "d").write_bytes(_idx_bytes(f, 0x0E))
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "d"), f)


def test_idx_bad_inputs(tmp_path):
    _write_mnist(tmp_path / "m", gz=False)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(b"\x08\x03\x00\x01junk")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte has a bad IDX magic number 08030001"):
        datasets.load_idx(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(2, np.uint8), 0x08))
    with pytest.raises(DataError, match=r"'t10k-images-idx3-ubyte' has 3 rows but 't10k-labels-idx1-ubyte' has 2"):
        datasets.load_idx(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(3, np.uint8), 0x08)[:-1])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte holds 2 data bytes but its IDX header \(3,\) needs 3"):
        datasets.load_idx(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"has no IDX file t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte\.gz\)"):
        datasets.load_idx(tmp_path / "m")
    with pytest.raises(DataError, match=r"IDX folder .*nowhere does not exist"):
        datasets.load_idx(tmp_path / "nowhere")


# ---------------------------------------------------------------- spec (load)

def test_load_spec_shipped_with_flatten_and_one_hot():
    (x, y), (xt, yt) = datasets.load({"name": "digits", "flatten": True, "one_hot": True})
    (rx, ry), _ = datasets.load_digits()
    assert x.shape == (1437, 64) and xt.shape == (360, 64)
    np.testing.assert_array_equal(x, rx.reshape(1437, 64))
    assert y.shape == (1437, 10) and yt.shape == (360, 10)
    np.testing.assert_array_equal(y.argmax(axis=1), ry)
    (_, yb), _ = datasets.load({"name": "breast_cancer", "one_hot": True, "num_classes": 3})
    assert yb.shape == (455, 3) and yb[:, 2].sum() == 0


def test_load_spec_files_relative_to_base_dir(tmp_path):
    x, y = _xy(10)
    np.savez(tmp_path / "one.npz", feats=x, labels=y)
    (a, b), (c, d) = datasets.load({"format": "npz", "path": "one.npz", "x": "feats", "y": "labels",
                                    "test_split": 0.3}, base_dir=tmp_path)
    np.testing.assert_array_equal(a, x[:7])
    np.testing.assert_array_equal(d, y[7:])
    _h5(tmp_path / "s.h5", x=x, y=y)
    (a, b), (c, d) = datasets.load({"format": "hdf5", "path": "s.h5", "test_split": 0.2,
                                    "flatten": True}, base_dir=str(tmp_path))
    assert isinstance(a, datasets.H5Array) and a.shape == (8, 6) and c.shape == (2, 6)
    np.testing.assert_array_equal(c[[1, 0]], x[8:].reshape(2, 6)[[1, 0]])
    np.testing.assert_array_equal(b[:], y[:8])
    _write_mnist(tmp_path / "m", gz=True)
    (a, b), (c, d) = datasets.load({"format": "idx", "path": "m", "one_hot": True, "num_classes": 10},
                                   base_dir=tmp_path)
    assert a.shape == (6, 4, 5) and b.shape == (6, 10) and d.shape == (3, 10)


def test_load_spec_bad_options(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown dataset 'mnist'; valid names are: breast_cancer, digits"):
        datasets.load({"name": "mnist"})
    with pytest.raises(ConfigError, match=r"Unknown data format 'csv'; valid names are: hdf5, idx, npz"):
        datasets.load({"format": "csv", "path": "a.csv"})
    with pytest.raises(ConfigError, match=r"Unknown data option 'shuffle'"):
        datasets.load({"name": "digits", "shuffle": True})
    with pytest.raises(ConfigError, match=r"exactly one of 'name'"):
        datasets.load({})
    with pytest.raises(ConfigError, match=r"'flatten' must be true or false"):
        datasets.load({"name": "digits", "flatten": "yes"})
    with pytest.raises(ConfigError, match=r"needs a 'path'"):
        datasets.load({"format": "npz"})
    x, y = _xy()
    np.savez(tmp_path / "one.npz", x=x, y=y)
    with pytest.raises(ConfigError, match=r"'test_split' must be a number in \[0, 1\), not 1.5"):
        datasets.load({"format": "npz", "path": "one.npz", "test_split": 1.5}, base_dir=tmp_path)
    np.savez(tmp_path / "two.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    with pytest.raises(ConfigError, match=r"two\.npz already holds a train/test split"):
        datasets.load({"format": "npz", "path": "two.npz", "test_split": 0.1}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"'test_split' applies only to npz/hdf5"):
        datasets.load({"name": "digits", "test_split": 0.1})
    with pytest.raises(DataError, match=r"gone\.npz does not exist"):
        datasets.load({"format": "npz", "path": "gone.npz"}, base_dir=tmp_path)
