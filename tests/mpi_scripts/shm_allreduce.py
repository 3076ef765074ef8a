"""The shared-memory allreduce at every size: exact rank-order sums, bitwise equal on all ranks.

Prints 'shm ok rank R of N' from every rank; exits non-zero on the first failure.
"""
import hashlib

import numpy as np

from distdl.comm.mpi import MPIComm

comm = MPIComm(allreduce="shm")  # shared memory at every size, not only from 64 KiB
r, n = comm.rank, comm.size
assert comm._node_shm(8) is not None, "one node: the shared-memory path must be on"
SIZES = [0, 1, 2, 3, 5, 15, 16, 17, 33, 1001, 16 * n + 1, 65537, 300007]


def ranks_data(size, dtype, q):
    """Rank q's buffer: the same on every rank, so each can compute the expected sum."""
    return np.random.default_rng([size, q]).standard_normal(size).astype(dtype)


def expected(size, dtype):
    out = ranks_data(size, dtype, 0)
    for q in range(1, n):
        out = out + ranks_data(size, dtype, q)  # rank order 0, 1, ..., n-1
    return out


def same_on_all_ranks(arr):
    digest = hashlib.sha256(arr.tobytes()).hexdigest()
    assert len(set(comm.allgather_obj(digest))) == 1, "ranks hold different sums"


def window(size, dtype, offset=0):
    """A buffer inside this rank's shared segment (offset 0: the zero-copy case)."""
    nbytes = size * np.dtype(dtype).itemsize
    seg = comm.shared_segment(nbytes + offset) if nbytes + offset else None
    return np.empty(size, dtype) if seg is None else seg[offset:offset + nbytes].view(dtype)


for dtype in (np.float32, np.float64):
    for size in SIZES:
        want = expected(size, dtype)
        plain = ranks_data(size, dtype, r)
        assert comm.allreduce_sum(plain) is plain
        assert np.array_equal(plain, want), ("plain", dtype, size)
        same_on_all_ranks(plain)
        for offset in (0, 64):  # in the window at its start (zero copy) and further in (copied)
            buf = window(size, dtype, offset)
            buf[...] = ranks_data(size, dtype, r)
            comm.allreduce_sum(buf)
            assert np.array_equal(buf, want), ("window", offset, dtype, size)
            same_on_all_ranks(buf)

# repeated calls on the same buffer, with exactly representable sums
for buf in (window(70001, np.float32), np.empty(70001, np.float32)):
    buf[...] = r + 1
    for k in range(1, 5):
        comm.allreduce_sum(buf)
        assert (buf == n * (n + 1) / 2 * n ** (k - 1)).all(), ("repeat", k)

# ranks that pass different kinds of buffer (window here, plain there) fall back to MPI
w = window(5000, np.float64)
mixed = w if r == 0 else np.empty(5000)
mixed[...] = r
comm.allreduce_sum(mixed)
assert (mixed == n * (n - 1) / 2).all(), "mixed buffers"

# other dtypes and non-contiguous buffers keep MPI's allreduce
ints = np.full(10, r, dtype=np.int64)
comm.allreduce_sum(ints)
assert (ints == n * (n - 1) / 2).all()

# the default (auto) communicator: small buffers and plain ones over 4 MiB through MPI, the rest
# through shared memory
auto = MPIComm()
for size in (3, 100000, 1200000):
    b = ranks_data(size, np.float32, r)
    auto.allreduce_sum(b)
    np.testing.assert_allclose(b, expected(size, np.float32), rtol=1e-6)
    same_on_all_ranks(b)
print(f"shm ok rank {r} of {n}", flush=True)
