"""Run one mpirun job, watch its ranks, end it fast when one fails; restart policy.

Each rank runs under `rankwrap.py`, which labels its output `[rank] ` and writes
marker lines (start: host and process group; exit: code) that arrive through
mpirun's stderr. The first non-zero exit ends the whole job within seconds:
local ranks are SIGKILLed by process group, mpirun is asked to stop (which
reaches other hosts), and its own process group is SIGKILLed after a short wait.

With `log_dir`, each rank's lines also go to `log_dir/rank.N.log`, without the `[N] ` label, the
colours or the in-place redraws of a progress bar (only its lines that end with a newline).

The job follows its launcher: mpirun gets PR_SET_PDEATHSIG (SIGKILL when distdlrun dies, and
Hydra's proxies then end every rank), and a guard process (`guard.py`) that outlives distdlrun
kills the job's local process groups and, after any failed attempt, removes the /dev/shm
segments the job left.
"""
from __future__ import annotations

import functools
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import BinaryIO, Mapping

from distdl.cli import shm

from .guard import Guard
from .hosts import Host
from .rankwrap import _LINE, MARKER, die_with_parent

__all__ = ["Job", "JobResult", "RankState", "describe_exit", "shrink_hosts"]

TEARDOWN_WAIT = 3.0  # seconds mpirun gets to stop remote ranks before SIGKILL
ALL_DONE_WAIT = 10.0  # seconds mpirun may linger after every rank exited 0
_LABEL = re.compile(rb"^\[(\d+)\] ")
_ANSI = re.compile(rb"\x1b\[[0-9;]*m")  # colours, left out of the log files
# Hydra's "BAD TERMINATION" box and its three trailing lines.
_HYDRA_BANNER = re.compile(rb"^(\s*$|={10,}|=   |YOUR APPLICATION TERMINATED WITH|"
                           rb"This typically refers to a problem|Please see the FAQ page)")


def describe_exit(code: int) -> str:
    """`exited with code 3` or `was killed by signal 9 (SIGKILL)` from a returncode.

    Args:
        code: a subprocess returncode (negative: killed by that signal).
    """
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"


@dataclass
class RankState:
    """What the markers told us about one rank."""

    host: str = ""
    pgid: int = 0
    code: int | None = None
    tail: deque = field(default_factory=lambda: deque(maxlen=10))


@dataclass
class JobResult:
    """How an attempt ended: `code` is what distdlrun exits with for it."""

    code: int
    failed_rank: int | None = None
    stopped_by: int | None = None
    lost_hosts: set[str] = field(default_factory=set)


