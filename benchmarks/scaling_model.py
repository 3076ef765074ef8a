#!/usr/bin/env python
"""Predicted data-parallel efficiency at many ranks from measured compute and allreduce costs.

Per step on n ranks (1 BLAS thread each):

    T(n)  = t0 + c * b(n) + A(n)          b(n): rows per rank
    A(n)  = 2 log2(n) a + 2 (n-1)/n * S / B    (MPICH's large-message allreduce:
                                               reduce-scatter + allgather)

t0 (fixed per-step cost) and c (seconds per row) come from scaling.py's 1-rank
runs at batch 128 and 256; S is the gradient arena in bytes; a and B are the
latency and bandwidth measured by allreduce.py (B: the best algorithm bandwidth
at >= 1 MiB, a: the 8-byte allreduce time / (2 log2 n_measured)).
Strong scaling keeps the global batch, weak scaling the per-rank batch (the
setting of Horovod's published 90% at 512 GPUs).

    .venv/bin/python benchmarks/scaling_model.py --ranks 8,64,512
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--allreduce", default=str(common.default_out("allreduce")), help="allreduce.py JSON")
    p.add_argument("--scaling", nargs="*", default=None, help="scaling.py JSON files (default results/scaling_*.json)")
    p.add_argument("--ranks", default="2,8,64,512", help="rank counts to predict")
    p.add_argument("--bandwidth", type=float, default=None, help="override B in GB/s (e.g. an inter-node link)")
    p.add_argument("--latency-us", type=float, default=None, help="override a in microseconds")
    p.add_argument("--out", default=str(common.default_out("scaling_model")), help="JSON output file")
    return p.parse_args(argv)


def link_from(allreduce: dict) -> tuple[float, float]:
    """(latency a in s, bandwidth B in bytes/s) from allreduce.py's raw MPI rows."""
    rows = allreduce["rows"]
    n = allreduce["ranks"]
    big = [r for r in rows if r["bytes"] >= 1 << 20] or rows
    bw = max(r["bytes"] / (r["raw_us"] * 1e-6) for r in big) * 2 * (n - 1) / n  # bus bandwidth
    small = min(rows, key=lambda r: r["bytes"])
    lat = small["raw_us"] * 1e-6 / max(2 * math.log2(n), 1)
    return lat, bw


def allreduce_time(n: int, nbytes: float, lat: float, bw: float) -> float:
    if n == 1:
        return 0.0
    return 2 * math.log2(n) * lat + 2 * (n - 1) / n * nbytes / bw


def compute_model(scaling: dict) -> tuple[float, float]:
    """(t0 s/step, c s/row) from the 1-rank runs at batch 128 (weak_1) and 256 (strong_1)."""
    r = scaling["results"]
    steps = scaling["steps"]
    t256 = r["strong_1"]["epoch_s"] / steps
    t128 = r["weak_1"]["epoch_s"] / steps
    c = max((t256 - t128) / 128, 1e-9)
    return max(t128 - 128 * c, 0.0), c


def predict(scaling: dict, lat: float, bw: float, ranks: list[int]) -> dict:
    t0, c = compute_model(scaling)
    nbytes = scaling["results"]["strong_1"]["arena_bytes"]
    out = {"t0_us": t0 * 1e6, "c_us_per_row": c * 1e6, "arena_bytes": nbytes, "rows": []}
    for n in ranks:
        a = allreduce_time(n, nbytes, lat, bw)
        strong = (t0 + c * 256) / (n * (t0 + c * 256 / n + a))
        weak = (t0 + c * 128) / (t0 + c * 128 + a)
        out["rows"].append({"ranks": n, "allreduce_us": a * 1e6, "strong_eff_b256": strong, "weak_eff_b128": weak,
                            "measured_strong_eff": scaling["derived"].get(f"strong_eff_{n}"),
                            "measured_weak_eff": scaling["derived"].get(f"weak_eff_{n}")})
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    ar_path = Path(args.allreduce)
    files = args.scaling if args.scaling is not None else sorted(str(p) for p in common.RESULTS.glob("scaling_*.json")
                                                                   if p.name != "scaling_model.json")
    if not ar_path.exists() or not files:
        print("needs allreduce.py and scaling.py JSON: run those first", file=sys.stderr)
        return 1
    lat, bw = link_from(json.loads(ar_path.read_text()))
    lat = args.latency_us * 1e-6 if args.latency_us is not None else lat
    bw = args.bandwidth * 1e9 if args.bandwidth is not None else bw
    ranks = [int(k) for k in args.ranks.split(",")]
    res = {"benchmark": "scaling_model", "latency_us": lat * 1e6, "bandwidth_GBps": bw / 1e9, "models": {}}
    for f in files:
        data = json.loads(Path(f).read_text())
        pred = predict(data, lat, bw, ranks)
        res["models"][data["model"]] = pred
        common.print_table(["ranks", "allreduce us", "strong eff (global 256)", "weak eff (128/rank)",
                            "measured strong", "measured weak"],
                           [[r["ranks"], r["allreduce_us"], r["strong_eff_b256"], r["weak_eff_b128"],
                             r["measured_strong_eff"], r["measured_weak_eff"]] for r in pred["rows"]],
                           f"{data['model']}: t0 {pred['t0_us']:.0f} us/step, c {pred['c_us_per_row']:.2f} us/row, "
                           f"S {pred['arena_bytes'] / 1e6:.2f} MB, a {lat * 1e6:.2f} us, B {bw / 1e9:.2f} GB/s")
    print(f"\nwrote {common.write_json(res, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
