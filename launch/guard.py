"""The guard: a small process that outlives distdlrun, so that a job never outlives its launcher
and never leaves its shared memory behind.

distdlrun starts one per attempt (`Guard()`), in a session of its own (a closed terminal's
SIGHUP does not reach it), and tells it through a pipe which /dev/shm segment files existed
before mpirun started, and the process groups of the job on this host (mpirun's and each local
rank's). When the attempt ends, distdlrun says whether it failed; after a failure the guard waits
(up to `WAIT` seconds) for the job's local ranks to be gone and removes the segment files the job
created that nobody uses any more (MPICH keeps its intra-node channel in one for the whole run
and removes it only in MPI_Finalize). When the pipe closes without that word, distdlrun itself
died (SIGKILL, the OOM killer): the guard kills every process group it was told about, then
cleans up the same way. distdlrun also gives mpirun PR_SET_PDEATHSIG, which ends the job at the
same moment without the guard; Hydra's proxies end their ranks, on every host, when mpirun goes.

Protocol, one line each: `old NAME` (a segment file present before the start), `pid PID PGID`
(a process of the job and its group), `end ok` / `end failed`. Standard library only.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

__all__ = ["Guard", "main"]

WAIT = 5.0  # seconds the guard waits for the job's processes to be gone before cleaning up


class Guard:
    """distdlrun's end of the pipe to one guard process.

    Args:
        old_segments: the /dev/shm segment files present before mpirun starts (never removed).
        env: the guard's environment (default: distdlrun's).
    """

    def __init__(self, old_segments: set[str], env=None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "distdl_launch.guard"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, start_new_session=True, env=env)
        self._send("".join(f"old {name}\n" for name in sorted(old_segments)))

    def _send(self, text: str) -> None:
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # the guard is gone: nothing to do about it here
            pass

    def watch(self, pid: int, pgid: int) -> None:
        """Kill this process group should distdlrun die; wait for `pid` before cleaning up."""
        self._send(f"pid {pid} {pgid}\n")

    def finish(self, failed: bool) -> None:
        """The attempt is over: after a failure, wait for the guard to remove the job's leftovers."""
        self._send(f"end {'failed' if failed else 'ok'}\n")
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=WAIT + 5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie has released its memory: it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False
    except IndexError:
        return True


def _kill_groups(pgids: set[int]) -> None:
    for pgid in pgids:
        if pgid > 1 and pgid != os.getpgid(0):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def main() -> int:
    """Read the pipe until `end` or EOF, then kill (on EOF) and clean up (unless `end ok`)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the pipe says when to act
    old: set[str] = set()
    pids: set[int] = set()
    pgids: set[int] = set()
    outcome = None
    for raw in sys.stdin.buffer:
        word, _, rest = raw.decode(errors="replace").rstrip("\n").partition(" ")
        if word == "old":
            old.add(rest)
        elif word == "pid":
            pid, _, pgid = rest.partition(" ")
            if pid.isdigit() and pgid.isdigit():
                pids.add(int(pid))
                pgids.add(int(pgid))
        elif word == "end":
            outcome = rest
            break
    if outcome == "ok":
        return 0
    if outcome is None:  # distdlrun is gone: so must its job be
        _kill_groups(pgids)
    end = time.monotonic() + WAIT
    while any(_alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.05)
    from distdl.cli.shm import remove_leftovers
    remove_leftovers(old)
    return 0


if __name__ == "__main__":
    sys.exit(main())
