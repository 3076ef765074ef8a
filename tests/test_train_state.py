"""TrainState and SumLayout: the loop's typed state, named epoch totals in checkpoints (format
version 2), and exact resume from a format version 1 backup (the raw positional vector)."""
import json
import shutil

import h5py
import numpy as np
import pytest

from ckpt_v1_fixture import FIXTURE, Crash, run
from distdl.saving import checkpoint as ckpt
from distdl.callbacks import Callback, CallbackList, LambdaCallback
from distdl.callbacks.base import History
from distdl.errors import CheckpointError
from distdl.engine.train_state import ResumePoint, SumLayout, TrainState

# the fixture's model: outputs cls (accuracy, state of 2) and reg (mae, state of 2)
NAMES = ["rows", "loss", "loss_sum/cls_loss", "loss_sum/reg_loss", "metric/cls_accuracy", "metric/reg_mae"]


def two_outputs() -> SumLayout:
    return SumLayout(["cls_loss", "reg_loss"], [("cls_accuracy", 2), ("reg_mae", 2)])


def test_layout_names_every_slice_in_the_order_of_the_one_vector():
    lay = two_outputs()
    assert (lay.rows, lay.loss, lay.outputs, lay.size) == (0, 1, [2, 3], 10)
    assert lay.output_sums == slice(2, 4) and lay.metrics == [slice(4, 6), slice(6, 8)]
    assert lay.epoch_sums == slice(2, 8) and (lay.sigterm, lay.sigint) == (8, 9) and lay.signals == slice(8, 10)
    assert list(lay.parts) == NAMES
    single = SumLayout(["loss"], [("accuracy", 2), ("accuracy", 2)])  # one metric given twice keeps both
    assert list(single.parts) == ["rows", "loss", "loss_sum/loss", "metric/accuracy", "metric/accuracy#2"]


def test_named_totals_round_trip_without_the_signal_counts():
    lay = two_outputs()
    values = np.arange(1.0, 11.0) / 3  # not exactly representable in decimal: JSON must keep every bit
    named = lay.named(values)
    assert list(named) == NAMES and named["metric/reg_mae"] == values[6:8].tolist()
    back = np.full(lay.size, 7.0)
    lay.load(back, json.loads(json.dumps(named)))
    assert np.array_equal(back[:8], values[:8]) and not back[lay.signals].any()
    assert lay.named_v1(values.tolist()) == named
    with pytest.raises(CheckpointError, match="need 10"):
        lay.named_v1([0.0] * 9)
    with pytest.raises(CheckpointError, match="do not fit this model's loss and metrics"):
        lay.load(back, {k: v for k, v in named.items() if k != "metric/reg_mae"})


def test_train_state_fields_and_position():
    st = TrainState()
    assert (st.seed, st.batch_size, st.steps_per_update, st.epoch, st.step, st.stop, st.resume) == \
        (0, 32, 1, 0, 0, False, None)
    st = TrainState(seed=4, batch_size=8, steps_per_update=2, steps_per_epoch=5, epoch=3, step=2)
    assert st.global_step == 17
    assert [st.at_update_boundary() for st.step in range(1, 6)] == [False, True, False, True, True]
    st.step = 0
    assert st.named_totals() is None  # an epoch's start: nothing summed yet
    st.layout, st.totals, st.step = two_outputs(), np.arange(10.0), 3
    assert st.named_totals()["loss_sum/reg_loss"] == [3.0]


def test_history_so_far_and_apply_resume():
    hist = History()
    hist.history = {"loss": [0.5]}
    lay = two_outputs()
    st = TrainState(seed=1, history=hist, layout=lay, totals=np.zeros(lay.size))
    assert st.history_so_far({"loss": np.float32(0.25)}) == {"loss": [0.5, 0.25]} and hist.history == {"loss": [0.5]}
    assert st.apply_resume() == 0 and st.seed == 1  # nothing pending
    totals = lay.named(np.arange(10.0))
    st.resume = ResumePoint(epoch=2, step=3, seed=9, history={"loss": [1.0, 2.0]}, totals=totals)
    assert st.apply_resume() == 3
    assert (st.epoch, st.step, st.seed, st.resume) == (2, 3, 9, None)
    assert hist.history == {"loss": [1.0, 2.0]} and hist.epoch == [0, 1]
    assert np.array_equal(st.totals, np.r_[np.arange(8.0), 0, 0])


