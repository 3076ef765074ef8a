"""The `fit` / `evaluate` / `predict` loops, data-parallel through a Communicator.

Global-batch semantics (design decision 2): each global batch is split in
contiguous per-rank slices; every rank backpropagates the sum of its per-sample
losses scaled by 1 / (global rows), one allreduce sums the gradient arena and
one small allreduce sums loss and metric totals, so N ranks follow the
single-process trajectory and every rank sees the same global logs.
"""
from __future__ import annotations

import numpy as np

from .. import utils
from ..callbacks import CallbackList
from ..comm import agree, ranks_for
from ..errors import ConfigError, DataError
from .data_order import batch_bounds, epoch_order, gathered_order, my_rows, take_rows
from .inputs import as_input_list, as_target_list, check_finite, check_lengths, row_weights, split_validation
from .step import StepRunner
from .train_state import TrainState

__all__ = ["fit", "evaluate", "predict"]


def _comm(model, comm):
    """The loop's communicator, kept by the model: `comm`, else the one an earlier loop gave the
    model, else the world (a model's size-1 SerialComm from construction means none yet)."""
    model.comm = comm or ranks_for(model.comm)
    return model.comm


def _callbacks(comm, callbacks, **params) -> CallbackList:
    """The CallbackList of one fit/evaluate/predict: `params` as Keras hands them to callbacks,
    plus this rank and the world size (progress and logs come from rank 0 only)."""
    return CallbackList(callbacks, rank=comm.rank, world_size=comm.size, **params)


def _verbose(verbose):
    return 1 if verbose == "auto" else int(verbose)


def _require_compiled(model, what):
    if not model.compiled:
        raise ConfigError(f"Call compile() on model {model.name!r} before {what}().")


def _checked_inputs(model, x):
    """x as the model's list of input arrays, with no NaN or inf."""
    xs = as_input_list(model, x)
    for i, a in enumerate(xs):
        check_finite("x" if len(xs) == 1 else f"x[{i}]", a)
    return xs


def _eval_blocks(n, batch_size, comm):
    """This rank's rows of each global batch of `batch_size` rows (evaluate/predict), split as in
    `fit`, so the number of batches (and of batch callbacks) does not depend on the rank count;
    a slice may be empty when a batch has fewer rows than there are ranks."""
    return [slice(s + a, s + z) for s, e in batch_bounds(n, batch_size)
            for a, z in [my_rows(e - s, comm)]]


def _fit_inputs(model, x, y, batch_size, steps_per_update, sample_weight, class_weight, validation_data,
                validation_split):
    """fit's checked arguments on this rank: (batch_size, (xs, ys, w, n), validation or None)."""
    _require_compiled(model, "fit")
    batch_size = _batch_size(batch_size)
    if int(steps_per_update) < 1:
        raise ConfigError(f"steps_per_update must be a positive integer, got {steps_per_update!r}.")
    xs, ys, w, n = _prepare(model, x, y, sample_weight, class_weight)
    val = None
    if validation_data is not None:
        vx, vy, *vw = validation_data
        val = _prepare(model, vx, vy, vw[0] if vw else None)
    elif validation_split:
        (*train, w_tr), (*valid, w_va) = split_validation(xs + ys + [w], validation_split)
        xs, ys, w = train[:len(xs)], train[len(xs):], w_tr
        val = (valid[:len(xs)], valid[len(xs):], w_va, len(valid[0]))
        n = len(xs[0])
    if n == 0:
        raise DataError("No training rows: x is empty.")
    return batch_size, (xs, ys, w, n), val


