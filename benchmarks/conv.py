#!/usr/bin/env python
"""3x3 Conv2D: Winograd F(2x2, 3x3) vs im2col + GEMM, forward + backward of one layer.

For each shape (batch, height, width, channels, filters; padding 'same', ReLU)
times the layer's forward and backward (input gradient included) both ways,
alternating, in one process with 1 BLAS thread (Winograd forced on whatever the
channel count; the last column says which one the layer picks by default);
prints medians and the ratio im2col / Winograd (above 1: Winograd is faster),
and writes JSON.

    .venv/bin/python benchmarks/conv.py
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SHAPES = [(64, 13, 13, 32, 64), (32, 32, 32, 3, 32), (64, 28, 28, 8, 8), (64, 28, 28, 16, 16),
          (32, 32, 32, 16, 32), (32, 32, 32, 32, 32), (32, 16, 16, 64, 64), (32, 8, 8, 128, 128),
          (16, 32, 32, 64, 64)]


def parse_args(argv=None) -> argparse.Namespace:
    return common.parse_timed(common.timed_parser(__doc__, "conv", "one small shape, 2 repeats (for tests)"), argv)


def layer_runner(shape, winograd: bool):
    """A callable timing `calls` forward+backward passes of a fresh Conv2D on random float32 data."""
    import numpy as np

    from distdl.layers import Conv2D
    from distdl.layers import convolutional
    n, h, w, c, f = shape
    layer = Conv2D(f, 3, padding="same", activation="relu")
    layer.ensure_built((h, w, c))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h, w, c), dtype=np.float32)
    dy = rng.standard_normal((n, h, w, f), dtype=np.float32)
    applies = convolutional.winograd_applies

    def forced(kernel, strides, dilation, channels, filters):  # any channel count
        return applies(kernel, strides, dilation, 1 << 30, 1 << 30)

    def run(calls: int) -> float:
        convolutional.winograd_applies = forced if winograd else (lambda *a: False)
        try:
            t = time.perf_counter()
            for _ in range(calls):
                layer.forward(x, training=True)
                layer.backward(dy)
            return (time.perf_counter() - t) / calls
        finally:
            convolutional.winograd_applies = applies
    return run


def worker(args) -> dict:
    from distdl.layers.winograd import winograd_applies
    rows = []
    for shape in (SHAPES if not args.quick else [(4, 8, 8, 8, 8)]):
        calls = 1 if args.quick else 3
        runs = {"winograd": layer_runner(shape, True), "im2col": layer_runner(shape, False)}
        for r in runs.values():
            r(1)  # warm-up: buffers, BLAS start
        times = common.alternate({k: (lambda r=r: r(calls)) for k, r in runs.items()}, args.repeats)
        med = {k: common.median(v) for k, v in times.items()}
        rows.append({"shape": dict(zip(("batch", "height", "width", "channels", "filters"), shape)),
                     "winograd_used_by_default": winograd_applies((3, 3), (1, 1), (1, 1), shape[3], shape[4]),
                     "us": {k: v * 1e6 for k, v in med.items()}, "times_s": times,
                     "im2col_over_winograd": med["im2col"] / med["winograd"]})
    return {"blas": common.blas_info(), "rows": rows}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--repeats", str(args.repeats)]
    res = common.run_child(argv + (["--quick"] if args.quick else []), common.bench_env(1))
    res.update(benchmark="conv", machine=common.machine_info(),
               command=" ".join([Path(sys.executable).name, *sys.argv]))
    table = [[" x ".join(str(v) for v in r["shape"].values()), r["us"]["im2col"], r["us"]["winograd"],
              r["im2col_over_winograd"], "yes" if r["winograd_used_by_default"] else "no"] for r in res["rows"]]
    common.print_table(["N x H x W x C x F", "im2col us", "winograd us", "ratio", "default"], table,
                       f"3x3 Conv2D forward + backward, 1 BLAS thread, median of {args.repeats}")
    print(f"\nwrote {common.write_json(res, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
