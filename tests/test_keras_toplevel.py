"""`import distdl as keras` gives Keras 3's top level (keras/api/__init__.py): the modules, the
classes, and the helpers a Keras program reaches through them, each the distdl object of that name."""
import importlib
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import distdl as keras

MODULES = ["layers", "models", "optimizers", "losses", "metrics", "callbacks", "utils", "saving",
           "initializers", "regularizers", "constraints", "activations", "backend", "datasets"]


@pytest.mark.parametrize("name", MODULES)
def test_keras_modules_are_distdls(name):
    assert getattr(keras, name) is importlib.import_module(f"distdl.{name}")
    assert name in keras.__all__ and name in dir(keras)


def test_keras_classes_are_distdls():
    from distdl import arena, layers, losses, metrics, models, optimizers
    from distdl.layers.base import SymbolicTensor
    assert keras.Sequential is models.Sequential and keras.Model is models.Model
    assert keras.Input is layers.Input and keras.Layer is layers.Layer
    assert keras.Loss is losses.Loss and keras.Metric is metrics.Metric and keras.Optimizer is optimizers.Optimizer
    assert keras.Variable is arena.Variable and keras.KerasTensor is SymbolicTensor
    assert isinstance(keras.Input(shape=(3,)), keras.KerasTensor)


def test_keras_ops_and_random_resolve_to_distdl_modules():
    assert keras.ops is importlib.import_module("distdl.ops") and "ops" in keras.__all__
    assert keras.random is importlib.import_module("distdl.random") and "random" in keras.__all__


def test_keras_utils_and_saving_helpers():
    assert keras.utils.to_categorical([0, 2], num_classes=3).tolist() == [[1, 0, 0], [0, 0, 1]]
    keras.utils.set_random_seed(7)
    a = keras.initializers.get("glorot_uniform")((3, 2))
    keras.utils.set_random_seed(7)
    np.testing.assert_array_equal(keras.initializers.get("glorot_uniform")((3, 2)), a)
    # Keras 3 exports the custom-object API from both keras.saving and keras.utils
    for name in ("register_keras_serializable", "get_registered_name", "get_registered_object",
                 "get_custom_objects", "custom_object_scope", "CustomObjectScope"):
        assert getattr(keras.saving, name) is getattr(keras.utils, name)
    assert keras.models.load_model and keras.models.model_from_json


def test_keras_layers_functional_helpers():
    for name in ("add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"):
        assert callable(getattr(keras.layers, name))
    x = keras.Input(shape=(4,))
    y = keras.layers.Dense(1)(keras.layers.concatenate([keras.layers.Dense(2)(x), keras.layers.Dense(3)(x)]))
    assert keras.Model(x, y).predict(np.ones((2, 4), "float32"), verbose=0).shape == (2, 1)


def test_a_keras_program_with_only_the_import_changed():
    """The Keras 3 "getting started" pattern, `import keras` replaced by `import distdl as keras`."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    h = keras.layers.add([h, keras.layers.Dense(16, activation="relu")(inputs)])
    outputs = keras.layers.Dense(2, activation="softmax")(h)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    x = np.random.default_rng(0).normal(size=(128, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0, callbacks=[keras.callbacks.History()])
    assert history.history["sparse_categorical_accuracy"][-1] > 0.95


def test_import_stays_lazy():
    code = "import sys, distdl as keras; print('numpy' in sys.modules, 'distdl.layers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