def _positive_int(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _validation_plan(val, batch_size, steps, val_batch_size):
    """(validation batch size, the validation data cut to `steps` batches) as Keras's
    validation_batch_size and validation_steps say."""
    vbs = batch_size if val_batch_size is None else _positive_int("validation_batch_size", val_batch_size)
    if val is None or steps is None:
        return vbs, val
    rows = min(val[3], _positive_int("validation_steps", steps) * vbs)
    vx, vy, vw, _ = val
    cut = slice(0, rows)
    return vbs, ([take_rows(t, cut) for t in vx], [take_rows(t, cut) for t in vy],
                 None if vw is None else vw[cut], rows)


def _batch_size(batch_size) -> int:
    value = 32 if batch_size is None else batch_size
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(value)


def _data_facts(xs, n) -> dict:
    """What every rank's data must share: its row count and each input's row shape."""
    return {"number of rows": int(n), "input row shapes": [[int(d) for d in a.shape[1:]] for a in xs]}


def _callback_names(callbacks) -> list:
    return [type(c).__name__ for c in (callbacks or [])]


def _prepare(model, x, y, sample_weight=None, class_weight=None):
    """Checked data: (xs, ys, row weights or None, n)."""
    xs = _checked_inputs(model, x)
    ys = as_target_list(model, y)
    n = check_lengths(xs, ys, [sample_weight])
    w = row_weights(model, ys, sample_weight, class_weight)
    return xs, ys, w, n


def fit(model, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
        validation_steps=None, validation_batch_size=None, validation_freq=1, steps_per_update=1, comm=None):
    """Train `model`: `Model.fit` calls it, and its docstring says what each argument means.

    Args:
        model: the compiled model.
        x: the input data.
        y: the target data.
        batch_size: rows per global batch (all ranks).
        epochs: the epoch to stop after.
        verbose: "auto", 0, 1 or 2.
        callbacks: the callbacks to call.
        validation_split: the fraction of rows held out.
        validation_data: (x_val, y_val[, sample_weight]).
        shuffle: shuffle the rows before each epoch.
        class_weight: class index -> loss weight.
        sample_weight: a weight per row.
        initial_epoch: the epoch to start at.
        validation_steps: at most this many validation batches per validation (None: all).
        validation_batch_size: rows per validation batch (None: `batch_size`).
        validation_freq: validate after every this many epochs.
        steps_per_update: micro-batches per optimizer update.
        comm: the communicator (default: the world).
    """
    comm = _comm(model, comm)
    model.__dict__.pop("_batch_runner", None)  # train_on_batch's runner: fit chooses the strategy anew
    try:  # checked on every rank, then agreed: an error or a mismatch on one rank stops all
        batch_size, (xs, ys, w, n), val = _fit_inputs(model, x, y, batch_size, steps_per_update, sample_weight,
                                                      class_weight, validation_data, validation_split)
        val_batch, val = _validation_plan(val, batch_size, validation_steps, validation_batch_size)
        validation_freq = _positive_int("validation_freq", validation_freq)
        must_match = dict(_data_facts(xs, n), epochs=int(epochs), batch_size=batch_size,
                          validation_batch_size=val_batch, validation_freq=validation_freq,
                          steps_per_update=int(steps_per_update), initial_epoch=int(initial_epoch),
                          shuffle=bool(shuffle), validation_rows=0 if val is None else int(val[3]),
                          row_weights=w is not None, callbacks=_callback_names(callbacks))
        error = None
    except Exception as e:
        must_match, error = {}, e
    agree.check_same(comm, "fit", must_match, error)
    seed = comm.bcast_obj(utils.training_seed())
    model.ctx.seed = seed
    # BatchNormalization sums its batch statistics over the global batch
    model.ctx.sum_across_ranks = comm.allreduce_sum
    # every rank starts from rank 0's weights, in the memory the fit's update strategy chose
    runner = StepRunner(model, comm, int(steps_per_update), comm.update_strategy(model))
    bounds = batch_bounds(n, batch_size)
    cbs = _callbacks(comm, callbacks, add_history=True, add_progbar=_verbose(verbose) != 0, model=model,
                     verbose=_verbose(verbose), epochs=epochs, steps=len(bounds))
    # the loop's position and sums; callbacks read it as model.train_state (stop: model.stop_training)
    state = model.train_state = TrainState(
        seed=seed, batch_size=batch_size, steps_per_update=int(steps_per_update), steps_per_epoch=len(bounds),
        epoch=initial_epoch, history=model.history, totals=runner.totals, layout=runner.layout,
        strategy=runner.strategy)
    cbs.on_train_begin()
    start_step = state.apply_resume()  # where BackupAndRestore's backup stopped, if it found one
    model.ctx.seed = seed = state.seed
    per_update = state.steps_per_update
    epoch_logs = {}
    with runner.preemption_guard():
        for epoch in range(state.epoch, epochs):
            state.epoch = epoch
            cbs.on_epoch_begin(epoch)
            order = epoch_order(seed, epoch, n, shuffle)
            if start_step == 0:
                runner.start_epoch()
            logs = {}
            for b in range(start_step, len(bounds)):
                s, e = bounds[b]
                cbs.on_train_batch_begin(b)
                a, z = my_rows(e - s, comm)
                idx = order[s + a:s + z]
                if per_update == 1:
                    group_rows = e - s
                else:
                    group_start = b - b % per_update
                    group_rows = bounds[min(group_start + per_update, len(bounds)) - 1][1] - bounds[group_start][0]
                model.ctx.step = epoch * len(bounds) + b
                model.ctx.row_start, model.ctx.global_rows = a, e - s
                update = (b + 1) % per_update == 0 or b + 1 == len(bounds)  # the group's last micro-batch
                logs = runner.train_batch([take_rows(t, idx) for t in xs], [take_rows(t, idx) for t in ys],
                                          None if w is None else w[idx], e - s, group_rows, last_in_group=update)
                state.step = b + 1
                cbs.on_train_batch_end(b, logs)
                if update:  # stop on a signal only where no partial gradient sum would be lost
                    runner.check_preemption(cbs)
                if state.stop:
                    break
            if start_step == len(bounds):  # resumed from a backup taken after the epoch's last step
                logs = runner.epoch_logs()
            start_step = 0
            epoch_logs = {k: logs[k] for k in sorted(logs)}  # Keras shows logs in name order
            if val is not None and (epoch + 1) % validation_freq == 0:  # with the test hooks, as Keras
                cbs.on_test_begin()
                vlogs = _evaluate_arrays(model, comm, *val, val_batch, cbs)
                cbs.on_test_end(vlogs)
                epoch_logs.update({"val_" + k: vlogs[k] for k in sorted(vlogs)})
            state.epoch, state.step = epoch + 1, 0
            cbs.on_epoch_end(epoch, epoch_logs)
            if state.stop:
                break
    cbs.on_train_end(epoch_logs)
    return model.history


def _evaluate_arrays(model, comm, xs, ys, w, n, batch_size, cbs=None):
    """Global loss and metrics over all rows; each rank takes a contiguous block."""
    runner = StepRunner(model, comm, 1)
    runner.start_epoch()
    for b, rows in enumerate(_eval_blocks(n, batch_size, comm)):
        if cbs:
            cbs.on_test_batch_begin(b)
        model.ctx.global_rows = min(batch_size, n - b * batch_size)  # add_loss weighs its share by it
        if rows.stop > rows.start:
            runner.eval_batch([take_rows(t, rows) for t in xs], [take_rows(t, rows) for t in ys],
                              None if w is None else w[rows])
        if cbs:
            cbs.on_test_batch_end(b, {})
    return runner.finish_eval(n, max(1, -(-n // batch_size)))


def evaluate(model, x, y, batch_size=None, verbose="auto", sample_weight=None, callbacks=None,
             return_dict=False, comm=None):
    """Evaluate `model`: `Model.evaluate` calls it, and its docstring says what each argument means.

    Args:
        model: the compiled model.
        x: the input data.
        y: the target data.
        batch_size: rows per global batch (all ranks).
        verbose: "auto", 0, 1 or 2.
        sample_weight: a weight per row.
        callbacks: the callbacks to call.
        return_dict: return a dict by metric name.
        comm: the communicator (default: the world).
    """
    comm = _comm(model, comm)
    try:  # checked on every rank, then agreed (see fit)
        _require_compiled(model, "evaluate")
        batch_size = _batch_size(batch_size)
        xs, ys, w, n = _prepare(model, x, y, sample_weight)
        must_match = dict(_data_facts(xs, n), batch_size=batch_size, row_weights=w is not None,
                          callbacks=_callback_names(callbacks))
        error = None
    except Exception as e:
        must_match, error = {}, e
    agree.check_same(comm, "evaluate", must_match, error)
    cbs = _callbacks(comm, callbacks, add_history=False, add_progbar=_verbose(verbose) != 0, model=model,
                     verbose=_verbose(verbose), epochs=1, steps=len(_eval_blocks(n, batch_size, comm)))
    cbs.on_test_begin()
    logs = _evaluate_arrays(model, comm, xs, ys, w, n, batch_size, cbs)
    cbs.on_test_end(logs)
    if return_dict:
        return logs
    values = [logs[k] for k in model.metrics_names]
    return values[0] if len(values) == 1 else values


def predict(model, x, batch_size=None, verbose="auto", callbacks=None, comm=None):
    """`Model.predict`: each global batch is split across ranks, every rank returns all rows
    in order.

    Args:
        model: the built model.
        x: the input data.
        batch_size: rows per global batch (all ranks).
        verbose: "auto", 0, 1 or 2.
        callbacks: the callbacks to call.
        comm: the communicator (default: the world).
    """
    comm = _comm(model, comm)
    try:  # checked on every rank, then agreed (see fit)
        batch_size = _batch_size(batch_size)
        xs = _checked_inputs(model, x)
        n = check_lengths(xs)
        must_match = dict(_data_facts(xs, n), batch_size=batch_size, callbacks=_callback_names(callbacks))
        error = None
    except Exception as e:
        must_match, error = {}, e
    agree.check_same(comm, "predict", must_match, error)
    blocks = _eval_blocks(n, batch_size, comm)
    cbs = _callbacks(comm, callbacks, add_progbar=_verbose(verbose) != 0, model=model, verbose=_verbose(verbose),
                     epochs=1, steps=len(blocks))
    cbs.on_predict_begin()
    # a rank with no rows of a batch (fewer rows than ranks) still joins the gather, with empties
    parts = [[np.empty((0,) + s, dtype=model.params.dtype) for s in _empty_output_shapes(model, xs, n)]]
    for b, rows in enumerate(blocks):
        cbs.on_predict_batch_begin(b)
        out = parts[0]
        model.ctx.global_rows = min(batch_size, n - b * batch_size)
        if rows.stop > rows.start:
            out = model.executor.forward([take_rows(t, rows) for t in xs], False)
            parts.append(out)
        cbs.on_predict_batch_end(b, {"outputs": out})
    cbs.on_predict_end()
    parts = parts[1:] or parts
    outs = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    order, counts = gathered_order(n, batch_size, comm)
    if order is not None:  # several ranks: every rank gets all rows, in order
        outs = [_placed(comm.allgather_rows(np.ascontiguousarray(o), counts), order) for o in outs]
    return outs[0] if len(outs) == 1 else outs


def _empty_output_shapes(model, xs, n) -> list:
    """The output shapes (batch axis excluded) for this rank's empty part of predict's gather. A
    None (variable) axis takes the size the data gives it, read off one row's forward (only such
    models pay it); with no rows at all it is 0."""
    shapes = [tuple(s) for s in model.output_shapes]
    if not any(None in s for s in shapes):
        return shapes
    if n == 0:
        return [tuple(0 if d is None else d for d in s) for s in shapes]
    return [o.shape[1:] for o in model.executor.forward([take_rows(t, slice(0, 1)) for t in xs], False)]


def _placed(gathered, order):
    """`gathered`'s rows put where `order` says they belong."""
    out = np.empty_like(gathered)
    out[order] = gathered
    return out
