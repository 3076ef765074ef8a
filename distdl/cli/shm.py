"""/dev/shm, where MPI keeps the memory that the ranks of one node share: its free room, and the
segment files that jobs leave behind when they end abnormally.

MPICH names its files `mpich_shm_<job>_<node>` (the intra-node channel, for the whole run) and
`mpich_shar_tmp??????` (an MPI shared window, such as distdl's allreduce windows, until every
rank has attached it); UCX uses `ucx_shm_*`, Open MPI `vader_segment.*` and `sm_segment.*`. Such a
file is in use while some process has it open or mapped; one that nobody uses is a leftover of a
job that was killed before it could remove it. A tmpfs that runs full does not fail the
allocation: the rank that first touches a page beyond the room dies of SIGBUS.

Standard library only (`distdlrun` and its guard process use it before any rank exists), and it
never imports the rest of distdl.
"""
from __future__ import annotations

import os

__all__ = ["SHM_DIR", "BYTES_PER_RANK", "room", "bytes_needed", "room_problem", "sigbus_hint", "size_text",
           "segments", "inodes_in_use", "leftovers", "remove_leftovers"]

SHM_DIR = "/dev/shm"
PREFIXES = ("mpich_", "ucx_shm_", "vader_segment.", "sm_segment.")

# Room the ranks of one node need in /dev/shm, measured with the mpich wheel (MPICH 5.0, ch4):
# its intra-node segment is 4 KiB + 1,057,344 bytes per rank (64 eager cells of 16 KiB each,
# plus queue heads), allocated in full. We ask for 1.125 MiB per rank, which also covers
# distdl's control window (one page per rank). UCX maps another 4.1 MiB per rank when there is
# room and does without it when there is not; distdl's gradient windows check their own room
# (twice their size) and fall back to MPI's allreduce, so neither is counted here.
BYTES_PER_RANK = 1152 << 10
FIX_HINT = ("give it more room (Docker: `docker run --shm-size=1g`; Kubernetes: a memory-backed "
            "emptyDir on /dev/shm; elsewhere: `mount -o remount,size=1G /dev/shm`)")


def room(path: str = SHM_DIR) -> tuple[int, int] | None:
    """(free bytes, total bytes) of the file system at `path`; None where there is none.

    Args:
        path: the shared-memory folder (/dev/shm).
    """
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def bytes_needed(local_ranks: int) -> int:
    """What `local_ranks` ranks on one node need in /dev/shm (see BYTES_PER_RANK).

    Args:
        local_ranks: ranks on one node.
    """
    return local_ranks * BYTES_PER_RANK


def room_problem(local_ranks: int, free: int | None = None, path: str = SHM_DIR) -> str | None:
    """A sentence when /dev/shm has less room than `local_ranks` ranks need, else None.

    `free` stands in for the measured free bytes (tests feed it a fake size).

    Args:
        local_ranks: ranks on this node.
        free: stands in for the measured free bytes (tests).
        path: the shared-memory folder (/dev/shm).
    """
    if local_ranks < 1:
        return None
    if free is None:
        measured = room(path)
        if measured is None:  # no /dev/shm (not Linux): MPI allocates its memory elsewhere
            return None
        free = measured[0]
    need = bytes_needed(local_ranks)
    if free >= need:
        return None
    return (f"{path} has {size_text(free)} free, but {local_ranks} rank(s) on this host need about "
            f"{size_text(need)} there for MPI's shared memory (without it a rank dies of SIGBUS); "
            f"{FIX_HINT}, or start fewer ranks on this host.")


def sigbus_hint(path: str = SHM_DIR) -> str:
    """Why a rank that died of SIGBUS most likely did, and what to do about it.

    Args:
        path: the shared-memory folder named in the advice.
    """
    measured = room(path)
    now = f" (now {size_text(measured[0])} free of {size_text(measured[1])})" if measured else ""
    return (f"SIGBUS in an MPI rank usually means {path} ran out of room{now}: {FIX_HINT}, or set "
            f"DISTDL_ALLREDUCE=mpi (distdlrun -x DISTDL_ALLREDUCE=mpi) so that distdl's gradient "
            f"windows stay out of it.")


def size_text(n: int) -> str:
    """`512 B`, `1.5 KiB`, `2.0 MiB`, `3.2 GiB`.

    Args:
        n: a size in bytes.
    """
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def segments(path: str = SHM_DIR) -> dict[str, int]:
    """{name: bytes} of the MPI segment files in `path` that belong to this user.

    Args:
        path: the shared-memory folder (/dev/shm).
    """
    found = {}
    try:
        entries = list(os.scandir(path))
    except OSError:
        return found
    uid = os.getuid()
    for entry in entries:
        if not entry.name.startswith(PREFIXES):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:  # removed meanwhile
            continue
        if st.st_uid == uid and entry.is_file(follow_symlinks=False):
            found[entry.name] = st.st_blocks * 512
    return found


def inodes_in_use(path: str = SHM_DIR) -> set[int]:
    """Inodes of files on `path`'s file system that a process we can see has open or mapped.

    Args:
        path: a file on the file system to look at (its device is compared).
    """
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return set()
    want = f"{os.major(dev):02x}:{os.minor(dev):02x}"
    used: set[int] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    fields = line.split(None, 5)
                    if len(fields) >= 5 and fields[3] == want:
                        used.add(int(fields[4]))
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    st = os.stat(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if st.st_dev == dev:
                    used.add(st.st_ino)
        except OSError:  # gone meanwhile, or another user's process
            continue
    return used


def leftovers(path: str = SHM_DIR, names: set[str] | None = None) -> dict[str, int]:
    """{name: bytes} of this user's MPI segment files in `path` (only those in `names`, if given)
    that no process has open or mapped.

    Args:
        path: the shared-memory folder (/dev/shm).
        names: only these file names, when given.
    """
    found = segments(path)
    if names is not None:
        found = {n: b for n, b in found.items() if n in names}
    if not found:
        return {}
    used = inodes_in_use(path)
    free = {}
    for name, size in found.items():
        try:
            if os.stat(os.path.join(path, name), follow_symlinks=False).st_ino not in used:
                free[name] = size
        except OSError:
            continue
    return free


def remove_leftovers(before: set[str], path: str = SHM_DIR) -> dict[str, int]:
    """Remove the MPI segment files that appeared in `path` since the listing `before` was taken
    (the job's) and that no process uses any more; returns {name: bytes} of those removed.

    Args:
        before: the names present before the job started (never removed).
        path: the shared-memory folder (/dev/shm).
    """
    new = set(segments(path)) - set(before)
    removed = {}
    for name, size in leftovers(path, new).items():
        try:
            os.remove(os.path.join(path, name))
        except OSError:  # another cleaner was first
            continue
        removed[name] = size
    return removed
