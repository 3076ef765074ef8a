"""Keras 3 `.keras` archives without Keras: distdl round trips, Keras-made golden archives, refusals.

The golden archives in tests/data/keras were written by Keras 3.15 (make_golden.py there); the
tests with Keras itself are in test_keras_archive_keras.py.
"""
import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from keras_zoo import ZOO, build, builtin_layer_classes, layer_classes
from mpirun import run_mpi

from distdl import initializers, optimizers
from distdl.errors import CheckpointError, ConfigError
from distdl.layers import Dense, Input
from distdl.models import Model, Sequential, load_model
from distdl.saving.keras_graph import keras_layer_order

GOLDEN = Path(__file__).parent / "data" / "keras"
FIXTURES = sorted(p.stem for p in GOLDEN.glob("*.keras"))


def _one(xs):
    return xs if len(xs) > 1 else xs[0]


def _listed(p):
    return p if isinstance(p, list) else [p]


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _edit_config(src, dst, edit):
    """Copy archive `src` to `dst` with `edit(config)` applied to its config.json."""
    members = _members(src)
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config)
    _write_zip(dst, members)
    return dst


def _golden(name):
    d = np.load(GOLDEN / f"{name}.npz")
    pick = lambda p: [d[k] for k in sorted(k for k in d.files if k.startswith(p) and k[len(p):].isdigit())]
    return {k: pick(k) for k in ("x", "pred", "step_x", "step_y", "after")} | {"iterations": int(d["iterations"])}


# ---------------------------------------------------------------- distdl -> .keras -> distdl

def test_the_zoo_uses_every_builtin_layer():
    used = set().union(*(layer_classes(build(name)[0]) for name in ZOO))
    assert builtin_layer_classes() - used == set()


@pytest.mark.parametrize("name", sorted(ZOO))
def test_round_trip_keeps_weights_bitwise_configs_and_predictions(tmp_path, name):
    model, xs = build(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    back = load_model(path)
    assert type(back) is type(model) and back.name == model.name
    assert [layer.name for layer in back.layers] == [layer.name for layer in model.layers]
    drop = lambda cfg: {k: v for k, v in cfg.items() if k != "input_shape"}  # Keras has an InputLayer instead
    for a, b in zip(model.layers, back.layers):
        assert drop(b.get_config()) == drop(a.get_config()), a.name
    want, got = model.get_weights(), back.get_weights()
    assert len(got) == len(want)
    for w, g in zip(want, got):
        assert g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)
    for p, q in zip(_listed(model.predict(_one(xs), verbose=0)), _listed(back.predict(_one(xs), verbose=0))):
        assert np.array_equal(p, q)


def test_archive_holds_keras_members_and_keras_config_keys(tmp_path):
    model, _ = build("dense_stack")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert zf.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    ours = json.loads(_members(tmp_path / "m.keras")["config.json"])
    keras = json.loads(_members(GOLDEN / "mlp.keras")["config.json"])
    assert ours.keys() == keras.keys() and ours["class_name"] == "Sequential" and ours["module"] == "keras"
    assert ours["config"].keys() == keras["config"].keys()
    first, dense = ours["config"]["layers"][:2]
    assert first["class_name"] == "InputLayer" and first["config"]["batch_shape"] == [None, 6]
    k_dense = keras["config"]["layers"][1]
    assert dense.keys() == k_dense.keys() and dense["build_config"] == {"input_shape": [None, 6]}
    assert set(dense["config"]) == set(k_dense["config"]) - {"quantization_config"}
    assert dense["config"]["dtype"] == k_dense["config"]["dtype"] | {"config": {"name": "float32"}}
    assert dense["config"]["kernel_initializer"] == {
        "module": "keras.initializers", "class_name": "HeNormal", "registered_name": None,
        "config": {"seed": 3, "input_axes": None, "output_axes": None}}
    assert dense["config"]["kernel_regularizer"]["module"] == "keras.regularizers"
    assert dense["config"]["bias_constraint"]["module"] == "keras.constraints"
    meta = json.loads(_members(tmp_path / "m.keras")["metadata.json"])
    assert meta.keys() >= {"keras_version", "date_saved"}


