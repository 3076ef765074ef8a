"""The progress line: exact text with a fixed clock, live redraws on a terminal, rank 0 only."""
import io
import re

import pytest

from distdl.callbacks import CallbackList
from distdl.callbacks.progress import Progbar, ProgbarLogger, format_eta, format_time_per_unit, format_value

BAR = "━" * 20  # Keras 3's Progbar width


class Clock:
    """Returns the given times in turn (the first one is the bar's start)."""

    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


class TTY(io.StringIO):
    def isatty(self):
        return True


def run_bar(verbose, stream, rank=0, **kwargs):
    # Start at 0 s; steps 1..4 at 1.00, 1.02, 1.04, 1.06 s: the first step (1 s) is left
    # out of the per-step estimate, so 0.06 s / 3 = 20 ms/step; 1.06 s elapsed shows as 1s.
    bar = Progbar(4, verbose=verbose, stream=stream, rank=rank, interval=0.0,
                  clock=Clock(0.0, 1.0, 1.02, 1.04, 1.06), **kwargs)
    for step, loss in zip((1, 2, 3), (0.9, 0.6, 0.3)):
        bar.update(step, [("loss", loss), ("accuracy", 0.5)])
    bar.update(4, [("loss", 0.25), ("accuracy", 0.95)])
    return stream.getvalue()


def test_verbose1_non_tty_prints_only_the_final_line():
    out = run_bar(1, io.StringIO())
    assert out == f"4/4 {BAR} 1s 20ms/step - loss: 0.2500 - accuracy: 0.9500\n"


def test_verbose2_one_summary_line():
    out = run_bar(2, io.StringIO())
    assert out == "4/4 - 1s - 20ms/step - loss: 0.2500 - accuracy: 0.9500\n"


def test_verbose1_tty_redraws_with_eta_and_running_average():
    stream = TTY()
    bar = Progbar(4, verbose=1, stream=stream, interval=0.0, clock=Clock(0.0, 2.0, 3.0, 3.5))
    bar.update(1, [("loss", 1.0)])
    bar.update(3, [("loss", 0.5)])  # this value stands for 2 steps: (1.0 + 2 * 0.5) / 3
    bar.update(4, [("loss", 0.25)], finalize=True)
    frames = stream.getvalue().split("\r")[1:]
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", f) for f in frames]
    # Step 1 took 2 s, 3 steps left: ETA 6s. Steps 2-3 took 0.5 s each: ETA 0s.
    assert plain[0] == f"1/4 {'━' * 5}{'━' * 15} 6s 2s/step - loss: 1.0000"
    assert plain[1].startswith(f"3/4 {BAR} 0s 500ms/step - loss: 0.6667")
    assert plain[2] == f"4/4 {BAR} 4s 500ms/step - loss: 0.2500\n"
    assert "\x1b[32m" + "━" * 5 in frames[0]  # the done part is green on a terminal


def test_tty_throttles_redraws_to_interval():
    stream = TTY()
    bar = Progbar(10, stream=stream, interval=1.0, clock=Clock(0.0, 0.1, 0.2, 0.3, 1.5))
    for step in (1, 2, 3, 4):
        bar.update(step, [("loss", 1.0)])
    assert stream.getvalue().count("\r") == 2  # at 0.1 s and at 1.5 s


def test_unknown_target_and_tiny_values():
    stream = io.StringIO()
    bar = Progbar(None, stream=stream, clock=Clock(0.0, 0.5, 1.0))
    bar.update(1, [("loss", 2e-5)])
    bar.update(2, [("loss", 1e-5)], finalize=True)
    assert stream.getvalue() == "      2/Unknown 1s 500ms/step - loss: 1.0000e-05\n"


@pytest.mark.parametrize("verbose", [1, 2])
def test_rank1_and_verbose0_print_nothing(verbose):
    assert run_bar(verbose, io.StringIO(), rank=1) == ""
    assert run_bar(0, io.StringIO()) == ""


