"""models.clone_model, after keras/src/models/cloning_test.py: the same models, clone functions,
input tensors, shared layers and call functions; the clone's weights are fresh draws, and with the
original's weights copied in it computes the same outputs."""
import numpy as np
import pytest

from distdl import layers, models, utils
from distdl.errors import ConfigError
from distdl.models import clone_model


def mlp_functional(shared_layers=False):
    inputs = layers.Input(shape=(3,))
    x = layers.Dense(2)(inputs)
    if shared_layers:
        layer = layers.Dense(2, name="shared")
        x = layer(layer(x))
    return models.Model(inputs, layers.Dense(2)(x))


def cnn_functional(shared_layers=False):
    inputs = layers.Input(shape=(7, 3))
    x = layers.Conv1D(2, 2, padding="same")(inputs)
    if shared_layers:
        layer = layers.Conv1D(2, 2, padding="same", name="shared")
        x = layer(layer(x))
    return models.Model(inputs, layers.Conv1D(2, 2, padding="same")(x))


def sequential(explicit_input=True):
    model = models.Sequential()
    if explicit_input:
        model.add(layers.Input(shape=(3,)))
    model.add(layers.Dense(2))
    model.add(layers.Dense(2))
    return model


def nested_functional():
    inputs = layers.Input(shape=(4,))
    x = mlp_functional()(layers.Dense(3)(inputs))
    return models.Model(inputs, layers.Dense(2)(x))


class ExampleModel(models.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.d1 = layers.Dense(2)
        self.d2 = layers.Dense(2)

    def call(self, x):
        return self.d2(self.d1(x))


def _same_outputs(model, clone, x):
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("make, shape", [(mlp_functional, (2, 3)), (lambda: cnn_functional(True), (2, 7, 3)),
                                         (sequential, (2, 3)), (lambda: sequential(False), (2, 3)),
                                         (ExampleModel, (2, 3))])
def test_cloning_correctness(make, shape):
    utils.set_random_seed(0)
    x = np.random.default_rng(0).random(shape).astype("float32")
    model = make()
    clone = clone_model(model)
    model.predict(x, verbose=0)  # builds a model without an input shape
    clone.predict(x, verbose=0)
    assert type(clone) is type(model) and clone is not model
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    # fresh weights: the kernels are new draws, not copies
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])
    _same_outputs(model, clone, x)


@pytest.mark.parametrize("make", [mlp_functional, cnn_functional, sequential])
def test_custom_clone_function(make):
    def clone_function(layer):
        config = layer.get_config()
        config["name"] = f"{config['name']}_custom"
        return layer.__class__.from_config(config)

    model = make()
    clone = clone_model(model, clone_function=clone_function)
    pairs = [(a, b) for a, b in zip(model.layers, clone.layers) if not isinstance(a, layers.InputLayer)]
    assert pairs and all(b.name == f"{a.name}_custom" for a, b in pairs)


@pytest.mark.parametrize("make", [cnn_functional, sequential, lambda: sequential(False)])
def test_input_tensors(make):
    model = make()
    shape = (7, 3) if make is cnn_functional else (3,)
    x = np.ones((2,) + shape, "float32")
    model.predict(x, verbose=0)
    tensor = layers.Input(shape=shape)
    clone = clone_model(model, input_tensors=tensor)
    assert len(clone.inputs) == len(model.inputs) and len(clone.outputs) == len(model.outputs)
    if make is cnn_functional:
        assert clone.inputs[0] is tensor
    _same_outputs(model, clone, x)


def test_shared_layers_are_cloned_once():
    clone = clone_model(mlp_functional(shared_layers=True))
    assert len(clone.layers) == 4  # Input, Dense, shared (called twice), Dense: as in Keras
    assert [l.name for l in clone.layers].count("shared") == 1


def test_call_function_inserts_layers_and_reuses_them():
    model = mlp_functional()

    def call_function(layer, x):
        out = layer(x)
        return layers.Dropout(0.5)(out) if isinstance(layer, layers.Dense) else out

    clone = clone_model(model, clone_function=lambda layer: layer, call_function=call_function)
    assert len(model.layers) == 3 and len(clone.layers) == 5
    assert isinstance(clone.layers[2], layers.Dropout) and isinstance(clone.layers[4], layers.Dropout)
    x = np.random.default_rng(1).random((2, 3)).astype("float32")
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_recursive_clones_nested_models_with_the_clone_function():
    def clone_function(layer):
        layer = layer.__class__.from_config(layer.get_config())
        layer.flag = True
        return layer

    model = nested_functional()
    clone = clone_model(model, clone_function=clone_function, recursive=True)
    inner = clone.layers[2]
    assert isinstance(inner, models.Model) and not hasattr(inner, "flag")
    assert all(getattr(l, "flag", False) for l in inner.layers if isinstance(l, layers.Dense))
    _same_outputs(model, clone, np.random.default_rng(2).random((2, 4)).astype("float32"))
    flat = clone_model(model, clone_function=clone_function)  # not recursive: the inner model via clone_function
    assert getattr(flat.layers[2], "flag", False)


def test_a_compiled_model_gives_a_compiled_clone_with_a_new_optimizer():
    model = sequential()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    clone = clone_model(model)
    assert clone.compiled and clone.optimizer is not model.optimizer
    assert type(clone.optimizer) is type(model.optimizer)
    assert clone.optimizer.learning_rate == model.optimizer.learning_rate
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    assert set(clone.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "mae"}


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="call_function works on functional models only"):
        clone_model(sequential(), call_function=lambda layer, x: layer(x))
    with pytest.raises(ConfigError, match=r"takes an input of shape \(None, 3\), got one of \(None, 4\)"):
        clone_model(mlp_functional(), input_tensors=layers.Input((4,)))
    with pytest.raises(ConfigError, match="clone_function must be callable"):
        clone_model(sequential(), clone_function="copy")
    with pytest.raises(ConfigError, match="ExampleModel is subclassed"):
        clone_model(ExampleModel(), clone_function=lambda layer: layer)
    with pytest.raises(ConfigError, match="takes a distdl Model"):
        clone_model(layers.Dense(2))
