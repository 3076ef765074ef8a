"""Custom objects as Keras 3 saves them (keras.saving): a user's class or function is found by the
`"package>name"` key `register_keras_serializable` gives it, or through `custom_objects`, never by
its plain class name; distdl's own classes are found by plain name; nothing in a file is run.

Lookup order, Keras 3's (keras/src/saving/object_registration.py, serialization_lib.py):
custom_objects, then registered names, then the built-ins.
"""
import json
import zipfile

import numpy as np
import pytest

from distdl import initializers, losses, metrics, registry
from distdl.errors import CheckpointError, ConfigError
from distdl.layers import Dense, Input, Layer
from distdl.layers.base import _LAYER_CLASSES, deserialize, layer_class, serialize
from distdl.models import Model, Sequential, load_model, model_from_json
from distdl.models.model import _SUBCLASSES
from distdl.saving import (CustomObjectScope, custom_object_scope, get_custom_objects, get_registered_name,
                           get_registered_object, register_keras_serializable)
from distdl.saving.keras_config import refuse_code

HINT = "make sure custom classes are decorated with `@keras.saving.register_keras_serializable()`"


class _ScaleBase(Layer):
    """y = x * w * factor, with a hand-written backward (a custom layer as users write them today)."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def forward(self, x, training=False):
        self.cache = x
        return x * self.w.value * self.factor

    def backward(self, dy):
        self.w.grad[...] = (dy * self.cache * self.factor).sum(axis=0)
        return dy * self.w.value * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@register_keras_serializable(package="Test")
class Scale(_ScaleBase):
    pass


class Unregistered(_ScaleBase):
    pass


def _model(layer_cls, seed=0):
    x = Input(shape=(3,))
    model = Model(x, Dense(2, name="head")(layer_cls(3.0, name="scale")(x)))
    model.compile("sgd", "mse")
    rng = np.random.default_rng(seed)
    model.fit(rng.normal(size=(16, 3)), rng.normal(size=(16, 2)), epochs=2, batch_size=8, verbose=0)
    return model


X = np.linspace(-1, 1, 12).reshape(4, 3)


# ---------------------------------------------------------------- the registry (Keras 3's API)

def test_register_keras_serializable_as_keras_docstring_shows():
    @register_keras_serializable("my_package")
    class MyDense(Dense):
        pass
    assert get_registered_object("my_package>MyDense") is MyDense
    assert get_registered_name(MyDense) == "my_package>MyDense"
    assert get_custom_objects()["my_package>MyDense"] is MyDense

    @register_keras_serializable(package="fns", name="double_it")
    def double(x):
        return 2 * x
    assert get_registered_name(double) == "fns>double_it" and get_registered_object("fns>double_it") is double
    assert get_registered_name(Unregistered) == "Unregistered"  # Keras: the __name__ when unregistered
    assert get_registered_object("Unregistered") is None


def test_a_class_without_get_config_cannot_be_registered():
    with pytest.raises(ConfigError, match=r"Cannot register class 'Plain' as 'Custom>Plain': it has no "
                                          r"get_config\(\) method"):
        register_keras_serializable()(type("Plain", (), {}))


def test_only_distdls_own_classes_are_found_by_plain_name():
    class Net(Model):
        pass
    assert "Unregistered" not in _LAYER_CLASSES and "Scale" not in _LAYER_CLASSES and "Net" not in _LAYER_CLASSES
    assert "Net" not in _SUBCLASSES and _SUBCLASSES["Sequential"] is Sequential
    assert layer_class("Dense") is Dense and layer_class("Scale", "Test>Scale") is Scale
    with pytest.raises(ConfigError) as err:
        layer_class("Unregistered")
    assert str(err.value) == ("Unknown layer 'Unregistered': it is not built into distdl (valid names are: "
                              + ", ".join(sorted(_LAYER_CLASSES)) + "), registered with register_keras_serializable, "
                              f"or given in custom_objects: {HINT} (distdl.saving.register_keras_serializable) "
                              "or passed in custom_objects.")


# ---------------------------------------------------------------- round trips

def test_layer_config_carries_the_registered_name():
    assert serialize(Scale(name="s"))["registered_name"] == "Test>Scale"
    assert serialize(Unregistered(name="u"))["registered_name"] == "Unregistered"
    assert "registered_name" not in serialize(Dense(2))
    layer = deserialize(serialize(Scale(5.0, name="s5")))
    assert type(layer) is Scale and layer.factor == 5.0 and layer.name == "s5"


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_model_with_a_registered_custom_layer_round_trips(tmp_path, suffix):
    model = _model(Scale)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded.get_layer("scale")) is Scale and loaded.get_layer("scale").factor == 3.0
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    if suffix == ".keras":  # Keras's own layout: the user's module and registered name
        with zipfile.ZipFile(path) as zf:
            entry = next(e for e in json.loads(zf.read("config.json"))["config"]["layers"]
                         if e["config"]["name"] == "scale")
        assert (entry["class_name"], entry["registered_name"], entry["module"]) == ("Scale", "Test>Scale", __name__)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_unregistered_class_is_refused_by_name_and_loads_with_custom_objects(tmp_path, suffix):
    model = _model(Unregistered)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    text = str(err.value)
    assert "'Unregistered'" in text and HINT in text and text.count(". ") == 0
    loaded = load_model(path, custom_objects={"Unregistered": Unregistered})
    assert type(loaded.get_layer("scale")) is Unregistered
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    with custom_object_scope({"Unregistered": Unregistered}):  # the scope does what custom_objects= does
        assert type(load_model(path).get_layer("scale")) is Unregistered


def test_from_config_and_model_from_json_take_custom_objects():
    model = _model(Unregistered)
    with pytest.raises(ConfigError, match="'Unregistered'"):
        Model.from_config(model.get_config())
    again = Model.from_config(model.get_config(), custom_objects={"Unregistered": Unregistered})
    assert type(again.get_layer("scale")) is Unregistered
    seq = Sequential([Input(shape=(3,)), Unregistered(name="u")])
    assert type(Sequential.from_config(seq.get_config(), custom_objects={"Unregistered": Unregistered}).layers[0]) \
        is Unregistered
    scaled = _model(Scale)
    rebuilt = model_from_json(scaled.to_json())
    assert [type(l).__name__ for l in rebuilt.layers] == ["InputLayer", "Scale", "Dense"]
    assert type(model_from_json(model.to_json(), custom_objects={"Unregistered": Unregistered})
                .get_layer("scale")) is Unregistered


# ---------------------------------------------------------------- names that collide

def test_a_users_class_named_like_a_builtin_never_replaces_it():
    @register_keras_serializable(package="Test")
    class Dense(_ScaleBase):  # noqa: F811 - the point of the test
        pass
    assert layer_class("Dense").__module__ == "distdl.layers.core"
    assert layer_class("Dense", "Test>Dense") is Dense
    spec = serialize(Dense(name="mine"))
    assert (spec["class_name"], spec["registered_name"]) == ("Dense", "Test>Dense")
    assert type(deserialize(spec)) is Dense
    del get_custom_objects()["Test>Dense"]  # now unknown: refused, not silently the built-in Dense
    with pytest.raises(ConfigError, match=r"Unknown layer 'Test>Dense': it is not built into distdl, registered"):
        deserialize(spec)


def test_custom_objects_come_before_the_registry_and_the_builtins():
    class Other(_ScaleBase):
        pass
    spec = serialize(Scale(name="s"))
    with custom_object_scope({"Test>Scale": Other}):
        assert type(deserialize(spec)) is Other
    assert type(deserialize(spec)) is Scale  # the scope is closed
    dense = serialize(Dense(3, name="d"))
    with CustomObjectScope({"Dense": Other}):
        with custom_object_scope({}):  # scopes nest: the outer one still counts
            assert type(deserialize({**dense, "config": {"name": "d"}})) is Other
    assert type(deserialize(dense)) is Dense


# ---------------------------------------------------------------- losses, metrics, initializers by name

@register_keras_serializable(package="Test")
class HalfSquared(losses.Loss):
    """0.5 * mean((y_pred - y_true)^2) over the last axis, with its gradient."""

    def call(self, y_true, y_pred):
        return 0.5 * np.mean((y_pred - y_true) ** 2, axis=-1)

    def _grad(self, yt, yp, w):
        return (yp - yt) / yp.shape[-1] * w[..., None]


@register_keras_serializable(package="Test")
def max_abs_error(y_true, y_pred):
    return np.max(np.abs(y_pred - y_true), axis=-1)


def test_registered_loss_and_metric_by_name_in_compile(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    model = Model(inp := Input(shape=(3,)), Dense(2)(inp))
    model.compile("sgd", loss="Test>HalfSquared", metrics=["Test>max_abs_error"])
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["loss"], np.mean(0.5 * np.mean((pred - y) ** 2, axis=-1)), rtol=1e-5)
    np.testing.assert_allclose(logs["Test>max_abs_error"], np.mean(np.max(np.abs(pred - y), axis=-1)), rtol=1e-5)
    model.save(tmp_path / "m.h5")
    again = load_model(tmp_path / "m.h5")
    assert again.evaluate(x, y, batch_size=8, verbose=0, return_dict=True) == pytest.approx(logs)


def test_loss_and_metric_names_from_custom_objects_scope():
    class Twice(HalfSquared):
        pass
    with custom_object_scope({"half_squared": Twice, "mae": max_abs_error}):
        assert type(losses.get("half_squared")) is Twice
        metric = metrics.get("mae")  # custom_objects come before distdl's own name
        metric.update_state(np.zeros((2, 2)), np.array([[1.0, -3.0], [2.0, 0.0]]))
        assert metric.result() == pytest.approx(2.5)
    with pytest.raises(ConfigError, match=r"Unknown loss 'half_squared'"):
        losses.get("half_squared")
    assert type(losses.deserialize(losses.serialize(HalfSquared()))) is HalfSquared
    assert losses.serialize(HalfSquared())["registered_name"] == "Test>HalfSquared"


def test_registered_initializer_in_a_layer_config():
    @register_keras_serializable(package="Test")
    class Halves(initializers.Initializer):
        def __call__(self, shape, dtype=None, rng=None):
            return np.full(shape, 0.5, dtype=dtype or "float32")

        def get_config(self):
            return {}
    layer = Dense(2, kernel_initializer=Halves(), name="halves")
    spec = serialize(layer)
    assert spec["config"]["kernel_initializer"]["registered_name"] == "Test>Halves"
    rebuilt = deserialize(json.loads(json.dumps(spec)))
    rebuilt.ensure_built((3,))
    np.testing.assert_array_equal(rebuilt.weights[0].value, np.full((3, 2), 0.5))
    assert isinstance(initializers.get("Test>Halves"), Halves)


# ---------------------------------------------------------------- no code from a file

def test_a_lambda_function_is_never_read_from_a_file():
    code = {"class_name": "Lambda", "module": "keras.layers",
            "config": {"name": "lam", "function": {"class_name": "__lambda__", "config": {"code": "ZXZpbA=="}}}}
    with pytest.raises(CheckpointError, match="holds Lambda layer 'lam', Python code that distdl never runs"):
        refuse_code(code, "x.keras")
    named = {"class_name": "Lambda", "module": "keras.layers", "config": {"name": "lam", "function": {
        "class_name": "function", "module": "__main__", "config": "twice", "registered_name": "Test>twice"}}}
    with pytest.raises(CheckpointError, match="holds Lambda layer 'lam'"):
        refuse_code(named, "x.keras")

    def twice(x):
        return 2 * x
    register_keras_serializable(package="Test")(twice)
    refuse_code(named, "x.keras")  # the function is the user's registered one: nothing is read from the file
    del get_custom_objects()["Test>twice"]
    with custom_object_scope({"twice": twice}):  # or given by its name in custom_objects
        refuse_code({**named, "config": {**named["config"], "function": {**named["config"]["function"],
                                                                         "registered_name": None}}}, "x.keras")


def test_registry_module_is_the_one_behind_saving_and_utils():
    from distdl import saving, utils
    assert saving.register_keras_serializable is utils.register_keras_serializable is \
        registry.register_keras_serializable
