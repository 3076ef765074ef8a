#!/usr/bin/env python
"""Data-parallel scaling of distdl `fit` over 1..N MPI ranks (1 BLAS thread per rank).

Strong scaling keeps the global batch (256); weak scaling keeps the per-rank
batch (128, global 128 x ranks). Each configuration is one `mpirun -n K` of this
script; configurations are cycled `--rounds` times, in a new (seeded) order each
round so that neither drift nor what ran just before favours one (a 2-rank run
right after a 1-rank one measured up to 10% slower on a 2-core VM),
and the median epoch is reported with samples/s, efficiency vs 1 rank and the
time share of compute (forward + backward + optimizer) vs gradient allreduce vs
other (losses, metrics, slicing, callbacks, the small metrics allreduce).
Also: N ranks with MPI's own allreduce and full optimizer step on every rank
(`DISTDL_ALLREDUCE=mpi`) instead of the default shared-memory sum and sharded
step (whose optimizer slice counts as compute), the hybrid choice (1 rank x N threads vs N ranks x 1
thread), an experiment that overlaps the gradient allreduce with backward
(bucketed Iallreduce per layer, patched into this benchmark process only, on
MPI's allreduce), and PyTorch DDP (gloo) on the same ranks when torch is installed.

    .venv/bin/python benchmarks/scaling.py            # MLP, 1..2 ranks
    .venv/bin/python benchmarks/scaling.py --model cnn -n 2
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GLOBAL_BATCH, RANK_BATCH = 256, 128


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", default="mlp", choices=["mlp", "tiny", "cnn", "lstm"])
    p.add_argument("-n", "--max-ranks", type=int, default=2, help="largest rank count (default 2)")
    p.add_argument("--steps", type=int, default=None, help="global batches per timed epoch")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per launch (after one warm-up)")
    p.add_argument("--rounds", type=int, default=2, help="times the whole set of launches is cycled")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch DDP even when installed")
    p.add_argument("--no-overlap", action="store_true", help="skip the overlap experiment")
    p.add_argument("--no-mpi-allreduce", action="store_true",
                   help="skip the run with MPI's own allreduce instead of shared memory")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes for tests (seconds), without the MPI-allreduce run")
    p.add_argument("--out", default=None, help="JSON output file (default benchmarks/results/scaling_<model>.json)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.epochs, args.rounds = args.steps or 2, 1, 1
        args.no_mpi_allreduce = True
    args.steps = args.steps or (20 if args.model in ("mlp", "tiny") else 4)
    args.out = args.out or str(common.default_out(f"scaling_{args.model}"))
    return args


# ----- distdl worker (runs under mpirun) ----------------------------------------------
def distdl_worker(args) -> dict:
    from distdl.comm.mpi import MPIComm
    import workloads as wl
    from overlap import BucketedOverlap

    class TimedComm(MPIComm):
        """MPIComm that adds up the seconds spent in big (gradient) and small allreduces."""
        grad_s = small_s = 0.0

        def allreduce_sum(self, buf):
            t = time.perf_counter()
            out = overlap.finish(buf) if overlap is not None and overlap.owns(buf) else super().allreduce_sum(buf)
            dt = time.perf_counter() - t
            if buf.size > 64:
                self.grad_s += dt
            else:
                self.small_s += dt
            return out

        def reduce_update(self, grads, update):
            """The sharded step: its gradient sum counts as allreduce; its optimizer slice is
            compute (timed where the slice calls the optimizer's `update`)."""
            spent = {"s": 0.0}

            def timed_update(lo, hi):
                u = time.perf_counter()
                update(lo, hi)
                spent["s"] = time.perf_counter() - u
            t = time.perf_counter()
            ok = super().reduce_update(grads, timed_update)
            self.grad_s += time.perf_counter() - t - spent["s"]
            return ok

    comm = TimedComm()
    m = wl.distdl_model(args.model)
    overlap = BucketedOverlap(m, comm) if args.worker == "overlap" and comm.size > 1 else None
    compute, backward = {"s": 0.0}, {"s": 0.0}
    _time_method(m.executor, "forward", compute)
    _time_method(m.executor, "backward", compute, backward)
    x, y = wl.synthetic(args.model, args.batch, args.steps)
    timer = wl._EpochTimer()
    epochs = []
    for e in range(args.epochs + 1):
        comm.grad_s = comm.small_s = compute["s"] = backward["s"] = 0.0
        if e == 1:  # the optimizer exists after the first fit
            _time_method(m.optimizer, "update", compute)
        m.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, callbacks=[timer], comm=comm)
        if e:  # epoch 0 is the warm-up
            epochs.append({"epoch_s": timer.last, "compute_s": compute["s"], "backward_s": backward["s"],
                           "grad_allreduce_s": comm.grad_s,
                           "small_allreduce_s": comm.small_s})
    vals = comm._comm.allgather(epochs)  # timing floats only
    return {"ranks": comm.size, "batch": args.batch, "steps": args.steps, "mode": args.worker,
            "threads": int(os.environ.get("OMP_NUM_THREADS", "0")), "arena_bytes": int(m.grads.nbytes),
            "per_rank": vals, "blas": common.blas_info() if comm.rank == 0 else None}


