"""distdl: Keras-style deep learning on plain NumPy, trained data-parallel over MPI."""
__version__ = "0.1.0"
