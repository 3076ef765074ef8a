"""Start real `mpirun -n N` jobs from tests (MPICH from the venv's mpich wheel)."""
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def mpirun_path() -> str:
    cand = Path(sys.executable).parent / "mpirun"
    return str(cand) if cand.exists() else "mpirun"


def run_mpi(n, script, *args, timeout=120, env=None):
    """Run tests/mpi_scripts/SCRIPT on n ranks; returns the CompletedProcess."""
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
             PYTHONPATH=str(HERE.parent))
    e.update(env or {})
    argv = [mpirun_path(), "-n", str(n), sys.executable, str(HERE / "mpi_scripts" / script), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=e)


def run_serial(script, *args, timeout=120):
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(HERE.parent))
    for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        e.pop(k, None)
    return subprocess.run([sys.executable, str(HERE / "mpi_scripts" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=e)
