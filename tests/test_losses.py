"""Losses: hand-computed values, reductions, finite-difference gradients, fused gradients, target checks."""
import math

import numpy as np
import pytest

from distdl import losses as L
from distdl.activations import sigmoid, softmax
from distdl.errors import ConfigError, DataError, ShapeError
from gradcheck import numeric_grad, rel_error

RNG = np.random.default_rng(0)


def _probs(shape, rng=RNG):
    return softmax(rng.standard_normal(shape))


def _case(name):
    """(loss, y_true, y_pred) in float64 with predictions away from clips and kinks."""
    rng = np.random.default_rng(sum(map(ord, name)))
    reg_t = rng.uniform(0.2, 2.0, (4, 3))
    reg_p = reg_t + rng.choice([-1, 1], (4, 3)) * rng.uniform(0.1, 1.5, (4, 3))
    onehot = np.eye(3)[[0, 2, 1, 2]]
    cases = {
        "mse": (L.MeanSquaredError(), reg_t, reg_p),
        "mae": (L.MeanAbsoluteError(), reg_t, reg_p),
        "mape": (L.MeanAbsolutePercentageError(), reg_t, reg_p),
        "msle": (L.MeanSquaredLogarithmicError(), reg_t, np.abs(reg_p) + 0.1),
        "huber": (L.Huber(delta=0.7), reg_t, reg_p),
        "log_cosh": (L.LogCosh(), reg_t, reg_p),
        "poisson": (L.Poisson(), reg_t, np.abs(reg_p) + 0.1),
        "kld": (L.KLDivergence(), _probs((4, 3), rng), _probs((4, 3), rng)),
        "hinge": (L.Hinge(), rng.integers(0, 2, (4, 3)).astype(float), rng.uniform(-0.9, 0.9, (4, 3))),
        "sq_hinge": (L.SquaredHinge(), rng.choice([-1.0, 1.0], (4, 3)), rng.uniform(-2, 2, (4, 3))),
        "bce": (L.BinaryCrossentropy(label_smoothing=0.1), rng.integers(0, 2, (4, 3)).astype(float),
                rng.uniform(0.05, 0.95, (4, 3))),
        "bce_logits": (L.BinaryCrossentropy(from_logits=True), rng.uniform(0, 1, (4, 3)),
                       rng.standard_normal((4, 3)) * 3),
        "cce": (L.CategoricalCrossentropy(label_smoothing=0.2), onehot, rng.uniform(0.1, 2.0, (4, 3))),
        "cce_logits": (L.CategoricalCrossentropy(from_logits=True), onehot, rng.standard_normal((4, 3))),
        "scce": (L.SparseCategoricalCrossentropy(), np.array([0, 2, 1, 2]), rng.uniform(0.1, 2.0, (4, 3))),
        "scce_logits": (L.SparseCategoricalCrossentropy(from_logits=True), np.array([[0], [2], [1], [2]]),
                        rng.standard_normal((4, 3))),
        "scce_ignore": (L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1),
                        np.array([0, -1, 1, 2]), rng.standard_normal((4, 3))),
    }
    return cases[name]


CASES = ["mse", "mae", "mape", "msle", "huber", "log_cosh", "poisson", "kld", "hinge", "sq_hinge",
         "bce", "bce_logits", "cce", "cce_logits", "scce", "scce_logits", "scce_ignore"]


@pytest.mark.parametrize("name", CASES)
def test_gradient_matches_finite_differences(name):
    loss, yt, yp = _case(name)
    w = np.random.default_rng(5).uniform(0.1, 1.0, yp.shape[:-1])
    g = loss.gradient(yt, yp, w)
    assert g.shape == yp.shape and g.dtype == np.float64
    num = numeric_grad(lambda: float(np.sum(loss.call(yt, yp) * w)), yp)
    assert rel_error(g, num) < 1e-7


@pytest.mark.parametrize("name, act", [("bce", sigmoid), ("cce", softmax), ("scce", softmax),
                                       ("scce_ignore_probs", softmax)])
