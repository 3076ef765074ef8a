"""Models are layers (Keras 3): nested in a Sequential, a functional or a subclassed model,
shared when called twice; operators on symbolic tensors; tuple/dict outputs; Sequential's
rebuild, pop, inputs/outputs; feature extraction from `layer.output`; `build((None, n))`."""
import numpy as np
import pytest

from distdl import utils
from distdl.layers import Add, Dense, Input, Layer, Multiply, Subtract
from distdl.models import Model, Sequential
from distdl.optimizers import SGD

from gradcheck import numeric_grad, rel_error
from mpirun import run_ranks

F = "float64"


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((7, 6))


def _inner():
    return Sequential([Input((6,), dtype=F), Dense(5, activation="tanh", dtype=F), Dense(4, dtype=F)])


def test_nested_sequential_forward_equals_the_flattened_model(x):
    utils.set_random_seed(1)
    inner = _inner()
    outer = Sequential([inner, Dense(3, dtype=F)])
    flat = Sequential([Input((6,), dtype=F), Dense(5, activation="tanh", dtype=F), Dense(4, dtype=F),
                       Dense(3, dtype=F)])
    assert len(outer.get_weights()) == 6
    flat.set_weights(outer.get_weights())
    np.testing.assert_array_equal(outer.predict(x, verbose=0), flat.predict(x, verbose=0))
    lines = []
    outer.summary(print_fn=lines.append)
    row = next(r for r in lines[0].splitlines() if r.startswith(f"{inner.name} (Sequential)"))
    assert row.split()[2:] == ["(None,", "4)", "59"]


def _loss_and_grads(model, x):
    """sum(output^2)/2 and the gradient of every trainable weight from backward."""
    out = model.executor.forward([x], training=True)[0]
    model.executor.backward([out])
    return 0.5 * float((out ** 2).sum()), [v.grad.copy() for v in model.trainable_weights]


def test_gradients_through_a_shared_nested_model_match_finite_differences(x):
    utils.set_random_seed(2)
    inner = _inner()
    a = Input((6,), dtype=F)
    b = Dense(6, activation="tanh", dtype=F)(a)  # the nested model's dx is needed here
    merged = inner(b) * inner(a) - inner(b)
    model = Model(a, Dense(2, dtype=F)(merged))
    _, grads = _loss_and_grads(model, x)
    for v, g in zip(model.trainable_weights, grads):
        num = numeric_grad(lambda: _loss_and_grads(model, x)[0], v.value)
        assert rel_error(g, num) < 1e-7, v.name


def test_shared_weights_are_updated_once_per_step(x):
    """One SGD step moves the shared weights by lr times the summed gradient of both calls."""
    utils.set_random_seed(3)
    inner = _inner()
    a = Input((6,), dtype=F)
    model = Model(a, inner(a) + inner(a))
    model.compile(SGD(0.1), "mse")
    y = np.zeros((7, 4))
    before = [w.copy() for w in model.get_weights()]
    out = model.predict(x, verbose=0)
    d = 2 * out / out.size
    model.executor.forward([x], training=True)
    model.executor.backward([d])
    want = [w - 0.1 * v.grad for w, v in zip(before, model.trainable_weights)]
    model.fit(x, y, batch_size=7, epochs=1, shuffle=False, verbose=0)
    for got, w in zip(model.get_weights(), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-14)
    # doubling the output doubles dL/dw compared with one call: the step is not taken twice
    assert np.abs(model.get_weights()[0] - before[0]).max() > 0


def test_subclassed_model_with_a_sequential_inside(x):
    utils.set_random_seed(4)

    class Net(Model):
        def __init__(self):
            super().__init__()
            self.body = Sequential([Dense(5, activation="tanh", dtype=F), Dense(4, dtype=F)])
            self.head = Dense(2, dtype=F)

        def call(self, inputs):
            return self.head(self.body(inputs))

    net = Net()
    net.build((None, 6))
    assert net.input_shapes == [(6,)] and net.body.input_shapes == [(6,)]
    flat = Sequential([Input((6,), dtype=F), Dense(5, activation="tanh", dtype=F), Dense(4, dtype=F),
                       Dense(2, dtype=F)])
    flat.set_weights(net.get_weights())
    np.testing.assert_array_equal(net(x), flat(x))


def test_operators_make_keras_merge_layers(x):
    a, b = Input((6,), dtype=F), Input((6,), dtype=F)
    c = a + b
    c += a
    d = c * b - a
    model = Model([a, b], d)
    kinds = [type(layer) for layer in model.layers[2:]]
    assert kinds == [Add, Add, Multiply, Subtract]
    y = 2 * x + 1
    np.testing.assert_allclose(model([x, y]), (x + y + x) * y - x)
    # with a constant, Keras 3 records an op: here a TensorOp node (layers/tensor_op.py)
    e = Model([a, b], (a + 1.0) / b)
    assert [type(layer).__name__ for layer in e.layers[2:]] == ["TensorOp", "TensorOp"]
    np.testing.assert_allclose(e([x, y]), (x + 1.0) / y)


class _Split(Layer):
    """Returns a tuple (first 2 features, the rest) or, with as_dict, {"head":..., "tail":...}."""

    def __init__(self, as_dict=False, **kw):
        super().__init__(**kw)
        self.as_dict = as_dict

    def compute_output_shape(self, s):
        shapes = ((2,), (s[0] - 2,))
        return dict(zip(("head", "tail"), shapes)) if self.as_dict else shapes

    def forward(self, x, training=False):
        parts = (x[:, :2], x[:, 2:])
        return dict(zip(("head", "tail"), parts)) if self.as_dict else parts

    def backward(self, dy):
        parts = (dy["head"], dy["tail"]) if self.as_dict else dy
        return np.concatenate(parts, axis=1)


