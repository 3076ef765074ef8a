"""Keras 3's functional merge helpers (`layers.add`, `concatenate`, `dot`, ...): each builds its merge
layer and calls it, on symbolic tensors (a functional model that trains and saves) and on arrays.

The values and shapes follow Keras 3's keras/src/layers/merging/merging_test.py
(`test_correctness_static`: inputs of shape (2, 4, 5) against NumPy's op, expected shapes (2, 4, 5),
(2, 4, 10) for concatenate, (2, 1) for dot on (2, 4), (2, 4, 4) for dot on (2, 4, 5); and
`test_dot_higher_dim`: Dot(axes=(-2, -1)) of (1, 3, 2) and (1, 1, 2, 3) gives (1, 2, 1, 2)).
"""
import numpy as np
import pytest

from distdl import layers
from distdl.errors import ShapeError
from distdl.layers import Input
from distdl.models import Model, load_model
from gradcheck import numeric_grad, rel_error


def np_dot(a, b, axes):
    """Keras's merging_test reference: a per-sample tensordot over full-tensor axes."""
    axes = (axes, axes) if isinstance(axes, int) else axes
    axes = [axis if axis < 0 else axis - 1 for axis in axes]
    res = np.stack([np.tensordot(a[i], b[i], axes) for i in range(a.shape[0])])
    return res[:, None] if res.ndim == 1 else res


CASES = [  # helper, kwargs, NumPy reference, input shape, expected output shape
    (layers.add, {}, np.add, (2, 4, 5), (2, 4, 5)),
    (layers.subtract, {}, np.subtract, (2, 4, 5), (2, 4, 5)),
    (layers.minimum, {}, np.minimum, (2, 4, 5), (2, 4, 5)),
    (layers.maximum, {}, np.maximum, (2, 4, 5), (2, 4, 5)),
    (layers.multiply, {}, np.multiply, (2, 4, 5), (2, 4, 5)),
    (layers.average, {}, lambda a, b: (a + b) * 0.5, (2, 4, 5), (2, 4, 5)),
    (layers.concatenate, {"axis": -1}, lambda a, b, axis: np.concatenate((a, b), axis=axis), (2, 4, 5), (2, 4, 10)),
    (layers.dot, {"axes": -1}, np_dot, (2, 4), (2, 1)),
    (layers.dot, {"axes": -1}, np_dot, (2, 4, 5), (2, 4, 4)),
]


@pytest.mark.parametrize("helper, kwargs, np_op, shape, out_shape", CASES,
                         ids=[f"{c[0].__name__}-{len(c[3])}d" for c in CASES])
def test_symbolic_and_eager_match_numpy(helper, kwargs, np_op, shape, out_shape):
    rng = np.random.default_rng(0)
    x1, x2 = rng.random(shape), rng.random(shape)
    expected = np_op(x1, x2, **kwargs)
    a, b = Input(shape=shape[1:], dtype="float64"), Input(shape=shape[1:], dtype="float64")
    out = helper([a, b], dtype="float64", **kwargs)
    assert (None, *out.shape) == (None, *out_shape[1:])
    model = Model([a, b], out)
    np.testing.assert_allclose(model.predict([x1, x2], verbose=0), expected, atol=1e-12)
    eager = helper([x1, x2], dtype="float64", **kwargs)  # arrays: an eager forward of a new layer
    assert eager.shape == out_shape
    np.testing.assert_allclose(eager, expected, atol=1e-12)


def test_helpers_make_the_layer_class_and_pass_its_arguments():
    a, b = Input(shape=(3, 4)), Input(shape=(3, 4))
    for helper, cls in [(layers.add, layers.Add), (layers.subtract, layers.Subtract),
                        (layers.multiply, layers.Multiply), (layers.average, layers.Average),
                        (layers.maximum, layers.Maximum), (layers.minimum, layers.Minimum)]:
        t = helper([a, b], name=f"my_{cls.__name__.lower()}")
        assert type(t.layer) is cls and t.layer.name == f"my_{cls.__name__.lower()}"
    c = layers.concatenate([a, b], axis=1)
    assert c.layer.axis == 1 and c.shape == (6, 4)
    d = layers.dot([a, b], axes=(2, 2), normalize=True)
    assert d.layer.axes == (2, 2) and d.layer.normalize and d.shape == (3, 3)


def test_dot_higher_dim():
    a, b = Input(shape=(3, 2)), Input(shape=(1, 2, 3))
    assert layers.dot([a, b], axes=(-2, -1)).shape == (2, 1, 2)
    rng = np.random.default_rng(0)
    assert layers.dot([rng.random((1, 3, 2)), rng.random((1, 1, 2, 3))], axes=(-2, -1)).shape == (1, 2, 1, 2)


def test_a_helper_model_trains_with_exact_gradients():
    """A two-branch model joined by helpers: backward through the graph matches central
    differences (float64) for every weight."""
    rng = np.random.default_rng(3)
    x = Input(shape=(4,), dtype="float64")
    h1 = layers.Dense(3, activation="tanh", dtype="float64")(x)
    h2 = layers.Dense(3, activation="tanh", dtype="float64")(x)
    joined = layers.concatenate([layers.add([h1, h2], dtype="float64"), layers.multiply([h1, h2], dtype="float64"),
                                 layers.maximum([h1, h2], dtype="float64")], dtype="float64")
    out = layers.dot([joined, layers.Dense(9, dtype="float64")(x)], axes=1, normalize=True, dtype="float64")
    model = Model(x, out)
    model.compile("sgd", "mse")
    xs, ys = rng.normal(size=(5, 4)), rng.normal(size=(5, 1))
    model.fit(xs, ys, epochs=1, batch_size=5, verbose=0, shuffle=False)  # builds the arenas

    def loss():
        return float(np.mean((model.predict(xs, verbose=0) - ys) ** 2))
    for layer in model.layers:
        for v in layer.trainable_weights:
            num = numeric_grad(loss, v.value)
            ana = _analytic_grad(model, xs, ys, v)
            assert rel_error(num, ana) < 1e-6, v.name


def _analytic_grad(model, xs, ys, var):
    """dL/dvar for the mean squared error through the model's own backward."""
    y = model.executor.forward([xs], training=True)
    y = y[0] if isinstance(y, list) else y
    model.grads[...] = 0
    model.executor.backward([2.0 * (y - ys) / y.size])
    return var.grad.copy()


def test_a_helper_model_saves_and_loads(tmp_path):
    a, b = Input(shape=(4,)), Input(shape=(4,))
    out = layers.Dense(2)(layers.concatenate([layers.subtract([a, b]), layers.average([a, b])]))
    model = Model([a, b], out)
    x = [np.ones((2, 4), "float32"), np.arange(8, dtype="float32").reshape(2, 4)]
    for name in ("m.h5", "m.keras"):
        model.save(tmp_path / name)
        np.testing.assert_allclose(load_model(tmp_path / name).predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_inputs_name_the_layer_and_shapes():
    with pytest.raises(ShapeError, match=r"Add layer 'bad_add' needs inputs of the same shape, got \(None, 3\), "
                                         r"\(None, 4\)"):
        layers.add([Input(shape=(3,)), Input(shape=(4,))], name="bad_add")
    with pytest.raises(ShapeError, match=r"Subtract layer 'sub3' needs exactly 2 inputs, got 3"):
        layers.subtract([Input(shape=(3,))] * 3, name="sub3")
