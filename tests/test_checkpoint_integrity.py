"""Whole-file integrity: any edit to a checkpoint is refused naming the file, every field is checked
before use, nothing outside the file is read (checkpoints and Keras weights files), and no size
the file declares is allocated before it is checked against what the file holds."""
import json
import os
import shutil
import tracemalloc

import h5py
import numpy as np
import pytest
from ckpt_edit import edit_text, put_str_attr, put_text, resign
from test_checkpoint import assert_same, make_data

from distdl.errors import CheckpointError, ConfigError
from distdl.layers import Dense
from distdl.models import Sequential, load_model
from distdl.saving import checkpoint as ck
from distdl.saving import keras_format

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
V1 = os.path.join(FIXTURES, "ckpt-v1-e0000-s000003.h5")
# Written by the code of commit e4d7517 (the last to write format version 2) with
# ckpt_v1_fixture.run(dir, crash_at=4): the same run and position as the version 1 fixture.
V2 = os.path.join(FIXTURES, "ckpt-v2-e0000-s000003.h5")


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "c.h5"
    ck.save_checkpoint(path, make_data())
    return path


def refused(path, match=""):
    """load_checkpoint refuses `path` with one CheckpointError naming it; returns the message."""
    with pytest.raises(CheckpointError) as info:
        ck.load_checkpoint(path)
    text = str(info.value)
    assert repr(os.fspath(path)) in text and match in text and "\n" not in text, text
    assert ck.verify_checkpoint(path) == (False, text)
    return text


def _set_attr(key, name, value):
    def edit(f):
        f[key].attrs[name] = value
    return edit


def _json(key, change):
    def edit(f):
        put_text(f, key, change(json.loads(f[key][()])))
    return edit


def _array(key, i=1):
    def edit(f):
        a = f[key][()]
        a[i] = np.nextafter(a[i], np.inf)
        f[key][...] = a
    return edit


def _optimizer(name, value):
    def change(cfg):
        cfg["config"][name] = value
        return cfg
    return _json("optimizer/config", change)


def _retype(key, dtype):
    def edit(f):
        a = f[key][()]
        del f[key]
        f.create_dataset(key, data=a.astype(dtype))
    return edit


def _vlen_text(key):  # the same JSON text, stored as format version 2 stored it
    def edit(f):
        text = f[key][()].decode()
        del f[key]
        f.create_dataset(key, data=text, dtype=h5py.string_dtype("utf-8"))
    return edit


def _delete(key):
    def edit(f):
        del f[key]
    return edit


