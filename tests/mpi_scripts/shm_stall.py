"""Rank 0 waits in a shared-memory allreduce that rank 1 never joins (it sleeps)."""
import time

import numpy as np

from distdl.comm.mpi import MPIComm

comm = MPIComm(allreduce="shm")
buf = np.ones(100000, dtype=np.float32)
comm.allreduce_sum(buf)  # both ranks: the window exists
if comm.rank == 1:
    time.sleep(60)
comm.allreduce_sum(buf)
