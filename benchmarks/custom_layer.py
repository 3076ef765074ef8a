#!/usr/bin/env python
"""A layer written with distdl.ops (recorded, no backward) vs the built-in Dense: step time and
the recording overhead per op.

MLP 784-512-512-10, batch 128, 1 BLAS thread, in one child process: the two hidden layers are
either built-in `Dense(512, activation="relu")` or a user-written `CustomDense` whose call is
`ops.relu(ops.matmul(x, kernel) + bias)`; the output layer is the built-in Dense(10, softmax) in
both. Epochs of `fit` alternate between the two models; prints the median us/step of each and
the ratio custom / built-in (issue 13's target: at most 1.3).

The recording overhead is the time of `ops.add` on 1-element arrays while recording minus
`np.add` on the same arrays (forward), and the time `backward` takes per node of a long
chain of such ops, in microseconds.

    .venv/bin/python benchmarks/custom_layer.py
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BATCH, STEPS = 128, 20


def parse_args(argv=None):
    return common.parse_timed(common.timed_parser(__doc__, "custom_layer", "2 steps, 2 repeats (for tests)"),
                              argv)


def models():
    """The built-in and the custom MLP, with equal weights."""
    import numpy as np

    from distdl import ops
    from distdl.layers import Dense, Input, Layer
    from distdl.models import Sequential

    class CustomDense(Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
            self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

        def call(self, inputs):
            return ops.relu(ops.matmul(inputs, self.kernel) + self.bias)

    built_in = Sequential([Input(shape=(784,)), Dense(512, activation="relu"), Dense(512, activation="relu"),
                           Dense(10, activation="softmax")])
    custom = Sequential([Input(shape=(784,)), CustomDense(512), CustomDense(512), Dense(10, activation="softmax")])
    custom.set_weights(built_in.get_weights())
    for m in (built_in, custom):
        m.compile("sgd", "categorical_crossentropy")
    return {"built-in Dense": built_in, "custom (ops)": custom}, np


def op_overhead(np, repeats: int) -> dict:
    """Microseconds of recording per op (forward, over plain NumPy) and of backward per node, on
    1-element arrays in tapes of 10 ops (a layer's call is a short tape)."""
    from distdl import ops
    from distdl.autodiff import Tape, backward, recording
    a, b, one = np.ones(1, np.float32), np.ones(1, np.float32), np.ones(1, np.float32)
    tapes, per_tape = 2000, 10
    fwd, bwd, plain = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(tapes):
            y = a
            for _ in range(per_tape):
                y = np.add(y, b)
        plain.append(time.perf_counter() - t)
        f = r = 0.0
        for _ in range(tapes):
            tape = Tape("benchmark")
            with recording(tape):
                t = time.perf_counter()
                y = tape.leaf(a)
                for _ in range(per_tape):
                    y = ops.add(y, b)
                f += time.perf_counter() - t
            t = time.perf_counter()
            backward(tape, [(y, one)])
            r += time.perf_counter() - t
        fwd.append(f)
        bwd.append(r)
    n = tapes * per_tape
    us = {k: common.median(v) / n * 1e6 for k, v in (("plain", plain), ("fwd", fwd), ("bwd", bwd))}
    return {"numpy_add_us": us["plain"], "recorded_add_us": us["fwd"],
            "record_overhead_us": us["fwd"] - us["plain"], "backward_per_node_us": us["bwd"]}


def worker(args) -> None:
    steps = 2 if args.quick else STEPS
    pair, np = models()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH * steps, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, BATCH * steps)]

    def epoch(model):
        return lambda: common.time_call(lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
                                                          shuffle=False)) / steps * 1e6
    for m in pair.values():  # warm up: first-call allocations
        m.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0)
    times = common.alternate({k: epoch(m) for k, m in pair.items()}, args.repeats)
    out = {"us_per_step": {k: common.median(v) for k, v in times.items()}, "runs": times,
           "ops": op_overhead(np, args.repeats)}
    print(json.dumps(out))


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--repeats", str(args.repeats)]
    res = common.run_child(argv + (["--quick"] if args.quick else []), common.bench_env(1))
    us = res["us_per_step"]
    ratio = common.ratio(us["custom (ops)"], us["built-in Dense"])
    common.print_table(["model", "us/step"], [[k, v] for k, v in us.items()],
                       f"MLP 784-512-512-10, batch {BATCH}, 1 BLAS thread (median of {args.repeats})")
    print(f"custom / built-in: {ratio:.3f}  (target <= 1.3)")
    ops_ = res["ops"]
    print(f"recording overhead per op: {ops_['record_overhead_us']:.2f} us (ops.add {ops_['recorded_add_us']:.2f} us "
          f"vs np.add {ops_['numpy_add_us']:.2f} us); backward per node: {ops_['backward_per_node_us']:.2f} us "
          f"(target < 5 us)")
    data = {"benchmark": "custom_layer", "batch": BATCH, "ratio_custom_over_builtin": ratio, **res,
            "machine": common.machine_info(), "blas": common.blas_info()}
    print(f"wrote {common.write_json(data, args.out)}")


if __name__ == "__main__":
    main()