def test_stop_training_is_the_state_stop_flag():
    from distdl.layers import Dense
    from distdl.models import Sequential
    model = Sequential([Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    model.stop_training = True
    assert model.train_state.stop is True
    x = np.ones((12, 2), "float32")
    stopper = LambdaCallback(on_train_batch_end=lambda b, logs: setattr(model, "stop_training", b == 1))
    seen = []
    hist = model.fit(x, x[:, :1], batch_size=2, epochs=3, verbose=0,
                     callbacks=[stopper, LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))])
    assert seen == [0, 1] and hist.epoch == [0]  # a fresh state at the start, stopped after step 2
    assert model.train_state.stop and model.stop_training and model.train_state.epoch == 1


def test_on_preemption_is_a_documented_hook_of_every_callback():
    calls = []

    class Saver(Callback):
        def on_preemption(self, logs=None):
            calls.append("saver")
    lam = LambdaCallback(on_preemption=lambda logs: calls.append("lambda"))
    CallbackList([Callback(), Saver(), lam]).on_preemption()
    assert calls == ["saver", "lambda"] and Callback.on_preemption.__doc__


def test_backups_name_their_totals_in_format_version_2(tmp_path):
    with pytest.raises(Crash):
        run(tmp_path / "b", crash_at=4)
    path = tmp_path / "b" / "ckpt-e0000-s000003.h5"
    data = ckpt.load_checkpoint(path)
    assert data.format_version == ckpt.FORMAT_VERSION >= 2 and (data.epoch, data.step) == (0, 3)
    assert list(data.totals) == NAMES and "totals" not in data.extra
    assert data.totals["rows"] == [24.0] and len(data.totals["metric/cls_accuracy"]) == 2
    with h5py.File(path) as f:  # self-describing: the names are in the file
        assert json.loads(f["training/totals"][()]) == data.totals
    ckpt.save_checkpoint(tmp_path / "again.h5", data)
    assert ckpt.load_checkpoint(tmp_path / "again.h5").totals == data.totals


def _resumed_from(tmp_path, source):
    """Resume the fixture's run from `source` with another seed (only the file can make it match)."""
    return run(tmp_path / "resumed", seed=5, resume_from=str(source))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run(tmp_path_factory.mktemp("ref") / "b")


def test_a_version_1_backup_still_resumes_exactly(tmp_path, reference):
    old = ckpt.load_checkpoint(FIXTURE)
    assert old.format_version == 1 and old.totals == {} and len(old.extra["totals"]) == 10
    ref, ref_hist = reference
    got, hist = _resumed_from(tmp_path, FIXTURE)
    assert float(np.max(np.abs(got.params - ref.params)) / np.max(np.abs(ref.params))) <= 1e-6
    assert sorted(hist.history) == sorted(ref_hist.history) and hist.epoch == [0, 1]
    for k, v in ref_hist.history.items():
        np.testing.assert_allclose(hist.history[k], v, rtol=1e-6, err_msg=k)


def test_the_version_1_totals_are_what_the_resumed_epoch_logs_use(tmp_path, reference):
    """Control for the test above: the same file with other totals ends epoch 0 with other logs."""
    edited = tmp_path / "edited.h5"
    shutil.copy(FIXTURE, edited)
    with h5py.File(edited, "r+") as f:  # the checksum covers the arrays, not the JSON fields
        extra = json.loads(f["training/extra"][()])
        extra["totals"][2] *= 2  # the first output's loss sum
        del f["training/extra"]
        f.create_dataset("training/extra", data=json.dumps(extra), dtype=h5py.string_dtype("utf-8"))
    _, ref_hist = reference
    _, hist = _resumed_from(tmp_path, edited)
    assert hist.history["cls_loss"][0] > ref_hist.history["cls_loss"][0] * 1.2
    np.testing.assert_allclose(hist.history["reg_loss"][0], ref_hist.history["reg_loss"][0], rtol=1e-6)
