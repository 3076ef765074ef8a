"""Datasets: the small real ones shipped with distdl, and loaders for user data files."""
from .shipped import load_breast_cancer, load_digits

__all__ = ["load_breast_cancer", "load_digits"]
