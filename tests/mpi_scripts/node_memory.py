"""Whether a model's weights are one copy in node-shared memory, for the trajectory scripts.

The sharded optimizer step keeps the weights (and slots) once per node, where every rank sees
them; MPI's allreduce and a full update keep a private copy per rank. The trajectory tests use
this to know that a run with DISTDL_ALLREDUCE=shm really took the node-shared path.
"""
import numpy as np


def weights_shared_by_node(model, comm) -> bool:
    """Rank 0 writes NaN over its first weight and every rank looks; True when all saw it.
    Collective; rank 0 puts the weight back bitwise, and no rank reads weights meanwhile."""
    if comm.size == 1:
        return False
    flat = model.params.reshape(-1)
    old = flat[0].copy()
    comm.barrier()
    if comm.rank == 0:
        flat[0] = np.nan
    comm.barrier()
    seen = bool(np.isnan(flat[0]))
    comm.barrier()
    if comm.rank == 0:
        flat[0] = old
    comm.barrier()
    return all(comm.allgather_obj(seen))
