"""One training or evaluation step on this rank's rows, and the sums that make it global.

Per step: forward, per-output losses weighted by 1 / (global rows x loss
elements per row), backward into the gradient arena, then the fit's update strategy
(distdl.comm.strategies: sum the arena across ranks, add the regularization gradients
once, step the optimizer; where the ranks share one node each sums and steps its slice
of the weights, which the node holds once), then one small allreduce of
[rows | loss | loss sums | metric state deltas | signal counts] (the vector that
`train_state.SumLayout` names).
"""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np

from ..log import notice
from .graph import train_forward
from .train_state import SumLayout

__all__ = ["StepRunner"]


class StepRunner:
    """Runs train/eval batches for one model and keeps the epoch's global running sums.

    `buf` (this step's sums, summed across ranks) and `totals` (the epoch's running sums) are
    float64 vectors laid out by `layout`, a SumLayout: every access goes through its names.

    Args:
        model: the compiled, built model.
        comm: the communicator the sums are taken over.
        steps_per_update: micro-batches whose gradients are summed before each update.
        strategy: the fit's update strategy (`comm.update_strategy(model)`); None to evaluate.
    """

    def __init__(self, model, comm, steps_per_update=1, strategy=None):
        self.model, self.comm = model, comm
        self.objs = model.objectives
        self.fused = [o.fused for o in self.objs]
        self.n_out = len(self.objs)
        named = [(i, o.log_name(m.name), m) for i, o in enumerate(self.objs) for m in o.metrics]
        self.layout = SumLayout([o.log_name("loss") for o in self.objs], [(n, m.state_size) for _, n, m in named])
        # (output index, log name, metric, its slice of the vectors)
        self.metrics = [(i, n, m, part) for (i, n, m), part in zip(named, self.layout.metrics)]
        self.buf = np.zeros(self.layout.size)
        self.totals = np.zeros_like(self.buf)
        self.acc = np.zeros_like(model.grads) if steps_per_update > 1 else None
        self.strategy = strategy
        # whether any loss may be masked (Keras: output masks, ignore_class); alike on all ranks
        self.may_mask = bool(getattr(model.executor, "masked", False)) or any(
            getattr(o.loss, "ignore_class", None) is not None for o in self.objs)
        self.valid = np.zeros(2 * self.n_out)  # evaluation: [valid | all] masked loss elements per output
        self.preempt_signal = 0

    def start_epoch(self):
        """Zero the epoch's running sums and reset every metric."""
        self.totals.fill(0)
        for _, _, m, _ in self.metrics:
            m.reset_state()

    # ----- losses ----------------------------------------------------------
    def _loss_weights(self, outs, ys, w, rows=None):
        """Per output: the weights of its per-sample losses, or None where all are 1.

        Row weights `w`, times Keras's loss mask where there is one (the output's mask, e.g. from
        Embedding(mask_zero=True), and the loss's own, e.g. ignore_class). Training (`rows`, the
        global batch) scales a mask by elements / valid elements of the global batch, so the
        batch loss is sum(loss x mask) / valid, as Keras's `apply_mask`; evaluation keeps 0/1
        masks and counts the valid elements in `self.valid` (the loss divides by them).
        """
        if not self.may_mask:
            return [w] * self.n_out
        out_masks = self.model.executor.output_masks or [None] * self.n_out
        masks = [_loss_mask(o.loss, out, y, m) for o, out, y, m in zip(self.objs, outs, ys, out_masks)]
        valid = np.array([0.0 if m is None else float(np.count_nonzero(m)) for m in masks])
        if rows is None:
            self.valid += np.concatenate([valid, [0.0 if m is None else m.size for m in masks]])
        else:  # every rank runs this: may_mask depends on the model alone
            self.comm.allreduce_sum(valid)
        ws = []
        for m, v, out in zip(masks, valid, outs):
            if m is None:
                ws.append(w)
                continue
            scale = 1.0 if rows is None else (rows * m[0].size / v if v else 0.0)
            ws.append(_by_rows(w, m.astype(out.dtype) * out.dtype.type(scale)))
        return ws

    def _losses_and_grads(self, outs, ys, ws, grad_rows, want_grads):
        """Fill the loss sums of `self.buf`; return output gradients (or None). `ws`: per output,
        the per-sample loss weights or None."""
        douts = []
        sums = self.layout.outputs
        for i, (obj, out, y, w) in enumerate(zip(self.objs, outs, ys, ws)):
            if w is None and want_grads:
                self.buf[sums[i]], g = obj.loss.value_and_gradient(y, out, obj.weight, grad_rows, obj.fused)
                douts.append(g)
                continue
            per = obj.loss.values(y, out)
            per_row = int(np.prod(per.shape[1:], dtype=np.int64))
            if w is None:
                self.buf[sums[i]] = float(np.sum(per)) / per_row if per.size else 0.0
                continue
            wb = np.broadcast_to(w.reshape(w.shape + (1,) * (per.ndim - w.ndim)), per.shape).astype(per.dtype)
            self.buf[sums[i]] = float(np.sum(per * wb)) / per_row if per.size else 0.0
            if want_grads:
                wb = wb * (obj.weight / (grad_rows * per_row))
                douts.append(obj.loss.gradient_logits(y, out, wb) if obj.fused else obj.loss.gradient(y, out, wb))
        return douts

    def _update_metrics(self, outs, ys, w):
        # Keras 3 masks metrics only through sample weights: with weights, an output's mask
        # multiplies them (without rescaling); without, every element counts
        out_masks = self.model.executor.output_masks if w is not None and self.may_mask else None
        for i, _, m, _ in self.metrics:
            if len(outs[i]):
                masked = out_masks is not None and out_masks[i] is not None
                m.update_state(ys[i], outs[i], sample_weight=_by_rows(w, out_masks[i]) if masked else w)

    def _metric_deltas(self, outs, ys, w):
        """This batch's metric states, into the buffer that is summed across ranks."""
        if not self.metrics:
            return
        for _, _, m, _ in self.metrics:
            m.reset_state()
        self._update_metrics(outs, ys, w)
        for _, _, m, part in self.metrics:
            self.buf[part] = m.get_state()

    def _loss(self, totals, rows, reg, n_batches=None):
        """(total loss, per-output losses) from summed totals; `rows` normalises the loss sums."""
        layout = self.layout
        loss = reg + (totals[layout.loss] / n_batches if n_batches else 0.0)
        per_out = []
        for i, obj in enumerate(self.objs):
            li = totals[layout.outputs[i]] / max(rows, 1)
            per_out.append(li)
            loss += obj.weight * li
        return loss, per_out

    def _logs(self, totals, loss, per_out):
        """Global logs: the loss, per-output losses (several outputs), metrics from summed states."""
        logs = {"loss": float(loss)}
        if self.n_out > 1:
            for obj, li in zip(self.objs, per_out):
                logs[obj.log_name("loss")] = float(li)
        for _, name, m, part in self.metrics:
            m.set_state(totals[part])
            value = np.asarray(m.result(), dtype=np.float64)  # a user's may give a tensor
            logs[name] = float(value) if value.ndim == 0 else value  # per class: F1Score(average=None)
        return logs

    def _penalty(self):
        regularized = self.model.regularized
        return float(sum(v.regularizer(v.value) for v in regularized)) if regularized else 0.0

    # ----- training ----------------------------------------------------------
    def train_batch(self, xs, ys, w, rows, group_rows, last_in_group=True):
        """One global batch (this rank's rows of it); returns the epoch's running logs.

        Args:
            xs: this rank's rows of each input.
            ys: this rank's rows of each target.
            w: their row weights, or None.
            rows: the rows of the global batch (all ranks).
            group_rows: the rows of the global batches whose gradients one update sums (`rows`
                unless steps_per_update > 1).
            last_in_group: whether this batch ends its group, so the optimizer steps.
        """
        model, comm = self.model, self.comm
        ex = model.executor
        reg = self._penalty()
        outs = train_forward(ex, xs)
        self.buf.fill(0.0)
        douts = self._losses_and_grads(outs, ys, self._loss_weights(outs, ys, w, rows), group_rows, True)
        self.buf[self.layout.loss] = ex.activity_loss
        self._metric_deltas(outs, ys, w)
        ex.backward(douts, self.fused)
        if self.acc is not None:  # steps_per_update > 1: sum micro-batches, update on the last
            self.acc += model.grads
            if last_in_group:
                model.grads[...] = self.acc
                self.acc.fill(0)
        if last_in_group:
            self.strategy.step()
        self._sum_small(comm)
        return self._after_batch(rows, reg)

    def _sum_small(self, comm):
        """Sum this step's loss sums, metric states and signal flags across ranks."""
        if self.preempt_signal:  # set as late as possible: a signal may arrive during the step
            layout = self.layout
            self.buf[layout.sigint if self.preempt_signal == signal.SIGINT else layout.sigterm] = 1
        comm.allreduce_sum(self.buf)

    def _after_batch(self, rows, reg):
        buf, totals, layout = self.buf, self.totals, self.layout
        buf[layout.rows] = rows
        # epoch loss: batch losses averaged with batch-size weights (Keras's Mean metric)
        totals[layout.rows] += rows
        totals[layout.loss] += float(self._loss(buf, rows, reg, n_batches=1)[0]) * rows
        totals[layout.epoch_sums] += buf[layout.epoch_sums]
        totals[layout.signals] = buf[layout.signals]
        return self.epoch_logs()

    def epoch_logs(self):
        """The epoch's running logs so far, from the summed totals."""
        totals, layout = self.totals, self.layout
        rows = totals[layout.rows]
        loss = totals[layout.loss] / rows if rows else 0.0
        return self._logs(totals, loss, self._loss(totals, rows, 0.0)[1])

    # ----- evaluation ------------------------------------------------------
    def eval_batch(self, xs, ys, w):
        """Add one batch of this rank's rows to the evaluation sums (summed across ranks later).

        Args:
            xs: this rank's rows of each input.
            ys: this rank's rows of each target.
            w: their row weights, or None.
        """
        outs = self.model.executor.forward(xs, training=False)
        self.buf.fill(0.0)
        self._losses_and_grads(outs, ys, self._loss_weights(outs, ys, w), 1, False)
        sums = self.layout.output_sums
        self.totals[self.layout.loss] += self.model.executor.activity_loss
        self.totals[sums] += self.buf[sums]
        self._update_metrics(outs, ys, w)

    def finish_eval(self, n, n_batches):
        """The global logs of the evaluation so far: this rank's totals summed across ranks (a
        copy: more batches may follow, as with test_on_batch).

        Args:
            n: the rows evaluated, over all ranks.
            n_batches: the global batches they came in.
        """
        totals, valid_all = self.totals.copy(), self.valid.copy()  # this rank's sums go on (test_on_batch)
        local = [m.get_state() for _, _, m, _ in self.metrics]
        for (_, _, m, part), state in zip(self.metrics, local):
            totals[part] = state
        self.comm.allreduce_sum(totals)
        if self.may_mask:
            self.comm.allreduce_sum(valid_all)
        for i, (valid, count) in enumerate(zip(valid_all[:self.n_out], valid_all[self.n_out:])):
            if count:  # a masked loss: the mean over its valid elements
                totals[self.layout.outputs[i]] *= count / valid if valid else 0.0
        logs = self._logs(totals, *self._loss(totals, n, self._penalty(), n_batches))
        for (_, _, m, _), state in zip(self.metrics, local):  # _logs put the global sums in
            m.set_state(state)
        return logs

    # ----- preemption (SIGTERM / SIGINT) -------------------------------------
    @contextlib.contextmanager
    def preemption_guard(self):
        """Turn SIGTERM/SIGINT into a flag so the step finishes and all ranks stop together."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        def handler(signum, frame):
            self.preempt_signal = signum
        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def check_preemption(self, cbs):
        """After a step: if any rank was signalled, call the callbacks' `on_preemption` (where
        BackupAndRestore saves) and exit 128+signal.

        The counts of signalled ranks are summed across ranks, so every rank takes the same
        decision and exit code (SIGTERM wins over SIGINT).

        Args:
            cbs: the fit's CallbackList.
        """
        terms, ints = self.totals[self.layout.sigterm], self.totals[self.layout.sigint]
        if terms or ints:
            signum = int(signal.SIGTERM if terms else signal.SIGINT)
            cbs.on_preemption()
            # no rank may exit before rank 0's checkpoint is on disk: the launcher ends the whole
            # job as soon as one rank exits non-zero
            self.comm.barrier()
            notice(f"Stopped by signal {signum}; state saved where a checkpoint callback is set.",
                   rank=self.comm.rank)
            raise SystemExit(128 + signum)


def _loss_mask(loss, out, y, out_mask):
    """Where the per-sample loss of shape out.shape[:-1] counts (bool), or None: everywhere."""
    shape = out.shape[:-1]
    mask = loss.valid_mask(y) if hasattr(loss, "valid_mask") else None
    if mask is not None:
        mask = np.reshape(mask, shape)
    if out_mask is not None and out_mask.ndim <= len(shape) and out_mask.shape == shape[:out_mask.ndim]:
        om = np.broadcast_to(out_mask.reshape(out_mask.shape + (1,) * (len(shape) - out_mask.ndim)), shape)
        mask = om if mask is None else mask & om
    return mask


def _by_rows(w, arr):
    """arr (rows, ...) times the row weights w (rows,), or arr itself when w is None."""
    return arr if w is None else arr * w.reshape((-1,) + (1,) * (arr.ndim - 1))
