#!/usr/bin/env python
"""Where a distdl training step spends its time.

Times each section of `fit`'s step in one process (1 BLAS thread): every
layer's forward and backward, the loss value + gradient, the optimizer, and the
rest (slicing, logs, callbacks); medians of several runs.

    .venv/bin/python benchmarks/hotspots.py --model mlp
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STEPS = {"mlp": 20, "tiny": 100, "cnn": 6, "lstm": 6}


def parse_args(argv=None) -> argparse.Namespace:
    p = common.timed_parser(__doc__, "hotspots", "few steps and repeats (for tests)")
    p.add_argument("--models", default="mlp,tiny,cnn,lstm")
    return common.parse_timed(p, argv)


def _wrap(obj, name, acc, key, active=None):
    """Add obj.name's wall time to acc[key]; nested calls with the same key count once."""
    fn = getattr(obj, name)
    active = active if active is not None else set()

    def wrapped(*a, **k):
        if key in active:  # e.g. Dense.backward calling its backward_preactivation
            return fn(*a, **k)
        active.add(key)
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            active.discard(key)
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t
    setattr(obj, name, wrapped)


def sections(model: str, steps: int, repeats: int) -> dict:
    """Median seconds per step of each section (instrumented run)."""
    import workloads as wl
    w = wl.distdl_workload(model, wl.MODELS[model][1], steps)
    w.run_epoch()
    m = w.model
    acc: dict[str, float] = {}
    active: set = set()
    for layer in m.layers:
        for name in ("forward", "backward", "backward_preactivation"):
            if any(name in c.__dict__ for c in type(layer).__mro__[:-1]):
                _wrap(layer, name, acc, f"{layer.name}.{'forward' if name == 'forward' else 'backward'}", active)
    from distdl.engine.step import StepRunner
    orig = StepRunner._losses_and_grads

    def timed(self, *a, **k):
        t = time.perf_counter()
        try:
            return orig(self, *a, **k)
        finally:
            acc["loss"] = acc.get("loss", 0.0) + time.perf_counter() - t
    StepRunner._losses_and_grads = timed
    _wrap(m.optimizer, "update", acc, "optimizer")
    per = []
    for _ in range(repeats):
        acc.clear()
        total = w.run_epoch()
        per.append({k: v / steps for k, v in acc.items()} | {"step": total / steps})
    StepRunner._losses_and_grads = orig
    keys = per[0].keys()
    med = {k: common.median(p[k] for p in per) for k in keys}
    # a layer's backward may call its backward_preactivation: count the outer call only
    med["other"] = med["step"] - sum(v for k, v in med.items() if k != "step")
    return med


def worker(args) -> dict:
    out = {"blas": common.blas_info(), "models": {}}
    for model in args.models.split(","):
        steps = 3 if args.quick else STEPS[model]
        sec = sections(model, steps, args.repeats)
        out["models"][model] = {"us_per_step": {k: v * 1e6 for k, v in sec.items()}}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--models", args.models,
            "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    res = common.run_child(argv, common.bench_env(1))
    res.update(benchmark="hotspots", machine=common.machine_info())
    for model, r in res["models"].items():
        us = r["us_per_step"]
        step = us["step"]
        rows = sorted(((k, v, v / step) for k, v in us.items() if k != "step"), key=lambda kv: -kv[1])
        common.print_table(["section", "us/step", "share"], rows,
                           f"{model}: {step:.0f} us/step (1 thread, median of {args.repeats})")
    print(f"\nwrote {common.write_json(res, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
