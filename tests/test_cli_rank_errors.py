"""The CLIs' error path under MPI (issue 20 point 8): an error on one rank alone ends the whole
job with its sentence (MPI_Abort) instead of that rank exiting while the others wait; an error
every rank agreed on is told once, by rank 0, and every rank exits 2."""
import time

import pytest

from mpirun import run_mpi

pytestmark = pytest.mark.mpi


def test_an_error_on_one_rank_ends_the_whole_job():
    t = time.monotonic()
    p = run_mpi(2, "cli_error_on_one_rank.py", "alone", timeout=60)
    assert time.monotonic() - t < 20
    assert p.returncode != 0
    assert p.stderr.count("error: only rank 1 fails here") == 1 and "[rank 1] error:" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_an_agreed_error_is_told_once_and_every_rank_exits_2():
    p = run_mpi(2, "cli_error_on_one_rank.py", "agreed", timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == ["error: every rank fails alike"], p.stderr
