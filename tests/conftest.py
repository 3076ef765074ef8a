"""Markers and shared fixtures of the suite.

Markers (registered in pyproject.toml, which makes pytest refuse unknown ones):
- `mpi`: the test starts real MPI ranks (`mpirun -n N` or a `distdlrun` job). `pytest -m "not mpi"`
  runs the unit tests alone, in one process each, and `pytest -m mpi` the multi-rank ones. A test
  that starts ranks through tests/mpirun.py without the marker fails, so the split stays honest.
- `slow`: an in-process test that trains for seconds (real data sets, gradient checks of big
  layers); `pytest -m "not mpi and not slow"` is the quick loop while editing.
"""
import pytest

import mpirun
from distdl import backend


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture of the test is set up: allow MPI launches only under the `mpi` marker."""
    mpirun.MPI_ALLOWED = item.get_closest_marker("mpi") is not None


def _floatx(dtype):
    old = backend.floatx()
    backend.set_floatx(dtype)
    try:
        yield
    finally:
        backend.set_floatx(old)


@pytest.fixture
def float64():
    """New layers, weights and data conversions in float64 for the test (tight tolerances)."""
    yield from _floatx("float64")


@pytest.fixture
def float32():
    """float32, the default, whatever an earlier test left set."""
    yield from _floatx("float32")
