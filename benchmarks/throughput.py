#!/usr/bin/env python
"""Single-process training throughput: distdl `fit` vs PyTorch eager vs a GEMM-only loop.

Models x batch sizes x BLAS thread counts. Each thread count runs in its own
child process (threads fixed by OMP/OPENBLAS/MKL_NUM_THREADS before NumPy is
imported); inside it the runners alternate (distdl, torch, gemm, distdl, ...)
and the table shows medians and the ratios distdl/torch and distdl/gemm.
Peak memory (VmHWM) of a child training the MLP with distdl vs with torch is
measured in two more children.

Each model runs in a fresh child, because PyTorch's speed depends on glibc
malloc's state: its per-step tensors of several MB come from mmap (a page fault
per touched page) until a freed one raises glibc's dynamic mmap threshold, so a
process that trained an MLP first runs the CNN ~1.4x faster than a fresh one.
With torch installed every model also runs in a child with that threshold fixed
high (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_, as jemalloc/tcmalloc would
behave), and the table shows both ratios ("tuned malloc").

    .venv/bin/python benchmarks/throughput.py                # all models, 1 and 2 threads
    .venv/bin/python benchmarks/throughput.py --models mlp --threads 1 --repeats 9
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DEFAULT_STEPS = {"mlp": 20, "tiny": 100, "cnn": 8, "lstm": 8}
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--models", default="mlp,tiny,cnn,lstm", help="comma list of mlp,tiny,cnn,lstm")
    p.add_argument("--batch-sizes", default=None,
                   help="comma list applied to every model (default: each model's own: 128/32/64/64)")
    p.add_argument("--threads", default=None, help="comma list of BLAS thread counts (default: 1 and the cores)")
    p.add_argument("--repeats", type=int, default=7, help="timed epochs per runner (median reported)")
    p.add_argument("--steps", type=int, default=None, help="steps per timed epoch (default per model)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even when installed")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    p.add_argument("--quick", action="store_true", help="tiny sizes for tests (seconds)")
    p.add_argument("--out", default=str(common.default_out("throughput")), help="JSON output file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory", choices=["distdl", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = min(args.repeats, 2), args.steps or 2
    return args


# ----- the worker (one thread count, one process) --------------------------------
def measure(args) -> dict:
    import workloads as wl
    use_torch = not args.no_torch and common.torch_available()
    if use_torch:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rows = []
    for model in args.models.split(","):
        batches = ([int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes
                   else [wl.MODELS[model][1]])
        for batch in batches:
            steps = args.steps or DEFAULT_STEPS[model]
            runs = {"distdl": wl.distdl_workload(model, batch, steps)}
            if use_torch:
                runs["torch"] = wl.torch_workload(model, batch, steps)
                if model == "cnn":
                    runs["torch_cl"] = wl.torch_workload(model, batch, steps, channels_last=True)
            if model in wl.DENSE_SIZES:
                runs["gemm"] = wl.gemm_workload(model, batch, steps)
            for w in runs.values():
                w.run_epoch()  # warm-up: first-call allocations, BLAS thread start, torch init
            times = common.alternate({k: w.run_epoch for k, w in runs.items()}, args.repeats)
            row = {"model": model, "batch": batch, "steps": steps, "repeats": args.repeats, "runners": {}}
            for k, ts in times.items():
                med = common.median(ts)
                row["runners"][k] = {"samples_per_s": batch * steps / med, "us_per_step": med / steps * 1e6,
                                     "times_s": ts}
            r = row["runners"]
            for other in ("torch", "torch_cl", "gemm"):
                if other in r:
                    row[f"distdl_over_{other}"] = r["distdl"]["samples_per_s"] / r[other]["samples_per_s"]
            if model in wl.DENSE_SIZES:
                row["gemm_flops_per_step"] = wl.dense_flops(model, batch)
                row["min_flops_per_step"] = wl.dense_flops(model, batch, first_dx=False)
            rows.append(row)
    rate = wl.gemm_rate(256 if args.quick else 512)
    for row in rows:
        if "min_flops_per_step" in row:
            row["flop_bound_us_per_step"] = row["min_flops_per_step"] / (rate * 1e9) * 1e6
            row["gemm_bound_us_per_step"] = row["gemm_flops_per_step"] / (rate * 1e9) * 1e6
    return {"threads": int(os.environ.get("OMP_NUM_THREADS", "0")), "gemm_gflops": rate,
            "blas": common.blas_info(), "rows": rows}


def memory_child(kind: str, steps: int) -> dict:
    """Peak RSS of a process that trains the MLP (batch 128) with `kind`."""
    import numpy as np  # noqa: F401
    import workloads as wl
    if kind == "torch":
        import torch
        torch.set_num_threads(1)
    else:
        import distdl.models  # noqa: F401
    x, _ = wl.synthetic("mlp", 128, steps)
    base = common.current_rss_mib()
    w = (wl.torch_workload if kind == "torch" else wl.distdl_workload)("mlp", 128, steps)
    for _ in range(2):
        w.run_epoch()
    peak = common.peak_rss_mib()
    return {"kind": kind, "peak_rss_mib": peak, "rss_after_imports_and_data_mib": base,
            "data_mib": x.nbytes * 2 / 2 ** 20, "peak_beyond_imports_and_data_mib": peak - base}


# ----- the parent ---------------------------------------------------------------
def child_argv(args, extra, models=None) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--models", models or args.models,
            "--repeats", str(args.repeats)]
    if args.batch_sizes:
        argv += ["--batch-sizes", args.batch_sizes]
    if args.steps:
        argv += ["--steps", str(args.steps)]
    if args.no_torch:
        argv.append("--no-torch")
    if args.quick:
        argv.append("--quick")
    return argv + extra


def measure_threads(args, threads: int, torch_ok: bool) -> dict:
    """One thread count: each model in a fresh child, and again with malloc tuned when torch runs."""
    out = None
    for model in args.models.split(","):
        res = common.run_child(child_argv(args, ["--worker"], model), common.bench_env(threads))
        if torch_ok:
            tuned = common.run_child(child_argv(args, ["--worker"], model), common.bench_env(threads, TUNED_MALLOC))
            for row, trow in zip(res["rows"], tuned["rows"]):
                row["tuned_malloc"] = {k: v for k, v in trow.items() if k == "runners" or k.startswith("distdl_over")}
        if out is None:
            out = res
        else:
            out["rows"] += res["rows"]
    return out


def report(result: dict) -> None:
    for t in result["by_threads"]:
        rows = []
        for r in t["rows"]:
            d = r["runners"]
            tuned = r.get("tuned_malloc", {})
            rows.append([r["model"], r["batch"], d["distdl"]["samples_per_s"], d["distdl"]["us_per_step"],
                         d.get("torch", {}).get("samples_per_s"), r.get("distdl_over_torch"),
                         d.get("torch_cl", {}).get("samples_per_s"), r.get("distdl_over_torch_cl"),
                         d.get("gemm", {}).get("samples_per_s"), r.get("distdl_over_gemm"),
                         r.get("flop_bound_us_per_step"),
                         tuned.get("runners", {}).get("torch", {}).get("samples_per_s"),
                         tuned.get("distdl_over_torch"), tuned.get("distdl_over_torch_cl")])
        common.print_table(["model", "batch", "distdl/s", "us/step", "torch/s", "x torch", "torch_cl/s",
                            "x torch_cl", "gemm/s", "x gemm", "bound us", "tuned: torch/s", "x torch",
                            "x torch_cl"], rows,
                           f"{t['threads']} BLAS thread(s): samples/s (median of {t['rows'][0]['repeats']}), "
                           f"GEMM {t['gemm_gflops']:.0f} GFLOP/s, kernel {t['blas'].get('corename', '?')}")
    mem = result.get("memory")
    if mem:
        print(f"\nPeak RSS training the MLP: distdl {mem['distdl']['peak_rss_mib']:.0f} MiB"
              + (f", torch {mem['torch']['peak_rss_mib']:.0f} MiB, ratio {mem['distdl_over_torch']:.2f}"
                 if "torch" in mem else " (torch not installed: skipped)"))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory:
        print(json.dumps(memory_child(args.memory, 4 if args.quick else 20)))
        return 0
    if args.worker:
        print(json.dumps(measure(args)))
        return 0
    cores = os.cpu_count() or 1
    threads = ([int(t) for t in args.threads.split(",")] if args.threads
               else ([1] if args.quick or cores == 1 else [1, cores]))
    torch_ok = common.torch_available() and not args.no_torch
    if not torch_ok:
        print("torch not installed: skipped" if not args.no_torch else "torch: skipped (--no-torch)")
    t0 = time.time()
    result = {"benchmark": "throughput", "machine": common.machine_info(), "torch": torch_ok,
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "by_threads": []}
    for t in threads:
        result["by_threads"].append(measure_threads(args, t, torch_ok))
    if not args.no_memory:
        mem = {"distdl": common.run_child(child_argv(args, ["--memory", "distdl"]), common.bench_env(1))}
        if torch_ok:
            mem["torch"] = common.run_child(child_argv(args, ["--memory", "torch"]), common.bench_env(1))
            mem["distdl_over_torch"] = mem["distdl"]["peak_rss_mib"] / mem["torch"]["peak_rss_mib"]
        result["memory"] = mem
    result["wall_s"] = time.time() - t0
    report(result)
    print(f"\nwrote {common.write_json(result, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
