"""Communicator checks that hold at any world size; prints 'comm ok' from every rank."""
import numpy as np

from distdl.comm import world

comm = world()
r, n = comm.rank, comm.size
buf = np.array([r, 1.0])
comm.allreduce_sum(buf)
assert buf[0] == n * (n - 1) / 2 and buf[1] == n, buf
b = np.full(3, r, dtype=np.float32)
comm.bcast(b, root=n - 1)
assert (b == n - 1).all(), b
assert comm.bcast_obj({"from": r}, root=0) == {"from": 0}
assert comm.allgather_obj([r, "x" * r]) == [[i, "x" * i] for i in range(n)]
rows = np.full((r + 1, 2), r, dtype=np.float64)
allrows = comm.allgather_rows(rows, [i + 1 for i in range(n)])
assert allrows.shape == (n * (n + 1) // 2, 2) and list(allrows[:, 0]) == [i for i in range(n) for _ in range(i + 1)]
comm.barrier()
print(f"comm ok rank {r} of {n}", flush=True)
