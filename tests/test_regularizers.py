"""Regularizers (penalty, gradient vs hand values and finite differences) and constraints."""
import numpy as np
import pytest

from distdl import constraints, regularizers
from distdl.errors import ConfigError

W = np.array([[1.0, -2.0], [0.0, 3.0]])


def test_penalties_by_hand():
    # sum|w| = 6, sum w^2 = 14
    assert regularizers.L1(0.1)(W) == pytest.approx(0.6)
    assert regularizers.L2(0.1)(W) == pytest.approx(1.4)
    assert regularizers.L1L2(l1=0.1, l2=0.01)(W) == pytest.approx(0.6 + 0.14)
    assert regularizers.get("l2")(W) == pytest.approx(0.14)  # Keras default 0.01
    assert regularizers.get("l1")(W) == pytest.approx(0.06)
    assert regularizers.get("l1_l2")(W) == 0.0  # Keras 3: L1L2 defaults to 0, 0
    assert isinstance(regularizers.get("l1l2"), regularizers.L1L2)  # Keras 3's own snake name


def test_gradient_by_hand_and_out():
    reg = regularizers.L1L2(l1=0.1, l2=0.5)
    expected = 0.1 * np.sign(W) + W
    np.testing.assert_allclose(reg.gradient(W), expected)
    out = np.full_like(W, 99.0)
    assert reg.gradient(W, out=out) is out
    np.testing.assert_allclose(out, expected)
    grad = np.ones_like(W)
    reg.add_gradient(W, grad)
    np.testing.assert_allclose(grad, 1.0 + expected)
    scratch = np.empty_like(W)
    reg.add_gradient(W, grad, scratch)
    np.testing.assert_allclose(grad, 1.0 + 2 * expected)
    np.testing.assert_allclose(regularizers.L2(0.5).gradient(W), W)
    np.testing.assert_allclose(regularizers.L1(0.5).gradient(W), 0.5 * np.sign(W))


@pytest.mark.parametrize("reg", [regularizers.L1(0.3), regularizers.L2(0.2),
                                 regularizers.L1L2(0.05, 0.7)])
def test_gradient_matches_finite_differences(reg):
    w = np.random.default_rng(0).normal(size=(4, 3)) + 0.1  # away from the kink at 0
    h = 1e-6
    num = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        wp, wm = w.copy(), w.copy()
        wp[i] += h
        wm[i] -= h
        num[i] = (reg(wp) - reg(wm)) / (2 * h)
    np.testing.assert_allclose(reg.gradient(w), num, rtol=1e-6, atol=1e-8)


def test_regularizer_get_and_serialize():
    assert regularizers.get(None) is None
    r = regularizers.L2(0.25)
    assert regularizers.get(r) is r
    spec = regularizers.serialize(r)
    assert spec == {"class_name": "L2", "config": {"l2": 0.25}}
    assert regularizers.get(spec)(W) == pytest.approx(0.25 * 14)
    assert regularizers.deserialize({"class_name": "L1L2", "config": {"l1": 1.0, "l2": 2.0}})(W) == 6 + 28
    with pytest.raises(ConfigError, match="l1_l2"):
        regularizers.get("l3")
    with pytest.raises(ConfigError, match="l2"):
        regularizers.L2(-1.0)


def test_max_norm_by_hand():
    w = np.array([[3.0, 0.3], [4.0, 0.4]])  # column norms 5 and 0.5
    out = constraints.MaxNorm(max_value=2.0)(w)
    np.testing.assert_allclose(out[:, 0], w[:, 0] * 2 / (5 + 1e-7))
    np.testing.assert_allclose(out[:, 1], w[:, 1] * 0.5 / (0.5 + 1e-7))
    rows = constraints.MaxNorm(max_value=1.0, axis=1)(w)  # row norms sqrt(9.09), sqrt(16.16)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), [1.0, 1.0], rtol=1e-6)


def test_non_neg_unit_norm_min_max_norm():
    np.testing.assert_array_equal(constraints.NonNeg()(W), [[1.0, 0.0], [0.0, 3.0]])
    w = np.array([[3.0, 0.3], [4.0, 0.4]])
    u = constraints.UnitNorm()(w)
    np.testing.assert_allclose(u, w / (np.array([5.0, 0.5]) + 1e-7))
    m = constraints.MinMaxNorm(min_value=1.0, max_value=2.0, rate=0.5)(w)
    # desired = 0.5 * clip(norm, 1, 2) + 0.5 * norm: 3.5 for norm 5, 0.75 for norm 0.5
    np.testing.assert_allclose(m, w * np.array([3.5 / (5 + 1e-7), 0.75 / (0.5 + 1e-7)]))


def test_constraint_keeps_float32_and_applies_in_place():
    value = np.array([[3.0, 0.0], [4.0, 1.0]], dtype=np.float32)
    view = value[:, :]
    view[...] = constraints.get("max_norm")(view)
    assert value.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(value, axis=0), [2.0, 1.0], rtol=1e-6)


def test_constraint_get_and_serialize():
    assert constraints.get(None) is None
    c = constraints.get({"class_name": "MinMaxNorm", "config": {"max_value": 3.0, "axis": [0, 1]}})
    assert constraints.serialize(c) == {"class_name": "MinMaxNorm", "config": {
        "min_value": 0.0, "max_value": 3.0, "rate": 1.0, "axis": [0, 1]}}
    assert isinstance(constraints.get("NonNeg"), constraints.NonNeg)
    assert isinstance(constraints.get("unit_norm"), constraints.UnitNorm)
    with pytest.raises(ConfigError, match="max_norm"):
        constraints.get("maxnorm")