def _time_method(obj, name, *accs) -> None:
    """Wrap obj.name so that its wall time is added to each acc['s'] (benchmark process only)."""
    fn = getattr(obj, name)

    def wrapped(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            dt = time.perf_counter() - t
            for acc in accs:
                acc["s"] += dt
    setattr(obj, name, wrapped)


def summarize(run: dict) -> dict:
    """Median epoch over ranks' slowest (epoch time = max over ranks) and mean time shares."""
    per_epoch = list(zip(*run["per_rank"]))
    slowest = [max(r["epoch_s"] for r in ep) for ep in per_epoch]
    med = common.median(slowest)
    shares = {}
    for key in ("compute_s", "backward_s", "grad_allreduce_s"):
        shares[key.replace("_s", "_share")] = common.median(
            sum(r[key] for r in ep) / sum(r["epoch_s"] for r in ep) for ep in per_epoch)
    shares["other_share"] = 1 - shares["compute_share"] - shares["grad_allreduce_share"]
    shares["backward_ms_per_step"] = common.median(r["backward_s"] for ep in per_epoch for r in ep) / run["steps"] * 1e3
    shares["allreduce_ms_per_step"] = common.median(
        r["grad_allreduce_s"] for ep in per_epoch for r in ep) / run["steps"] * 1e3
    gb = run["batch"]
    return {"epoch_s": med, "samples_per_s": gb * run["steps"] / med, "us_per_step": med / run["steps"] * 1e6,
            "epoch_s_all": slowest, **shares}


# ----- PyTorch DDP worker -----------------------------------------------------------
def ddp_worker(args) -> dict:
    import torch
    import torch.distributed as dist
    import workloads as wl
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    local = args.batch // size
    net = torch.nn.parallel.DistributedDataParallel(wl.torch_model(args.model))
    x, y = wl.synthetic(args.model, args.batch, args.steps)
    if args.model == "cnn":
        x = x.transpose(0, 3, 1, 2).copy()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for e in range(args.epochs + 1):
        dist.barrier()
        t = time.perf_counter()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(e))
        for s in range(args.steps):
            idx = order[s * args.batch + rank * local:s * args.batch + (rank + 1) * local]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        dt = torch.tensor([time.perf_counter() - t])
        dist.all_reduce(dt, op=dist.ReduceOp.MAX)
        if e:
            times.append(float(dt))
    dist.destroy_process_group()
    med = common.median(times)
    return {"ranks": size, "batch": args.batch, "epoch_s_all": times, "epoch_s": med,
            "samples_per_s": args.batch * args.steps / med}


