"""Keras's batch calls: `train_on_batch`, `test_on_batch`, `predict_on_batch`, collective on
every rank.

The arrays a rank passes are the global batch (every rank passes the same ones, as to `fit`);
each rank computes on its contiguous slice and one small allreduce makes the numbers global,
so N ranks take the step one process takes. As in Keras 3, the returned loss and metrics are
running values since the last `model.reset_metrics()` (or the first call): each call adds its
batch to the same sums. The training runner (and its update strategy, chosen once, collectively)
is kept on the model until it is compiled again or its weights move.
"""
from __future__ import annotations

from .. import utils
from ..comm import agree
from .data_order import my_rows, take_rows
from .loops import _comm, _data_facts, _prepare, _require_compiled, predict
from .step import StepRunner

__all__ = ["train_on_batch", "test_on_batch", "predict_on_batch", "reset_metrics"]


def _checked(model, comm, what, x, y, sample_weight, class_weight=None):
    """The batch's checked arrays on every rank, agreed across ranks (a mismatch stops all)."""
    try:
        _require_compiled(model, what)
        xs, ys, w, n = _prepare(model, x, y, sample_weight, class_weight)
        facts, error = _data_facts(xs, n), None
    except Exception as e:
        xs = ys = w = n = None
        facts, error = {}, e
    agree.check_same(comm, what, facts, error)
    return xs, ys, w, n


def _mine(xs, ys, w, n, comm):
    """This rank's rows of the batch: (xs, ys, w, first global row)."""
    a, z = my_rows(n, comm)
    rows = slice(a, z)
    return ([take_rows(t, rows) for t in xs], [take_rows(t, rows) for t in ys],
            None if w is None else w[rows], a)


def _result(model, logs, return_dict):
    """Keras's return value: the logs dict, else the loss alone or [loss, metrics...] in order."""
    if return_dict:
        return logs
    values = [logs[k] for k in model.metrics_names]
    return values[0] if len(values) == 1 else values


def _train_runner(model, comm):
    """The model's kept training runner, made (collectively) when missing or stale."""
    kept = model.__dict__.get("_batch_runner")
    if kept is not None and kept.comm is comm and kept.model_arena is model.trainable_arena \
            and kept.optimizer is model.optimizer:
        return kept
    runner = StepRunner(model, comm, 1, comm.update_strategy(model))
    runner.model_arena, runner.optimizer, runner.steps = model.trainable_arena, model.optimizer, 0
    runner.seed = comm.bcast_obj(utils.training_seed())
    runner.start_epoch()
    model._batch_runner = runner
    return runner


def train_on_batch(model, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
    """One optimizer step on one global batch; see `Model.train_on_batch`.

    Args:
        model: a compiled model.
        x: the batch's inputs (every rank passes the same global batch).
        y: its targets.
        sample_weight: a weight per row, or None.
        class_weight: a dict class -> weight, or None.
        return_dict: give the logs as a dict.
    """
    comm = _comm(model, None)
    xs, ys, w, n = _checked(model, comm, "train_on_batch", x, y, sample_weight, class_weight)
    model._check_packed()
    runner = _train_runner(model, comm)
    mx, my, mw, first = _mine(xs, ys, w, n, comm)
    ctx = model.ctx
    ctx.seed, ctx.sum_across_ranks, ctx.step = runner.seed, comm.allreduce_sum, runner.steps
    ctx.row_start, ctx.global_rows = first, n
    logs = runner.train_batch(mx, my, mw, n, n)
    runner.steps += 1
    return _result(model, logs, return_dict)


def test_on_batch(model, x, y=None, sample_weight=None, return_dict=False):
    """The loss and metrics of one global batch, added to the running ones; see
    `Model.test_on_batch`.

    Args:
        model: a compiled model.
        x: the batch's inputs (every rank passes the same global batch).
        y: its targets.
        sample_weight: a weight per row, or None.
        return_dict: give the logs as a dict.
    """
    comm = _comm(model, None)
    xs, ys, w, n = _checked(model, comm, "test_on_batch", x, y, sample_weight)
    kept = model.__dict__.get("_test_runner")
    if kept is None or kept.comm is not comm or kept.objs is not model.objectives:
        kept = model._test_runner = StepRunner(model, comm, 1)
        kept.start_epoch()
        kept.rows = kept.batches = 0
    mx, my, mw, first = _mine(xs, ys, w, n, comm)
    model.ctx.row_start, model.ctx.global_rows = first, n
    if len(mx[0]):
        kept.eval_batch(mx, my, mw)
    kept.rows, kept.batches = kept.rows + n, kept.batches + 1
    return _result(model, kept.finish_eval(kept.rows, kept.batches), return_dict)


def predict_on_batch(model, x):
    """The outputs for one batch, on every rank; see `Model.predict_on_batch`.

    Args:
        model: the model.
        x: the batch's inputs (an array, or a list or dict of arrays).
    """
    n = len(x[0] if isinstance(x, (list, tuple)) else next(iter(x.values())) if isinstance(x, dict) else x)
    return predict(model, x, batch_size=max(1, n), verbose=0)


def reset_metrics(model) -> None:
    """Start the running loss and metrics of the batch calls again (Keras's `reset_metrics`).

    Args:
        model: the model whose batch calls' sums restart.
    """
    for name in ("_batch_runner", "_test_runner"):
        runner = model.__dict__.get(name)
        if runner is not None:
            runner.start_epoch()
            if name == "_test_runner":
                runner.rows = runner.batches = 0
