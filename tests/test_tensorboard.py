"""TensorBoard's event files: read back with a small decoder written here (its own bitwise CRC-32C,
its own protobuf reader), and with the `tensorboard` package's reader where it is installed.

The tags, folders and steps expected are those of keras/src/callbacks/tensorboard_test.py
(test_TensorBoard_basic, test_TensorBoard_batch_metrics, test_TensorBoard_weight_histograms,
test_TensorBoard_no_spurious_event_files): the same model, data, batch size and epochs.
"""
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from distdl import callbacks, layers, models, optimizers, utils
from distdl.callbacks import event_file
from distdl.errors import ConfigError

from mpirun import run_mpi

# ----- an independent reader -----------------------------------------------------------------


def _crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c_bitwise(data)
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) % 2 ** 32


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; value is bytes for lengths and
    fixed widths, an int for varints."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f"wire type {wire}")
        yield field, wire, value


def _read_varint(buf: bytes, i: int):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def read_events(path):
    """Every event of a file as a dict, with each record's two CRCs checked."""
    data = Path(path).read_bytes()
    events, i = [], 0
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == _masked(header), "length CRC"
        body = data[i + 12:i + 12 + length]
        assert struct.unpack("<I", data[i + 12 + length:i + 16 + length])[0] == _masked(body), "data CRC"
        i += 16 + length
        event = {"values": []}
        for field, _, value in _fields(body):
            if field == 1:
                event["wall_time"] = struct.unpack("<d", value)[0]
            elif field == 2:
                event["step"] = value
            elif field == 3:
                event["file_version"] = value.decode()
            elif field == 5:
                for _, _, v in _fields(value):
                    event["values"].append(_value(v))
        events.append(event)
    return events


def _value(buf):
    out = {}
    for field, _, value in _fields(buf):
        if field == 1:
            out["tag"] = value.decode()
        elif field == 2:
            out["simple_value"] = struct.unpack("<f", value)[0]
        elif field == 5:
            h = {}
            for f, _, v in _fields(value):
                names = {1: "min", 2: "max", 3: "num", 4: "sum", 5: "sum_squares"}
                if f in names:
                    h[names[f]] = struct.unpack("<d", v)[0]
                else:
                    h["bucket_limit" if f == 6 else "bucket"] = np.frombuffer(v, "<f8")
            out["histo"] = h
    return out


def summaries(logdir):
    """{(folder name, tag): [(step, value or histogram), ...]} over every event file under logdir."""
    found = {}
    for dirpath, _, files in os.walk(logdir):
        for name in sorted(files):
            assert name.startswith("events.out.tfevents."), name
            events = read_events(os.path.join(dirpath, name))
            assert events[0]["file_version"] == "brain.Event:2" and not events[0]["values"]
            for e in events[1:]:
                for v in e["values"]:
                    found.setdefault((os.path.basename(dirpath), v["tag"]), []).append(
                        (e["step"], v.get("simple_value", v.get("histo"))))
    return found


# ----- the format ----------------------------------------------------------------------------

def test_crc32c_matches_the_rfc3720_check_value_and_a_bitwise_crc():
    assert event_file.crc32c(b"123456789") == 0xE3069283  # CRC-32C's published check value
    data = bytes(range(256)) * 3
    assert event_file.crc32c(data) == _crc32c_bitwise(data)
    assert event_file.masked_crc32c(data) == _masked(data)


def test_a_record_holds_its_event_and_a_negative_step_is_ten_bytes_of_varint():
    data = event_file.encode_event(12.5, -1, [event_file.scalar_value("a", 0.25)])
    path_bytes = event_file.frame_record(data)
    assert struct.unpack("<Q", path_bytes[:8])[0] == len(data)
    fields = list(_fields(data))
    assert fields[1] == (2, 0, 2 ** 64 - 1)
    assert _value(fields[2][2][2:]) == {"tag": "a", "simple_value": 0.25}


# ----- the callback --------------------------------------------------------------------------

class Hooks(callbacks.Callback):
    """What the loop gave the callbacks: batch logs and whether evaluation hooks ran in fit."""

    def __init__(self):
        super().__init__()
        self.batch_logs, self.test_end = [], 0

    def on_train_batch_end(self, batch, logs=None):
        self.batch_logs.append(dict(logs))

    def on_test_end(self, logs=None):
        self.test_end += 1