def test_gradient_logits_matches_finite_differences_through_activation(name, act):
    if name == "scce_ignore_probs":
        loss, yt = L.SparseCategoricalCrossentropy(ignore_class=9), np.array([0, 9, 1, 2])
    else:
        loss, yt, _ = _case(name)
    z = np.random.default_rng(6).standard_normal((4, 3))
    w = np.random.default_rng(7).uniform(0.1, 1.0, 4)
    assert loss.fused_activation == act.__name__
    g = loss.gradient_logits(yt, act(z), w)
    num = numeric_grad(lambda: float(np.sum(loss.call(yt, act(z)) * w)), z)
    assert rel_error(g, num) < 1e-7


def test_regression_values_by_hand():
    yt = np.array([[1.0, 2.0], [0.0, -1.0]])
    yp = np.array([[1.5, 0.0], [0.0, 1.0]])
    assert np.allclose(L.mse(yt, yp), [(0.25 + 4) / 2, 4 / 2])
    assert np.allclose(L.mae(yt, yp), [(0.5 + 2) / 2, 2 / 2])
    assert np.allclose(L.huber(yt, yp), [(0.125 + (2 - 0.5)) / 2, (0 + 1.5) / 2])
    assert np.allclose(L.mape(yt, yp), [100 * (0.5 + 1.0) / 2, 100 * (0 / 1e-7 + 2.0) / 2])
    assert np.allclose(L.log_cosh(yt, yp), [(math.log(math.cosh(0.5)) + math.log(math.cosh(2))) / 2,
                                            math.log(math.cosh(2)) / 2])
    msle0 = ((math.log(2.5) - math.log(2)) ** 2 + (math.log(1 + 1e-7) - math.log(3)) ** 2) / 2
    assert L.msle(yt, yp)[0] == pytest.approx(msle0)
    assert L.poisson([[2.0]], [[0.5]])[0] == pytest.approx(0.5 - 2 * math.log(0.5 + 1e-7))
    assert L.kld([[0.5, 0.5]], [[0.25, 0.75]])[0] == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    # 0/1 labels become -1/+1 for hinge: max(1 - (-1)(0.3), 0) = 1.3 and max(1 - 0.4, 0) = 0.6
    assert np.allclose(L.hinge([[0.0, 1.0]], [[0.3, 0.4]]), [(1.3 + 0.6) / 2])
    assert np.allclose(L.squared_hinge([[-1.0, 1.0]], [[0.3, 2.0]]), [1.69 / 2])


