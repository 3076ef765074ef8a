"""Callbacks driven by a tiny fake model, with sequences whose outcome is traced by hand."""
import math
import warnings

import numpy as np
import pytest

from distdl.callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping, History,
                              LambdaCallback, LearningRateScheduler, ProgbarLogger,
                              ReduceLROnPlateau, TerminateOnNaN)
from distdl.errors import ConfigError


class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate


class FakeModel:
    """Just what callbacks may touch; get_weights returns live views, like an arena."""

    def __init__(self, learning_rate=0.1):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)
        self.weights = [np.zeros(3), np.zeros(2)]
        self.history = None

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        for w, new in zip(self.weights, weights):
            w[...] = new


def fit(callbacks, values, key="val_loss", model=None, rank=0):
    """Run the callback protocol over one epoch per value; return (model, epochs run, history)."""
    model = model or FakeModel()
    cbl = CallbackList(callbacks, add_history=True, model=model, epochs=len(values),
                       steps=1, verbose=0, rank=rank, world_size=2)
    cbl.on_train_begin()
    ran = 0
    for epoch, value in enumerate(values):
        cbl.on_epoch_begin(epoch)
        for w in model.weights:  # weights that say which epoch produced them
            w[...] = epoch
        cbl.on_epoch_end(epoch, {"loss": 1.0, key: value})
        ran += 1
        if model.stop_training:
            break
    cbl.on_train_end()
    return model, ran, model.history


# --- EarlyStopping -----------------------------------------------------------------

@pytest.mark.parametrize("values, patience, ran", [
    ([1.0, 0.9, 0.95, 0.8], 0, 3),                          # first worse epoch stops
    ([1.0, 0.9, 0.95, 0.92, 0.85, 0.99], 2, 4),             # two worse epochs in a row
    ([1.0, 0.9, 0.95, 0.85, 0.87, 0.8, 0.9], 2, 7),   # never two in a row: runs out
])
def test_early_stopping_patience(values, patience, ran):
    es = EarlyStopping(patience=patience)
    model, n, history = fit([es], values)
    assert n == ran
    assert model.stop_training == (ran < len(values))
    assert len(history.history["val_loss"]) == ran
    assert es.stopped_epoch == (ran - 1 if ran < len(values) else 0)


def test_early_stopping_min_delta():
    values = [1.0, 0.85, 0.8, 0.5]
    # 0.8 beats 0.85 by only 0.05 < min_delta: no improvement, patience 1 runs out at epoch 2.
    assert fit([EarlyStopping(min_delta=0.1, patience=1)], values)[1] == 3
    assert fit([EarlyStopping(min_delta=0.0, patience=1)], values)[1] == 4
    # The sign of min_delta does not matter (Keras takes its absolute value).
    assert fit([EarlyStopping(min_delta=-0.1, patience=1)], values)[1] == 3


def test_early_stopping_baseline_keeps_counting_until_beaten():
    values = [0.9, 0.8, 0.85, 0.7]
    # Improvements above the baseline do not reset the wait: stop at the first worse epoch.
    assert fit([EarlyStopping(baseline=0.5, patience=2)], values)[1] == 3
    assert fit([EarlyStopping(patience=2)], values)[1] == 4
    # Beating the baseline resets the wait as usual.
    assert fit([EarlyStopping(baseline=0.85, patience=2)], values)[1] == 4


def test_early_stopping_maximises_accuracy_in_auto_mode():
    values = [0.5, 0.6, 0.55, 0.7]
    es = EarlyStopping(monitor="val_accuracy")
    assert fit([es], values, key="val_accuracy")[1] == 3
    assert es.best == 0.6
    # Forcing mode='min' makes the rise at epoch 1 a failure instead.
    assert fit([EarlyStopping(monitor="val_accuracy", mode="min")], values, key="val_accuracy")[1] == 2


def test_early_stopping_start_from_epoch():
    values = [1.0, 2.0, 3.0, 2.5, 2.6]
    assert fit([EarlyStopping()], values)[1] == 2
    es = EarlyStopping(start_from_epoch=2)
    assert fit([es], values)[1] == 5
    assert (es.stopped_epoch, es.best) == (4, 2.5)


@pytest.mark.parametrize("values, ran", [([1.0, 0.5, 0.7, 0.8], 3), ([1.0, 0.5, 0.7], 3)])
def test_early_stopping_restores_best_epoch_weights(values, ran):
    # Keras 3 restores at the end of training whether or not it stopped early.
    model, n, _ = fit([EarlyStopping(patience=1 if len(values) > 3 else 5,
                                     restore_best_weights=True)], values)
    assert n == ran
    assert all(np.all(w == 1.0) for w in model.weights)  # epoch 1 had the best val_loss


def test_early_stopping_without_restore_keeps_last_weights():
    model, n, _ = fit([EarlyStopping(patience=1)], [1.0, 0.5, 0.7, 0.8])
    assert all(np.all(w == n - 1) for w in model.weights)


