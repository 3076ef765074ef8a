"""Sequences into arrays: Keras's `pad_sequences` and `timeseries_dataset_from_array`.

`timeseries_dataset_from_array` returns a `TimeseriesDataset`, not a `tf.data.Dataset`: a plain
sequence of `(x, y)` NumPy batches (or `x` alone without targets) with `__len__`, `__getitem__`
and `__iter__`, and `on_epoch_end`, which reshuffles when `shuffle=True`. Its batches are global
batches: give it to `fit` as any batch source, or take its arrays apart.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError

__all__ = ["pad_sequences", "timeseries_dataset_from_array", "TimeseriesDataset"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Sequences of different lengths as one array of shape (len(sequences), maxlen, ...), as Keras:
    `pad_sequences([[1], [1, 2], [1, 2, 3]], maxlen=2)` is `[[0, 1], [1, 2], [2, 3]]`.

    Args:
        sequences: a list of sequences (lists or arrays; their items may be arrays of one shape).
        maxlen: the length of the result; None takes the longest sequence's.
        dtype: the result's dtype (`object` or a string dtype for strings).
        padding: "pre" or "post": pad before or after each sequence.
        truncating: "pre" or "post": drop values from the start or the end of longer sequences.
        value: the padding value.
    """
    if padding not in ("pre", "post"):
        raise ConfigError(f"pad_sequences' padding must be 'pre' or 'post'; got {padding!r}.")
    if truncating not in ("pre", "post"):
        raise ConfigError(f"pad_sequences' truncating must be 'pre' or 'post'; got {truncating!r}.")
    if not hasattr(sequences, "__len__"):
        raise ConfigError("pad_sequences' sequences must be a list of sequences; got an object with no length.")
    lengths = []
    for i, s in enumerate(sequences):
        if not hasattr(s, "__len__"):
            raise ConfigError(f"pad_sequences' sequences[{i}] is not a sequence: {s!r}.")
        lengths.append(len(s))
    # the items' shape comes from the first non-empty sequence, as in Keras
    sample_shape = next((np.asarray(s).shape[1:] for s in sequences if len(s)), ())
    maxlen = (max(lengths) if lengths else 0) if maxlen is None else int(maxlen)
    text_dtype = np.dtype(dtype).kind in "USO"
    if isinstance(value, str) and not text_dtype:
        raise ConfigError(f"pad_sequences' dtype {np.dtype(dtype)} cannot hold the string value {value!r}; "
                          f"give dtype=object (or a string dtype) for strings.")
    out = np.full((len(sequences), maxlen) + tuple(sample_shape), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or not maxlen:
            continue
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != tuple(sample_shape):
            raise ShapeError(f"pad_sequences: the items of sequences[{i}] have shape {kept.shape[1:]}, the "
                             f"first sequence's have {tuple(sample_shape)}.")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, -len(kept):] = kept
    return out


class TimeseriesDataset:
    """Batches of windows over a series; see `timeseries_dataset_from_array`.

    Args:
        data: the series, time along axis 0 (already cut to start_index:end_index).
        targets: the targets, `targets[i]` for the window starting at `data[i]`; or None.
        starts: the window starts, in order.
        sequence_length: timesteps per window.
        sampling_rate: the step between a window's timesteps.
        batch_size: windows per batch; None yields single windows.
        shuffle: reshuffle the windows at each `on_epoch_end`.
        seed: the seed of the shuffles.
    """

    def __init__(self, data, targets, starts, sequence_length, sampling_rate, batch_size, shuffle, seed) -> None:
        self.data, self.targets = data, targets
        self.starts = np.array(starts)
        self.offsets = np.arange(sequence_length) * sampling_rate
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._rng = np.random.RandomState(seed)
        if shuffle:
            self._rng.shuffle(self.starts)

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self.starts)
        return -(-len(self.starts) // self.batch_size)

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} of a TimeseriesDataset of {len(self)} batches")
        index %= len(self)
        size = self.batch_size or 1
        starts = self.starts[index * size:(index + 1) * size]
        x = self.data[starts[:, None] + self.offsets]
        y = None if self.targets is None else self.targets[starts]
        if self.batch_size is None:
            x, y = x[0], None if y is None else y[0]
        return x if y is None else (x, y)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        """Reshuffle the windows (with `shuffle=True`), as Keras's dataset does at each pass."""
        if self.shuffle:
            self._rng.shuffle(self.starts)


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None):
    """Sliding windows over a series, in batches, as Keras's (a `TimeseriesDataset` of NumPy batches).

    Window i holds `data[s], data[s + r], ..., data[s + (sequence_length - 1) * r]` with
    `s = start_index + i * sequence_stride` and `r = sampling_rate`; its target is `targets[s - start_index]`.
    With `data = arange(100)`, `targets = 2 * data`, `sequence_length=9`, `batch_size=5` there are
    92 windows in 19 batches, the last of 2.

    Args:
        data: the series, time along axis 0.
        targets: the target of each window start, or None to yield windows alone.
        sequence_length: timesteps per window.
        sequence_stride: the step between the starts of successive windows.
        sampling_rate: the step between the timesteps of a window.
        batch_size: windows per batch; None yields single windows.
        shuffle: shuffle the windows (again at each pass).
        seed: the seed of the shuffles.
        start_index: the first timestep used (default 0).
        end_index: one past the last timestep used (default: the series' end).
    """
    n = len(data)
    for name, v in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride),
                    ("sampling_rate", sampling_rate)):
        if int(v) <= 0:
            raise ConfigError(f"timeseries_dataset_from_array's {name} must be higher than 0; got {v}.")
    if sampling_rate >= n or sequence_stride >= n:
        name, v = ("sampling_rate", sampling_rate) if sampling_rate >= n else ("sequence_stride", sequence_stride)
        raise ConfigError(f"timeseries_dataset_from_array's {name} must be lower than the length of the data "
                          f"({n}); got {v}.")
    if start_index is not None and not 0 <= start_index < n:
        raise ConfigError(f"timeseries_dataset_from_array's start_index must be in [0, {n}) for data of "
                          f"length {n}; got {start_index}.")
    if end_index is not None and not (start_index or 0) < end_index < n:
        raise ConfigError(f"timeseries_dataset_from_array's end_index must be higher than start_index and "
                          f"lower than the length of the data ({n}); got {end_index}.")
    if batch_size is not None and int(batch_size) <= 0:
        raise ConfigError(f"timeseries_dataset_from_array's batch_size must be positive or None; got {batch_size}.")
    start = start_index or 0
    end = n if end_index is None else end_index
    data = np.asarray(data)[start:end]
    count = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)[start:end]
        count = min(count, len(targets))
    starts = np.arange(0, max(count, 0), sequence_stride)
    return TimeseriesDataset(data, targets, starts, int(sequence_length), int(sampling_rate),
                             None if batch_size is None else int(batch_size), bool(shuffle),
                             np.random.randint(10 ** 6) if seed is None and shuffle else seed)
