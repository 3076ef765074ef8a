"""What distdlrun checks before it starts ranks (room in /dev/shm, a checkpoint folder that takes
the next checkpoint) and how it tells a job's leftover shared-memory files from files in use.

The checks are fed fake sizes where they can be; where a real small or read-only file system is
the point, a tmpfs is mounted in a private mount namespace (root only, skipped otherwise).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from distdl.cli import shm
from distdl.errors import ConfigError
from distdl_launch import preflight
from distdl_launch.hosts import Host

MiB = 1 << 20


def _namespace_problem() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("unshare") is None:
        return "no unshare(1) here"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode:
        return f"no private mount namespace here (unshare -m: {probe.stderr.strip() or probe.returncode})"
    return None


NO_NAMESPACE = _namespace_problem()
needs_namespace = pytest.mark.skipif(NO_NAMESPACE is not None, reason=str(NO_NAMESPACE))


def in_namespace(script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a shell script as root in a private mount namespace (its mounts vanish with it)."""
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-ec", script],
                          capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------- room in /dev/shm

def test_room_check_refuses_with_the_sizes_and_the_fix():
    with pytest.raises(ConfigError) as err:
        preflight.check_shm([], 2, free=1 * MiB)
    text = str(err.value)
    assert text.startswith("Not starting: /dev/shm has 1.0 MiB free, but 2 rank(s) on this host need about 2.2 MiB")
    assert "SIGBUS" in text and "docker run --shm-size=1g" in text and text.count(".") >= 1
    preflight.check_shm([], 2, free=3 * MiB)  # enough: no error
    preflight.check_shm([], 2, free=shm.bytes_needed(2))  # exactly enough


def test_room_check_counts_only_this_hosts_ranks():
    here = socket.gethostname()
    hosts = [Host("node1", 4), Host(here, 4)]
    assert preflight.local_ranks(hosts, 8, here=here) == 4
    assert preflight.local_ranks(hosts, 5, here=here) == 1
    assert preflight.local_ranks([Host("localhost", 2)], 3) == 3  # oversubscribed: all here
    assert preflight.local_ranks([Host("node1", 2), Host("node2", 2)], 4, here=here) == 0
    preflight.check_shm([Host("node1", 2), Host("node2", 2)], 4, free=0)  # nothing runs here
    with pytest.raises(ConfigError, match=r"4 rank\(s\) on this host need about 4\.5 MiB"):
        preflight.check_shm(hosts, 8, free=shm.bytes_needed(3))


def test_size_text():
    assert [shm.size_text(n) for n in (0, 1023, 1536, 3 * MiB, 5 << 30)] == \
        ["0 B", "1023 B", "1.5 KiB", "3.0 MiB", "5.0 GiB"]


# ----------------------------------------------------------------- leftovers

HOLD = """
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
if sys.argv[2] == "map":       # mapped, the descriptor closed (as MPICH leaves its segment)
    m = mmap.mmap(fd, 4096)
    os.close(fd)
print("ready", flush=True)
time.sleep(60)
"""


def _hold(path, how):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), how], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


@pytest.fixture
def shm_dir(tmp_path):
    """A scratch folder on the file system MPI uses (tmpfs /dev/shm), else under tmp_path."""
    if not os.path.isdir(shm.SHM_DIR):
        yield tmp_path
        return
    folder = tempfile.mkdtemp(prefix="distdl-test-", dir=shm.SHM_DIR)
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_only_new_unused_mpi_files_are_removed(shm_dir):
    tmp_path = shm_dir

    def make(name):
        (tmp_path / name).write_bytes(b"\0" * 4096)
    make("mpich_shm_1234_0")            # there before the job: not the job's
    before = set(shm.segments(str(tmp_path)))
    for name in ("mpich_shm_abcd_0", "mpich_shar_tmpX1y2Z3", "ucx_shm_posix_77", "mpich_shm_open_0",
                 "mpich_shm_mapped_0", "notmpi_shm_1"):
        make(name)
    holders = [_hold(tmp_path / "mpich_shm_open_0", "open"), _hold(tmp_path / "mpich_shm_mapped_0", "map")]
    try:
        assert set(shm.leftovers(str(tmp_path))) == {"mpich_shm_1234_0", "mpich_shm_abcd_0",
                                                     "mpich_shar_tmpX1y2Z3", "ucx_shm_posix_77"}
        removed = shm.remove_leftovers(before, str(tmp_path))
        assert set(removed) == {"mpich_shm_abcd_0", "mpich_shar_tmpX1y2Z3", "ucx_shm_posix_77"}
        assert all(size == 4096 for size in removed.values())
        assert sorted(os.listdir(tmp_path)) == ["mpich_shm_1234_0", "mpich_shm_mapped_0", "mpich_shm_open_0",
                                                "notmpi_shm_1"]
    finally:
        for proc in holders:
            proc.kill()
            proc.wait()
    # once their users are gone, the held files are leftovers too
    assert set(shm.remove_leftovers(before, str(tmp_path))) == {"mpich_shm_open_0", "mpich_shm_mapped_0"}


def test_missing_shm_folder_is_no_problem(tmp_path):
    gone = str(tmp_path / "none")
    assert shm.room(gone) is None and shm.segments(gone) == {} and shm.remove_leftovers(set(), gone) == {}
    assert shm.room_problem(4, path=gone) is None


# ----------------------------------------------------------------- checkpoint folder