@pytest.mark.parametrize("as_dict", [False, True])
def test_layers_returning_tuples_or_dicts(x, as_dict):
    utils.set_random_seed(5)
    a = Input((6,), dtype=F)
    out = _Split(as_dict=as_dict, dtype=F)(Dense(6, dtype=F)(a))
    head, tail = (out["head"], out["tail"]) if as_dict else out
    assert isinstance(out, dict if as_dict else tuple)
    model = Model(a, Dense(1, dtype=F)(Dense(2, dtype=F)(tail) * head))
    _, grads = _loss_and_grads(model, x)
    for v, g in zip(model.trainable_weights, grads):
        num = numeric_grad(lambda: _loss_and_grads(model, x)[0], v.value)
        assert rel_error(g, num) < 1e-7, v.name


def test_sequential_add_after_summary_pop_inputs_outputs_and_build_with_batch_axis(x):
    utils.set_random_seed(6)
    model = Sequential([Dense(5, dtype=F, name="first")])
    model.build((None, 6))  # Keras 3's batch-inclusive shape
    assert model.input_shapes == [(6,)]
    model.summary(print_fn=lambda s: None)
    kernel = model.get_layer("first").get_weights()[0].copy()
    model.add(Dense(3, dtype=F, name="second"))  # rebuilds, keeps the weights
    assert model.output_shapes == [(3,)] and model.count_params() == 35 + 18
    np.testing.assert_array_equal(model.get_layer("first").get_weights()[0], kernel)
    assert model.predict(x, verbose=0).shape == (7, 3)
    assert [t.shape for t in model.inputs] == [(6,)] and [t.shape for t in model.outputs] == [(3,)]
    features = Model(inputs=model.inputs, outputs=model.get_layer("first").output)
    np.testing.assert_allclose(features(x), x @ kernel + model.get_layer("first").get_weights()[1])
    assert model.pop().name == "second" and model.output_shapes == [(5,)]
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((7, 5)), epochs=1, verbose=0)


def test_freezing_a_nested_model(x):
    utils.set_random_seed(8)
    inner = _inner()
    outer = Sequential([inner, Dense(3, dtype=F)])
    outer.compile(SGD(0.1), "mse")
    inner.trainable = False
    outer.compile(SGD(0.1), "mse")
    frozen = [w.copy() for w in inner.get_weights()]
    assert len(outer.trainable_weights) == 2 and outer.params.size == 15
    outer.fit(x, np.ones((7, 3)), epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, inner.get_weights()))


@pytest.mark.mpi
def test_nested_models_train_alike_on_two_ranks_and_one_process(tmp_path):
    runs = run_ranks("nested_fit.py", tmp_path, ranks=(1, 2))
    for key in ("params", "seq"):
        for r in runs[2]:
            np.testing.assert_allclose(r[key], runs[1][0][key], rtol=1e-12, atol=1e-13)
        assert np.array_equal(runs[2][0][key], runs[2][1][key])


def test_weights_file_has_keras_nested_layout(tmp_path, x):
    """The datasets Keras 3.15 (jax) writes for this model, listed from its file: the nested
    Sequential's layers sit below layers/sequential/layers/, numbered within it."""
    import h5py
    from distdl.layers import base
    base.reset_names()
    inner = Sequential([Input((6,), dtype=F), Dense(3, dtype=F), Dense(3, dtype=F)])
    a = Input((6,), dtype=F)
    model = Model(a, Dense(2, dtype=F)(inner(a) + inner(a)))
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5") as f:
        datasets = []
        f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert "layers/sequential/vars" in f
    assert sorted(datasets) == ["layers/dense/vars/0", "layers/dense/vars/1",
                                "layers/sequential/layers/dense/vars/0", "layers/sequential/layers/dense/vars/1",
                                "layers/sequential/layers/dense_1/vars/0", "layers/sequential/layers/dense_1/vars/1"]
    utils.set_random_seed(99)
    inner2 = Sequential([Input((6,), dtype=F), Dense(3, dtype=F), Dense(3, dtype=F)])
    b = Input((6,), dtype=F)
    other = Model(b, Dense(2, dtype=F)(inner2(b) + inner2(b)))
    other.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(other(x), model(x))


def test_nested_models_save_and_load_whole(tmp_path, x):
    """model.save / load_model rebuild the nesting (the shared Sequential called twice)."""
    from distdl.models import load_model
    utils.set_random_seed(10)
    inner = _inner()
    a = Input((6,), dtype=F)
    model = Model(a, Dense(2, dtype=F)(inner(a) - inner(a) * inner(a)))
    model.compile("adam", "mse")
    model.fit(x, np.ones((7, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    back = load_model(tmp_path / "m.h5")
    assert [type(layer).__name__ for layer in back.layers][1] == "Sequential"
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_array_equal(back.optimizer.get_state()["momentum"], model.optimizer.get_state()["momentum"])


def test_dropout_inside_a_nested_model_draws_its_own_stream():
    """The nested Dropout's stream differs from the outer one's (same index 0 in each model):
    two independent masks of rate 0.5 keep about a quarter of the units, one shared mask half."""
    from distdl.layers import Dropout
    inner = Sequential([Input((4000,)), Dropout(0.5)])
    model = Sequential([Input((4000,)), Dropout(0.5), inner])
    model.compile("sgd", "mse")
    out = model.executor.forward([np.ones((2, 4000), dtype="float32")], training=True)[0]
    assert 0.22 < np.mean(out != 0) < 0.28
