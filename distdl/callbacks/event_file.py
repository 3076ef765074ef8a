"""TensorBoard event files written with the standard library: the record framing and the protobufs.

An event file is a stream of TFRecords. Each record is the little-endian uint64 length of its data,
the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data. The data is a
serialized `tensorflow.Event` protobuf; the first one carries `file_version = "brain.Event:2"`.
We encode the few messages we need by hand (no protobuf or TensorFlow dependency):

    Event          wall_time: double = 1, step: int64 = 2, file_version: string = 3, summary = 5
    Summary        repeated Value value = 1
    Summary.Value  tag: string = 1, simple_value: float = 2, histo: HistogramProto = 5
    HistogramProto min = 1, max = 2, num = 3, sum = 4, sum_squares = 5 (doubles),
                   packed repeated double bucket_limit = 6, bucket = 7

The file name follows TensorFlow's `events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2`, which is
what TensorBoard looks for in a log directory.
"""
from __future__ import annotations

import itertools
import os
import socket
import struct
import time

import numpy as np

__all__ = ["crc32c", "masked_crc32c", "frame_record", "encode_event", "scalar_value", "histogram_value",
           "EventFileWriter"]


def _crc32c_table() -> tuple[int, ...]:
    """The 256-entry table of CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (table-driven, one byte at a time); crc32c(b"123456789") == 0xE3069283.

    Args:
        data: the bytes to checksum.
    """
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: the CRC rotated right by 15 bits plus 0xA282EAD8 (mod 2**32), so that
    a CRC of data that itself holds CRCs does not degenerate.

    Args:
        data: the bytes to checksum.
    """
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data.

    Args:
        data: a serialized Event.
    """
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


# ----- protobuf wire format ------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 as protobuf writes it: two's complement in 10 bytes when negative
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _double(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(value))


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", float(value))


def _bytes(field: int, value: bytes) -> bytes:
    return _key(field, 2) + _varint(len(value)) + value


def scalar_value(tag: str, value: float) -> bytes:
    """A `Summary.Value` holding a scalar (`simple_value`, a float32 as TensorBoard's scalars are).

    Args:
        tag: the scalar's name, e.g. "epoch_loss".
        value: the number.
    """
    return _bytes(1, tag.encode("utf-8")) + _float(2, value)


def histogram_value(tag: str, values, bins: int = 30) -> bytes:
    """A `Summary.Value` holding a `HistogramProto` of `values` in `bins` equal-width buckets
    between their min and max (as TensorFlow 2's `tf.summary.histogram`).

    Args:
        tag: the histogram's name, e.g. "dense/kernel/histogram".
        values: an array of any shape (flattened, as float64).
        bins: the number of buckets.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size:
        lo, hi = float(x.min()), float(x.max())
        counts, edges = np.histogram(x, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, lo + 0.5))
        limits = edges[1:]
    else:
        lo = hi = 0.0
        counts, limits = np.zeros(0), np.zeros(0)
    histo = (_double(1, lo) + _double(2, hi) + _double(3, x.size) + _double(4, x.sum())
             + _double(5, np.dot(x, x))
             + _bytes(6, np.asarray(limits, "<f8").tobytes()) + _bytes(7, np.asarray(counts, "<f8").tobytes()))
    return _bytes(1, tag.encode("utf-8")) + _bytes(5, histo)


def encode_event(wall_time: float, step: int = 0, values: list[bytes] | None = None,
                 file_version: str | None = None) -> bytes:
    """A serialized `Event`: a summary of `values` at `step`, or the file-version header.

    Args:
        wall_time: seconds since the epoch.
        step: the step TensorBoard plots it at (the epoch, or the global batch count).
        values: serialized `Summary.Value`s (from `scalar_value`, `histogram_value`).
        file_version: for the first event of a file, "brain.Event:2".
    """
    out = _double(1, wall_time) + _key(2, 0) + _varint(int(step))
    if file_version is not None:
        out += _bytes(3, file_version.encode("ascii"))
    if values:
        out += _bytes(5, b"".join(_bytes(1, v) for v in values))
    return out


_file_counter = itertools.count()


class EventFileWriter:
    """Appends events to a new file in `log_dir` (created if missing); the first is the header.

    Args:
        log_dir: the folder, e.g. "logs/train".
        clock: the wall-clock source (seconds), so tests can fix the time.
    """

    def __init__(self, log_dir: str, clock=time.time) -> None:
        os.makedirs(log_dir, exist_ok=True)
        self._clock = clock
        name = (f"events.out.tfevents.{int(clock()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_file_counter)}.v2")
        self.path = os.path.join(log_dir, name)
        self._file = open(self.path, "xb")
        self._file.write(frame_record(encode_event(clock(), 0, file_version="brain.Event:2")))
        self._file.flush()

    def add(self, step: int, values: list[bytes]) -> None:
        """Write one event holding `values` at `step`.

        Args:
            step: the step to plot at.
            values: serialized `Summary.Value`s.
        """
        self._file.write(frame_record(encode_event(self._clock(), step, values)))

    def flush(self) -> None:
        """Push what was written to the file, so a running TensorBoard sees it."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file (a second close does nothing)."""
        if not self._file.closed:
            self._file.close()