def launch_ddp(args, ranks: int, batch: int) -> dict:
    """Start `ranks` DDP processes on localhost (env:// init) and return rank 0's result."""
    import socket
    import subprocess
    with socket.socket() as s:  # a port that is free now (a fixed range clashed with ports in use)
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = []
    for r in range(ranks):
        env = common.bench_env(1, {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "RANK": str(r),
                                   "WORLD_SIZE": str(ranks)})
        procs.append(subprocess.Popen(worker_argv(args, "ddp", batch), env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=1800) for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("DDP worker failed:\n" + "\n".join(o[1][-2000:] for o in outs))
    return json.loads([ln for ln in outs[0][0].splitlines() if ln.startswith("{")][-1])


# ----- the parent -----------------------------------------------------------------
def worker_argv(args, mode: str, batch: int) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--model", args.model,
            "--batch", str(batch), "--steps", str(args.steps), "--epochs", str(args.epochs)]
    return argv + (["--quick"] if args.quick else [])


def launch(args, ranks: int, batch: int, threads: int = 1, mode: str = "plain", env_extra=None) -> dict:
    argv = [common.mpirun_path(), "-n", str(ranks)] + worker_argv(args, mode, batch)
    run = common.run_child(argv, common.bench_env(threads, env_extra))
    run["threads"] = threads
    return run


def configs(args) -> dict[str, tuple]:
    """name -> (kind, ranks, global batch, threads, env)."""
    cores = os.cpu_count() or 1
    out = {}
    for k in range(1, args.max_ranks + 1):
        out[f"strong_{k}"] = ("plain", k, GLOBAL_BATCH, 1, None)
        out[f"weak_{k}"] = ("plain", k, RANK_BATCH * k, 1, None)
    if args.max_ranks >= 2:
        n, mpi = args.max_ranks, {"DISTDL_ALLREDUCE": "mpi"}
        if not args.no_mpi_allreduce:
            out[f"mpi_allreduce_{n}"] = ("plain", n, GLOBAL_BATCH, 1, mpi)
        out[f"hybrid_1x{n}"] = ("plain", 1, GLOBAL_BATCH, min(n, cores), None)
        if not args.no_overlap:  # buckets of the arena as built, so MPI's allreduce (no shared window)
            out[f"overlap_{n}"] = ("overlap", n, GLOBAL_BATCH, 1, mpi)
            out[f"overlap_async_{n}"] = ("overlap", n, GLOBAL_BATCH, 1, {**mpi, "MPIR_CVAR_ASYNC_PROGRESS": "1"})
    if not args.no_torch and common.torch_available():
        for k in range(1, args.max_ranks + 1):
            out[f"ddp_{k}"] = ("ddp", k, GLOBAL_BATCH, 1, None)
    return out


def run_all(args) -> dict:
    cfgs = configs(args)
    raw: dict[str, list] = {k: [] for k in cfgs}
    for rnd in range(args.rounds):
        order = list(cfgs)
        random.Random(rnd).shuffle(order)
        for name in order:
            kind, k, batch, threads, env = cfgs[name]
            if kind == "ddp":
                raw[name].append(launch_ddp(args, k, batch))
            else:
                raw[name].append(launch(args, k, batch, threads, kind, env))
    results = {}
    for name, runs in raw.items():
        if cfgs[name][0] == "ddp":
            times = [t for r in runs for t in r["epoch_s_all"]]
            med = common.median(times)
            results[name] = {"ranks": runs[0]["ranks"], "batch": runs[0]["batch"], "epoch_s": med,
                             "samples_per_s": runs[0]["batch"] * args.steps / med}
        else:
            merged = dict(runs[0], per_rank=[sum((r["per_rank"][i] for r in runs), [])
                                             for i in range(runs[0]["ranks"])])
            results[name] = {"ranks": runs[0]["ranks"], "batch": runs[0]["batch"], "threads": runs[0]["threads"],
                             "arena_bytes": runs[0]["arena_bytes"], **summarize(merged)}
    return results


