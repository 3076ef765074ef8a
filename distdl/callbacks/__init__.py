"""Keras-style callbacks, importable from here as from `keras.callbacks`.

| module | its one job |
| --- | --- |
| `base` | `Callback` (every hook a no-op) and `History` |
| `core` | `CallbackList`, which the training loop drives, and the simple callbacks |
| `monitor` | callbacks that watch a metric: `EarlyStopping`, `ReduceLROnPlateau`, `LearningRateScheduler` |
| `progress` | the Keras-style progress bar, `ProgbarLogger` (rank 0 prints) |
| `checkpoint` | `ModelCheckpoint` and `BackupAndRestore` (files through `distdl.saving`) |
| `tensorboard`, `event_file` | `TensorBoard` (rank 0 writes); TensorBoard's record format and protobufs, hand-encoded |
"""
from .base import Callback, History
from .checkpoint import BackupAndRestore, ModelCheckpoint
from .core import CallbackList, CSVLogger, LambdaCallback, TerminateOnNaN
from .monitor import EarlyStopping, LearningRateScheduler, ReduceLROnPlateau
from .progress import ProgbarLogger
from .tensorboard import TensorBoard

__all__ = [
    "Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
    "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger", "TerminateOnNaN",
    "LambdaCallback", "ModelCheckpoint", "BackupAndRestore", "TensorBoard",
]
