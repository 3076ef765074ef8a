"""Per-rank wrapper that mpirun starts: `python rankwrap.py -- COMMAND...`.

It runs COMMAND as its child, prefixes each output line with `[rank] `, forwards
SIGTERM/SIGINT to it, and reports on stderr, as marker lines that `distdlrun`
reads and hides, where the rank runs and how it ended. So the launcher learns of
a dead rank at once (mpirun would wait for the survivors, stuck in a collective),
on every node, through mpirun's own output channel. Standard library only: it is
run by path on every host.
"""
from __future__ import annotations

import ctypes
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from typing import Mapping

__all__ = ["MARKER", "die_with_parent", "rank_of", "main"]

MARKER = "@@distdlrun@@"
_PR_SET_PDEATHSIG = 1
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)")


def _prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _prctl()  # looked up once, not in a forked child


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so no rank outlives its job.

    Run between fork and exec (`preexec_fn`); with `parent` given, a parent that died before
    the request took effect kills us at once.

    Args:
        parent: the parent's pid as seen before fork, to catch a parent that died before the request
            took effect.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def rank_of(environ: Mapping[str, str] = os.environ) -> str:
    """This process's rank in MPI_COMM_WORLD as set by Hydra, Open MPI or PMIx.

    Args:
        environ: the environment the MPI launcher set.
    """
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if environ.get(key, "").isdigit():
            return environ[key]
    return "?"


def _write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # the launcher is gone; nothing more to tell


def _pump(src: int, dst: int, prefix: bytes) -> None:
    """Copy the child's output to ours, one whole labelled line per write."""
    pending = b""
    while True:
        try:
            chunk = os.read(src, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        lines = _LINE.findall(pending)
        used = sum(len(line) for line in lines)
        pending = pending[used:]
        if lines:
            _write(dst, b"".join(prefix + line for line in lines))
    if pending:
        _write(dst, prefix + pending + b"\n")
    os.close(src)


def main(argv: list[str]) -> int:
    """Run the command after `--`; exit as it did (128 + N when killed by signal N).

    Args:
        argv: `-- COMMAND...`, what mpirun gave this wrapper.
    """
    command = argv[argv.index("--") + 1:] if "--" in argv else argv
    if not command:
        print("rankwrap: no command given", file=sys.stderr)
        return 2
    die_with_parent()
    if os.getppid() == 1:  # parent died before prctl took effect
        return 1
    rank = rank_of()
    prefix = f"[{rank}] ".encode()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        # close_fds=False keeps the PMI connection (PMI_FD) that MPI_Init needs.
        child = subprocess.Popen(command, stdout=out_w, stderr=err_w, close_fds=False,
                                 preexec_fn=functools.partial(die_with_parent, os.getpid()))
    except OSError as exc:
        _write(2, prefix + f"cannot start {command[0]!r}: {exc.strerror}\n".encode())
        _write(2, f"{MARKER} exit rank={rank} code=127\n".encode())
        return 127
    os.close(out_w)
    os.close(err_w)
    host = socket.gethostname()
    _write(2, f"{MARKER} start rank={rank} host={host} pgid={os.getpgid(0)} pid={child.pid}\n".encode())

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except OSError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    pumps = [threading.Thread(target=_pump, args=(out_r, 1, prefix), daemon=True),
             threading.Thread(target=_pump, args=(err_r, 2, prefix), daemon=True)]
    for t in pumps:
        t.start()
    code = child.wait()
    for t in pumps:
        t.join(timeout=2.0)  # a grandchild holding the pipe open must not keep us here
    _write(2, f"{MARKER} exit rank={rank} code={code}\n".encode())
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
