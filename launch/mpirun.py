"""The `mpirun` command line: find the launcher, detect its MPI, build the argv.

`build_argv` is a pure function of the options, one branch per implementation, so
each is unit-tested without that MPI installed. MPICH and Intel MPI both use the
Hydra process manager but disagree on host syntax; Open MPI differs everywhere.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from distdl.errors import ConfigError

from .hosts import Host

__all__ = ["IMPLS", "BLAS_VARS", "MpirunOptions", "find_mpirun", "impl_from_version", "detect_impl",
           "blas_threads", "rank_env", "local_command", "python_command", "needs_hostfile",
           "format_hostfile", "build_argv"]

IMPLS = ("mpich", "openmpi", "intel")
BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
HERE = Path(__file__).resolve().parent
RANKWRAP = str(HERE / "rankwrap.py")
PYRUN = str(HERE / "pyrun.py")

INSTALL_HINT = ("install one with `pip install mpich` (in this environment) or your system's MPI "
                "(e.g. `apt install mpich`), or pass --mpirun PATH")


def find_mpirun(explicit: str | None = None, python: str = sys.executable,
                path: str | None = None) -> str:
    """The mpirun to use: `explicit`, else next to `python` (a venv's wheel), else PATH.

    Args:
        explicit: what --mpirun was given, if anything.
        python: the interpreter whose bin/ is searched first.
        path: the PATH to search (None: the process's own).
    """
    if explicit:
        found = shutil.which(explicit)
        if not found:
            raise ConfigError(f"--mpirun {explicit!r} is not an executable file.")
        return found
    bindir = Path(python).parent
    for name in ("mpirun", "mpiexec"):
        candidate = bindir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for name in ("mpirun", "mpiexec"):
        found = shutil.which(name, path=path)
        if found:
            return found
    raise ConfigError(f"No mpirun or mpiexec found; {INSTALL_HINT}.")


def impl_from_version(text: str) -> str:
    """Name the MPI implementation from the output of `mpirun --version`.

    Args:
        text: what `mpirun --version` printed.
    """
    if "Intel(R) MPI" in text:
        return "intel"
    if "Open MPI" in text or "OpenRTE" in text or "open-mpi.org" in text:
        return "openmpi"
    if "HYDRA" in text or "MPICH" in text:
        return "mpich"
    first = text.strip().splitlines()[0] if text.strip() else "nothing"
    raise ConfigError(f"Cannot tell which MPI `mpirun --version` belongs to (it printed {first!r}); "
                      f"distdlrun supports MPICH, Open MPI and Intel MPI.")


def detect_impl(mpirun: str) -> str:
    """Run `mpirun --version` (bounded) and name its implementation.

    Args:
        mpirun: the mpirun/mpiexec path.
    """
    try:
        done = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"Cannot run {mpirun!r} --version ({exc}); {INSTALL_HINT}.") from None
    return impl_from_version(done.stdout + done.stderr)


def blas_threads(cores: int, ranks_on_host: int) -> int:
    """BLAS threads per rank so that ranks on one host do not fight over its cores.

    Args:
        cores: the cores of the host.
        ranks_on_host: how many ranks share them.
    """
    return max(1, cores // max(1, ranks_on_host))


def rank_env(environ: Mapping[str, str], *, threads: int, stall_timeout: float | None = None,
             extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables to forward to every rank: BLAS threads the user did not set, unbuffered
    Python output (so a dying rank's last lines arrive), the stall timeout, `-x` pairs.

    Args:
        environ: distdlrun's environment (variables set there are left alone).
        threads: BLAS threads per rank.
        stall_timeout: seconds for DISTDL_STALL_TIMEOUT, or None.
        extra: the -x pairs (and DISTDL_TTY), set last.
    """
    env = {name: str(threads) for name in BLAS_VARS if name not in environ}
    if "PYTHONUNBUFFERED" not in environ:
        env["PYTHONUNBUFFERED"] = "1"
    if stall_timeout:
        env["DISTDL_STALL_TIMEOUT"] = f"{stall_timeout:g}"
    env.update(extra or {})
    return env


def local_command(command: list[str], python: str = sys.executable) -> tuple[list[str], str | None]:
    """The command with its program taken from the interpreter distdlrun runs under: `python`,
    `python3` and `python3.N` (this Python's N) become that interpreter, and any other bare name
    that exists beside it (`distdl`, `pytest` in a virtualenv's bin/) that file. So `-- python
    train.py` runs the venv's Python whether or not the venv is activated. Returns (command, what
    was replaced, or None); a path, or a name not found there, is left to PATH.

    Args:
        command: what follows `--` on distdlrun's command line.
        python: the interpreter distdlrun runs under.
    """
    head = command[0] if command else ""
    if not head or "/" in head:
        return list(command), None
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if head in ("python", f"python{sys.version_info.major}", here):
        return [python, *command[1:]], head
    beside = Path(python).parent / head
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside), *command[1:]], head
    return list(command), None


