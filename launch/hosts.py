"""Where ranks run: host specs, hostfiles and SLURM allocations, parsed and validated.

The user writes hosts one way whatever the MPI (`node1:4,node2:4` on the command
line, or a hostfile of `node1:4` / `node1 slots=4` / `node1` lines); `mpirun.py`
translates them into each implementation's own syntax.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

from distdl.errors import ConfigError

__all__ = ["Host", "check_hostname", "parse_host_spec", "read_hostfile", "expand_nodelist",
           "parse_tasks_per_node", "slurm_hosts", "ranks_per_host", "local_cores"]

# RFC 1123 labels joined by dots; also accepts the underscores some clusters use.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                       r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$")


@dataclass(frozen=True)
class Host:
    """One machine and how many ranks (slots) it takes."""

    name: str
    slots: int = 1


def check_hostname(name: str, where: str) -> str:
    """Return `name` if it is a valid hostname, else raise ConfigError naming `where`.

    Args:
        name: the host name to check.
        where: where it was written (the option or file), for the message.
    """
    if not _HOSTNAME.match(name):
        raise ConfigError(f"Invalid hostname {name!r} in {where}; use letters, digits, '-', '_' and '.'.")
    return name


def _slots(text: str, where: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"Invalid slot count {text!r} in {where}; it must be a whole number of at least 1.")
    return int(text)


def _host(item: str, where: str) -> Host:
    """`host` (one slot) or `host:N`."""
    name, sep, count = item.partition(":")
    return Host(check_hostname(name, where), _slots(count, where) if sep else 1)


def parse_host_spec(spec: str) -> list[Host]:
    """Parse `node1:4,node2:4` (a bare `node` means one slot) into hosts.

    Args:
        spec: what -H was given.
    """
    hosts = []
    for item in spec.split(","):
        item = item.strip()
        where = f"host spec {spec!r}"
        if not item:
            raise ConfigError(f"Empty entry in {where}; write it as host:slots,host:slots.")
        hosts.append(_host(item, where))
    return hosts


def read_hostfile(path: str) -> list[Host]:
    """Read a hostfile: one `host`, `host:N` or `host slots=N` per line, `#` comments.

    Args:
        path: the hostfile --hostfile names.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"Cannot read hostfile {path!r}: {exc.strerror}.") from None
    hosts = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"hostfile {path!r} line {number}"
        words = line.split()
        if len(words) == 1:
            hosts.append(_host(words[0], where))
        elif len(words) == 2 and words[1].startswith("slots="):
            hosts.append(Host(check_hostname(words[0], where), _slots(words[1][6:], where)))
        else:
            raise ConfigError(f"Cannot parse {where} ({raw.strip()!r}); write 'host', 'host:N' or 'host slots=N'.")
    if not hosts:
        raise ConfigError(f"Hostfile {path!r} lists no hosts.")
    return hosts


def expand_nodelist(nodelist: str) -> list[str]:
    """Expand a SLURM node list such as `gpu[01-03,07],login1` into host names.

    Args:
        nodelist: SLURM_JOB_NODELIST's syntax.
    """
    names: list[str] = []
    # Split on commas that are outside brackets.
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\][^,\[]*)*", nodelist):
        m = re.fullmatch(r"([^\[]*)\[([^\]]*)\](.*)", part)
        if not m:
            names.append(part)
            continue
        prefix, ranges, rest = m.groups()
        for rng in ranges.split(","):
            lo, sep, hi = rng.partition("-")
            if not lo.isdigit() or (sep and not hi.isdigit()):
                raise ConfigError(f"Cannot parse SLURM node list {nodelist!r} (range {rng!r}).")
            for i in range(int(lo), int(hi if sep else lo) + 1):
                # Keep zero padding: node[01-03] gives node01, node02, node03.
                names.extend(expand_nodelist(f"{prefix}{i:0{len(lo)}d}{rest}"))
    return [check_hostname(n, f"SLURM node list {nodelist!r}") for n in names]


def parse_tasks_per_node(text: str) -> list[int]:
    """Expand SLURM_TASKS_PER_NODE such as `4(x2),2` into `[4, 4, 2]`.

    Args:
        text: SLURM_TASKS_PER_NODE's syntax.
    """
    counts: list[int] = []
    for item in text.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", item.strip())
        if not m:
            raise ConfigError(f"Cannot parse SLURM_TASKS_PER_NODE {text!r}.")
        counts.extend([int(m.group(1))] * int(m.group(2) or 1))
    return counts


def slurm_hosts(environ: Mapping[str, str]) -> list[Host] | None:
    """Hosts of the SLURM allocation we run in, or None outside SLURM.

    Args:
        environ: the environment SLURM set (os.environ).
    """
    nodelist = environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST")
    if not nodelist:
        return None
    names = expand_nodelist(nodelist)
    per_node = environ.get("SLURM_TASKS_PER_NODE")
    counts = parse_tasks_per_node(per_node) if per_node else [1] * len(names)
    if len(counts) != len(names):
        counts = [counts[0]] * len(names)
    return [Host(n, c) for n, c in zip(names, counts)]


def ranks_per_host(hosts: list[Host], np: int) -> list[int]:
    """How many of `np` ranks land on each host: fill slots in order, then round-robin.

    Args:
        hosts: the hosts, in order.
        np: the number of ranks.
    """
    placed = [0] * len(hosts)
    left = np
    for i, h in enumerate(hosts):
        placed[i] = min(h.slots, left)
        left -= placed[i]
    i = 0
    while left > 0:  # oversubscribed: one extra rank per host in turn
        placed[i % len(hosts)] += 1
        left -= 1
        i += 1
    return placed


def local_cores(environ: Mapping[str, str] = os.environ) -> int:
    """Cores this process may use (SLURM's count inside an allocation).

    Args:
        environ: where SLURM_CPUS_ON_NODE would be set.
    """
    slurm = environ.get("SLURM_CPUS_ON_NODE", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
