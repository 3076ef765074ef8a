"""Datasets: the small real ones shipped with distdl, and loaders for user data files."""
from .files import SHIPPED_NAMES, H5Array, load, load_hdf5, load_idx, load_npz, read_idx
from .shipped import load_breast_cancer, load_digits

__all__ = ["SHIPPED_NAMES", "H5Array", "load", "load_breast_cancer", "load_digits", "load_hdf5", "load_idx",
           "load_npz", "read_idx"]