def test_crossentropy_values_clipping_and_smoothing_by_hand():
    # Keras docs: categorical [0.0513, 2.303] on these inputs; the 0 gets clipped to 1e-7.
    yt, yp = [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    assert np.allclose(L.categorical_crossentropy(yt, yp), [-math.log(0.95), -math.log(0.1)])
    assert L.categorical_crossentropy([[1, 0]], [[0.0, 1.0]])[0] == pytest.approx(-math.log(1e-7))
    # renormalisation: p = [1, 3] -> [0.25, 0.75]
    assert L.categorical_crossentropy([[0, 1]], [[1.0, 3.0]])[0] == pytest.approx(-math.log(0.75))
    sm = L.categorical_crossentropy([[0, 1]], [[0.25, 0.75]], label_smoothing=0.2)[0]
    assert sm == pytest.approx(-(0.1 * math.log(0.25) + 0.9 * math.log(0.75)))
    z = np.array([[1.0, 2.0, 0.5]])
    lse = math.log(sum(math.exp(v) for v in z[0]))
    assert L.categorical_crossentropy([[0, 0, 1]], z, from_logits=True)[0] == pytest.approx(lse - 0.5)
    assert L.sparse_categorical_crossentropy([[2]], z, from_logits=True)[0] == pytest.approx(lse - 0.5)
    assert np.allclose(L.sparse_categorical_crossentropy([1, 2], yp), [-math.log(0.95), -math.log(0.1)])
    # binary: Keras docs [0.916, 0.714]; clipping of exact 0 / 1 predictions
    b = L.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    assert np.allclose(b, [-(math.log(0.4) + math.log(0.4)) / 2, -(math.log(0.6) + math.log(0.4)) / 2])
    assert L.binary_crossentropy([[1.0]], [[0.0]])[0] == pytest.approx(-math.log(1e-7))
    assert L.binary_crossentropy([[1.0]], [[0.8]], label_smoothing=0.2)[0] == pytest.approx(
        -(0.9 * math.log(0.8) + 0.1 * math.log(0.2)))
    zb = np.array([[2.0, -1000.0]])
    expect = (-(math.log(1 / (1 + math.exp(-2)))) + 0.0) / 2  # y = [1, 0]: second term is 0 exactly
    assert L.binary_crossentropy([[1.0, 0.0]], zb, from_logits=True)[0] == pytest.approx(expect)


def test_clipped_probabilities_have_zero_gradient():
    g = L.BinaryCrossentropy().gradient([[1.0, 0.0]], [[0.0, 0.5]], [1.0])
    assert g[0, 0] == 0.0 and g[0, 1] == pytest.approx(1 / 0.5 / 2)
    g = L.CategoricalCrossentropy().gradient([[1.0, 0.0]], [[1e-9, 1.0]], [1.0])
    assert np.allclose(g, 0.0, atol=1e-6)


def test_reductions_and_sample_weight():
    yt, yp = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[1.0], [1.0], [0.0], [3.0]])
    per = np.array([1.0, 0.0, 4.0, 0.0])
    sw = np.array([0.5, 2.0, 1.5, 1.0])
    assert L.MeanSquaredError()(yt, yp) == pytest.approx(per.mean())
    assert L.MeanSquaredError(reduction="sum")(yt, yp) == pytest.approx(per.sum())
    assert np.allclose(L.MeanSquaredError(reduction="none")(yt, yp), per)
    assert np.allclose(L.MeanSquaredError(reduction=None)(yt, yp, sample_weight=sw), per * sw)
    assert L.MeanSquaredError()(yt, yp, sample_weight=sw) == pytest.approx((per * sw).sum() / 4)
    assert L.MeanSquaredError()(yt, yp, sample_weight=sw[:, None]) == pytest.approx((per * sw).sum() / 4)
    assert L.MeanSquaredError(reduction="mean_with_sample_weight")(yt, yp, sample_weight=sw) == \
        pytest.approx((per * sw).sum() / sw.sum())
    # y_true (N,) against y_pred (N, 1), as Keras squeezes/expands
    assert L.MeanSquaredError()(yt[:, 0], yp) == pytest.approx(per.mean())
    with pytest.raises(ShapeError, match="sample_weight of shape \\(3,\\)"):
        L.MeanSquaredError()(yt, yp, sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="reduction"):
        L.MeanSquaredError(reduction="avg")


def test_ignore_class_divides_by_valid_count():
    z = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]]))
    loss = L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    per = loss.call([0, 255, 2], z)
    assert np.allclose(per, [-math.log(0.5), 0.0, -math.log(0.8)])
    assert loss([0, 255, 2], z) == pytest.approx((-math.log(0.5) - math.log(0.8)) / 2)
    assert np.array_equal(loss.valid_mask([0, 255, 2]), [True, False, True])
    # mean_with_sample_weight: the mask is the weight, so the divisor is the valid count too
    weighted = L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255,
                                               reduction="mean_with_sample_weight")
    assert weighted([0, 255, 2], z) == pytest.approx((-math.log(0.5) - math.log(0.8)) / 2)
    assert weighted([0, 255, 2], z, sample_weight=[2.0, 5.0, 1.0]) == \
        pytest.approx((-2 * math.log(0.5) - math.log(0.8)) / 3)


def test_float32_in_float32_out():
    yt = np.array([[0, 1]], np.float32)
    yp = np.array([[0.3, 0.7]], np.float32)
    for loss in (L.MeanSquaredError(), L.CategoricalCrossentropy(), L.BinaryCrossentropy()):
        assert loss.call(yt, yp).dtype == np.float32
        assert isinstance(loss(yt, yp), np.float32)
        assert loss.gradient(yt, yp, np.ones(1, np.float32)).dtype == np.float32
    assert L.SparseCategoricalCrossentropy().call([1], yp).dtype == np.float32


