"""Messages for people: "did you mean" on misspelt names, config keys and layer arguments; notices
through the `distdl` logger (stdout, INFO, rank 0, as Keras prints them); --help with examples."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distdl import activations, losses, metrics, optimizers
from distdl.callbacks import EarlyStopping
from distdl.errors import ConfigError, did_you_mean
from distdl.layers import Dense
from distdl.layers.base import layer_class
from distdl.log import logger, notice
from distdl.models import Sequential

ROOT = Path(__file__).resolve().parent.parent


def run_cli(module, *args, env=None, cwd=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    for key in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        e.pop(key, None)
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env=e, cwd=cwd or ROOT, timeout=120)


# ---- did you mean ---------------------------------------------------------------------------

@pytest.mark.parametrize("lookup,typo,meant", [
    (losses.get, "sparse_categorical_crossentopy", "sparse_categorical_crossentropy"),
    (losses.get, "MeanSquaredErorr", "MeanSquaredError"),
    (optimizers.get, "addam", "adam"),  # "adma" is as close to adamax
    (metrics.get, "acuracy", "accuracy"),
    (activations.get, "rleu", "relu"),
    (layer_class, "Dence", "Dense"),
    (layer_class, "lstm", "LSTM"),
])
def test_unknown_names_suggest_the_closest(lookup, typo, meant):
    with pytest.raises(ConfigError) as err:
        lookup(typo)
    text = str(err.value)
    assert text.startswith(f"Unknown ") and f"{typo!r}" in text and "valid names are:" in text
    assert text.endswith(f"Did you mean {meant!r}?"), text


def test_no_suggestion_for_a_name_like_nothing_and_two_for_a_tie():
    assert did_you_mean("zzzzqqq", ["relu", "tanh"]) == ""
    assert did_you_mean("Conv", ["Conv1D", "Conv2D", "Dense"]) == " Did you mean 'Conv1D' or 'Conv2D'?"
    assert did_you_mean(3, ["relu"]) == ""  # only strings get suggestions


CONFIG = """[data]
name = "digits"
flatten = true
[model]
layers = [{{ {layer} }}]
[compile]
loss = "sparse_categorical_crossentropy"
optimizer = {optimizer}
{extra}
"""


@pytest.mark.parametrize("layer,optimizer,extra,words", [
    ('type = "Dense", units = 10', '"adam"', "[trainig]\nepochs = 1",
     "unknown section [trainig]; allowed sections are checkpoint, compile, data, model, training. "
     "Did you mean 'training'?"),
    ('type = "Dense", units = 10', '"adam"', "[training]\nepoch = 1",
     "unknown key [training].epoch; allowed keys are batch_size, epochs, seed, shuffle, steps_per_update, "
     "validation_split, verbose. Did you mean 'epochs'?"),
    ('type = "Dense", units = 10, activaton = "softmax"', '"adam"', "",
     "unknown argument [model].layers[0].activaton for Dense; allowed arguments are activation, "),
    ('type = "Dense", unit = 10', '"adam"', "", "Did you mean 'units'?"),
    ('type = "Dense", units = 10', '{ name = "adam", learning_rat = 0.1 }', "",
     "unknown argument [compile].optimizer.learning_rat for Adam; allowed arguments are "),
    ('type = "Dense", units = 10', '"adamm"', "", "Unknown optimizer 'adamm'"),
])
def test_config_mistakes_name_the_key_and_what_was_meant(tmp_path, layer, optimizer, extra, words):
    cfg = tmp_path / "typo.toml"
    cfg.write_text(CONFIG.format(layer=layer, optimizer=optimizer, extra=extra))
    p = run_cli("distdl.cli", "train", cfg)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert lines[0].startswith(f"error: {cfg}: ") and words in lines[0], lines[0]
    assert "Did you mean" in lines[0]


def test_a_missing_config_suggests_the_shipped_one(tmp_path):
    p = run_cli("distdl.cli", "train", "digits_mpl", cwd=tmp_path)
    assert p.returncode == 2
    assert "Config file digits_mpl does not exist" in p.stderr and "Did you mean 'digits_mlp'?" in p.stderr


# ---- notices through logging ----------------------------------------------------------------

def _early_stopping_run(verbose=1):
    model = Sequential([Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 2), np.float32)
    y = np.ones((8, 1), np.float32)
    # the loss cannot improve (zero inputs, zero learning rate): the run stops after epoch 2
    model.optimizer.learning_rate = 0.0
    model.fit(x, y, epochs=5, verbose=0, callbacks=[EarlyStopping(monitor="loss", patience=1, verbose=verbose)])


def test_early_stop_notice_goes_to_the_distdl_logger_and_stdout_by_default(capsys):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        _early_stopping_run()
    finally:
        logger.removeHandler(handler)
    assert [(r.name, r.levelno, r.getMessage()) for r in records] == [("distdl", logging.INFO,
                                                                       "Epoch 2: early stopping")]
    assert capsys.readouterr().out == "Epoch 2: early stopping\n"  # shown by default, message only


def test_notices_can_be_silenced_with_logging_levels(capsys):
    logger.setLevel(logging.WARNING)
    try:
        _early_stopping_run()
    finally:
        logger.setLevel(logging.INFO)
    assert capsys.readouterr().out == ""


def test_only_rank_0_shows_notices(capsys, monkeypatch):
    notice("from rank 0")
    monkeypatch.setenv("PMI_RANK", "1")
    notice("from rank 1")
    notice("rank 1 that says it is 0", rank=0)  # the launcher's rank filters too
    monkeypatch.setenv("PMI_RANK", "0")
    notice("rank 0 that says it is 3", rank=3)
    assert capsys.readouterr().out == "from rank 0\n"


def test_resume_auto_on_an_empty_folder_says_it_starts_fresh(tmp_path):
    p = run_cli("distdl.cli", "train", "digits_mlp", "--epochs", 1, "--checkpoint-dir", tmp_path / "ck",
                "--resume", "auto", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert first == f"--resume auto: no checkpoint in {tmp_path / 'ck'} yet; starting from the beginning."
    again = run_cli("distdl.cli", "train", "digits_mlp", "--epochs", 2, "--checkpoint-dir", tmp_path / "ck",
                    "--resume", "auto", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "starting from the beginning" not in again.stdout
    assert again.stdout.startswith(f"Resuming from {tmp_path / 'ck' / 'ckpt-e0001-s000000.h5'} (epoch 2, step 0).")


# ---- --help with examples --------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["distdl.cli"], ["distdl.cli", "train"], ["distdl.cli", "resume"], ["distdl.cli", "evaluate"],
    ["distdl.cli", "predict"], ["distdl.cli", "inspect"], ["distdl.cli", "plot"], ["distdl.cli", "configs"],
    ["distdl.cli", "info"], ["distdl_launch.cli"],
])
def test_every_help_has_examples_that_name_the_command(argv):
    p = run_cli(*argv, "--help")
    assert p.returncode == 0, p.stderr
    examples = p.stdout.split("Examples:\n", 1)[1].splitlines()
    command = "distdlrun" if argv[0] == "distdl_launch.cli" else " ".join(["distdl", *argv[1:2]])
    shown = [line.strip() for line in examples if line.strip().startswith(("distdl ", "distdlrun "))]
    assert len(shown) >= 2 and any(command in line for line in shown), p.stdout