EDITS = {
    "learning rate 0.001 -> 0.1": _optimizer("learning_rate", 0.1),
    "beta_1 2.0": _optimizer("beta_1", 2.0),
    "model config units": _json("model/config", lambda c: {**c, "config": {"layers": [{"units": 4}]}}),
    "variable renamed": _json("model/variables", lambda v: [{**v[0], "name": "other"}] + v[1:]),
    "compile loss": _json("training/compile_config", lambda c: {**c, "loss": "mae"}),
    "history value": _json("training/history", lambda h: {**h, "loss": [0.5, 0.25, 0.1]}),
    "totals added": _json("training/totals", lambda t: {"rows": [3.0]}),
    "RNG state": _json("training/rng_state", lambda r: {**r, "numpy": {**r["numpy"], "has_uint32": 1}}),
    "extra": _json("training/extra", lambda e: {}),
    "epoch + 1": _set_attr("training", "epoch", 4),
    "epoch -5": _set_attr("training", "epoch", -5),
    "step": _set_attr("training", "step", 0),
    "seed": _set_attr("training", "seed", 43),
    "world size": _set_attr("training", "world_size", 2),
    "iterations": _set_attr("optimizer", "iterations", 124),
    "distdl version": lambda f: put_str_attr(f, "distdl_version", "9.9"),
    "format version 3 -> 2": _set_attr("/", "format_version", 2),
    "params": _array("model/params"),
    "state": _array("model/state"),
    "optimizer slot": _array("optimizer/slots/v"),
    "slot deleted": _delete("optimizer/slots/m"),
    "history deleted": _delete("training/history"),
    "attribute added": _set_attr("model", "note", 1),
    "dataset added": lambda f: f.create_dataset("training/notes", data=np.zeros(2)),
    "epoch as float": _set_attr("training", "epoch", 3.0),
    "epoch as text": lambda f: put_str_attr(f["training"], "epoch", "3"),
    "epoch as bool": _set_attr("training", "epoch", True),
    "epoch as array": _set_attr("training", "epoch", np.array([3])),
    "params as float64": _retype("model/params", "float64"),
    "params as int32": _retype("model/params", "int32"),
    "history as variable-length string": _vlen_text("training/history"),
    "checksum as variable-length string": lambda f: f.attrs.__setitem__("checksum", f.attrs["checksum"].decode()),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_every_edit_is_refused_naming_the_file(saved, name):
    with h5py.File(saved, "r+") as f:
        EDITS[name](f)
    refused(saved)


def test_an_unedited_file_loads_and_the_checksum_covers_the_whole_file(saved):
    assert_same(ck.load_checkpoint(saved), make_data())
    info = ck.inspect_checkpoint(saved)
    assert info["checksum"] == "ok" and info["checksum_covers"] == "the whole file"
    edit_text(saved, "optimizer/config", lambda c: {**c, "config": {**c["config"], "learning_rate": 0.1}})
    assert "the file was damaged or edited after it was written" in refused(saved, "fails its checksum")
    assert ck.inspect_checkpoint(saved)["checksum"] == "mismatch"  # reported, not raised


# ---------------------------------------------------------------- fields checked even when signed

RESIGNED = {
    "epoch -5": (_set_attr("training", "epoch", -5), "training attribute 'epoch' is -5, outside [0, "),
    "world size 0": (_set_attr("training", "world_size", 0), "'world_size' is 0, outside [1, "),
    "history a string": (_json("training/history", lambda h: "x"), "the history is 'x'"),
    "totals of strings": (_json("training/totals", lambda t: {"rows": ["1"]}), "the totals is"),
    "learning rate NaN": (_optimizer("learning_rate", float("nan")), "holds a NaN or infinite number"),
    "optimizer config a list": (_json("optimizer/config", lambda c: [c]), "the optimizer config is ["),
    "RNG state a list": (_json("training/rng_state", lambda r: [1]), "the RNG state is [1]"),
    "extra null": (_json("training/extra", lambda e: None), "the extra field is None"),
    "v1 totals a string": (_json("training/extra", lambda e: {"totals": "x"}), "extra's totals are 'x'"),
    "model config a list": (_json("model/config", lambda c: [1]), "the model config is [1]"),
    "variable of 2^80 weights": (_json("model/variables", lambda v: [{**v[0], "shape": [2**40, 2**40]}] + v[1:]),
                                 "params has shape (21,) but the variables need ("),
    "variable of negative shape": (_json("model/variables", lambda v: [{**v[0], "shape": [-4, 3]}] + v[1:]),
                                   "not a list of sizes >= 0"),
    "variable without trainable": (_json("model/variables", lambda v: [{"name": "a", "shape": [1]}] + v[1:]),
                                   "is not {name, shape, trainable}"),
    "JSON nested 100000 deep": (lambda f: _raw_text(f, "training/extra", "[" * 100000 + "]" * 100000),
                                "unreadable JSON in 'training/extra'"),
    "JSON not UTF-8": (lambda f: _raw_text(f, "training/extra", b"{\"a\": \"\xff\"}"), "not UTF-8"),
}


def _raw_text(f, key, text):
    raw = text if isinstance(text, bytes) else text.encode()
    del f[key]
    f.create_dataset(key, data=raw, dtype=h5py.string_dtype("utf-8", len(raw)))


@pytest.mark.parametrize("name", list(RESIGNED))
def test_fields_are_checked_even_with_a_valid_checksum(saved, name):
    edit, match = RESIGNED[name]
    with h5py.File(saved, "r+") as f:
        edit(f)
    resign(saved)
    refused(saved, match)


@pytest.fixture
def model_file(tmp_path):
    model = Sequential([Dense(3, activation="relu", input_shape=(4,)), Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 4), "float32"), np.zeros((8, 2), "float32"), epochs=1, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)
    return path


def _layer0(**changes):
    def change(c):
        c["config"]["layers"][0]["config"].update(changes)
        return c
    return change


REBUILDS = {
    "model config null": (lambda c: None, "is inconsistent: the model config is None, not a dict"),
    "no config key": (lambda c: {"class_name": "Sequential"}, "has config None, not a dict"),
    "input shape [-1]": (lambda c: {**c, "config": {**c["config"], "input_shape": [-1]}}, "input shape [-1]"),
    "layers not a list": (lambda c: {**c, "config": {**c["config"], "layers": "x"}}, "has layers 'x'"),
    "unknown activation": (_layer0(activation="os.system"), "Unknown activation 'os.system'"),
    "unknown layer": (lambda c: {**c, "config": {**c["config"], "layers": [{"class_name": "os.system"}]}},
                      "Unknown layer 'os.system'"),
    "units 10**12": (_layer0(units=10**12), "exceed this machine's memory"),
}


