"""Live progress when stdout is not a terminal (a line every LINE_INTERVAL seconds, Keras 3's way),
and the bar redrawn in place under distdlrun when distdlrun's own stdout is a terminal."""
import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distdl.callbacks.progress import Progbar

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
needs_mpirun = pytest.mark.skipif(not (BIN / "mpirun").exists(), reason="needs the mpich wheel's mpirun")


class Clock:
    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def test_a_pipe_gets_a_line_every_interval_with_the_running_metrics():
    stream = io.StringIO()
    # start at 0; steps 1..6 at 0.5, 1.0, 2.1, 3.0, 4.2, 5.0 s; step 10 (the end) at 5.5 s
    bar = Progbar(10, stream=stream, line_interval=2.0, clock=Clock(0.0, 0.5, 1.0, 2.1, 3.0, 4.2, 5.0, 5.5))
    for step, loss in zip(range(1, 7), (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)):
        bar.update(step, [("loss", loss)])
    bar.update(10, [("loss", 0.25)])
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    # nothing before 2 s; a line at 2.1 s (step 3) and at 4.2 s (step 5), then the final one
    assert [re.match(r" ?(\d+)/10 ", line).group(1) for line in lines[:-1]] == ["3", "5", "10"]
    assert lines[0] == f" 3/10 {'━' * 6}{'─' * 14} 5s 800ms/step - loss: 0.9000"
    assert lines[1].endswith(" - loss: 0.8000") and lines[2].endswith(" 6s 556ms/step - loss: 0.2500")


def test_an_epoch_shorter_than_the_interval_prints_only_its_final_line():
    stream = io.StringIO()
    bar = Progbar(3, stream=stream, line_interval=2.0, clock=Clock(0.0, 0.5, 1.0, 1.9))
    for step in (1, 2, 3):
        bar.update(step, [("loss", 1.0)])
    assert stream.getvalue().count("\n") == 1 and stream.getvalue().startswith("3/3 ")


class Pipe(io.StringIO):
    def isatty(self):
        return False


def test_distdl_tty_makes_stdout_redraw_in_place(monkeypatch):
    for tty in (None, "1"):
        out = Pipe()
        monkeypatch.setattr(sys, "stdout", out)
        if tty:
            monkeypatch.setenv("DISTDL_TTY", tty)
        bar = Progbar(4, interval=0.0, clock=Clock(0.0, 1.0, 2.0, 3.0, 4.0))
        for step in range(1, 5):
            bar.update(step, [("loss", 1.0)])
        monkeypatch.setattr(sys, "stdout", sys.__stdout__)
        text = out.getvalue()
        assert text.count("\r") == (4 if tty else 0) and ("\x1b[32m" in text) == bool(tty), repr(text)
    other = Pipe()  # another stream than stdout: DISTDL_TTY does not make it a terminal
    bar = Progbar(4, stream=other, interval=0.0, clock=Clock(0.0, 1.0, 2.0, 3.0, 4.0))
    for step in range(1, 5):
        bar.update(step, [("loss", 1.0)])
    assert "\r" not in other.getvalue()


# A 100-step epoch that takes more than 2 s (every step sleeps 25 ms), with progress lines every 0.3 s;
# rank 0 marks the epoch's end (its callback runs before the progress bar's final line, as in Keras).
SLOW_EPOCH = """
import os, sys, time
import numpy as np
import distdl
from distdl.callbacks import LambdaCallback
from distdl.utils import progbar
progbar.LINE_INTERVAL = 0.3
print("TTY", os.environ.get("DISTDL_TTY"), flush=True)
x = np.zeros((400, 4), np.float32); y = np.zeros((400, 1), np.float32)
m = distdl.Sequential([distdl.layers.Dense(1, input_shape=(4,))])
m.compile(optimizer="sgd", loss="mse")
comm = distdl.comm.world()
cbs = [LambdaCallback(on_train_batch_end=lambda b, logs: time.sleep(0.025),
                      on_epoch_end=lambda e, logs: comm.rank == 0 and print("EPOCH END", flush=True))]
m.fit(x, y, batch_size=4, epochs=1, verbose=1, callbacks=cbs)
"""


def _distdlrun(script: Path, stdout):
    env = {k: v for k, v in os.environ.items() if k not in ("DISTDL_TTY", "PYTHONUNBUFFERED")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "distdl_launch.cli", "-np", "2", "--", "python", str(script)],
                            stdout=stdout, stderr=subprocess.PIPE, env=env, cwd=script.parent)


@pytest.mark.mpi
@needs_mpirun
def test_progress_lines_arrive_while_the_epoch_runs_under_distdlrun(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_EPOCH)
    proc = _distdlrun(script, subprocess.PIPE)
    arrivals = []
    for line in proc.stdout:
        arrivals.append((time.monotonic(), line.decode()))
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    text = [line for _, line in arrivals]
    assert "[0] TTY None\n" in text  # a pipe: no DISTDL_TTY for the ranks
    end = next(i for i, line in enumerate(text) if line == "[0] EPOCH END\n")
    live = [i for i, line in enumerate(text[:end]) if re.match(r"\[0\] +\d+/100 ", line)]
    assert len(live) >= 3, text
    # the first progress line came at least a second before the epoch ended: it was live, not flushed late
    assert arrivals[end][0] - arrivals[live[0]][0] > 1.0
    assert not any(re.match(r"\[1\] +\d+/100", line) for line in text)  # rank 0 only
    assert re.match(r"\[0\] 100/100 ", text[end + 1])  # then the epoch's final line


@pytest.mark.mpi
@needs_mpirun
def test_under_distdlrun_on_a_terminal_the_bar_redraws_in_place(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_EPOCH.replace("0.025", "0.005"))
    master, slave = pty.openpty()
    proc = _distdlrun(script, slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
    out = b"".join(chunks).decode()
    assert "[0] TTY 1" in out
    frames = re.findall(r"\[0\] +\d+/100 [^\r\n]*\r", re.sub(r"\x1b\[[0-9;]*m", "", out))
    assert len(frames) >= 2 and "\x1b[32m" in out  # redrawn in place, in colour, as on a terminal