def test_functional_config_uses_keras_nodes_and_keras_layer_order(tmp_path):
    model, _ = build("merges")
    model.save(tmp_path / "m.keras")
    cfg = json.loads(_members(tmp_path / "m.keras")["config.json"])
    assert (cfg["class_name"], cfg["registered_name"]) == ("Functional", "Functional")
    c = cfg["config"]
    assert c["input_layers"] == [["a", 0, 0], ["b", 0, 0]] and c["output_layers"] == [["head", 0, 0], ["side", 0, 0]]
    shared = next(e for e in c["layers"] if e["name"] == "shared")
    assert [n["args"][0]["config"]["keras_history"] for n in shared["inbound_nodes"]] == [["a", 0, 0], ["deep", 0, 0]]
    add = next(e for e in c["layers"] if e["name"] == "add")
    assert [t["config"]["keras_history"] for t in add["inbound_nodes"][0]["args"][0]] == [["shared", 0, 0],
                                                                                         ["shared", 1, 0]]
    # Keras orders model.layers by depth: the two Dense layers before `b`'s shared call come first,
    # unlike distdl's order; the weight groups follow Keras's order
    order = keras_layer_order(c)
    assert order[:5] == ["b", "deeper", "a", "deep", "shared"] != [l.name for l in model.layers][:5]
    with h5py.File(io.BytesIO(_members(tmp_path / "m.keras")["model.weights.h5"]), "r") as f:
        assert f["layers/dense/vars/0"].shape == (4, 4)          # `deeper`, first Dense in Keras's order
        np.testing.assert_array_equal(f["layers/dense_2/vars/0"][()], model.get_layer("shared").get_weights()[0])


def test_weights_h5_of_a_functional_model_follows_keras_layer_order_too(tmp_path):
    model, xs = build("merges")
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5", "r") as f:  # same Dense shapes: only the order tells them apart
        for group, layer in (("dense", "deeper"), ("dense_1", "deep"), ("dense_2", "shared"), ("dense_3", "head")):
            np.testing.assert_array_equal(f[f"layers/{group}/vars/0"][()], model.get_layer(layer).get_weights()[0])
    fresh, _ = build("merges", seed=8)
    fresh.load_weights(tmp_path / "m.weights.h5")
    for p, q in zip(model.predict(xs, verbose=0), fresh.predict(xs, verbose=0)):
        assert np.array_equal(p, q)
    a = Input((3,))
    custom = Model(a, Dense(2, kernel_initializer=lambda shape, dtype=None: np.ones(shape))(a))
    custom.save_weights(tmp_path / "c.weights.h5")  # a config no archive can hold still has weights to save


@pytest.mark.parametrize("opt", [
    optimizers.Adam(0.01, amsgrad=True), optimizers.AdamW(0.01), optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    optimizers.SGD(0.05), optimizers.RMSprop(0.01, momentum=0.5, centered=True), optimizers.Adagrad(0.05),
    optimizers.Adam(optimizers.schedules.ExponentialDecay(0.01, 2, 0.5))], ids=lambda o: type(o).__name__)