@pytest.mark.parametrize("name", list(REBUILDS))
def test_a_model_config_that_cannot_be_rebuilt_is_a_checkpoint_error_naming_the_file(model_file, name):
    change, match = REBUILDS[name]
    edit_text(model_file, "model/config", change)
    refused(model_file, "fails its checksum")
    resign(model_file)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            load_model(model_file)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(info.value)
    assert text.startswith(f"Checkpoint {str(model_file)!r} ") and match in text, text
    assert peak < 50e6  # nothing of 10**12 units was allocated


def test_a_layer_larger_than_the_machine_is_refused_before_allocation():
    model = Sequential([Dense(10**12)])
    with pytest.raises(ConfigError, match=r"Layer 'dense\w*' cannot create weight 'kernel' of shape "
                                          r"\(4, 1000000000000\): 16,000,000,000,000 bytes exceed"):
        model.build((4,))


def test_resume_auto_falls_back_past_files_that_fail_with_the_reason(tmp_path):
    for e in (1, 2, 3):
        ck.save_checkpoint(tmp_path / ck.checkpoint_name(e), make_data(epoch=e, step=0))
    with h5py.File(tmp_path / ck.checkpoint_name(3), "r+") as f:
        f["training"].attrs["epoch"] = -5  # the case: a traceback before
    edit_text(tmp_path / ck.checkpoint_name(2), "training/history", lambda h: [])
    resign(tmp_path / ck.checkpoint_name(2))
    path, data, skipped = ck.latest_valid_checkpoint_data(tmp_path)
    assert path == str(tmp_path / ck.checkpoint_name(1)) and data.epoch == 1
    assert [os.path.basename(p) for p, _ in skipped] == [ck.checkpoint_name(3), ck.checkpoint_name(2)]
    assert "fails its checksum" in skipped[0][1] and "the history is []" in skipped[1][1]


# ---------------------------------------------------------------- older formats

def test_versions_1_and_2_still_load_and_their_checksum_covers_the_arrays_only(tmp_path):
    for path, version in ((V1, 1), (V2, 2)):
        data = ck.load_checkpoint(path)
        assert data.format_version == version and (data.epoch, data.step) == (0, 3)
        assert ck.inspect_checkpoint(path)["checksum_covers"] == "the arrays only"
        copy = tmp_path / f"v{version}.h5"
        shutil.copy(path, copy)
        with h5py.File(copy, "r+") as f:  # an optimizer config edit: not covered in these versions
            cfg = json.loads(f["optimizer/config"][()])
            cfg["config"]["learning_rate"] = 0.1
            del f["optimizer/config"]
            f.create_dataset("optimizer/config", data=json.dumps(cfg), dtype=h5py.string_dtype("utf-8"))
        assert ck.load_checkpoint(copy).optimizer_config["config"]["learning_rate"] == 0.1
        with h5py.File(copy, "r+") as f:
            f["model/params"][0] += 1
        refused(copy, "fails its checksum: weights or optimizer state are corrupted")
    v2 = ck.load_checkpoint(V2)
    assert v2.totals["rows"] == [24.0] and v2.totals == ck.load_checkpoint(V2).totals
    ck.save_checkpoint(tmp_path / "again.h5", v2)  # re-saved in the current format
    again = ck.load_checkpoint(tmp_path / "again.h5")
    assert again.format_version == ck.FORMAT_VERSION and again.totals == v2.totals
    assert np.array_equal(again.params, v2.params)


# ---------------------------------------------------------------- nothing from outside the file

def _other_file(tmp_path, n):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.arange(n, dtype="float32")
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.arange(n, dtype="float32").tobytes())
    return other, raw


def _outside(kind, key, n, other, raw):
    def edit(f):
        del f[key]
        if kind == "external link":
            f[key] = h5py.ExternalLink(str(other), "/w")
        elif kind == "soft link":
            f["spare"] = np.arange(n, dtype="float32")
            f[key] = h5py.SoftLink("/spare")
        elif kind == "external storage":
            f.create_dataset(key, shape=(n,), dtype="float32", external=[(str(raw), 0, 4 * n)])
        elif kind == "virtual dataset":
            layout = h5py.VirtualLayout(shape=(n,), dtype="float32")
            layout[:] = h5py.VirtualSource(str(other), "w", shape=(n,))
            f.create_virtual_dataset(key, layout)
        else:  # a hard link from a second place
            f["second"] = f[os.path.dirname(key)]
    return edit