def test_check_targets_messages():
    scce = L.SparseCategoricalCrossentropy()
    scce.check_targets(np.array([0, 9, 3]), (None, 10))
    with pytest.raises(DataError, match=r"Label 12 at row 2 is outside \[0, 10\)"):
        scce.check_targets(np.array([0, 3, 12, -1]), (10,))
    with pytest.raises(DataError, match=r"Label -1 at row 1"):
        scce.check_targets(np.array([[0], [-1]]), (10,))
    L.SparseCategoricalCrossentropy(ignore_class=-1).check_targets(np.array([0, -1]), (10,))
    with pytest.raises(DataError, match="must be integer class labels; row 1 holds 1.5"):
        scce.check_targets(np.array([0.0, 1.5]), (10,))
    with pytest.raises(DataError, match="one-hot targets need categorical_crossentropy"):
        scce.check_targets(np.eye(10)[[1, 2]], (10,))
    with pytest.raises(DataError, match="have width 3 but the model output has width 10"):
        L.CategoricalCrossentropy().check_targets(np.eye(3), (None, 10))
    L.CategoricalCrossentropy().check_targets(np.eye(10), (10,))
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]; row 1 holds 2.0"):
        L.BinaryCrossentropy().check_targets(np.array([[0.0], [2.0]]), (1,))
    L.BinaryCrossentropy().check_targets(np.array([0.0, 1.0]), (1,))
    with pytest.raises(DataError, match="target width 3 vs output width 2"):
        L.MeanSquaredError().check_targets(np.zeros((4, 3)), (2,))


def test_get_serialize_deserialize():
    assert isinstance(L.get("mse"), L.MeanSquaredError)
    assert isinstance(L.get("sparse_categorical_crossentropy"), L.SparseCategoricalCrossentropy)
    assert isinstance(L.get("BinaryCrossentropy"), L.BinaryCrossentropy)
    assert isinstance(L.get(L.categorical_crossentropy), L.CategoricalCrossentropy)
    assert isinstance(L.get(L.Huber), L.Huber)
    inst = L.Huber(delta=2.0)
    assert L.get(inst) is inst and L.get(None) is None
    cfg = L.serialize(L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3, name="x"))
    assert cfg == {"class_name": "SparseCategoricalCrossentropy",
                   "config": {"name": "x", "reduction": "sum_over_batch_size",
                              "from_logits": True, "ignore_class": 3}}
    back = L.deserialize(cfg)
    assert back.from_logits and back.ignore_class == 3 and back.name == "x"
    assert L.get(L.serialize(inst)).delta == 2.0
    assert L.get("mae").name == "mean_absolute_error"
    with pytest.raises(ConfigError, match="Unknown loss 'msee'; valid names are: .*mse"):
        L.get("msee")
    assert L.get(lambda a, b: a - b).recorded  # a user's function: its gradient is recorded
    with pytest.raises(ConfigError, match="no fused activation"):
        L.MeanSquaredError().gradient_logits([[1.0]], [[1.0]], [1.0])


def test_extreme_logits_and_probabilities_stay_finite_without_warnings():
    import warnings
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss, y in ((L.BinaryCrossentropy(from_logits=True), [[1.0, 1.0, 0.0]]),
                        (L.CategoricalCrossentropy(from_logits=True), [[0.0, 1.0, 0.0]]),
                        (L.SparseCategoricalCrossentropy(from_logits=True), [1])):
            v, g = loss(y, z), loss.gradient(y, z, np.ones(1, np.float32))
            assert np.isfinite(v) and np.all(np.isfinite(g))
        # BCE from logits: y=1 at z=-1e4 costs 1e4; CCE: logit gap 2e4
        assert L.binary_crossentropy([[1.0]], np.float32([[-1e4]]), from_logits=True)[0] == pytest.approx(1e4)
        assert L.categorical_crossentropy([[0, 1, 0]], z, from_logits=True)[0] == pytest.approx(2e4)


def test_from_keras_config_drops_dtype_and_default_axis():
    cfg = {"name": "bce", "reduction": "sum", "from_logits": True, "label_smoothing": 0.1,
           "axis": -1, "dtype": "float32"}
    loss = L.deserialize({"class_name": "BinaryCrossentropy", "config": cfg})
    assert loss.from_logits and loss.label_smoothing == 0.1 and loss.reduction == "sum"
    with pytest.raises(ConfigError, match="axis=-1"):
        L.BinaryCrossentropy.from_config({**cfg, "axis": 1})