def _model():
    utils.set_random_seed(1)
    model = models.Sequential([layers.Input((10, 10, 1)), layers.Flatten(), layers.Dense(1, name="dense")])
    model.compile("sgd", "mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 10, 10, 1)).astype("float32"), rng.normal(size=(10, 1)).astype("float32")


def test_epoch_scalars_land_in_train_and_validation_as_keras(tmp_path):
    model, (x, y), hooks = _model(), _data(), Hooks()
    history = model.fit(x, y, batch_size=2, epochs=2, validation_data=(x, y), verbose=0,
                        callbacks=[callbacks.TensorBoard(tmp_path / "tb"), hooks])
    found = summaries(tmp_path / "tb")
    expected = {("train", "epoch_loss"), ("validation", "epoch_loss"), ("train", "epoch_learning_rate")}
    if hooks.test_end:  # Keras 3 runs on_test_end in fit's validation and logs this tag there
        expected.add(("validation", "evaluation_loss_vs_iterations"))
    assert set(found) == expected
    assert found["train", "epoch_loss"] == [(e, pytest.approx(history.history["loss"][e], rel=1e-6))
                                            for e in (0, 1)]
    assert found["validation", "epoch_loss"] == [(e, pytest.approx(history.history["val_loss"][e], rel=1e-6))
                                                 for e in (0, 1)]
    assert found["train", "epoch_learning_rate"] == [(0, pytest.approx(0.01)), (1, pytest.approx(0.01))]
    assert sorted(os.listdir(tmp_path / "tb")) == ["train", "validation"]


def test_no_validation_folder_without_validation_and_a_second_fit_writes_new_files(tmp_path):
    model, (x, y) = _model(), _data()
    tb = callbacks.TensorBoard(str(tmp_path / "tb"))
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[tb])
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[tb])
    assert os.listdir(tmp_path / "tb") == ["train"]
    assert len(os.listdir(tmp_path / "tb" / "train")) == 2
    assert [step for step, _ in summaries(tmp_path / "tb")["train", "epoch_loss"]] == [0, 1, 0]


def test_update_freq_writes_batch_scalars_every_n_batches_at_the_global_batch_count(tmp_path):
    model, (x, y), hooks = _model(), _data(), Hooks()
    model.fit(x, y, batch_size=2, epochs=2, verbose=0,
              callbacks=[callbacks.TensorBoard(tmp_path, update_freq=2), hooks])
    batch_loss = summaries(tmp_path)["train", "batch_loss"]
    # 5 batches an epoch: the 2nd, 4th, 6th, 8th and 10th batch since training began
    assert [s for s, _ in batch_loss] == [2, 4, 6, 8, 10]
    assert [v for _, v in batch_loss] == [pytest.approx(hooks.batch_logs[s - 1]["loss"], rel=1e-6)
                                          for s in (2, 4, 6, 8, 10)]
    every = summaries_of(tmp_path / "b", "batch")
    assert [s for s, _ in every["train", "batch_loss"]] == list(range(1, 11))


def summaries_of(logdir, update_freq):
    model, (x, y) = _model(), _data()
    model.fit(x, y, batch_size=2, epochs=2, verbose=0,
              callbacks=[callbacks.TensorBoard(logdir, update_freq=update_freq)])
    return summaries(logdir)


def test_weight_histograms_every_histogram_freq_epochs_hold_the_weights(tmp_path):
    model, (x, y) = _model(), _data()
    model.fit(x, y, batch_size=2, epochs=3, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=2)])
    found = summaries(tmp_path)
    assert {tag for where, tag in found if where == "train"} == {
        "epoch_loss", "epoch_learning_rate", "dense/kernel/histogram", "dense/bias/histogram"}
    kernel = found["train", "dense/kernel/histogram"]
    assert [s for s, _ in kernel] == [0, 2]
    h, w = kernel[-1][1], model.get_layer("dense").get_weights()[0].astype(np.float64)
    assert (h["num"], h["min"], h["max"]) == (w.size, w.min(), w.max())
    assert h["sum"] == pytest.approx(w.sum()) and h["sum_squares"] == pytest.approx((w * w).sum())
    assert h["bucket"].sum() == w.size and len(h["bucket"]) == len(h["bucket_limit"]) == 30
    assert h["bucket_limit"][-1] == w.max()