def python_command(command: list[str]) -> list[str]:
    """Run a `python script|-m mod` command through `pyrun.py`, which ends the rank
    at once on an uncaught exception instead of leaving it hanging in MPI_Finalize.

    Args:
        command: what each rank runs.
    """
    if len(command) >= 2 and re.fullmatch(r"python(\d+(\.\d+)?)?", os.path.basename(command[0])):
        head = command[1]
        if head == "-m" or not head.startswith("-"):
            return [command[0], PYRUN, *command[1:]]
    return list(command)


@dataclass(frozen=True)
class MpirunOptions:
    """Everything the argv depends on. `hostfile` is the path of the translated
    hostfile (see `needs_hostfile`); `command` is what each rank runs."""

    np: int
    command: tuple[str, ...]
    hosts: tuple[Host, ...] = ()
    hostfile: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    oversubscribe: bool = False
    python: str = sys.executable


def needs_hostfile(impl: str, hosts: list[Host] | tuple[Host, ...], from_file: bool) -> bool:
    """Whether hosts must go to mpirun as a file: when the user gave one, and for Intel
    MPI whenever hosts differ in slots (its -hosts takes no counts).

    Args:
        impl: `mpich`, `openmpi` or `intel`.
        hosts: the hosts given.
        from_file: whether they came from --hostfile.
    """
    if not hosts:
        return False
    if from_file:
        return True
    return impl == "intel" and len({h.slots for h in hosts}) > 1


def format_hostfile(hosts: list[Host] | tuple[Host, ...], impl: str) -> str:
    """A hostfile in the implementation's syntax (`host slots=N` for Open MPI, else `host:N`).

    Args:
        hosts: the hosts.
        impl: `mpich`, `openmpi` or `intel`.
    """
    if impl == "openmpi":
        return "".join(f"{h.name} slots={h.slots}\n" for h in hosts)
    return "".join(f"{h.name}:{h.slots}\n" for h in hosts)


def build_argv(impl: str, mpirun: str, opts: MpirunOptions) -> list[str]:
    """The exact mpirun argv: each rank runs `rankwrap.py` (which reports its exit and
    labels its output) around `opts.command`.

    Args:
        impl: `mpich`, `openmpi` or `intel`.
        mpirun: the launcher's path.
        opts: everything else the argv depends on.
    """
    if impl not in IMPLS:
        raise ConfigError(f"Unknown MPI implementation {impl!r}; valid names are: {', '.join(IMPLS)}.")
    if opts.np < 1:
        raise ConfigError(f"-np must be at least 1, got {opts.np}.")
    argv = [mpirun, "-n", str(opts.np)]
    spec = ",".join(f"{h.name}:{h.slots}" for h in opts.hosts)
    if impl == "openmpi":
        if opts.hostfile:
            argv += ["--hostfile", opts.hostfile]
        elif opts.hosts:
            argv += ["-H", spec]
        if opts.oversubscribe:
            argv.append("--oversubscribe")
        for key, value in opts.env.items():
            argv += ["-x", f"{key}={value}"]
    else:
        if opts.hostfile:
            argv += ["-f" if impl == "mpich" else "-machinefile", opts.hostfile]
        elif opts.hosts and impl == "mpich":
            argv += ["-hosts", spec]
        elif opts.hosts:  # Intel MPI, equal slots everywhere
            argv += ["-hosts", ",".join(h.name for h in opts.hosts), "-ppn", str(opts.hosts[0].slots)]
        for key, value in opts.env.items():
            argv += ["-genv", key, value]
    return argv + [opts.python, RANKWRAP, "--", *opts.command]