def test_early_stopping_instance_is_reusable():
    es = EarlyStopping(patience=0)
    assert fit([es], [1.0, 2.0, 0.5])[1] == 2
    assert fit([es], [3.0, 2.0, 1.0])[1] == 3  # best from the first fit is forgotten


def test_early_stopping_warns_about_missing_metric_on_rank0_only():
    with pytest.warns(UserWarning, match=r"`val_loss`.*Available metrics are: loss,acc"):
        EarlyStopping().on_epoch_end(0, {"loss": 1.0, "acc": 0.5})
    es = EarlyStopping()
    es.set_params({"rank": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        es.on_epoch_end(0, {"loss": 1.0})


def test_monitor_errors():
    with pytest.raises(ConfigError, match="mode='maximum'.*auto, max, min"):
        EarlyStopping(mode="maximum")
    es = EarlyStopping(monitor="val_widget")
    with pytest.raises(ConfigError, match="val_widget"):
        es.on_epoch_end(0, {"val_widget": 1.0})


# --- ReduceLROnPlateau -------------------------------------------------------------

def lr_trace(callback, values, key="val_loss", lr=0.1):
    """The optimizer's learning rate after each epoch, and the logged rates."""
    model = FakeModel(lr)
    cbl = CallbackList([callback], add_history=True, model=model, epochs=len(values), steps=1,
                       verbose=0, rank=0, world_size=1)
    cbl.on_train_begin()
    after = []
    for epoch, value in enumerate(values):
        cbl.on_epoch_begin(epoch)
        cbl.on_epoch_end(epoch, {key: value})
        after.append(model.optimizer.learning_rate)
    cbl.on_train_end()
    return after, model.history.history["learning_rate"]


def test_reduce_lr_patience_cooldown_and_min_lr():
    rlr = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2, min_lr=0.02)
    after, logged = lr_trace(rlr, [1.0] * 12)
    # Reductions at epochs 2, 5, 8 (2 waits, then 2 cooldown epochs); 0.0125 is clipped to 0.02.
    expected = [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02]
    np.testing.assert_allclose(after, expected, rtol=1e-12)
    # The logs hold the rate the epoch trained with (before that epoch's reduction).
    np.testing.assert_allclose(logged, [0.1] + expected[:-1], rtol=1e-12)


def test_reduce_lr_improvement_resets_wait_and_min_delta():
    values = [1.0, 0.5, 0.6, 0.4, 0.45, 0.46]
    after, _ = lr_trace(ReduceLROnPlateau(factor=0.5, patience=2), values)
    np.testing.assert_allclose(after, [0.1] * 5 + [0.05])
    # 0.4 is not 0.15 better than 0.5: the plateau ends at epoch 3, and again at 5.
    after, _ = lr_trace(ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.15), values)
    np.testing.assert_allclose(after, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025])


def test_reduce_lr_max_mode_for_accuracy():
    after, _ = lr_trace(ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1),
                        [0.5, 0.6, 0.4, 0.7], key="val_accuracy")
    np.testing.assert_allclose(after, [0.1, 0.1, 0.01, 0.01])


def test_reduce_lr_rejects_factor_at_least_one():
    with pytest.raises(ConfigError, match="factor=1.5"):
        ReduceLROnPlateau(factor=1.5)


# --- LearningRateScheduler ---------------------------------------------------------

def test_learning_rate_scheduler_sets_and_logs_rate():
    sched = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr)
    after, logged = lr_trace(sched, [1.0] * 4)
    np.testing.assert_allclose(after, [0.1, 0.1, 0.05, 0.025])
    np.testing.assert_allclose(logged, after)


def test_learning_rate_scheduler_old_one_argument_form_and_bad_output():
    after, _ = lr_trace(LearningRateScheduler(lambda epoch: 1.0 / (epoch + 1)), [0.0] * 3)
    np.testing.assert_allclose(after, [1.0, 0.5, 1 / 3])
    with pytest.raises(ConfigError, match="must return a float.*'fast'.*epoch 0"):
        lr_trace(LearningRateScheduler(lambda epoch, lr: "fast"), [0.0])


# --- CSVLogger ---------------------------------------------------------------------

def csv_fit(path, logs_per_epoch, rank=0, **kwargs):
    model = FakeModel()
    cbl = CallbackList([CSVLogger(path, **kwargs)], model=model, epochs=2, steps=1,
                       verbose=0, rank=rank, world_size=2)
    cbl.on_train_begin()
    for epoch, logs in enumerate(logs_per_epoch):
        cbl.on_epoch_end(epoch, dict(logs))
    cbl.on_train_end()


