"""Bad input is one sentence naming what is at fault, never a traceback (issue 20, scope point 7).

Layer arguments follow Keras 3's type rules (keras/src/layers/core/dense.py: `if not
isinstance(units, int) or units <= 0: raise ValueError(...)`, so "16", 16.5 and 16.0 are all
refused; keras/src/utils/argument_validation.py `standardize_tuple` refuses a string kernel_size,
and distdl also a fractional element, which Keras would pass on to its conv op); NaN/inf
hyperparameters are refused where they are given; run-config and data mistakes name the file and
the key (or the dataset and row); the `distdl` command exits 2 with one line.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from distdl import optimizers, utils
from distdl.cli.config import build_model, load_config
from distdl.cli.run import train_from_config
from distdl.engine import inputs
from distdl.errors import ConfigError, DataError
from distdl.layers import GRU, LSTM, Conv2D, Dense, Dropout, Embedding, SimpleRNN
from distdl.models import Sequential, load_model
from distdl.optimizers import schedules

from ckpt_edit import edit_text, resign

ROOT = Path(__file__).resolve().parent.parent
NAN, INF = float("nan"), float("inf")


# ---- Keras's type rules for layer arguments ------------------------------------------------

@pytest.mark.parametrize("make,sentence", [
    (lambda: Dense(units="16", name="d"), "Dense layer 'd': units must be a positive integer, got '16'."),
    (lambda: Dense(16.5, name="d"), "Dense layer 'd': units must be a positive integer, got 16.5."),
    (lambda: Dense(16.0, name="d"), "Dense layer 'd': units must be a positive integer, got 16.0."),
    (lambda: Dense(0, name="d"), "Dense layer 'd': units must be a positive integer, got 0."),
    (lambda: Dense(-3, name="d"), "Dense layer 'd': units must be a positive integer, got -3."),
    (lambda: Dense(True, name="d"), "Dense layer 'd': units must be a positive integer, got True."),
    (lambda: Dropout("0.5", name="p"), "Dropout layer 'p': rate must be a number in [0, 1), got '0.5'."),
    (lambda: Dropout(NAN, name="p"), "Dropout layer 'p': rate must be a number in [0, 1), got nan."),
    (lambda: Dropout(0.5, seed="x", name="p"),
     "Dropout layer 'p': seed must be None or an integer >= 0, got 'x'."),
    (lambda: Conv2D(2.5, 3, name="c"), "Conv2D layer 'c': filters must be a positive integer, got 2.5."),
    (lambda: Conv2D(2, "3", name="c"),
     "Layer 'c': kernel_size must be a positive int or a tuple of 2 positive ints, got '3'."),
    (lambda: Conv2D(2, (3, 2.0), name="c"),
     "Layer 'c': kernel_size must be a positive int or a tuple of 2 positive ints, got (3, 2.0)."),
    (lambda: LSTM("4", name="r"), "LSTM layer 'r': units must be a positive integer, got '4'."),
    (lambda: GRU(1.5, name="r"), "GRU layer 'r': units must be a positive integer, got 1.5."),
    (lambda: SimpleRNN(0, name="r"), "SimpleRNN layer 'r': units must be a positive integer, got 0."),
    (lambda: LSTM(4, dropout=INF, name="r"), "LSTM layer 'r': dropout must be a number in [0, 1), got inf."),
    (lambda: Embedding("10", 3, name="e"), "Embedding layer 'e': input_dim must be a positive integer, got '10'."),
    (lambda: Embedding(10, 2.5, name="e"), "Embedding layer 'e': output_dim must be a positive integer, got 2.5."),
])
def test_layer_arguments_follow_keras_type_rules(make, sentence):
    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value) == sentence


def test_numpy_integers_are_counts_too():
    assert Dense(np.int64(3)).units == 3 and Conv2D(2, (3, np.int32(2))).kernel_size == (3, 2)


def test_an_unknown_python_argument_suggests_the_closest():
    with pytest.raises(ConfigError) as err:
        Dense(16, activaton="relu")
    assert str(err.value) == "Dense got unknown argument 'activaton'. Did you mean 'activation'?"
    with pytest.raises(ConfigError) as err:
        LSTM(4, recurent_dropout=0.1)
    assert str(err.value) == "LSTM got unknown argument 'recurent_dropout'. Did you mean 'recurrent_dropout'?"
    with pytest.raises(ConfigError) as err:
        Dense(16, foo=1, bar=2)
    assert str(err.value) == "Dense got unknown arguments 'bar', 'foo'."


# ---- NaN / inf hyperparameters ---------------------------------------------------------------

@pytest.mark.parametrize("make,sentence", [
    (lambda: optimizers.Adam(NAN), "Adam argument learning_rate must be a finite number, got nan."),
    (lambda: optimizers.SGD(INF), "SGD argument learning_rate must be a finite number, got inf."),
    (lambda: optimizers.Adam("0.1"), "Adam argument learning_rate must be a number or a schedule, got '0.1'."),
    (lambda: optimizers.SGD(momentum=NAN), "SGD argument momentum must be a finite number in [0, 1], got nan."),
    (lambda: optimizers.Adam(beta_1=2.0), "Adam argument beta_1 must be a finite number in [0, 1), got 2.0."),
    (lambda: optimizers.Adam(beta_2=NAN), "Adam argument beta_2 must be a finite number in [0, 1), got nan."),
    (lambda: optimizers.Adam(epsilon=INF), "Adam argument epsilon must be a finite number >= 0, got inf."),
    (lambda: optimizers.AdamW(weight_decay=NAN), "AdamW argument weight_decay must be a finite number >= 0, got nan."),
    (lambda: optimizers.SGD(clipnorm=NAN), "SGD argument clipnorm must be a finite number >= 0, got nan."),
    (lambda: optimizers.SGD(clipvalue=INF), "SGD argument clipvalue must be a finite number >= 0, got inf."),
    (lambda: optimizers.RMSprop(rho=NAN), "RMSprop argument rho must be a finite number in [0, 1], got nan."),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1.0),
     "Adagrad argument initial_accumulator_value must be a finite number >= 0, got -1.0."),
    (lambda: schedules.ExponentialDecay(NAN, 10, 0.9),
     "ExponentialDecay argument initial_learning_rate must be a finite number, got nan."),
    (lambda: schedules.CosineDecay(0.1, 10, alpha=INF), "CosineDecay argument alpha must be a finite number, got inf."),
    (lambda: schedules.PiecewiseConstantDecay([5], [0.1, NAN]),
     "PiecewiseConstantDecay argument values[1] must be a finite number, got nan."),
])
def test_nan_and_inf_hyperparameters_are_refused(make, sentence):
    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value) == sentence


def test_a_schedule_learning_rate_still_works():
    opt = optimizers.Adam(schedules.ExponentialDecay(0.1, 10, 0.5))
    assert opt.learning_rate == pytest.approx(0.1)


def _model():
    model = Sequential([Dense(2, activation="softmax", name="out")])
    model.build((3,))
    return model


@pytest.mark.parametrize("loss_weights,sentence", [
    ("x", "compile loss_weights must be a finite number, got 'x'."),
    (NAN, "compile loss_weights must be a finite number, got nan."),
])
def test_loss_weights_must_be_finite_numbers(loss_weights, sentence):
    with pytest.raises(ConfigError) as err:
        _model().compile("sgd", "mse", loss_weights=loss_weights)
    assert str(err.value) == sentence


def test_fit_weights_and_split_are_checked():
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.ones((10, 3), "float32"), np.zeros(10, "int64")
    cases = [
        (dict(class_weight={0: NAN, 1: 1.0}), ConfigError, "class_weight[0] must be a finite number, got nan."),
        (dict(class_weight={"a": 1.0}), DataError, "class_weight keys must be class indices (ints >= 0), got 'a'."),
        (dict(sample_weight=np.r_[np.ones(2), INF, np.ones(7)]), DataError,
         "sample_weight has NaN or inf values, first in row 2."),
        (dict(sample_weight=np.array(["a"] * 10)), DataError,
         "sample_weight holds strings (dtype <U1), not numbers; convert it to a numeric array first."),
        (dict(validation_split=NAN), DataError, "validation_split must be in [0, 1), got nan."),
    ]
    for kwargs, kind, sentence in cases:
        with pytest.raises(kind) as err:
            model.fit(x, y, epochs=1, verbose=0, **kwargs)
        assert str(err.value) == sentence


def test_fit_on_strings_is_a_data_error():
    model = Sequential([Dense(2, name="out")])
    model.compile("sgd", "mse")
    with pytest.raises(DataError) as err:
        model.fit(np.array([["a", "b"]] * 4), np.zeros((4, 2)), verbose=0)
    assert str(err.value) == "x holds strings (dtype <U1), not numbers; convert it to a numeric array first."


@pytest.mark.parametrize("seed", [-1, "1", 1.5, True])
def test_set_random_seed_takes_ints_from_zero(seed):
    with pytest.raises(ConfigError) as err:
        utils.set_random_seed(seed)
    assert str(err.value) == f"seed must be an integer >= 0, got {seed!r}."


# ---- run configs: the file and the key --------------------------------------------------------

BASE = """[data]
name = "digits"
flatten = true
[model]
layers = [{ type = "Dense", units = 10, activation = "softmax" }]
[compile]
optimizer = "adam"
loss = "sparse_categorical_crossentropy"
[training]
epochs = 1
verbose = 0
"""


def _config(tmp_path, old="", new="", extra="", name="run.toml"):
    path = tmp_path / name
    path.write_text(BASE.replace(old, new) + extra)
    return str(path)


@pytest.mark.parametrize("old,new,extra,sentence", [
    ("", "", "seed = -1\n", "[training].seed must be an integer >= 0, got -1."),
    ("", "", "batch_size = 2.5\n", "[training].batch_size must be int, got 2.5."),
    ("epochs = 1", 'epochs = "3"', "", "[training].epochs must be int, got '3'."),
    ("", "", "validation_split = nan\n", "[training].validation_split must be a finite number in [0, 1), got nan."),
    ("verbose = 0", "verbose = 7", "", "[training].verbose must be an integer in 0..2, got 7."),
    ("", "", '[checkpoint]\nsave_freq = "bogus"\n',
     '[checkpoint].save_freq must be "epoch" or a positive number of steps, got \'bogus\'.'),
    ('loss = "sparse', 'loss_weights = "x"\nloss = "sparse', "",
     "[compile].loss_weights must be a finite number, got 'x'."),
    ('loss = "sparse', 'loss_weights = [1, nan]\nloss = "sparse', "",
     "[compile].loss_weights[1] must be a finite number, got nan."),
    ("[model]", "[model]\nname = 5", "", "[model].name must be a string, got 5."),
])
def test_config_values_are_refused_naming_file_and_key(tmp_path, old, new, extra, sentence):
    path = _config(tmp_path, old, new, extra)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: {sentence}"


@pytest.mark.parametrize("old,new,start", [
    ("units = 10", 'units = "16"', "[model].layers[0] (Dense): Dense layer 'dense"),
    ("units = 10", "units = 16.5", "[model].layers[0] (Dense): Dense layer 'dense"),
    ('"softmax"', '"relu2"', "[model].layers[0] (Dense): Unknown activation 'relu2'; valid names are: "),
    ("units = 10,", 'units = 10, kernel_initializer = "glorot_unifrm",',
     "[model].layers[0].kernel_initializer: Unknown initializer 'glorot_unifrm'; valid names are: "),
    ('type = "Dense"', 'type = "os.system"', "[model].layers[0] (os.system): Unknown layer 'os.system'"),
    ('optimizer = "adam"', 'optimizer = "os.system"', "[compile].optimizer: Unknown optimizer 'os.system'"),
    ('optimizer = "adam"', 'optimizer = { name = "adam", learning_rate = nan }',
     "[compile].optimizer: Adam argument learning_rate must be a finite number, got nan."),
    ('optimizer = "adam"', 'optimizer = { name = "sgd", momentum = inf }',
     "[compile].optimizer: SGD argument momentum must be a finite number in [0, 1], got inf."),
    ('loss = "sparse_categorical_crossentropy"', 'loss = "sparse_cat"', "[compile].loss: Unknown loss 'sparse_cat'"),
    ('loss = "sparse', 'metrics = ["accuracy", "acuracy"]\nloss = "sparse',
     "[compile].metrics[1]: Unknown metric 'acuracy'"),
    ('{ type = "Dense"', '{ type = "Dropout", rate = "0.5" }, { type = "Dense"',
     "[model].layers[0] (Dropout): Dropout layer 'dropout"),
])
def test_model_and_compile_mistakes_name_file_and_key(tmp_path, old, new, start):
    path = _config(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        build_model(load_config(path), (64,))
    assert str(err.value).startswith(f"{path}: {start}"), str(err.value)


def test_a_binary_config_file_is_one_sentence(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\x00\xff\xfe\x89PNG\r\n" + bytes(range(256)))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"{path}: not a TOML text file: byte 0xff at offset 1 is not UTF-8 text."


# ---- data: the file, the dataset, the row -----------------------------------------------------

def _arrays(bad=None):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype("float32"), rng.integers(0, 10, 40)
    if bad == "nan":
        x[27, 1] = np.nan
    if bad == "label":
        y[25] = 50
    return x, y


def _data_config(tmp_path, fmt, path):
    return _config(tmp_path, 'name = "digits"\nflatten = true', f'format = "{fmt}"\npath = "{path}"')


@pytest.mark.parametrize("bad,sentence", [
    ("nan", "{file}: x has NaN or inf values, first in row 27."),
    ("label", "{file}: Label 50 at row 25 is outside [0, 10) for 'sparse_categorical_crossentropy' "
              "with 10 output classes."),
])
def test_npz_data_errors_name_the_file(tmp_path, bad, sentence):
    x, y = _arrays(bad)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DataError) as err:
        train_from_config(_data_config(tmp_path, "npz", "d.npz"))
    assert str(err.value) == sentence.format(file=tmp_path / "d.npz")


def test_npz_strings_and_wrong_rank_are_data_errors(tmp_path):
    x, y = _arrays()
    np.savez(tmp_path / "s.npz", x=np.array(["a"] * 40), y=y)
    with pytest.raises(DataError) as err:
        train_from_config(_data_config(tmp_path, "npz", "s.npz"))
    assert str(err.value).endswith(f"In {tmp_path / 's.npz'}, 'x' holds strings (dtype <U1), not numbers.")
    np.savez(tmp_path / "r.npz", x=x[:, :, None], y=y)
    with pytest.raises(DataError) as err:
        train_from_config(_data_config(tmp_path, "npz", "r.npz"))
    assert str(err.value) == (f"{tmp_path / 'r.npz'}: Targets for 'sparse_categorical_crossentropy' have shape "
                              f"(40,), but the model output of shape (None, 4, 10) takes integer class labels "
                              f"of shape (None, 4).")


def _idx(folder, x, y):
    folder.mkdir()
    for stem in ("train", "t10k"):
        for kind, a in (("images-idx3", x), ("labels-idx1", y)):
            a = np.asarray(a, ">u1")
            head = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
            (folder / f"{stem}-{kind}-ubyte").write_bytes(head + a.tobytes())


def test_idx_label_out_of_range_names_the_folder(tmp_path):
    y = np.arange(20) % 10
    y[3] = 50
    _idx(tmp_path / "idx", np.zeros((20, 4, 4)), y)
    with pytest.raises(DataError) as err:
        train_from_config(_config(tmp_path, 'name = "digits"', 'format = "idx"\npath = "idx"'))
    assert str(err.value) == (f"{tmp_path / 'idx'}: Label 50 at row 3 is outside [0, 10) for "
                              f"'sparse_categorical_crossentropy' with 10 output classes.")


@pytest.mark.parametrize("bad,dataset,row", [("nan", "x_train", 27), ("label", "y_train", 25)])
def test_lazy_hdf5_data_is_checked_block_by_block(tmp_path, monkeypatch, bad, dataset, row):
    x, y = _arrays(bad)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x_train"], f["y_train"], f["x_test"], f["y_test"] = x, y, x[:4], y[:4]
    monkeypatch.setattr(inputs, "_SCAN_BYTES", 64)  # 4 rows of x (16 bytes each), 8 labels a block
    reads = []
    real = inputs._blocks

    def counted(a):
        for start, block in real(a):
            reads.append(len(block))
            yield start, block
    monkeypatch.setattr(inputs, "_blocks", counted)
    with pytest.raises(DataError) as err:
        train_from_config(_data_config(tmp_path, "hdf5", "d.h5"))
    what = ("has NaN or inf values, first in row 27." if bad == "nan" else
            ": Label 50 at row 25 is outside [0, 10) for 'sparse_categorical_crossentropy' with 10 output classes.")
    assert str(err.value) == f"{tmp_path / 'd.h5'}, dataset {dataset!r}{' ' if bad == 'nan' else ''}{what}"
    assert max(reads) <= 8 and len(reads) > 3  # never the whole dataset at once


def test_a_checkpoint_layer_that_cannot_be_built_names_file_part_and_layer(tmp_path):
    model = Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2, name="out")])
    model.compile("adam", "mse")
    path = tmp_path / "m.h5"
    model.save(path)

    def change(c):
        c["config"]["layers"][-1]["config"]["activation"] = "relu2"
        return c
    edit_text(path, "model/config", change)
    resign(path)
    with pytest.raises(Exception) as err:
        load_model(path)
    assert str(err.value).startswith(f"Checkpoint {str(path)!r} cannot be rebuilt: model config, layer 1 ('out'): "
                                     f"Unknown activation 'relu2'; valid names are: ")


# ---- the command: exit 2, one line, no traceback -------------------------------------------

def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for key in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "distdl.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_the_command_exits_2_with_one_sentence_for_each_family(tmp_path):
    x, y = _arrays("label")
    with h5py.File(tmp_path / "l.h5", "w") as f:
        f["x"], f["y"] = x, y
    np.savez(tmp_path / "s.npz", x=np.array(["a"] * 40), y=y)
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe" + bytes(range(256)))
    configs = {
        "bin.toml": "not a TOML text file",
        _config(tmp_path, extra="seed = -1\n", name="seed.toml"): "[training].seed must be an integer >= 0",
        _config(tmp_path, 'loss = "sparse', 'loss_weights = "x"\nloss = "sparse', name="lw.toml"):
            "[compile].loss_weights must be a finite number, got 'x'.",
        _config(tmp_path, "units = 10", 'units = "16"', name="units.toml"): "units must be a positive integer",
        _config(tmp_path, 'name = "digits"\nflatten = true', 'format = "npz"\npath = "s.npz"', name="s.toml"):
            "'x' holds strings (dtype <U1), not numbers.",
        _config(tmp_path, 'name = "digits"\nflatten = true', 'format = "hdf5"\npath = "l.h5"', name="l.toml"):
            "l.h5, dataset 'y': Label 50 at row 25 is outside [0, 10)",
    }
    for config, words in configs.items():
        p = _cli("train", config, cwd=tmp_path)
        assert p.returncode == 2, (config, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (config, p.stderr)
        assert "Traceback" not in p.stderr



@pytest.mark.parametrize("name", ["ModelCheckpoint", "BackupAndRestore"])
def test_checkpoint_callbacks_name_themselves_for_a_bad_save_freq(tmp_path, name):
    from distdl import callbacks
    with pytest.raises(ConfigError) as err:
        getattr(callbacks, name)(str(tmp_path / "ck"), save_freq=float("nan"))
    assert str(err.value) == f"{name} save_freq must be 'epoch' or a positive number of steps, got nan."