OUTSIDE = {"external link": "holds an external link", "soft link": "holds a soft link",
           "external storage": "in another file", "virtual dataset": "holds a virtual dataset",
           "second hard link": "from more than one place"}


@pytest.mark.parametrize("kind", list(OUTSIDE))
def test_checkpoints_refuse_storage_outside_the_file(saved, tmp_path, kind):
    other, raw = _other_file(tmp_path, 21)
    with h5py.File(saved, "r+") as f:
        _outside(kind, "model/params", 21, other, raw)(f)
    text = refused(saved, OUTSIDE[kind])
    assert kind == "second hard link" or "distdl reads" in text


@pytest.mark.parametrize("kind", list(OUTSIDE))
def test_keras_weights_files_refuse_storage_outside_the_file(tmp_path, kind):
    model = Sequential([Dense(3, input_shape=(4,))])
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    other, raw = _other_file(tmp_path, 3)
    with h5py.File(path, "r+") as f:
        _outside(kind, "layers/dense/vars/1", 3, other, raw)(f)
    with pytest.raises(CheckpointError, match=rf"^Weights file '.*m\.weights\.h5' .*{OUTSIDE[kind]}"):
        model.load_weights(path)
    with pytest.raises(CheckpointError, match=OUTSIDE[kind]):
        keras_format.read_keras_optimizer_vars(path)


def test_special_files_and_types_other_than_numbers_and_strings_are_refused_unread(saved, tmp_path):
    fifo = tmp_path / "ckpt-e0001-s000000.h5"
    os.mkfifo(fifo)  # opening it would block until a writer came
    refused(fifo, "is not a regular file")
    with h5py.File(saved, "r+") as f:  # what one damaged type byte made of a string attribute
        seq = np.empty(1, dtype=h5py.vlen_dtype(np.int8))
        seq[0] = np.array([1, 2], "int8")
        f["model"].attrs.create("x", data=seq)
    refused(saved, "holds attribute 'x' of '/model' of a variable-length sequence, which distdl does not read")


# ---------------------------------------------------------------- sizes bounded by the file

def _peak_while(fn):
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            fn()
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


def test_a_30kb_file_declaring_2_29_floats_is_refused_before_reading(saved):
    n = 2**29
    with h5py.File(saved, "r+") as f:
        del f["model/params"]
        f.create_dataset("model/params", shape=(n,), dtype="float32", chunks=(2**16,))  # never written
        put_text(f, "model/variables", [{"name": "w", "shape": [n], "trainable": True}])
    assert os.path.getsize(saved) < 30_000
    peak, text = _peak_while(lambda: ck.load_checkpoint(saved))
    assert "declares dataset '/model/params' with shape (536870912,) (2,147,483,648 bytes)" in text
    assert peak < 10e6, peak


@pytest.mark.parametrize("form", ["chunked bytes", "fixed-length string"])
def test_a_declared_3gb_history_is_refused_before_reading(saved, form):
    with h5py.File(saved, "r+") as f:
        del f["training/history"]
        if form == "chunked bytes":
            f.create_dataset("training/history", shape=(3 * 2**30,), dtype="uint8", chunks=(2**20,))
        else:
            tid = h5py.h5t.C_S1.copy()  # NumPy has no 3 GB string type: HDF5's own
            tid.set_size(3 * 2**30)
            h5py.h5d.create(f["training"].id, b"history", tid, h5py.h5s.create(h5py.h5s.SCALAR))
    peak, text = _peak_while(lambda: ck.load_checkpoint(saved))
    assert "declares dataset '/training/history'" in text and "3,221,225,472 bytes" in text
    assert peak < 10e6, peak


def test_a_keras_file_declaring_huge_optimizer_vars_is_refused(tmp_path):
    path = tmp_path / "m.weights.h5"
    keras_format.write_keras_weights(path, [("Dense", [np.ones((4, 3), "float32"), np.zeros(3, "float32")])])
    with h5py.File(path, "r+") as f:
        f.create_dataset("optimizer/vars/0", shape=(2**31,), dtype="float32", chunks=(2**16,))
    peak, text = _peak_while(lambda: keras_format.read_keras_optimizer_vars(path))
    assert "declares dataset '/optimizer/vars/0'" in text and peak < 10e6