class Job:
    """One mpirun run under supervision. `run()` blocks until every process of it is gone.

    Args:
        argv: the mpirun command line.
        env: its environment.
        np: the number of ranks it starts.
        grace: seconds the ranks get after SIGTERM/SIGINT before they are killed.
        out: where rank stdout goes (distdlrun's stdout).
        err: where rank stderr and distdlrun's own messages go.
        log_dir: also write each rank's lines to log_dir/rank.N.log.
        attempt: 0 for the first launch; a restart appends to the log files after a marker.
    """

    def __init__(self, argv: list[str], env: Mapping[str, str], np: int, *, grace: float = 60.0,
                 out: BinaryIO | None = None, err: BinaryIO | None = None, log_dir: str | None = None,
                 attempt: int = 0) -> None:
        self.argv, self.env, self.np, self.grace = argv, dict(env), np, grace
        self.log_dir, self.attempt = log_dir, attempt
        self.logs: dict[int, BinaryIO] = {}
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr.buffer
        self.ranks: dict[int, RankState] = {}
        self.lines = 0  # lines echoed so far, to tell whether a tail is still on screen
        self.here = socket.gethostname()
        self.pending_signal: int | None = None
        self.tearing_down = False
        self.guard: Guard | None = None

    # -- output ---------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.err.write(f"distdlrun: {text}\n".encode())
        self.err.flush()

    def _open_logs(self) -> None:
        """One file per rank: new for the first attempt, continued (after a marker) on a restart."""
        if self.log_dir is None:
            return
        os.makedirs(self.log_dir, exist_ok=True)
        for rank in range(self.np):
            fh = open(os.path.join(self.log_dir, f"rank.{rank}.log"), "ab" if self.attempt else "wb")
            if self.attempt:
                fh.write(f"--- distdlrun: restart {self.attempt} ---\n".encode())
            self.logs[rank] = fh

    def _log(self, rank: int, text: bytes) -> None:
        fh = self.logs.get(rank)
        if fh is not None:
            fh.write(_ANSI.sub(b"", text))
            fh.flush()

    def _handle(self, stream: BinaryIO, line: bytes) -> None:
        at = line.find(MARKER.encode())
        if at >= 0:
            self._marker(line[at:].decode(errors="replace"))
            line = line[:at]
            if not line.strip():
                return
            line += b"\n"
        m = _LABEL.match(line)
        if m is None and (self.tearing_down or _HYDRA_BANNER.match(line)):
            return  # mpirun's own cleanup banner: noise next to our own report
        stream.write(line)
        stream.flush()
        if line.endswith(b"\r") and m:  # a progress bar's redraw: neither a line on screen nor in the log
            return
        self.lines += 1
        if m:
            rank = int(m.group(1))
            self.ranks.setdefault(rank, RankState()).tail.append((self.lines, line))
            self._log(rank, line[m.end():])

    def _marker(self, text: str) -> None:
        fields = dict(item.split("=", 1) for item in text.split()[2:] if "=" in item)
        if not fields.get("rank", "").isdigit():
            return
        state = self.ranks.setdefault(int(fields["rank"]), RankState())
        if text.split()[1] == "start":
            state.host = fields.get("host", "")
            state.pgid = int(fields.get("pgid", "0"))
            if state.host == self.here and self.guard and fields.get("pid", "").isdigit():
                self.guard.watch(int(fields["pid"]), state.pgid)
        elif fields.get("code", "").lstrip("-").isdigit():
            state.code = int(fields["code"])

    def _reader(self, pipe, stream: BinaryIO, q: queue.Queue) -> None:
        fd, pending = pipe.fileno(), b""
        while chunk := os.read(fd, 65536):
            pending += chunk
            lines = _LINE.findall(pending)
            pending = pending[sum(map(len, lines)):]
            for line in lines:
                q.put((stream, line))
        if pending:
            q.put((stream, pending + b"\n"))
        q.put((stream, None))

    # -- killing --------------------------------------------------------------------------
    def _kill_local_ranks(self) -> None:
        for state in self.ranks.values():
            if state.pgid > 1 and state.host == self.here and state.pgid != os.getpgid(0):
                try:
                    os.killpg(state.pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _kill_group(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _on_signal(self, signum, _frame) -> None:
        if self.pending_signal is None:
            self.pending_signal = signum

    # -- the watch loop -------------------------------------------------------------------
    def run(self) -> JobResult:
        """Start mpirun in its own process group, echo its output, end it on failure; after a
        failure, the job's leftover /dev/shm segments are gone when this returns."""
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.guard = Guard(set(shm.segments()))
        result = None
        try:
            self._open_logs()
            result = self._run()
            return result
        finally:
            for fh in self.logs.values():
                fh.close()
            self.guard.finish(failed=result is None or result.code != 0)
            for s, handler in old.items():
                signal.signal(s, handler)

    def _run(self) -> JobResult:
        proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.env, start_new_session=True,
                                preexec_fn=functools.partial(die_with_parent, os.getpid()))
        self.guard.watch(proc.pid, proc.pid)
        q: queue.Queue = queue.Queue()
        for pipe, stream in ((proc.stdout, self.out), (proc.stderr, self.err)):
            threading.Thread(target=self._reader, args=(pipe, stream, q), daemon=True).start()
        open_streams, failed, stopped_by = 2, None, None
        kill_at = exited_at = all_done_at = None
        while True:
            try:
                stream, line = q.get(timeout=0.05)
                if line is None:
                    open_streams -= 1
                else:
                    self._handle(stream, line)
                    continue  # drain output before checking state
            except queue.Empty:
                pass
            now = time.monotonic()
            if self.pending_signal is not None and stopped_by is None and failed is None:
                stopped_by = self.pending_signal
                self._say(f"got {signal.Signals(stopped_by).name}; asking every rank to stop "
                          f"(up to {self.grace:g} s).")
                try:
                    proc.send_signal(stopped_by)  # mpirun forwards it to every rank
                except ProcessLookupError:
                    pass
                kill_at = now + self.grace
            if failed is None and stopped_by is None:
                bad = sorted(r for r, s in self.ranks.items() if s.code not in (None, 0))
                if bad:
                    failed = bad[0]
                    state = self.ranks[failed]
                    self._say(f"rank {failed}{' on ' + state.host if state.host else ''} "
                              f"{describe_exit(state.code)}; stopping the job.")
                    if state.code == -signal.SIGBUS:
                        self._say(shm.sigbus_hint())
                    self.tearing_down = True
                    self._kill_local_ranks()
                    try:
                        proc.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    kill_at = now + TEARDOWN_WAIT
            done = [s for s in self.ranks.values() if s.code == 0]
            if len(done) == self.np and all_done_at is None:
                all_done_at = now
            if kill_at is None and all_done_at is not None and now - all_done_at > ALL_DONE_WAIT:
                kill_at = now
            if kill_at is not None and now >= kill_at:
                self._kill_local_ranks()
                self._kill_group(proc)
                kill_at = float("inf")
            if proc.poll() is not None:
                exited_at = exited_at or now
                # A stray process may hold the pipes open: stop waiting for them after 2 s.
                if open_streams == 0 or now - exited_at > 2.0:
                    break
        self._kill_group(proc)  # the proxy or anything else left in mpirun's group
        if failed is not None or stopped_by is not None:
            self._kill_local_ranks()
        return self._result(proc.returncode, failed, stopped_by)

    def _result(self, rc: int, failed: int | None, stopped_by: int | None) -> JobResult:
        if stopped_by is not None:
            return JobResult(128 + stopped_by, stopped_by=stopped_by)
        missing = sorted(set(range(self.np)) - {r for r, s in self.ranks.items() if s.code is not None})
        if failed is None and rc != 0:
            if not missing:
                self._say(f"mpirun {describe_exit(rc)}.")
                return JobResult(rc if rc > 0 else 128 - rc)
            # MPI_Abort makes mpirun kill every rank, wrappers included, before they report.
            aborted = [r for r in missing if r in self.ranks
                       and any(b"MPI_Abort" in line for _, line in self.ranks[r].tail)]
            if not aborted and len(missing) == self.np:
                # Nobody reported: mpirun ended them all (an MPI_Abort whose message was lost, or
                # mpirun itself failed); no single rank can be named.
                self._say(f"mpirun ended the job before any rank reported how it ended "
                          f"(an MPI_Abort, or a failure of mpirun itself); mpirun {describe_exit(rc)}.")
                return JobResult(rc if rc > 0 else 1)
            failed = (aborted or missing)[0]
            state = self.ranks.get(failed, RankState())
            where = f" on {state.host}" if state.host else ""
            why = "called MPI_Abort" if aborted else "ended without reporting (its process or host was lost)"
            self._say(f"rank {failed}{where} {why}; mpirun {describe_exit(rc)}.")
            if aborted:
                self._show_tail(failed, state)
                return JobResult(rc if rc > 0 else 1, failed_rank=failed)
        if failed is None:
            return JobResult(0)
        state = self.ranks.get(failed, RankState())
        self._show_tail(failed, state)
        # A rank that vanished without a word on another host suggests that host is gone.
        lost = {state.host} if state.code is None and state.host not in ("", self.here) else set()
        if state.code is None:
            code = rc if rc > 0 else 1
        else:
            code = 128 - state.code if state.code < 0 else state.code
        return JobResult(code, failed_rank=failed, lost_hosts=lost)

    def _show_tail(self, rank: int, state: RankState) -> None:
        if not state.tail:
            self._say(f"rank {rank} printed nothing.")
        elif self.lines - state.tail[0][0] < 30:  # still on screen just above: do not repeat it
            self._say(f"rank {rank}'s last lines of output are just above.")
        else:
            self._say(f"last lines of output from rank {rank}:")
            for _, line in state.tail:
                self.err.write(b"    " + line)
            self.err.flush()


def shrink_hosts(hosts: list[Host], lost: set[str], np: int, min_np: int | None) -> tuple[list[Host], int] | None:
    """Hosts and -np for a restart after `lost` hosts vanished: the same when none did,
    else fewer ranks on the remaining hosts (never below `min_np`); None if impossible.

    Args:
        hosts: the hosts of the failed attempt.
        lost: the hosts that vanished.
        np: the ranks of the failed attempt.
        min_np: --min-np (None: never fewer ranks).
    """
    if not lost or not hosts:
        return hosts, np
    if min_np is None:
        return None
    left = [h for h in hosts if h.name not in lost]
    new_np = min(np, sum(h.slots for h in left))
    if not left or new_np < min_np:
        return None
    return left, new_np
