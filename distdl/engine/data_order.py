"""Global-batch data order: one permutation per (seed, epoch), contiguous per-rank slices.

The order never depends on the number of ranks, so N ranks walk the same global
batches as one process and a checkpoint resumes on any number of ranks.
"""
from __future__ import annotations

import numpy as np

__all__ = ["epoch_order", "batch_bounds", "my_rows", "gathered_order", "take_rows"]


def epoch_order(seed: int, epoch: int, n: int, shuffle: bool = True) -> np.ndarray:
    """Row order for one epoch: a permutation drawn from (seed, epoch), or 0..n-1. Every rank
    draws the same one, as the seed is the fit's shared seed.

    Args:
        seed: the fit's seed (rank 0's, broadcast).
        epoch: the epoch's index.
        n: the number of rows.
        shuffle: False keeps the rows in order.
    """
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of every global batch; the last one may be partial.

    Args:
        n: the number of rows.
        batch_size: rows per global batch.
    """
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def _rank_slice(rows: int, rank: int, size: int) -> tuple[int, int]:
    """This rank's contiguous share of `rows`; shares differ by at most one row."""
    base, extra = divmod(rows, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def my_rows(rows: int, comm) -> tuple[int, int]:
    """(start, stop) of this rank's contiguous slice of `rows` rows (a global batch) on `comm`;
    the slices of the ranks differ by at most one row.

    Args:
        rows: the rows of the global batch.
        comm: the communicator whose rank and size split them.
    """
    return _rank_slice(rows, comm.rank, comm.size)


def gathered_order(n: int, batch_size: int, comm) -> tuple[np.ndarray, list[int]]:
    """(order, counts): where each row of `comm.allgather_rows`'s result (rank 0's slices of every
    global batch of `batch_size` rows, then rank 1's, ...) belongs in the global order of the `n`
    rows, and how many rows each rank holds; order is None on one rank (the rows are in order).

    Args:
        n: the number of rows.
        batch_size: rows per global batch.
        comm: the communicator the rows were split over.
    """
    if comm.size == 1:
        return None, [n]
    bounds = batch_bounds(n, batch_size)
    per_rank = [[np.arange(s + a, s + z) for s, e in bounds for a, z in [_rank_slice(e - s, r, comm.size)]]
                for r in range(comm.size)]
    counts = [sum(len(i) for i in rows) for rows in per_rank]
    return np.concatenate([i for rows in per_rank for i in rows] or [np.zeros(0, dtype=int)]), counts


def take_rows(array, index):
    """Rows `index` (an index array or a slice) of an array or of a lazy array (e.g. HDF5).

    Args:
        array: a NumPy array or an array-like that reads rows when indexed.
        index: an index array or a slice.
    """
    if isinstance(array, np.ndarray):
        return array[index]
    return np.asarray(array[index])
