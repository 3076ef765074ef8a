#!/usr/bin/env python
"""A/B of two code trees: the working tree vs a git revision, training one model.

Checks the revision out into a temporary git worktree, starts one child process
per tree (1 BLAS thread each, the tree first on its PYTHONPATH), and alternates
timed epochs between them, so machine drift hits both alike. Prints the median
us/step of each and the speedup (base time / working-tree time), writes JSON.
The first child tends to run about 1.5% faster: use --swap for the other order.

    .venv/bin/python benchmarks/ab.py --model cnn --base HEAD~3
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STEPS = {"mlp": 40, "tiny": 200, "cnn": 12, "lstm": 12}


def parse_args(argv=None) -> argparse.Namespace:
    p = common.timed_parser(__doc__, "ab", "few steps, 2 repeats (for tests)")
    p.add_argument("--model", default="cnn", choices=sorted(STEPS))
    p.add_argument("--base", default="HEAD", help="git revision to compare the working tree with")
    p.add_argument("--swap", action="store_true", help="start the base tree's child first")
    p.add_argument("--tree", help=argparse.SUPPRESS)  # worker: the code tree it runs
    args = common.parse_timed(p, argv)
    if args.quick:
        STEPS[args.model] = 2
    return args


def worker(args) -> None:
    """Build the workload from this tree, then time one epoch per line read from stdin."""
    sys.path.insert(0, str(Path(args.tree) / "benchmarks"))
    import workloads as wl
    steps = STEPS[args.model]
    w = wl.distdl_workload(args.model, wl.MODELS[args.model][1], steps)
    w.run_epoch()
    import distdl
    print("ready", distdl.__file__, flush=True)
    for _ in sys.stdin:
        print(json.dumps(w.run_epoch() / steps), flush=True)


def start(args, tree: Path) -> tuple[subprocess.Popen, str]:
    """A worker running `tree`'s code, and the distdl package it imported."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--tree", str(tree),
            "--model", args.model] + (["--quick"] if args.quick else [])
    env = common.bench_env(1)
    env["PYTHONPATH"] = str(tree)
    proc = subprocess.Popen(argv, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if line[:1] != ["ready"] or not Path(line[1]).resolve().is_relative_to(tree.resolve()):
        proc.kill()
        raise RuntimeError(f"the child for {tree} did not start on that tree's code: {' '.join(line)!r}")
    return proc, line[1]


def compare(args, base_tree: Path) -> dict:
    trees = {"work": common.ROOT, "base": base_tree}
    order = ["base", "work"] if args.swap else ["work", "base"]
    started = {k: start(args, trees[k]) for k in order}
    procs = {k: p for k, (p, _) in started.items()}
    times: dict[str, list[float]] = {k: [] for k in order}
    try:
        for _ in range(args.repeats):
            for k in order:
                procs[k].stdin.write("go\n")
                procs[k].stdin.flush()
                times[k].append(json.loads(procs[k].stdout.readline()))
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    med = {k: common.median(v) for k, v in times.items()}
    return {"model": args.model, "base": args.base, "order": order, "distdl": {k: f for k, (_, f) in started.items()},
            "us_per_step": {k: v * 1e6 for k, v in med.items()}, "times_s": times,
            "speedup": med["base"] / med["work"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(common.ROOT), "worktree", "add", "--detach", "-q", str(base_tree),
                        args.base], check=True)
        try:
            res = compare(args, base_tree)
        finally:
            subprocess.run(["git", "-C", str(common.ROOT), "worktree", "remove", "--force", str(base_tree)],
                           check=False)
    res.update(benchmark="ab", machine=common.machine_info(), command=" ".join([Path(sys.executable).name, *sys.argv]))
    us = res["us_per_step"]
    common.print_table(["tree", "us/step"], [["working tree", us["work"]], [f"base {args.base}", us["base"]]],
                       f"{args.model}: median of {args.repeats} alternating epochs, 1 thread, {res['order'][0]} first")
    print(f"\nspeedup (base time / working-tree time): {res['speedup']:.3f}")
    print(f"wrote {common.write_json(res, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