def test_optimizer_state_round_trips_and_training_continues_bitwise(tmp_path, opt):
    model, xs = build("merges")
    model.compile(optimizer=opt, loss=["mse", "mae"], metrics=[["mae"], []], loss_weights=[1.0, 0.5])
    ys = [np.full((3, 2), 0.5, "float32"), np.ones((3, 1), "float32")]
    model.fit(xs, ys, batch_size=2, epochs=2, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    assert type(back.optimizer) is type(model.optimizer) and back.optimizer.iterations == 4
    assert back.optimizer.get_config() == model.optimizer.get_config()
    assert back.compile_config["loss"] == ["mse", "mae"] and back.compile_config["loss_weights"] == [1.0, 0.5]
    for k, v in model.optimizer.get_state().items():
        assert np.array_equal(back.optimizer.get_state()[k], v), k
    for m in (model, back):
        m.fit(xs, ys, batch_size=2, epochs=1, shuffle=False, verbose=0)
    for w, g in zip(model.get_weights(), back.get_weights()):
        assert np.array_equal(w, g)


def test_h5_keeps_distdl_checkpoint_and_keras_is_a_zip(tmp_path):
    model, _ = build("dense_stack")
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")
    assert h5py.is_hdf5(tmp_path / "m.h5") and not zipfile.is_zipfile(tmp_path / "m.h5")
    assert zipfile.is_zipfile(tmp_path / "m.keras")
    with pytest.raises(ConfigError, match="overwrite=False"):
        model.save(tmp_path / "m.keras", overwrite=False)


def test_failed_write_keeps_the_old_archive_and_leaves_no_temp_file(tmp_path, monkeypatch):
    model, _ = build("dense_stack")
    model.save(tmp_path / "m.keras")
    before = (tmp_path / "m.keras").read_bytes()

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(CheckpointError, match=r"Could not write Keras archive .*m\.keras.*No space left"):
        model.save(tmp_path / "m.keras")
    assert os.listdir(tmp_path) == ["m.keras"] and (tmp_path / "m.keras").read_bytes() == before


# ---------------------------------------------------------------- archives written by Keras

@pytest.mark.parametrize("name", FIXTURES)
def test_keras_golden_archive_predicts_what_keras_predicted_and_trains_on_alike(name):
    g = _golden(name)
    model = load_model(GOLDEN / f"{name}.keras")
    for p, want in zip(_listed(model.predict(_one(g["x"]), verbose=0)), g["pred"]):
        np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)
    assert model.optimizer.iterations == g["iterations"]
    # one more step from Keras's optimizer state lands where Keras's train_on_batch did
    model.fit(_one(g["step_x"]), _one(g["step_y"]), batch_size=len(g["step_x"][0]), epochs=1, shuffle=False,
              verbose=0)
    for p, want in zip(_listed(model.predict(_one(g["x"]), verbose=0)), g["after"]):
        np.testing.assert_allclose(p, want, rtol=1e-4, atol=1e-5)


def test_golden_functional_fixture_exercises_keras_layer_order():
    cfg = json.loads(_members(GOLDEN / "two_inputs.keras")["config.json"])["config"]
    model = load_model(GOLDEN / "two_inputs.keras", compile=False)
    assert keras_layer_order(cfg) != [layer.name for layer in model.layers]
    assert model.optimizer is None and [layer.name for layer in model.output_layers] == ["reg", "cls"]


def test_golden_masked_fixture_drops_keras_mask_ops_and_refuses_foreign_masks(tmp_path):
    cfg = json.loads(_members(GOLDEN / "masked.keras")["config.json"])
    classes = [e["class_name"] for e in cfg["config"]["layers"]]
    assert {"NotEqual", "Any"} <= set(classes)
    gru = next(e for e in cfg["config"]["layers"] if e["class_name"] == "GRU")
    assert gru["inbound_nodes"][0]["kwargs"]["mask"]["config"]["keras_history"][0] == "any"
    model = load_model(GOLDEN / "masked.keras")
    assert {type(layer).__name__ for layer in model.layers} == set(classes) - {"NotEqual", "Any"}

    def mask_from_input(config):
        gru = next(e for e in config["config"]["layers"] if e["class_name"] == "GRU")
        gru["inbound_nodes"][0]["kwargs"]["mask"]["config"]["keras_history"] = ["seq", 0, 0]
    path = _edit_config(GOLDEN / "masked.keras", tmp_path / "m.keras", mask_from_input)
    with pytest.raises(CheckpointError, match=r"layer 'gru(_\d+)?' is called with a mask that no Embedding"):
        load_model(path)