def test_the_tensorboard_package_reads_the_files(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    model, (x, y) = _model(), _data()
    history = model.fit(x, y, batch_size=2, epochs=2, validation_data=(x, y), verbose=0,
                        callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=1, update_freq=1)])
    train = accumulator.EventAccumulator(str(tmp_path / "train"), size_guidance={"scalars": 0})
    train.Reload()
    assert {"epoch_loss", "epoch_learning_rate", "batch_loss"} <= set(train.Tags()["scalars"])
    assert [(e.step, e.value) for e in train.Scalars("epoch_loss")] == [
        (i, pytest.approx(history.history["loss"][i], rel=1e-6)) for i in (0, 1)]
    assert len(train.Scalars("batch_loss")) == 10
    assert "dense/kernel/histogram" in train.Tags()["histograms"]
    assert train.Histograms("dense/kernel/histogram")[-1].histogram_value.num == 100
    val = accumulator.EventAccumulator(str(tmp_path / "validation"))
    val.Reload()
    assert [e.value for e in val.Scalars("epoch_loss")] == [
        pytest.approx(v, rel=1e-6) for v in history.history["val_loss"]]


@pytest.mark.parametrize("kwargs, name", [({"update_freq": "sometimes"}, "update_freq"),
                                          ({"update_freq": 0}, "update_freq"),
                                          ({"histogram_freq": -1}, "histogram_freq"),
                                          ({"profile_batch": 3}, "profile_batch")])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        callbacks.TensorBoard(**kwargs)


def test_progbar_logger_is_the_bar_fit_prints_with(capsys):
    model, (x, y) = _model(), _data()
    bar = callbacks.ProgbarLogger()
    model.fit(x, y, batch_size=5, epochs=1, verbose=1, callbacks=[bar])
    out = capsys.readouterr().out
    assert bar.progbar is not None and bar.seen == 2
    assert out.count("2/2") == 1  # the one bar: fit adds no second ProgbarLogger


@pytest.mark.mpi
def test_only_rank_0_writes_on_two_ranks(tmp_path):
    p = run_mpi(2, "tensorboard_fit.py", tmp_path)
    assert p.returncode == 0, p.stderr
    assert os.listdir(tmp_path / "tb") == ["train"]
    assert len(os.listdir(tmp_path / "tb" / "train")) == 1
    found = summaries(tmp_path / "tb")
    losses = np.load(tmp_path / "loss.npy")
    assert found["train", "epoch_loss"] == [(e, pytest.approx(float(losses[e]), rel=1e-6)) for e in (0, 1)]
    assert [s for s, _ in found["train", "batch_loss"]] == [1, 2, 3, 4, 5, 6]


def test_steps_per_second_and_a_scheduled_learning_rate(tmp_path):
    """Keras's test_TensorBoard_global_step: these five tags; the learning rate is the schedule's
    value at the optimizer's step when the epoch ends."""
    utils.set_random_seed(1)
    model = models.Sequential([layers.Input((10, 10, 1)), layers.Flatten(), layers.Dense(1)])
    model.compile(optimizers.SGD(optimizers.schedules.CosineDecay(0.01, 20)), "mse")
    x, y = _data()
    model.fit(x, y, batch_size=2, epochs=2, verbose=0,
              callbacks=[callbacks.TensorBoard(tmp_path, update_freq=1, profile_batch=0, write_steps_per_second=True)])
    found = summaries(tmp_path)
    assert set(found) == {("train", t) for t in ("batch_loss", "epoch_loss", "epoch_learning_rate",
                                                 "epoch_steps_per_second", "batch_steps_per_second")}
    lr = [0.01 * 0.5 * (1 + np.cos(np.pi * steps / 20)) for steps in (5, 10)]  # 5 steps an epoch
    assert found["train", "epoch_learning_rate"] == [(0, pytest.approx(lr[0])), (1, pytest.approx(lr[1]))]
    assert all(v > 0 for _, v in found["train", "epoch_steps_per_second"] + found["train", "batch_steps_per_second"])


def test_evaluate_writes_the_evaluation_scalars_at_the_optimizer_step(tmp_path):
    model, (x, y) = _model(), _data()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 5 optimizer steps
    logs = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True,
                          callbacks=[callbacks.TensorBoard(tmp_path)])
    assert summaries(tmp_path) == {("validation", "evaluation_loss_vs_iterations"):
                                   [(5, pytest.approx(logs["loss"], rel=1e-6))]}
