"""The small real datasets shipped inside the package, with fixed train/test splits.

Provenance, licence (CC BY 4.0) and the split rule are in `data/LICENSE-DATA.txt`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backend import floatx
from ..errors import DataError

__all__ = ["DATA_DIR", "Split", "load_digits", "load_breast_cancer"]

DATA_DIR = Path(__file__).resolve().parent / "data"

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _read(name: str) -> dict[str, np.ndarray]:
    path = DATA_DIR / f"{name}.npz"
    if not path.is_file():
        raise DataError(f"Shipped dataset file {path} is missing; reinstall distdl.")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def load_digits() -> Split:
    """UCI handwritten digits: images (n, 8, 8) in [0, 1] (pixels / 16), int64 labels 0..9.

    Returns `(x_train, y_train), (x_test, y_test)` with 1,437 / 360 rows.
    """
    d = _read("digits")
    dt = floatx()
    # Pixel counts are 0..16 (4x4 blocks of a 32x32 bitmap), so /16 maps them onto [0, 1].
    return ((d["x_train"].astype(dt) / np.asarray(16, dt), d["y_train"].astype(np.int64)),
            (d["x_test"].astype(dt) / np.asarray(16, dt), d["y_test"].astype(np.int64)))


def load_breast_cancer() -> Split:
    """Breast Cancer Wisconsin (Diagnostic): features (n, 30), labels 0 = malignant, 1 = benign.

    Features are standardized with the train split's mean and std (ddof=0), applied to both
    splits, so no test statistics leak into training. Returns 455 / 114 rows.
    """
    d = _read("breast_cancer")
    x_train = d["x_train"].astype(np.float64)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0  # a constant feature stays 0 instead of becoming NaN
    dt = floatx()

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x.astype(np.float64) - mean) / std).astype(dt)

    return ((scale(d["x_train"]), d["y_train"].astype(np.int64)),
            (scale(d["x_test"]), d["y_test"].astype(np.int64)))