def test_golden_archive_loads_with_compile_false_even_if_its_compile_config_is_foreign(tmp_path):
    def foreign_loss(config):
        config["compile_config"]["loss"] = {"module": "my_losses", "class_name": "Focal", "config": {},
                                            "registered_name": "Custom>Focal"}
    path = _edit_config(GOLDEN / "mlp.keras", tmp_path / "m.keras", foreign_loss)
    with pytest.raises(CheckpointError, match=r"'Focal' from module 'my_losses'"):
        load_model(path)
    model = load_model(path, compile=False)
    np.testing.assert_allclose(model.predict(_golden("mlp")["x"][0], verbose=0), _golden("mlp")["pred"][0],
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- refusals

def _first_dense(config):
    return next(e for e in config["config"]["layers"] if e["class_name"] == "Dense")


@pytest.mark.parametrize("edit, message", [
    (lambda c: _first_dense(c).update(module="evil_module_xyz", class_name="MyDense",
                                      registered_name="Evil>MyDense"),
     r"names class 'MyDense' from module 'evil_module_xyz'"),
    (lambda c: _first_dense(c).update(registered_name="Evil>Dense"), r"registered as 'Evil>Dense'"),
    (lambda c: _first_dense(c).update(class_name="Conv3D"),
     r"layer 'dense(_\d+)?' is of class 'Conv3D', which is not a layer built into distdl"),
    (lambda c: c["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "Lambda", "config": {
        "name": "lam", "function": {"class_name": "__lambda__", "config": {"code": "ZXZpbA=="}}}}),
     r"holds Lambda layer 'lam', Python code that distdl never runs"),
    (lambda c: _first_dense(c)["config"].update(activation={"module": "builtins", "class_name": "function",
                                                            "config": "evil", "registered_name": "function"}),
     r"names class 'function' from module 'builtins'"),
    (lambda c: _first_dense(c)["config"].update(kernel_initializer={"module": "keras.initializers",
                                                                    "class_name": "STFT", "config": {}}),
     r"layer 'dense(_\d+)?' has a kernel_initializer distdl cannot build: Unknown initializer 'STFT'"),
    (lambda c: c.update(class_name="MyModel", module="evil_module_xyz", registered_name=None),
     r"'MyModel' from module 'evil_module_xyz'"),
    (lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, None]),
     r"Dense layer 'dense(_\d+)?' cannot be built on input shape \(None, None\): its weights are sized by "
     r"the last axis"),  # a None axis loads (tests/test_variable_dims.py); Dense refuses it as its kernel size
])
def test_refuses_code_and_unknown_classes_with_one_sentence(tmp_path, edit, message):
    path = _edit_config(GOLDEN / "mlp.keras", tmp_path / "bad.keras", edit)
    with pytest.raises(CheckpointError, match=message) as err:
        load_model(path)
    assert str(path) in str(err.value) and str(err.value).count(". ") == 0
    assert "evil_module_xyz" not in sys.modules


def test_refuses_keras_options_distdl_lacks(tmp_path):
    def renorm(config):
        bn = next(e for e in config["config"]["layers"] if e["class_name"] == "BatchNormalization")
        bn["config"]["renorm"] = True
    path = _edit_config(GOLDEN / "cnn_bn.keras", tmp_path / "bad.keras", renorm)
    with pytest.raises(CheckpointError, match=r"sets renorm=True, which distdl does not support"):
        load_model(path)


def test_damaged_missing_and_foreign_archives_name_file_and_member(tmp_path):
    good = (GOLDEN / "mlp.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.keras' is not a zip file or is damaged"):
        load_model(tmp_path / "cut.keras")
    members = _members(GOLDEN / "mlp.keras")
    _write_zip(tmp_path / "noweights.keras", {k: v for k, v in members.items() if k != "model.weights.h5"})
    with pytest.raises(CheckpointError, match=r"noweights\.keras' has no member 'model\.weights\.h5'"):
        load_model(tmp_path / "noweights.keras")
    weights_at = good.index(b"\x89HDF")
    flipped = bytearray(good)
    flipped[weights_at + 3000] ^= 0xFF
    (tmp_path / "crc.keras").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"crc\.keras' member 'model\.weights\.h5' is damaged"):
        load_model(tmp_path / "crc.keras")
    _write_zip(tmp_path / "json.keras", {**members, "config.json": b"{not json"})
    with pytest.raises(CheckpointError, match=r"json\.keras' member 'config\.json' is not valid JSON"):
        load_model(tmp_path / "json.keras")
    with pytest.raises(CheckpointError, match=r"absent\.keras' does not exist"):
        load_model(tmp_path / "absent.keras")


