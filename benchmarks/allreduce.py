#!/usr/bin/env python
"""OSU-style allreduce latency and bandwidth: distdl's `MPIComm.allreduce_sum` vs raw mpi4py.

Runs itself under `mpirun -n N` (the mpirun next to this Python). For each size
from 8 B to 64 MiB (float32 buffers, powers of 4 by default) the contenders run
alternating: raw `Allreduce(IN_PLACE)`, distdl's default (`DISTDL_ALLREDUCE`
unset: shared memory from 64 KiB up), distdl's shared-memory path forced on a
plain buffer (copied in and out) and on a buffer in the shared window (zero
copy, as the gradient arena in `fit`). The table shows the time per call, the
algorithm bandwidth (bytes / time), distdl's default vs raw in %, and the ring
bound `2(n-1)/n * bytes / B + 2(n-1) * a` from the measured point-to-point
bandwidth B (4 MiB Sendrecv) and latency a (8 B Sendrecv, half round trip).

    .venv/bin/python benchmarks/allreduce.py -n 2
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("-n", "--ranks", type=int, default=2, help="MPI ranks (default 2)")
    p.add_argument("--max-bytes", type=int, default=64 << 20, help="largest message (default 64 MiB)")
    p.add_argument("--factor", type=int, default=4, help="size step factor (2 = every power of two)")
    p.add_argument("--repeats", type=int, default=5, help="alternating rounds per size (median reported)")
    p.add_argument("--quick", action="store_true", help="up to 64 KiB, few iterations (for tests)")
    p.add_argument("--out", default=str(common.default_out("allreduce")), help="JSON output file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.max_bytes, args.repeats = min(args.max_bytes, 64 << 10), min(args.repeats, 2)
    return args


def sizes(max_bytes: int, factor: int) -> list[int]:
    out, s = [], 8
    while s <= max_bytes:
        out.append(s)
        s *= factor
    return out


def iterations(nbytes: int, quick: bool) -> int:
    """Enough calls per timing that each timing lasts a few ms or more."""
    n = max(4, min(2000, (32 << 20) // max(nbytes, 1)))
    return max(2, n // 20) if quick else n


def worker(args) -> dict:
    import numpy as np
    from mpi4py import MPI
    from distdl.comm.mpi import MPIComm
    comm, shm = MPIComm(allreduce="auto"), MPIComm(allreduce="shm")
    raw = MPI.COMM_WORLD

    def timed(fn, buf, iters):
        raw.Barrier()
        t = time.perf_counter()
        for _ in range(iters):
            fn(buf)
        dt = (time.perf_counter() - t) / iters
        return raw.allreduce(dt, op=MPI.MAX)  # small float, pickled by mpi4py: timing only

    def raw_allreduce(buf):
        raw.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)

    p2p = point_to_point(raw, np, args.quick)
    rows = []
    for nbytes in sizes(args.max_bytes, args.factor):
        count = max(nbytes // 4, 1)
        buf = np.ones(count, dtype=np.float32)
        seg = shm.shared_segment(count * 4)
        window = seg[:count * 4].view(np.float32) if seg is not None else buf
        window[:] = 1
        iters = iterations(nbytes, args.quick)
        timed(raw_allreduce, buf, 2)
        contenders = {"raw": (raw_allreduce, buf), "distdl": (comm.allreduce_sum, buf),
                      "shm_copy": (shm.allreduce_sum, buf), "shm_zero_copy": (shm.allreduce_sum, window)}
        times = {k: [] for k in contenders}
        for _ in range(args.repeats):
            for k, (fn, b) in contenders.items():
                times[k].append(timed(fn, b, iters))
        n = raw.Get_size()
        t = {k: common.median(v) for k, v in times.items()}
        bound = 2 * (n - 1) / n * nbytes / p2p["bandwidth_Bps"] + 2 * (n - 1) * p2p["latency_s"]
        rows.append({"bytes": nbytes, "iters": iters, **{f"{k}_us": v * 1e6 for k, v in t.items()},
                     "raw_GBps": nbytes / t["raw"] / 1e9, "distdl_GBps": nbytes / t["distdl"] / 1e9,
                     "overhead_pct": (t["distdl"] - t["raw"]) / t["raw"] * 100, "ring_bound_us": bound * 1e6})
    return {"ranks": raw.Get_size(), "point_to_point": p2p, "rows": rows,
            "library": MPI.Get_library_version().strip().splitlines()[0]}


def point_to_point(raw, np, quick: bool) -> dict:
    """Sendrecv between rank pairs (0<->1, 2<->3, ...): latency (8 B) and bandwidth (4 MiB)."""
    from mpi4py import MPI
    rank, size = raw.Get_rank(), raw.Get_size()
    peer = rank ^ 1 if (rank ^ 1) < size else MPI.PROC_NULL
    out = {}
    for key, nbytes, iters in (("latency_s", 8, 200 if quick else 2000), ("bandwidth_Bps", 4 << 20, 5 if quick else 50)):
        a, b = np.ones(nbytes // 4, np.float32), np.empty(nbytes // 4, np.float32)
        raw.Sendrecv(a, dest=peer, recvbuf=b, source=peer)
        raw.Barrier()
        t = time.perf_counter()
        for _ in range(iters):
            raw.Sendrecv(a, dest=peer, recvbuf=b, source=peer)
        dt = raw.allreduce((time.perf_counter() - t) / iters, op=MPI.MAX)
        out[key] = dt if key == "latency_s" else nbytes / dt
    return out


def report(res: dict) -> None:
    p = res["point_to_point"]
    rows = [[r["bytes"], r["raw_us"], r["distdl_us"], r["overhead_pct"], r["shm_copy_us"], r["shm_zero_copy_us"],
             r["raw_us"] / r["shm_zero_copy_us"], r["raw_GBps"], r["distdl_GBps"], r["ring_bound_us"],
             r["raw_us"] / r["ring_bound_us"]] for r in res["rows"]]
    common.print_table(["bytes", "raw us", "distdl us", "distdl vs raw %", "shm copy us", "shm zero-copy us",
                        "raw/zero-copy", "raw GB/s", "distdl GB/s", "ring us", "raw/ring"], rows,
                       f"Allreduce(IN_PLACE, SUM) float32 on {res['ranks']} ranks ({res['library']}); "
                       f"p2p {p['bandwidth_Bps'] / 1e9:.2f} GB/s, {p['latency_s'] * 1e6:.2f} us")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        res = worker(args)
        from mpi4py import MPI
        if MPI.COMM_WORLD.Get_rank() == 0:
            print(json.dumps(res))
        return 0
    mpirun = common.mpirun_path()
    if mpirun is None:
        print("mpirun not found next to this Python or on PATH: install the mpi extra", file=sys.stderr)
        return 2
    argv = [mpirun, "-n", str(args.ranks), sys.executable, str(Path(__file__).resolve()), "--worker",
            "--max-bytes", str(args.max_bytes), "--factor", str(args.factor), "--repeats", str(args.repeats)]
    if args.quick:
        argv.append("--quick")
    res = common.run_child(argv, common.bench_env(1))
    res.update(benchmark="allreduce", machine=common.machine_info(),
               command=" ".join([Path(sys.executable).name, *sys.argv]))
    report(res)
    print(f"\nwrote {common.write_json(res, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
