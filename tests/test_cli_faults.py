"""The `distdl` command's side of faults: `train` removes temp files of killed checkpoint writers
when it starts, `inspect` exits 2 on a file that does not verify (after printing what it read),
and `info` reports the room in /dev/shm and the MPI segment files that ended jobs left there."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import h5py

ROOT = Path(__file__).parent.parent


def distdl(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "distdl.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_train_cleans_dead_writers_temp_files_and_inspect_exits_2_when_the_file_does_not_verify(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    dead = ck / f".ckpt-e0001-s000000.h5.tmp-{_dead_pid()}-9f8e"
    live = ck / f".ckpt-e0001-s000000.h5.tmp-{os.getpid()}-9f8e"  # a writer that still runs: kept
    dead.write_bytes(b"half a checkpoint")
    live.write_bytes(b"half a checkpoint")
    p = distdl("train", "digits_mlp", "--epochs", 1, "--checkpoint-dir", ck)
    assert p.returncode == 0, p.stderr
    assert not dead.exists() and live.exists()
    path = ck / "ckpt-e0001-s000000.h5"

    good = distdl("inspect", path)
    assert good.returncode == 0 and "checksum: ok" in good.stdout and good.stderr == ""

    with h5py.File(path, "r") as f:
        offset = f["model/params"].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset + 5)
        byte = fh.read(1)
        fh.seek(offset + 5)
        fh.write(bytes([byte[0] ^ 0x40]))
    bad = distdl("inspect", path)
    assert bad.returncode == 2
    assert "checksum: mismatch" in bad.stdout and "layers:" in bad.stdout and "weights:" in bad.stdout
    assert bad.stderr.strip().splitlines() == [
        f"error: Checkpoint {path} fails its checksum: its contents were changed or damaged after it was written."]
    debug = distdl("inspect", path, "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_info_reports_dev_shm_room_and_leftover_segments():
    if not os.path.isdir("/dev/shm"):
        p = distdl("info")
        assert p.returncode == 0 and "/dev/shm: not present" in p.stdout
        return
    # sorts before every name MPICH makes, so it is among the names info lists
    leftover = Path("/dev/shm") / f"mpich_00000_distdl_test_{uuid.uuid4().hex}"
    held = Path("/dev/shm") / f"mpich_00000_distdl_test_held_{uuid.uuid4().hex}"
    leftover.write_bytes(b"\0" * 8192)
    held.write_bytes(b"\0" * 8192)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nf = open(sys.argv[1])\n"
                               "print('ready', flush=True)\ntime.sleep(60)", str(held)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        p = distdl("info")
    finally:
        holder.kill()
        holder.wait()
        leftover.unlink(missing_ok=True)  # a concurrent job's cleanup may have taken it
        held.unlink()
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert any(line.startswith("/dev/shm: ") and " free of " in line for line in lines), p.stdout
    listed = [line for line in lines if "leftover MPI segment file(s) of ended jobs" in line]
    assert len(listed) == 1 and "that no process uses (safe to delete): " in listed[0]
    assert leftover.name in listed[0] and held.name not in listed[0]