def _with_optimizer_vars(tmp_path, keep):
    """mlp.keras with only the first `keep` optimizer variables (an unbuilt Keras optimizer keeps 2)."""
    members = _members(GOLDEN / "mlp.keras")
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "a") as f:
        for k in list(f["optimizer/vars"]):
            if int(k) >= keep:
                del f[f"optimizer/vars/{k}"]
    _write_zip(tmp_path / f"opt{keep}.keras", {**members, "model.weights.h5": buf.getvalue()})
    return tmp_path / f"opt{keep}.keras"


def test_optimizer_variables_of_an_unbuilt_keras_optimizer_or_a_wrong_count(tmp_path):
    model = load_model(_with_optimizer_vars(tmp_path, 2))
    assert model.optimizer.iterations == _golden("mlp")["iterations"]
    assert all(not v.any() for v in model.optimizer.get_state().values())
    with pytest.raises(CheckpointError, match=r"opt3\.keras:model\.weights\.h5' holds 3 optimizer variables, "
                                              r"but Adam over this model has 14"):
        load_model(_with_optimizer_vars(tmp_path, 3))


def test_weights_that_point_outside_the_archive_are_refused(tmp_path):
    members = _members(GOLDEN / "mlp.keras")
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "a") as f:
        f["layers/dense/vars/sneaky"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/data")
    _write_zip(tmp_path / "ext.keras", {**members, "model.weights.h5": buf.getvalue()})
    with pytest.raises(CheckpointError, match=r"links 'layers/dense/vars/sneaky' to file .*other\.h5"):
        load_model(tmp_path / "ext.keras")


def test_models_an_archive_cannot_hold_are_refused_when_saving(tmp_path):
    class Custom(Model):
        def __init__(self):
            super().__init__()
            self.dense = Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Custom()
    sub.build((3,))
    with pytest.raises(CheckpointError, match=r"is a Custom with its own code.*save it as \.h5"):
        sub.save(tmp_path / "s.keras")
    seq = Sequential([Dense(2, input_shape=(3,), kernel_initializer=lambda shape, dtype=None: np.ones(shape))])
    with pytest.raises(CheckpointError, match=r"Layer 'dense(_\d+)?' \(Dense\) holds a Python object"):
        seq.save(tmp_path / "f.keras")
    class MySGD(optimizers.SGD):
        pass
    seq = Sequential([Dense(2, input_shape=(3,))])
    seq.compile(optimizer=MySGD(), loss="mse")
    with pytest.raises(CheckpointError, match=r"compiled with optimizer 'MySGD', which is not built into distdl"):
        seq.save(tmp_path / "o.keras")
    assert os.listdir(tmp_path) == []
    with pytest.raises(ConfigError, match="not built yet"):
        Sequential([Dense(2)]).save(tmp_path / "u.keras")


@pytest.mark.mpi
def test_two_ranks_save_once_and_every_rank_loads(tmp_path):
    res = run_mpi(2, "keras_archive.py", tmp_path / "m.keras")
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.listdir(tmp_path) == ["m.keras"]
    # mpirun forwards each rank's stdout on its own, so two lines may arrive interleaved
    found = sorted(re.findall(r"rank (\d) ([0-9a-f]{64}) (\d+)", res.stdout))
    assert [r for r, _, _ in found] == ["0", "1"], res.stdout
    assert len({(h, it) for _, h, it in found}) == 1  # identical predictions and iterations on both