def derive(results: dict, args) -> dict:
    """Efficiencies and the ratios the issues ask for."""
    d = {}
    one = results["strong_1"]["samples_per_s"]
    for k in range(1, args.max_ranks + 1):
        d[f"strong_eff_{k}"] = results[f"strong_{k}"]["samples_per_s"] / (k * one)
        d[f"weak_eff_{k}"] = results[f"weak_{k}"]["samples_per_s"] / (k * results["weak_1"]["samples_per_s"])
        if f"ddp_{k}" in results:
            d[f"ddp_eff_{k}"] = results[f"ddp_{k}"]["samples_per_s"] / (k * results["ddp_1"]["samples_per_s"])
            d[f"distdl_over_ddp_{k}"] = results[f"strong_{k}"]["samples_per_s"] / results[f"ddp_{k}"]["samples_per_s"]
    n = args.max_ranks
    mpi = results.get(f"mpi_allreduce_{n}")
    if mpi is not None:
        d[f"mpi_allreduce_eff_{n}"] = mpi["samples_per_s"] / (n * one)
        d[f"shm_over_mpi_allreduce_{n}"] = results[f"strong_{n}"]["samples_per_s"] / mpi["samples_per_s"]
    if f"hybrid_1x{n}" in results:
        d["ranks_over_threads"] = results[f"strong_{n}"]["samples_per_s"] / results[f"hybrid_1x{n}"]["samples_per_s"]
    s = results[f"strong_{n}"]
    # the most of the gradient allreduce that backward could hide, were the allreduce progressed by
    # an otherwise idle core (buckets posted as layers finish; the first layer's bucket cannot be hidden)
    if s["allreduce_ms_per_step"] > 0:
        d[f"hideable_allreduce_fraction_{n}"] = min(1.0, s["backward_ms_per_step"] / s["allreduce_ms_per_step"])
    for key in (f"overlap_{n}", f"overlap_async_{n}"):
        if key in results:  # against the same (MPI) allreduce without overlap
            d[f"{key}_speedup"] = results[key]["samples_per_s"] / (mpi or s)["samples_per_s"]
    return d


def report(res: dict) -> None:
    rows = []
    for name, r in res["results"].items():
        rows.append([name, r["ranks"], r.get("threads", 1), r["batch"], r["samples_per_s"], r["epoch_s"] * 1e3,
                     r.get("compute_share"), r.get("grad_allreduce_share"), r.get("other_share"),
                     r.get("backward_ms_per_step"), r.get("allreduce_ms_per_step")])
    common.print_table(["config", "ranks", "threads", "global batch", "samples/s", "epoch ms", "compute",
                        "allreduce", "other", "bwd ms/step", "allreduce ms/step"], rows,
                       f"{res['model']}: {res['steps']} steps per epoch, median epoch (ranks' slowest)")
    common.print_table(["ratio", "value"], [[k, v] for k, v in res["derived"].items()], "Ratios")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker == "ddp":
        res = ddp_worker(args)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(res))
        return 0
    if args.worker:
        res = distdl_worker(args)
        if res["blas"] is not None:
            print(json.dumps(res))
        return 0
    if common.mpirun_path() is None:
        print("mpirun not found next to this Python or on PATH: install the mpi extra", file=sys.stderr)
        return 2
    if args.no_torch or not common.torch_available():
        print("torch not installed: skipped" if not args.no_torch else "torch DDP: skipped (--no-torch)")
    t0 = time.time()
    results = run_all(args)
    res = {"benchmark": "scaling", "model": args.model, "steps": args.steps, "epochs": args.epochs,
           "rounds": args.rounds, "machine": common.machine_info(), "results": results,
           "derived": derive(results, args), "command": " ".join([Path(sys.executable).name, *sys.argv]),
           "wall_s": time.time() - t0}
    if (os.cpu_count() or 1) < args.max_ranks:
        res["oversubscribed"] = True
    report(res)
    print(f"\nwrote {common.write_json(res, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
