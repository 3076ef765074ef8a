"""HDF5 data files: `H5Array`, a lazy row-indexable view of one dataset, and `load_hdf5`.

h5py is imported only when an HDF5 file is actually opened. Re-exported by `distdl.datasets.files`.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .common import Pair, _existing_file, _pairs, _pick_keys

__all__ = ["H5Array", "load_hdf5"]


def _h5_datasets(f: Any) -> list[str]:
    """Paths of every dataset in an open HDF5 file, for error messages."""
    import h5py

    found: list[str] = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


def _open_h5(path: str | Path) -> tuple[Path, Any]:
    import h5py

    p = _existing_file(path, "HDF5")
    if not h5py.is_hdf5(p):
        raise DataError(f"{p} is not an HDF5 file.")
    try:
        return p, h5py.File(p, "r")
    except OSError as e:
        raise DataError(f"{p} could not be opened as HDF5 ({e}).") from None


class H5Array:
    """A lazy, read-only array over one HDF5 dataset; indexing reads only the rows asked for.

    Rows are indexed along axis 0 by an int, a slice, a boolean mask or an integer array in
    any order (with repeats); `np.asarray(a)` reads everything. The file is opened on first
    read and kept open until `close()` (each MPI rank opens its own handle).

    Args:
        path: the HDF5 file.
        dataset: path of the dataset inside the file, e.g. "x" or "train/images".
    """

    def __init__(self, path: str | Path, dataset: str) -> None:
        import h5py

        self._file: Any = None
        self._ds: Any = None
        p, f = _open_h5(path)
        try:
            obj = f.get(dataset)
            if not isinstance(obj, h5py.Dataset):
                what = "is a group, not a dataset" if obj is not None else "does not exist"
                raise DataError(f"In {p}, dataset {dataset!r} {what}; its datasets are: "
                                f"{', '.join(map(repr, _h5_datasets(f))) or 'none'}.")
            if obj.ndim == 0:
                raise DataError(f"In {p}, dataset {dataset!r} is a scalar; expected one row per sample.")
            if obj.dtype.kind not in "biufc":
                raise DataError(f"In {p}, dataset {dataset!r} has non-numeric dtype {obj.dtype}.")
            shape, self._dtype = tuple(int(d) for d in obj.shape), np.dtype(obj.dtype)
        finally:
            f.close()
        self.path, self.dataset = p, dataset
        self._start, self._n, self._row_shape = 0, shape[0], shape[1:]

    # array protocol -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """(rows, *row_shape), as NumPy's."""
        return (self._n,) + self._row_shape

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype."""
        return self._dtype

    @property
    def first_row(self) -> int:
        """The dataset's row number of this view's row 0 (messages name rows of the file)."""
        return self._start

    @property
    def ndim(self) -> int:
        """Number of axes, as NumPy's."""
        return 1 + len(self._row_shape)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"H5Array({str(self.path)!r}, {self.dataset!r}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    # lazy views -------------------------------------------------------------------------
    def _view(self, start: int, n: int, row_shape: tuple[int, ...]) -> "H5Array":
        view = copy.copy(self)
        view._file = view._ds = None  # a view opens its own handle
        view._start, view._n, view._row_shape = start, n, row_shape
        return view

    def row_range(self, start: int, stop: int) -> "H5Array":
        """Rows [start, stop) as another lazy H5Array (for a train/test cut without reading).

        Args:
            start: first row (0-based, within this view).
            stop: one past the last row.
        """
        start, stop, _ = slice(start, stop).indices(self._n)
        return self._view(self._start + start, max(stop - start, 0), self._row_shape)

    def with_flat_rows(self) -> "H5Array":
        """The same rows flattened: shape (n, prod(row_shape)), still lazy."""
        return self._view(self._start, self._n, (int(np.prod(self._row_shape)),))

    def close(self) -> None:
        """Close the file handle (reopened automatically by the next read)."""
        if self._file is not None:
            self._file.close()
        self._file = self._ds = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: h5py may already be gone
            pass

    # reading --------------------------------------------------------------------------
    def _read(self, key: Any, count: int) -> np.ndarray:
        """Read stored rows `key` (an int, slice or increasing index array) as (count,)+row_shape."""
        if self._ds is None:
            _, self._file = _open_h5(self.path)
            self._ds = self._file[self.dataset]
        return np.asarray(self._ds[key]).reshape((count,) + self._row_shape)

    def _row_indices(self, index: Any) -> np.ndarray:
        """Normalise a mask or integer index array to non-negative int64 row numbers."""
        n = self._n
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"boolean index of shape {idx.shape} does not match {self!r}.")
            return np.flatnonzero(idx)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise IndexError(f"{self!r} rows take an int, a slice or a 1-D integer array, "
                             f"not {idx.dtype} of shape {idx.shape}.")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row indices must be in [-{n}, {n}) for {self!r}.")
        return np.where(idx < 0, idx + n, idx)

    def _rows(self, index: Any) -> np.ndarray:
        n, s = self._n, self._start
        if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for {self!r}.")
            return self._read(s + i % n, 1)[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step > 0:
                count = len(range(start, stop, step))
                if count == 0:
                    return np.empty((0,) + self._row_shape, self._dtype)
                return self._read(slice(s + start, s + stop, step), count)
            index = np.arange(start, stop, step)
        idx = self._row_indices(index)
        if idx.size == 0:
            return np.empty((0,) + self._row_shape, self._dtype)
        # h5py reads only increasing, unique indices: read those, then undo sort and dedup.
        uniq, inverse = np.unique(idx, return_inverse=True)
        return self._read(uniq + s, len(uniq))[inverse.reshape(-1)]

    def __getitem__(self, index: Any) -> np.ndarray:
        """Read rows (first index) then apply any further indices to the in-memory result."""
        if not isinstance(index, tuple):
            return self._rows(index)
        if not index:
            return self[:]
        rows = self._rows(index[0])
        if isinstance(index[0], (int, np.integer)):
            return rows[index[1:]]
        return rows[(slice(None),) + index[1:]]


def load_hdf5(path: str | Path, x: str = "x", y: str = "y") -> Pair:
    """Open datasets of an HDF5 file as lazy `H5Array`s (nothing is read yet).

    If the file holds datasets `x` and `y`, returns `(X, Y)`; otherwise, if it holds
    `{x}_train`, `{y}_train`, `{x}_test`, `{y}_test`, returns `(X_train, Y_train), (X_test, Y_test)`.

    Args:
        path: the HDF5 file.
        x: name (or name stem) of the inputs' dataset.
        y: name (or name stem) of the targets' dataset.
    """
    p, f = _open_h5(path)
    try:
        names = _h5_datasets(f)
    finally:
        f.close()
    keys = _pick_keys(p, names, x, y, "datasets")
    return _pairs(p, keys, [H5Array(p, k) for k in keys])
