"""Initializers: shapes, dtypes, statistics against Keras's formulas, fans, seeds, `get`."""
import math

import numpy as np
import pytest

from distdl import initializers
from distdl.errors import ConfigError, ShapeError


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("shape,fans", [
    ((), (1, 1)), ((7,), (7, 7)), ((3, 5), (3, 5)),
    ((3, 3, 4, 8), (36, 72)), ((5, 2, 6), (10, 30)), ((2, 3, 3, 4, 5), (72, 90)),
])
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans


def test_explicit_fan_axes():
    assert initializers.compute_fans((2, 3, 4, 5), input_axes=[0, 1], output_axes=[2, 3]) == (6, 20)
    w = initializers.HeUniform(input_axes=[0, 1], output_axes=[2])((10, 30, 7), rng=rng())
    limit = math.sqrt(6 / 300)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    # the config Keras 3 writes for glorot_uniform loads back
    keras_cfg = {"module": "keras.initializers", "class_name": "GlorotUniform",
                 "config": {"seed": None, "input_axes": None, "output_axes": None}, "registered_name": None}
    assert isinstance(initializers.get(keras_cfg), initializers.GlorotUniform)


@pytest.mark.parametrize("name,limit", [
    ("glorot_uniform", math.sqrt(6 / (200 + 300))),
    ("he_uniform", math.sqrt(6 / 200)),
    ("lecun_uniform", math.sqrt(3 / 200)),
])
def test_uniform_variance_scaling_bounds_and_std(name, limit):
    w = initializers.get(name)((200, 300), rng=rng())
    assert w.shape == (200, 300) and w.dtype == np.float32
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit  # fills the whole interval
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert abs(w.mean()) < 0.01 * limit


@pytest.mark.parametrize("name,std", [
    ("glorot_normal", math.sqrt(2 / (200 + 300))),
    ("he_normal", math.sqrt(2 / 200)),
    ("lecun_normal", math.sqrt(1 / 200)),
])
def test_truncated_variance_scaling_std(name, std):
    w = initializers.get(name)((200, 300), rng=rng())
    # Keras divides by .8796 so that truncation at 2 sigma keeps the wanted std
    assert w.std() == pytest.approx(std, rel=0.02)
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 * (1 + 1e-6)


def test_conv_kernel_uses_receptive_field_fans():
    w = initializers.GlorotUniform()((3, 3, 16, 32), rng=rng())
    limit = math.sqrt(6 / (9 * 16 + 9 * 32))
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit


def test_variance_scaling_modes_and_untruncated_normal():
    w = initializers.VarianceScaling(4.0, "fan_out", "untruncated_normal")((100, 400), rng=rng())
    assert w.std() == pytest.approx(math.sqrt(4 / 400), rel=0.02)
    assert np.abs(w).max() > 2 * math.sqrt(4 / 400)  # not truncated
    with pytest.raises(ConfigError, match="fan_avg"):
        initializers.VarianceScaling(mode="fan_bad")
    with pytest.raises(ConfigError, match="uniform"):
        initializers.VarianceScaling(distribution="cauchy")


def test_random_and_truncated_normal_and_uniform():
    w = initializers.RandomNormal(mean=1.0, stddev=0.5)((100000,), rng=rng())
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.std() == pytest.approx(0.5, rel=0.02)
    t = initializers.TruncatedNormal(mean=1.0, stddev=0.5)((100000,), rng=rng())
    assert t.min() >= 0.0 and t.max() <= 2.0
    # std of a normal truncated at +-2 sigma is 0.8796 sigma
    assert t.std() == pytest.approx(0.5 * 0.87962566103423978, rel=0.02)
    u = initializers.get("random_uniform")((100000,), rng=rng())
    assert u.min() >= -0.05 and u.max() < 0.05 and u.std() == pytest.approx(0.1 / math.sqrt(12), rel=0.02)


def test_constants_and_identity():
    assert np.array_equal(initializers.get("zeros")((2, 3)), np.zeros((2, 3)))
    assert np.array_equal(initializers.get("Ones")((4,), dtype="float64"), np.ones(4))
    assert initializers.get("ones")((4,), dtype="float64").dtype == np.float64
    c = initializers.Constant(2.5)((2, 2))
    assert np.all(c == 2.5) and c.dtype == np.float32
    assert np.array_equal(initializers.Identity(gain=3.0)((2, 3)), [[3, 0, 0], [0, 3, 0]])
    with pytest.raises(ShapeError, match=r"\(2, 2, 2\)"):
        initializers.get("identity")((2, 2, 2))


@pytest.mark.parametrize("shape", [(6, 6), (10, 4), (4, 10), (3, 3, 2, 5)])
def test_orthogonal(shape):
    w = initializers.Orthogonal(gain=2.0)(shape, dtype="float64", rng=rng())
    assert w.shape == shape
    flat = w.reshape(-1, shape[-1])
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-12)
    with pytest.raises(ShapeError):
        initializers.Orthogonal()((5,))


def test_seed_is_deterministic_and_rng_is_used_otherwise():
    a = initializers.GlorotUniform(seed=3)((4, 5), rng=rng(0))
    b = initializers.GlorotUniform(seed=3)((4, 5), rng=rng(99))
    assert np.array_equal(a, b)
    c = initializers.GlorotUniform()((4, 5), rng=rng(7))
    d = initializers.GlorotUniform()((4, 5), rng=rng(7))
    e = initializers.GlorotUniform()((4, 5), rng=rng(8))
    assert np.array_equal(c, d) and not np.array_equal(c, e)


def test_float64_draws_match_float32_draws():
    a = initializers.HeNormal()((5, 5), dtype="float64", rng=rng(1))
    b = initializers.HeNormal()((5, 5), dtype="float32", rng=rng(1))
    assert a.dtype == np.float64 and np.array_equal(a.astype(np.float32), b)


def test_get_forms_and_serialize_round_trip():
    inst = initializers.RandomNormal(stddev=0.3, seed=5)
    assert initializers.get(inst) is inst
    spec = initializers.serialize(inst)
    assert spec == {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.3, "seed": 5}}
    again = initializers.get(spec)
    assert np.array_equal(again((3, 3)), inst((3, 3)))
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)
    assert isinstance(initializers.get("glorot_uniform"), initializers.GlorotUniform)
    assert isinstance(initializers.get(initializers.HeNormal), initializers.HeNormal)
    assert initializers.get(None) is None


def test_get_wraps_keras_style_user_function():
    def my_init(shape, dtype=None):
        return np.full(shape, 7.0, dtype=dtype)
    init = initializers.get(my_init)
    assert np.all(init((2, 2), dtype="float32", rng=rng()) == 7.0)


def test_get_unknown_lists_valid_names():
    with pytest.raises(ConfigError, match="glorot_uniform.*he_normal|he_normal"):
        initializers.get("glorot_uniformm")
    with pytest.raises(ConfigError):
        initializers.get(42)
