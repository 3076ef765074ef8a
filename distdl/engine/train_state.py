"""The training loop's state: where `fit` is, what the epoch has summed so far, how to resume.

`TrainState` is created and owned by `fit` and exposed as `model.train_state`; callbacks and
checkpoints read and write it through its fields and methods (no private attributes of the step).
`SumLayout` names the slices of the step's one float64 vector that one small allreduce per step
sums across ranks, so neither the step nor a checkpoint addresses it by position.
`ResumePoint` is where a backup says training stopped, waiting for `fit` to continue from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CheckpointError

__all__ = ["SumLayout", "ResumePoint", "TrainState"]


class SumLayout:
    """Named slices of one flat float64 vector: a step's sums, or an epoch's running totals.

    Order (format version 1 checkpoints stored the whole vector positionally in this order):
    rows | loss | one loss sum per output | each metric's state | SIGTERM count | SIGINT count.
    `rows` counts the global rows; `loss` holds a step's activity-regularization loss, in the
    training totals the sum of rows x batch loss, in evaluation totals the activity losses; an
    output's loss sum is its per-row losses summed (weighted where rows or elements are); a
    metric's state is its `get_state()`; the signal counts are how many ranks were signalled.
    Integer indices and slices are plain attributes, for the per-step code.

    Args:
        output_names: per output, the log name of its loss.
        metrics: per metric, (its log name, its state size).
    """

    def __init__(self, output_names: list[str], metrics: list[tuple[str, int]]):
        self.rows, self.loss = 0, 1
        start = 2 + len(output_names)
        self.outputs = list(range(2, start))       # index of each output's loss sum
        self.output_sums = slice(2, start)
        self.metrics: list[slice] = []             # each metric's state, in `metrics` order
        for _, size in metrics:
            self.metrics.append(slice(start, start + size))
            start += size
        self.epoch_sums = slice(2, start)          # what adds up step after step over an epoch
        self.sigterm, self.sigint = start, start + 1
        self.signals = slice(start, start + 2)
        self.size = start + 2
        names = ["rows", "loss"] + [f"loss_sum/{n}" for n in output_names] + [f"metric/{n}" for n, _ in metrics]
        parts = [slice(0, 1), slice(1, 2)] + [slice(i, i + 1) for i in self.outputs] + self.metrics
        self.parts: dict[str, slice] = {}          # name -> slice; everything but the signal counts
        for name, part in zip(names, parts):
            key, k = name, 1
            while key in self.parts:               # e.g. one metric given twice
                k += 1
                key = f"{name}#{k}"
            self.parts[key] = part

    def named(self, values: np.ndarray) -> dict[str, list[float]]:
        """The vector by name (signal counts left out: they mean nothing after the step).

        Args:
            values: a vector laid out by this layout.
        """
        return {name: values[part].tolist() for name, part in self.parts.items()}

    def load(self, values: np.ndarray, named: dict[str, list[float]]) -> None:
        """Write `named` (as `named()` gives it) into `values`; the signal counts become 0.

        Raises CheckpointError when the names differ (e.g. a model compiled with other metrics).

        Args:
            values: the vector to write into.
            named: the totals by name.
        """
        if set(named) != set(self.parts):
            raise CheckpointError(f"The checkpoint's epoch totals ({', '.join(sorted(named))}) do not fit this "
                                  f"model's loss and metrics ({', '.join(sorted(self.parts))}).")
        values.fill(0.0)
        for name, part in self.parts.items():
            values[part] = named[name]

    def named_v1(self, positional: list[float]) -> dict[str, list[float]]:
        """Totals of a format version 1 checkpoint (the raw vector, in this layout's order) by name.

        Args:
            positional: the checkpoint's vector.
        """
        if len(positional) != self.size:
            raise CheckpointError(f"The checkpoint's epoch totals hold {len(positional)} numbers but this "
                                  f"model's loss and metrics need {self.size}.")
        return self.named(np.asarray(positional, dtype=np.float64))


@dataclass
class ResumePoint:
    """Where a backup says training stopped; `fit` continues from it once `on_train_begin` has run.

    Args:
        epoch: the epoch training stopped in.
        step: steps done in `epoch` (0: at its start).
        seed: the stopped fit's seed (the data order and dropout follow it).
        history: the history recorded so far.
        totals: the epoch's running totals by name when `step` > 0.
    """

    epoch: int
    step: int                                      # steps done in `epoch` (0: at its start)
    seed: int
    history: dict[str, list[float]]
    totals: dict[str, list[float]] | None = None  # the epoch's totals by name when `step` > 0


@dataclass(eq=False)
class TrainState:
    """The position and running sums of one `fit`, owned by its loop.

    Args:
        seed: the fit's seed, the same on every rank.
        batch_size: rows per global batch.
        steps_per_update: micro-batches per optimizer update.
        steps_per_epoch: global batches per epoch.
        epoch: the current epoch.
        step: steps done in `epoch`.
        stop: Keras's `model.stop_training`.
        history: the History callback recording epoch logs (or None).
        totals: the step's vector of the epoch's running sums, laid out by `layout` (the step
            adds to it in place).
        layout: the SumLayout of `totals`.
        resume: a pending `ResumePoint` set by BackupAndRestore.
        strategy: how this fit sums and applies gradients (distdl.comm.strategies; its `sharded`
            says whether each rank steps only its slice of node-shared weights).
    """

    seed: int = 0
    batch_size: int = 32
    steps_per_update: int = 1
    steps_per_epoch: int = 0
    epoch: int = 0
    step: int = 0                                  # steps done in `epoch`
    stop: bool = False
    history: Any = None                            # the History callback (or None)
    totals: np.ndarray | None = None
    layout: SumLayout | None = None
    resume: ResumePoint | None = None
    strategy: Any = None                           # the fit's update strategy (distdl.comm.strategies)

    @property
    def global_step(self) -> int:
        """Steps done since the start of epoch 0 (the data order and dropout count from it)."""
        return self.epoch * self.steps_per_epoch + self.step

    def at_update_boundary(self) -> bool:
        """True when no gradient sum is pending (steps_per_update > 1 accumulates across steps)."""
        k = self.steps_per_update
        return k == 1 or self.step % k == 0 or self.step == self.steps_per_epoch

    def named_totals(self) -> dict[str, list[float]] | None:
        """The epoch's running totals by name, or None at an epoch's start (nothing summed yet)."""
        return self.layout.named(self.totals) if self.step and self.layout is not None else None

    def history_so_far(self, epoch_logs: dict | None = None) -> dict[str, list[float]]:
        """A copy of the recorded history, plus `epoch_logs` as one more epoch when given.

        Args:
            epoch_logs: the logs of an epoch not recorded yet, or None.
        """
        h = self.history
        hist = {k: list(v) for k, v in (h.history.items() if h is not None else [])}
        for k, v in (epoch_logs or {}).items():
            hist.setdefault(k, []).append(float(v))
        return hist

    def resume_at(self, epoch: int, step: int, seed: int, history: dict[str, list[float]],
                  totals: dict[str, list[float]] | None = None) -> None:
        """Ask `fit` to continue from this position (BackupAndRestore calls it in on_train_begin).

        Args:
            epoch: the epoch to continue in.
            step: steps already done in it.
            seed: the seed of the fit being resumed.
            history: the history recorded so far.
            totals: the epoch's running totals by name when `step` > 0.
        """
        self.resume = ResumePoint(epoch=int(epoch), step=int(step), seed=int(seed), history=history,
                                  totals=totals)

    def apply_resume(self) -> int:
        """Continue from the pending ResumePoint, if any: position, seed, history and epoch
        totals. Returns the step of the epoch to start at (0 without one)."""
        point, self.resume = self.resume, None
        if point is None:
            return 0
        self.epoch, self.step, self.seed = point.epoch, point.step, point.seed
        if self.history is not None:
            self.history.history = {k: list(v) for k, v in point.history.items()}
            self.history.epoch = list(range(len(next(iter(point.history.values()), []))))
        if point.step and point.totals is not None:
            self.layout.load(self.totals, point.totals)
        return int(point.step)
