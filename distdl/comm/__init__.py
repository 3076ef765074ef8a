"""Communicators: `SerialComm` for one process, `MPIComm` under an MPI launcher, and their
update strategies (`strategies`: how an optimizer step is taken across ranks).

`world()` picks one. mpi4py is imported only by `distdl.comm.mpi`, lazily, so
single-process use needs no MPI library at all.
"""
from __future__ import annotations

import os

from .base import Communicator, SerialComm, UpdateStrategy

_MPI_ENV = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
_world = None


def launched_by_mpi() -> bool:
    """True when an MPI launcher (Hydra, Open MPI, Intel MPI, PMIx) started this process."""
    return any(k in os.environ for k in _MPI_ENV)


def world() -> Communicator:
    """The world communicator: MPI when launched by mpirun/mpiexec, else a size-1 SerialComm."""
    global _world
    if _world is None:
        if launched_by_mpi():
            from .mpi import MPIComm
            _world = MPIComm()
        else:
            _world = SerialComm()
    return _world


def ranks_for(comm: Communicator) -> Communicator:
    """The ranks a model's collective work uses: `comm` when it spans several ranks (a fit was given
    or picked it), else the world (a model not yet fitted holds a size-1 SerialComm, yet under MPI
    every rank of the job calls predict, save or load).

    Args:
        comm: the communicator a model holds (`model.comm`).
    """
    return comm if comm.size > 1 else world()


__all__ = ["Communicator", "SerialComm", "UpdateStrategy", "world", "launched_by_mpi", "ranks_for"]
