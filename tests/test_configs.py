"""The shipped CNN and LSTM configs reach >= 0.95 test accuracy, on 1 rank and on 2 (real mpirun)."""
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mpirun import mpirun_path

from distdl import backend
from distdl.cli.run import train_from_config
from distdl.layers import LSTM, BatchNormalization, Conv2D, MaxPooling2D, Reshape

# every test here reads the module fixture that trains both configs in this process (~40 s)
pytestmark = pytest.mark.slow
ROOT = Path(__file__).parent.parent
CONFIGS = ["digits_cnn.toml", "digits_lstm.toml"]
TEST_LINE = re.compile(r"^Test loss: ([0-9.]+) - accuracy: ([0-9.]+)$", re.M)


def _scores(text: str) -> tuple[float, float]:
    found = TEST_LINE.findall(text)
    assert len(found) == 1, text  # printed once, by rank 0 only
    return float(found[0][0]), float(found[0][1])


@pytest.fixture(scope="module")
def one_rank():
    """Train each config in this process once (float32); keep the model and what it printed."""
    out = {}
    old = backend.floatx()
    backend.set_floatx("float32")
    for name in CONFIGS:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            model = train_from_config(str(ROOT / "distdl" / "configs" / name))
        out[name] = (model, buf.getvalue())
    backend.set_floatx(old)
    return out


def test_cnn_config_is_a_convnet_with_batch_norm(one_rank):
    model, _ = one_rank["digits_cnn.toml"]
    kinds = [type(layer) for layer in model.layers]
    assert kinds[0] is Reshape and Conv2D in kinds and BatchNormalization in kinds and MaxPooling2D in kinds
    assert model.layers[0].compute_output_shape((8, 8)) == (8, 8, 1)


def test_lstm_config_reads_rows_as_time_steps(one_rank):
    model, _ = one_rank["digits_lstm.toml"]
    assert isinstance(model.layers[0], LSTM)
    assert tuple(model.input_shapes[0]) == (8, 8)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_reaches_095_test_accuracy(one_rank, name):
    from distdl.datasets import load
    model, printed = one_rank[name]
    _, (x_test, y_test) = load({"name": "digits"})
    pred = model.predict(x_test, verbose=0)
    acc = float(np.mean(np.argmax(pred, axis=1) == y_test))
    assert acc >= 0.95, (name, acc)
    loss, shown = _scores(printed)
    assert shown == pytest.approx(acc, abs=5e-5)  # the printed score is the real one
    assert 0 < loss < 0.5


@pytest.mark.mpi
@pytest.mark.parametrize("name", CONFIGS)
def test_two_ranks_print_the_same_test_scores(one_rank, name):
    """`mpirun -n 2 distdl train CONFIG` exits 0 and matches one rank up to float32 rounding."""
    cli = Path(sys.executable).parent / "distdl"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(ROOT))
    argv = [mpirun_path(), "-n", "2", str(cli), "train", str(ROOT / "distdl" / "configs" / name)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr
    loss2, acc2 = _scores(p.stdout)
    loss1, acc1 = _scores(one_rank[name][1])
    assert acc2 == pytest.approx(acc1, abs=1.5e-4), (acc1, acc2)
    assert loss2 == pytest.approx(loss1, abs=1.5e-4), (loss1, loss2)
    assert p.stdout.count("Epoch 1/") == 1  # only rank 0 talks