def test_formatters():
    assert format_eta(12.7) == "12s"
    assert format_eta(125) == "2:05"
    assert format_eta(3725) == "1:02:05"
    assert format_time_per_unit(2.4, "step") == " 2s/step"
    assert format_time_per_unit(0.0034, "step") == " 3ms/step"
    assert format_time_per_unit(0.00012, "step") == " 120us/step"
    assert format_value(0.123456) == "0.1235"
    assert format_value(-0.5) == "-0.5000"
    assert format_value(0.0) == "0.0000e+00"


def test_ascii_fallback_when_stream_cannot_encode_the_bar():
    class Latin1(io.StringIO):
        encoding = "latin-1"

    out = run_bar(1, Latin1())
    assert out.startswith("4/4 " + "=" * 20 + " 1s")


# --- ProgbarLogger driven like fit / evaluate / predict ----------------------------

LINE = r"3/3 ━{20} \d+s \d+(?:us|ms|s)/step"


def drive_fit(verbose, epochs=2, rank=0):
    stream = io.StringIO()
    cbl = CallbackList([ProgbarLogger(stream=stream)], add_history=True, model=type("M", (), {})(),
                       verbose=verbose, epochs=epochs, steps=3, rank=rank, world_size=2)
    cbl.on_train_begin()
    for epoch in range(epochs):
        cbl.on_epoch_begin(epoch)
        for batch in range(3):
            cbl.on_train_batch_begin(batch)
            cbl.on_train_batch_end(batch, {"loss": 0.5 / (batch + 1), "accuracy": 0.75})
        cbl.on_test_begin()  # validation inside fit: silent
        cbl.on_test_batch_end(0, {"loss": 9.0})
        cbl.on_test_end({"loss": 9.0})
        cbl.on_epoch_end(epoch, {"loss": 0.25, "accuracy": 0.75, "val_loss": 0.375,
                                 "val_accuracy": 0.5})
    cbl.on_train_end()
    return stream.getvalue()


def test_progbar_logger_fit_verbose1():
    out = drive_fit(1)
    # Keras's order: batch-log keys sorted, then the validation keys from the epoch logs.
    metrics = r" - accuracy: 0\.7500 - loss: 0\.2500 - val_loss: 0\.3750 - val_accuracy: 0\.5000\n"
    assert re.fullmatch(("Epoch 1/2\n" + LINE + metrics) + ("Epoch 2/2\n" + LINE + metrics), out)


def test_progbar_logger_fit_verbose2_and_single_epoch():
    out = drive_fit(2, epochs=1)  # one epoch: no "Epoch 1/1" header, as in Keras
    assert re.fullmatch(r"3/3 - \d+s - \d+(?:us|ms|s)/step - loss: 0\.2500 - accuracy: 0\.7500"
                        r" - val_loss: 0\.3750 - val_accuracy: 0\.5000\n", out)


def test_progbar_logger_rank1_and_verbose0_silent():
    assert drive_fit(1, rank=1) == ""
    assert drive_fit(0) == ""


def test_progbar_logger_evaluate_and_predict():
    stream = io.StringIO()
    cbl = CallbackList([ProgbarLogger(stream=stream)], verbose=1, epochs=1, steps=3,
                       rank=0, world_size=1)
    cbl.on_test_begin()
    for batch in range(3):
        cbl.on_test_batch_end(batch, {"loss": 1.5})
    cbl.on_test_end({"loss": 1.25})
    assert re.fullmatch(LINE + r" - loss: 1\.2500\n", stream.getvalue())
    stream.truncate(0), stream.seek(0)
    cbl.on_predict_begin()
    for batch in range(3):
        cbl.on_predict_batch_end(batch, {"outputs": [1.0]})
    cbl.on_predict_end()
    assert re.fullmatch(LINE + "\n", stream.getvalue())