def test_csv_logger_header_rows_and_append(tmp_path):
    path = tmp_path / "log.csv"
    rows = [{"val_loss": 0.75, "loss": 0.5, "accuracy": 0.25},
            {"val_loss": 0.5, "loss": 0.25, "accuracy": 0.5}]
    csv_fit(path, rows)
    header_and_rows = "epoch,accuracy,loss,val_loss\r\n0,0.25,0.5,0.75\r\n1,0.5,0.25,0.5\r\n"
    assert path.read_bytes().decode() == header_and_rows
    csv_fit(path, [{"val_loss": 0.125, "loss": 0.0625, "accuracy": 0.75}], append=True)
    assert path.read_bytes().decode() == header_and_rows + "0,0.75,0.0625,0.125\r\n"
    csv_fit(path, rows[:1], separator=";")  # append=False overwrites
    assert path.read_bytes().decode() == "epoch;accuracy;loss;val_loss\r\n0;0.25;0.5;0.75\r\n"


def test_csv_logger_append_to_new_file_writes_header(tmp_path):
    path = tmp_path / "new.csv"
    csv_fit(path, [{"loss": 2.0}], append=True)
    assert path.read_text() == "epoch,loss\n0,2.0\n"


def test_csv_logger_flushes_each_epoch(tmp_path):
    path = tmp_path / "live.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.5})
    assert path.read_text() == "epoch,loss\n0,1.5\n"  # readable before training ends
    logger.on_train_end()


def test_csv_logger_only_rank0_writes(tmp_path):
    path = tmp_path / "rank1.csv"
    csv_fit(path, [{"loss": 1.0}], rank=1)
    assert not path.exists()


def test_csv_logger_unwritable_path(tmp_path):
    with pytest.raises(ConfigError, match="missing"):
        csv_fit(tmp_path / "missing" / "log.csv", [{"loss": 1.0}])


# --- TerminateOnNaN, History, CallbackList, LambdaCallback ------------------------

@pytest.mark.parametrize("rank, bad", [(0, math.nan), (1, math.inf)])
def test_terminate_on_nan(capsys, rank, bad):
    model = FakeModel()
    cbl = CallbackList([TerminateOnNaN()], model=model, epochs=1, steps=5, verbose=0,
                       rank=rank, world_size=2)
    cbl.on_train_batch_end(0, {"loss": 0.5})
    cbl.on_train_batch_end(1, {"loss": 1e30})
    assert not model.stop_training
    cbl.on_train_batch_end(2, {"loss": np.float32(bad)})
    assert model.stop_training  # every rank stops, only rank 0 says so
    expected = "Batch 2: Invalid loss, terminating training\n" if rank == 0 else ""
    assert capsys.readouterr().out == expected


def test_history_records_each_epoch():
    model, n, history = fit([], [0.5, 0.25, 0.125])
    assert isinstance(history, History) and model.history is history
    assert history.epoch == [0, 1, 2]
    assert history.history == {"loss": [1.0] * 3, "val_loss": [0.5, 0.25, 0.125]}


def test_callback_list_order_params_and_batch_logs():
    seen = []

    class Recorder(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, list(logs.items())))

    rec, model = Recorder(), FakeModel()
    cbl = CallbackList([rec], add_history=True, add_progbar=True, model=model, epochs=3,
                       steps=7, verbose=2, rank=1, world_size=4)
    assert [type(cb) for cb in cbl.callbacks] == [Recorder, History, ProgbarLogger]
    assert rec.params == {"epochs": 3, "steps": 7, "verbose": 2, "rank": 1, "world_size": 4}
    assert rec.model is model and model.history is cbl.callbacks[1]
    cbl.on_train_batch_end(0, {"loss": np.float32(0.5), "accuracy": np.float64(0.25)})
    assert seen == [(0, [("accuracy", 0.25), ("loss", 0.5)])]
    assert type(seen[0][1][1][1]) is float
    # A History or ProgbarLogger already given is not added twice.
    mine = History()
    assert CallbackList([mine], add_history=True).callbacks == [mine]


def test_callback_list_rejects_non_callbacks():
    with pytest.raises(ConfigError, match=r"callbacks\[1\] is a function"):
        CallbackList([History(), lambda: None])


def test_lambda_callback_calls_given_functions():
    calls = []
    cb = LambdaCallback(on_epoch_end=lambda epoch, logs: calls.append(("epoch", epoch, logs["loss"])),
                        on_train_batch_end=lambda batch, logs: calls.append(("batch", batch)),
                        on_test_end=lambda logs: calls.append(("test", logs)))
    cbl = CallbackList([cb], model=FakeModel(), epochs=1, steps=1, verbose=0, rank=0, world_size=1)
    cbl.on_train_batch_end(4, {"loss": 1.0})
    cbl.on_epoch_end(0, {"loss": 2.0})
    cbl.on_test_end({"loss": 3.0})
    cbl.on_train_begin()  # not given: a no-op
    assert calls == [("batch", 4), ("epoch", 0, 2.0), ("test", {"loss": 3.0})]
    with pytest.raises(ConfigError, match="on_epoch_finish"):
        LambdaCallback(on_epoch_finish=print)
