"""The benchmark models, built three ways: distdl, PyTorch eager, and a GEMM-only loop.

Each builder returns a `Workload` whose `run_epoch()` trains `steps` batches and
returns the seconds it took (first call is the caller's warm-up). Data are
synthetic float32 with sparse integer labels, and the same for every runner.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import common

MODELS = {
    # name: (input shape without batch, default batch)
    "mlp": ((784,), 128),
    "tiny": ((100,), 32),
    "cnn": ((28, 28, 1), 64),
    "lstm": ((32, 32), 64),
}
DENSE_SIZES = {"mlp": [784, 512, 512, 10], "tiny": [100, 64, 10]}


@dataclass
class Workload:
    run_epoch: Callable[[], float]
    steps: int
    batch: int
    model: object = None  # the distdl model a distdl workload trains (hotspots instruments it)


def synthetic(model: str, batch: int, steps: int, seed: int = 0):
    """(x, y): `batch * steps` float32 rows of the model's input shape and labels in [0, 10)."""
    shape, _ = MODELS[model]
    rng = np.random.default_rng(seed)
    n = batch * steps
    x = rng.standard_normal((n,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    return x, y


# ----- distdl -------------------------------------------------------------------
def distdl_model(model: str):
    """The distdl Keras-style model, compiled with SGD(0.01, momentum=0.9) and sparse CE from logits."""
    from distdl.layers import LSTM, Conv2D, Dense, Flatten, Input, MaxPooling2D
    from distdl.models import Sequential
    from distdl.optimizers import SGD
    from distdl.utils import set_random_seed
    set_random_seed(0)
    shape, _ = MODELS[model]
    if model in DENSE_SIZES:
        sizes = DENSE_SIZES[model]
        layers = [Dense(u, activation="relu") for u in sizes[1:-1]] + [Dense(sizes[-1])]
    elif model == "cnn":
        layers = [Conv2D(32, 3, activation="relu"), MaxPooling2D(2), Conv2D(64, 3, activation="relu"),
                  MaxPooling2D(2), Flatten(), Dense(128, activation="relu"), Dense(10)]
    else:
        layers = [LSTM(128), Dense(10)]
    m = Sequential([Input(shape)] + layers)
    m.compile(optimizer=SGD(learning_rate=0.01, momentum=0.9), loss=_sparse_ce_logits())
    return m


def _sparse_ce_logits():
    from distdl.losses import SparseCategoricalCrossentropy
    return SparseCategoricalCrossentropy(from_logits=True)


class _EpochTimer:
    """A distdl callback that keeps the wall time of the last epoch (excludes fit's set-up)."""

    def __new__(cls):
        from distdl.callbacks import Callback

        class Timer(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.last = time.perf_counter() - self.t0
        return Timer()


def distdl_workload(model: str, batch: int, steps: int, comm=None) -> Workload:
    """`fit(..., verbose=0)` for one epoch of `steps` global batches, timed from epoch begin to end."""
    m = distdl_model(model)
    x, y = synthetic(model, batch, steps)
    timer = _EpochTimer()

    def run():
        m.fit(x, y, batch_size=batch, epochs=1, verbose=0, callbacks=[timer], comm=comm)
        return timer.last
    return Workload(run, steps, batch, m)


# ----- GEMM-only ----------------------------------------------------------------
def gemm_workload(model: str, batch: int, steps: int) -> Workload:
    """Only the Dense matrix products of a training step: x@W, x.T@dz, dz@W.T per layer."""
    sizes = DENSE_SIZES[model]
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((a, b), dtype=np.float32) * 0.05 for a, b in zip(sizes[:-1], sizes[1:])]
    gs = [np.empty_like(w) for w in ws]
    acts = [rng.standard_normal((batch, s), dtype=np.float32) for s in sizes]
    douts = [np.empty((batch, s), dtype=np.float32) for s in sizes]

    def run():
        t = time.perf_counter()
        for _ in range(steps):
            for i, w in enumerate(ws):
                np.matmul(acts[i], w, out=acts[i + 1])
            douts[-1][...] = acts[-1]
            for i in range(len(ws) - 1, -1, -1):
                np.matmul(acts[i].T, douts[i + 1], out=gs[i])
                np.matmul(douts[i + 1], ws[i].T, out=douts[i])
        return time.perf_counter() - t
    return Workload(run, steps, batch)


def dense_flops(model: str, batch: int, first_dx: bool = True) -> float:
    """FLOPs of the Dense GEMMs in one step (2*m*n*k each; 3 GEMMs per layer)."""
    sizes = DENSE_SIZES[model]
    per = [2.0 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 3 * sum(per) - (0 if first_dx else per[0])


def gemm_rate(n: int = 512, repeats: int = 20) -> float:
    """Measured float32 GEMM rate in GFLOP/s on (n x n) @ (n x n), best of `repeats`."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, n, n), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    best = min(common.time_call(lambda: np.matmul(a, b, out=c)) for _ in range(repeats))
    return 2.0 * n ** 3 / best / 1e9


# ----- PyTorch eager ------------------------------------------------------------
def torch_model(model: str, channels_last: bool = False):
    """The same model in PyTorch, Glorot-uniform weights and zero biases like Keras."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    if model in DENSE_SIZES:
        sizes = DENSE_SIZES[model]
        mods = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        net = nn.Sequential(*mods[:-1])
    elif model == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        class LSTMNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(32, 128, batch_first=True)
                self.out = nn.Linear(128, 10)

            def forward(self, x):
                return self.out(self.lstm(x)[0][:, -1])
        net = LSTMNet()
    for mod in net.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(mod.weight)
            nn.init.zeros_(mod.bias)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def torch_workload(model: str, batch: int, steps: int, channels_last: bool = False, net=None) -> Workload:
    """A plain eager loop: shuffled index batches, zero_grad, forward, CE loss, backward, SGD momentum."""
    import torch
    x, y = synthetic(model, batch, steps)
    if model == "cnn":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NHWC -> NCHW
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if channels_last:
        xt = xt.contiguous(memory_format=torch.channels_last)
    net = net if net is not None else torch_model(model, channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = len(x)

    def run():
        t = time.perf_counter()
        order = torch.randperm(n)
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        return time.perf_counter() - t
    return Workload(run, steps, batch)