def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_checkpoint_folder_check_cleans_dead_writers_temp_files(tmp_path):
    dead = tmp_path / f".ckpt-e0001-s000000.h5.tmp-{_dead_pid()}-0a1b"
    live = tmp_path / f".ckpt-e0002-s000000.h5.tmp-{os.getpid()}-0a1b"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    assert preflight.checkpoint_folder_problem(str(tmp_path)) is None
    assert not dead.exists() and live.exists()
    assert os.listdir(tmp_path) == [live.name]  # the write probe left nothing either


def test_checkpoint_folder_that_is_a_file_or_missing(tmp_path):
    assert preflight.checkpoint_folder_problem(str(tmp_path / "new")) is None  # distdl train makes it
    (tmp_path / "file").write_text("")
    assert preflight.checkpoint_folder_problem(str(tmp_path / "file")) == \
        f"checkpoint folder {tmp_path / 'file'} exists but is not a folder"


FOLDER_CASES = """
import json, os, subprocess, sys
from distdl_launch.preflight import checkpoint_folder_problem as problem
ck = sys.argv[1]
out = {}
with open(os.path.join(ck, "ckpt-e0001-s000000.h5"), "wb") as fh:
    fh.write(b"\\0" * (96 << 10))
with open(os.path.join(ck, "filler"), "wb") as fh:   # leaves 64 KiB of the 256 KiB
    fh.write(b"\\0" * (96 << 10))
out["small"] = problem(ck)
fd = os.open(os.path.join(ck, "filler"), os.O_WRONLY | os.O_APPEND)
try:
    while True:
        os.write(fd, b"\\0" * 4096)
except OSError:
    os.close(fd)
out["full"] = problem(ck)
os.remove(os.path.join(ck, "filler"))
out["room"] = problem(ck)
subprocess.run(["mount", "-o", "remount,ro", ck], check=True)
out["ro"] = problem(ck)
print(json.dumps(out))
"""


@needs_namespace
def test_checkpoint_folder_full_short_or_read_only_is_named(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    (tmp_path / "cases.py").write_text(FOLDER_CASES)
    p = in_namespace(f"mount -t tmpfs -o size=256k tmpfs {ck}\n"
                     f"{sys.executable} {tmp_path / 'cases.py'} {ck}")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["small"].startswith(f"checkpoint folder {ck} has ")
    assert got["small"].endswith("free, less than its newest checkpoint ckpt-e0001-s000000.h5 (96.0 KiB) needs")
    assert got["full"] == f"checkpoint folder {ck} cannot be written (no space left on device)"
    assert got["room"] is None
    assert got["ro"] == f"checkpoint folder {ck} cannot be written (read-only file system)"


# ----------------------------------------------------------------- a real small /dev/shm

def _distdlrun_in_small_shm(size: str, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """distdlrun ARGS with a tmpfs of `size` on /dev/shm; the last stdout line lists /dev/shm after."""
    cmd = " ".join(["exec", sys.executable, "-m", "distdl_launch.cli", *args])
    script = textwrap.dedent(f"""\
        mount -t tmpfs -o size={size} tmpfs /dev/shm
        code=0
        ( {cmd} ) || code=$?
        echo "@@shm: $(ls -A /dev/shm | tr '\\n' ' ')"
        exit $code
        """)
    start = time.monotonic()
    p = in_namespace(script, timeout=timeout)
    return p, time.monotonic() - start


@pytest.mark.mpi
@needs_namespace
def test_too_small_dev_shm_is_refused_before_any_rank_starts(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("from mpi4py import MPI\nprint('started', flush=True)\n")
    p, took = _distdlrun_in_small_shm("1m", "-np", "2", "--", sys.executable, str(script))
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        "distdlrun: error: Not starting: /dev/shm has 1.0 MiB free, but 2 rank(s) on this host need about "
        "2.2 MiB there for MPI's shared memory (without it a rank dies of SIGBUS); give it more room "
        "(Docker: `docker run --shm-size=1g`; Kubernetes: a memory-backed emptyDir on /dev/shm; elsewhere: "
        "`mount -o remount,size=1G /dev/shm`), or start fewer ranks on this host."]
    assert p.stdout.strip() == "@@shm:"  # no rank ever started MPI there


SHM_HOG = """
import mmap, os, resource
from mpi4py import MPI
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
comm = MPI.COMM_WORLD
comm.Barrier()
if comm.rank == 0:
    print("filling /dev/shm", flush=True)
    fd = os.open("/dev/shm/hog", os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(fd, 64 << 20)
    m = mmap.mmap(fd, 64 << 20)
    for i in range(0, 64 << 20, 4096):
        m[i] = 1          # SIGBUS once the tmpfs is full
comm.Barrier()
"""


@pytest.mark.mpi
@needs_namespace
def test_rank_that_dies_of_sigbus_in_a_full_dev_shm_is_explained_and_cleaned_up(tmp_path):
    script = tmp_path / "hog.py"
    script.write_text(SHM_HOG)
    p, took = _distdlrun_in_small_shm("8m", "-np", "2", "--", sys.executable, str(script))
    assert p.returncode == 128 + 7, p.stderr
    assert "[0] filling /dev/shm" in p.stdout
    assert "distdlrun: rank 0 on" in p.stderr and "was killed by signal 7 (SIGBUS); stopping the job." in p.stderr
    assert ("distdlrun: SIGBUS in an MPI rank usually means /dev/shm ran out of room (now 0 B free of 8.0 MiB): "
            "give it more room (Docker: `docker run --shm-size=1g`") in p.stderr
    # MPICH's segment (rank 1 still had it mapped when the job was stopped) is gone; the hog is not MPI's
    assert p.stdout.strip().splitlines()[-1].split() == ["@@shm:", "hog"]
    assert took < 20
