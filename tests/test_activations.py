"""Activations: hand values, float64 finite-difference derivatives, stability, and get()."""
import math
import warnings

import numpy as np
import pytest

from distdl import activations as A
from distdl.errors import ConfigError
from gradcheck import numeric_grad, rel_error

ALL_NAMES = ["linear", "relu", "relu6", "leaky_relu", "elu", "selu", "sigmoid", "hard_sigmoid",
             "hard_silu", "tanh", "softplus", "softsign", "silu", "gelu", "mish", "exponential",
             "softmax", "log_softmax"]


def _inputs(name, rng):
    """Random float64 inputs kept away from the kinks (0 for relu-like, +-3 for hard_*, 6)."""
    x = rng.uniform(-4.0, 4.0, size=(3, 5))
    x = np.where(np.abs(x) < 0.1, x + 0.3, x)
    x = np.where(np.abs(np.abs(x) - 3.0) < 0.1, x * 0.8, x)
    return x


@pytest.mark.parametrize("name", ALL_NAMES)
def test_backward_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    act = A.get(name)
    x = _inputs(name, rng)
    r = rng.standard_normal(x.shape)
    y = act.forward(x.copy())
    dx = act.backward(r, x if act.uses_input else None, y)

    def f():
        return float(np.sum(act.forward(x.copy()) * r))

    assert rel_error(dx, numeric_grad(f, x)) < 1e-7


@pytest.mark.parametrize("name", ALL_NAMES)
def test_in_place_forward_and_backward_match_fresh_buffers(name):
    rng = np.random.default_rng(2)
    act = A.get(name)
    x = _inputs(name, rng)
    dy = rng.standard_normal(x.shape)
    y = act.forward(x.copy())
    dx = act.backward(dy.copy(), x if act.uses_input else None, y)
    buf = x.copy()
    y2 = act.forward(buf, out=buf)
    assert y2 is buf and np.array_equal(y2, y)
    dbuf = dy.copy()
    dx2 = act.backward(dbuf, x if act.uses_input else None, y, out=dbuf)
    assert dx2 is dbuf and np.allclose(dx2, dx, rtol=1e-14, atol=1e-15)


def test_hand_values():
    x = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    assert np.allclose(A.relu(x), [0, 0, 0, 1, 3])
    assert np.allclose(A.leaky_relu(x), [-0.4, -0.1, 0, 1, 3])
    assert np.allclose(A.elu(x), [math.expm1(-2), math.expm1(-0.5), 0, 1, 3])
    scale, alpha = 1.0507009873554805, 1.6732632423543772
    assert np.allclose(A.selu(x), [scale * alpha * math.expm1(-2), scale * alpha * math.expm1(-0.5),
                                   0, scale, 3 * scale])
    assert np.allclose(A.sigmoid(x), [1 / (1 + math.exp(2)), 1 / (1 + math.exp(0.5)), 0.5,
                                      1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-3))])
    assert np.allclose(A.softplus(x), [math.log1p(math.exp(v)) for v in x])
    assert np.allclose(A.softsign(x), [-2 / 3, -1 / 3, 0, 0.5, 0.75])
    assert np.allclose(A.hard_sigmoid(x), [1 / 6, 5 / 12, 0.5, 2 / 3, 1.0])
    assert np.allclose(A.hard_silu(x), [-1 / 3, -5 / 24, 0, 2 / 3, 3.0])
    assert np.allclose(A.relu6(np.array([-1.0, 7.0, 2.0])), [0, 6, 2])
    assert np.allclose(A.silu(x), x / (1 + np.exp(-x)))
    assert np.allclose(A.mish(x), x * np.tanh(np.log1p(np.exp(x))))
    assert np.allclose(A.exponential(x), np.exp(x))
    assert A.gelu(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, abs=1e-15)
    assert A.gelu(np.array([-1.5]))[0] == pytest.approx(-1.5 * 0.5 * (1 + math.erf(-1.5 / math.sqrt(2))),
                                                        abs=1e-15)
    approx = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))
    assert A.gelu(np.array([1.0]), approximate=True)[0] == pytest.approx(approx, abs=1e-15)
    sm = A.softmax(np.array([[1.0, 2.0, 3.0]]))
    e = np.exp([1.0, 2.0, 3.0])
    assert np.allclose(sm, e / e.sum())
    assert np.allclose(A.log_softmax(np.array([[1.0, 2.0, 3.0]])), np.log(e / e.sum()))


def test_erf_matches_math_erf_to_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.46875, 4.0, -4.0, 1e-12, 30.0, 1e4]])
    ref = np.array([math.erf(v) for v in x])
    err = np.abs(A.erf(x) - ref) / np.maximum(np.abs(ref), 1e-300)
    assert err.max() < 1e-14
    assert A.erf(np.float32([0.5])).dtype == np.float32


def test_float32_stays_float32_and_no_overflow_warnings():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ALL_NAMES:
            if name == "exponential":
                continue
            act = A.get(name)
            y = act.forward(x.reshape(1, -1).copy())
            assert y.dtype == np.float32, name
            assert np.all(np.isfinite(y)), name
            dx = act.backward(np.ones_like(y), x.reshape(1, -1) if act.uses_input else None, y)
            assert dx.dtype == np.float32 and np.all(np.isfinite(dx)), name
    assert np.allclose(A.sigmoid(x), [0, 0, 0.5, 1, 1])
    assert np.allclose(A.softplus(x), [0, 0, math.log(2), 50, 1e4])
    assert np.allclose(A.softmax(x.reshape(1, -1)), [[0, 0, 0, 0, 1]])


def test_integer_input_converts_to_floatx():
    y = A.relu([1, -2])
    assert y.dtype == np.float32 and np.array_equal(y, [1.0, 0.0])


def test_get_resolves_names_functions_instances():
    assert isinstance(A.get(None), A.Linear)
    assert isinstance(A.get("swish"), A.SiLU)
    assert isinstance(A.get("hard_swish"), A.HardSiLU)
    assert isinstance(A.get(A.relu), A.ReLU)
    assert isinstance(A.get(A.swish), A.SiLU)
    inst = A.LeakyReLU(0.1)
    assert A.get(inst) is inst
    assert isinstance(A.get(A.Tanh), A.Tanh)
    assert A.serialize(A.gelu) == "gelu" and A.serialize(None) == "linear"
    assert not A.get("relu").uses_input and A.get("gelu").uses_input
    for name in ALL_NAMES:
        assert A.get(name).name == name


def test_get_rejects_unknown_and_custom_callables():
    with pytest.raises(ConfigError, match="Unknown activation 'rleu'; valid names are: .*relu"):
        A.get("rleu")
    with pytest.raises(ConfigError, match="needs a derivative"):
        A.get(lambda x: x * 2)
    with pytest.raises(ConfigError, match="negative_slope"):
        A.LeakyReLU(-1.0)


def test_softmax_over_other_axis():
    x = np.random.default_rng(3).standard_normal((4, 3))
    act = A.Softmax(axis=0)
    y = act.forward(x.copy())
    assert np.allclose(y.sum(axis=0), 1.0)
    r = np.random.default_rng(4).standard_normal(x.shape)
    dx = act.backward(r, None, y)
    assert rel_error(dx, numeric_grad(lambda: float(np.sum(act.forward(x.copy()) * r)), x)) < 1e-7
