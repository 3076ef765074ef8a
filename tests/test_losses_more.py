"""The rest of Keras's losses: focal cross-entropies, cosine similarity, categorical hinge, Dice,
Tversky (values from keras/src/losses/losses_test.py, cited per test), plus Keras's numbers for the
existing Hinge, SquaredHinge, LogCosh, Poisson and KLDivergence; float64 finite-difference
gradients; reductions and sample weights; function forms and names."""
import numpy as np
import pytest

from distdl import losses as L
from distdl.errors import ConfigError
from gradcheck import numeric_grad, rel_error

HINGE_T = np.array([[0.0, 1.0], [0.0, 0.0]])
HINGE_P = np.array([[0.6, 0.4], [0.4, 0.6]])
BFCE_T = np.array([[1, 0], [1, 0]])
BFCE_P = np.array([[0.9, 0.8], [0.7, 0.2]], dtype=np.float32)
BFCE_LT = np.array([[1, 1, 0], [0, 1, 0]], dtype="float32")
BFCE_LZ = np.array([[1.5, -2.7, 2.9], [-3.8, 1.2, -4.5]])
CFCE_T = np.eye(3)
CFCE_P = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]], dtype="float32")
CFCE_Z = np.array([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]])
SEG_T = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]])
SEG_P = np.array([[0, 1, 0, 1], [1, 0, 1, 1], [0, 1, 0, 1], [1, 0, 1, 1]])
SEG4_T = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]])
SEG4_P = np.array([[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]])


def test_binary_focal_keras_numbers():
    # losses_test.py BinaryFocalCrossentropyTest: test_unweighted, test_scalar_weighted,
    # test_sample_weighted, test_no_reduction, test_all_correct_unweighted
    assert L.BinaryFocalCrossentropy(gamma=2.0)(BFCE_T, BFCE_P) == pytest.approx(0.268, abs=1e-3)
    assert L.BinaryFocalCrossentropy(gamma=3.0, from_logits=True)(BFCE_LT, BFCE_LZ) == pytest.approx(0.799, abs=1e-3)
    assert L.BinaryFocalCrossentropy(gamma=2.0)(BFCE_T, BFCE_P, sample_weight=1.23) == pytest.approx(0.3296, abs=1e-3)
    assert L.BinaryFocalCrossentropy(gamma=3.0, from_logits=True)(
        BFCE_LT, BFCE_LZ, sample_weight=3.21) == pytest.approx(2.565, abs=1e-3)
    sw = np.array([1.2, 3.4]).reshape((2, 1))
    assert L.BinaryFocalCrossentropy(gamma=2.0)(BFCE_T, BFCE_P, sample_weight=sw) == pytest.approx(0.34415, abs=1e-3)
    assert L.BinaryFocalCrossentropy(gamma=3.0, from_logits=True)(
        BFCE_LT, BFCE_LZ, sample_weight=sw) == pytest.approx(0.95977, abs=1e-3)
    np.testing.assert_allclose(L.BinaryFocalCrossentropy(gamma=2.0, reduction=None)(BFCE_T, BFCE_P),
                               [0.515547, 0.020513], rtol=1e-4)
    assert L.BinaryFocalCrossentropy(gamma=1.5)(np.eye(3), np.eye(3)) == pytest.approx(0.0, abs=1e-3)
    assert L.BinaryFocalCrossentropy(gamma=2.0, from_logits=True)(np.eye(3), 200 * np.eye(3) - 100) == \
        pytest.approx(0.0, abs=1e-3)


def test_binary_focal_class_balancing_keras_docstring_numbers():
    # losses.py BinaryFocalCrossentropy docstring (y_true [[0, 1], [0, 0]], logits [[-18.6, 0.51], [2.94, -12.8]])
    yt, z = np.array([[0, 1], [0, 0]]), np.array([[-18.6, 0.51], [2.94, -12.8]])
    assert L.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=3, from_logits=True)(
        yt, z, sample_weight=[0.8, 0.2]) == pytest.approx(0.097, abs=1e-3)
    assert L.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=4, from_logits=True, reduction="sum")(
        yt, z) == pytest.approx(0.914, abs=1e-3)
    np.testing.assert_allclose(L.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=5, from_logits=True,
                                                         reduction=None)(yt, z), [0.0004, 0.8670], atol=1e-4)


def test_categorical_focal_keras_numbers():
    # losses_test.py CategoricalFocalCrossentropyTest: unweighted, scalar/sample weighted, no reduction,
    # label smoothing
    assert L.CategoricalFocalCrossentropy()(CFCE_T, CFCE_P) == pytest.approx(0.02059, abs=1e-3)
    assert L.CategoricalFocalCrossentropy(from_logits=True)(CFCE_T, CFCE_Z) == pytest.approx(0.000345, abs=1e-3)
    assert L.CategoricalFocalCrossentropy()(CFCE_T, CFCE_P, sample_weight=2.3) == pytest.approx(0.047368, abs=1e-3)
    assert L.CategoricalFocalCrossentropy(from_logits=True)(
        CFCE_T, CFCE_Z, sample_weight=2.3) == pytest.approx(0.000794, abs=1e-4)
    sw = np.array([[1.2], [3.4], [5.6]])
    assert L.CategoricalFocalCrossentropy()(CFCE_T, CFCE_P, sample_weight=sw) == pytest.approx(0.06987, abs=1e-3)
    assert L.CategoricalFocalCrossentropy(from_logits=True)(
        CFCE_T, CFCE_Z, sample_weight=sw) == pytest.approx(0.001933, abs=1e-3)
    np.testing.assert_allclose(L.CategoricalFocalCrossentropy(from_logits=True, reduction=None)(CFCE_T, CFCE_Z),
                               [1.5096224e-09, 2.4136547e-11, 1.0360638e-03], rtol=1e-3)
    assert L.CategoricalFocalCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.array([[1, 0, 0]]), np.array([[4.9, -0.5, 2.05]])) == pytest.approx(0.06685, abs=1e-3)


def test_cosine_similarity_and_categorical_hinge_keras_numbers():
    # losses_test.py CosineSimilarityTest (expected values computed there with l2_norm) and
    # CategoricalHingeTest test_unweighted / test_weighted
    yt = np.array([[1, 9, 2], [-5, -2, 6]], dtype=np.float32)
    yp = np.array([[4, 8, 12], [8, 1, 3]], dtype=np.float32)
    cos = np.sum(yt / np.linalg.norm(yt, axis=1, keepdims=True) * yp / np.linalg.norm(yp, axis=1, keepdims=True),
                 axis=1)
    assert L.CosineSimilarity()(yt, yp) == pytest.approx(-np.mean(cos), abs=1e-5)
    sw = np.array([1.2, 3.4])
    assert L.CosineSimilarity()(yt, yp, sample_weight=sw) == pytest.approx(-np.mean(cos * sw), abs=1e-5)
    assert L.CosineSimilarity()(yt, yp, sample_weight=0) == 0.0
    np.testing.assert_allclose(L.cosine_similarity([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
                                                   [[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]), [0.0, -1.0, 1.0],
                               atol=1e-6)  # losses.py cosine_similarity docstring
    assert L.CategoricalHinge()(HINGE_T, HINGE_P) == pytest.approx(1.4)
    assert L.CategoricalHinge(reduction="sum")(HINGE_T, HINGE_P) == pytest.approx(2.8)
    np.testing.assert_allclose(L.CategoricalHinge(reduction=None)(HINGE_T, HINGE_P), [1.2, 1.6])
    assert L.CategoricalHinge()(HINGE_T, HINGE_P, sample_weight=[1, 0]) == pytest.approx(0.6)
    assert L.CategoricalHinge(reduction="sum")(HINGE_T, HINGE_P, sample_weight=[1, 0]) == pytest.approx(1.2)
    assert L.CategoricalHinge()(HINGE_T, HINGE_P, sample_weight=0.0) == 0.0


def test_dice_and_tversky_keras_numbers():
    # losses_test.py DiceTest and TverskyTest
    a, b = np.array([[1, 2], [1, 2]]), np.array([[4, 1], [6, 1]])
    assert L.Dice()(a, b) == pytest.approx(-0.55555546, abs=1e-6)
    assert L.Dice()(SEG_T, SEG_P) == pytest.approx(0.77777773, abs=1e-6)
    np.testing.assert_allclose(L.Dice(axis=(1, 2, 3), reduction=None)(SEG4_T, SEG4_P), [0.5, 0.75757575], rtol=1e-6)
    assert L.Tversky()(a, b) == pytest.approx(-0.55555558, abs=1e-6)
    assert L.Tversky(alpha=0.2, beta=0.8)(a, b) == pytest.approx(-0.94444442, abs=1e-6)
    assert L.Tversky()(SEG_T, SEG_P) == pytest.approx(0.77777779, abs=1e-6)
    assert L.Tversky(alpha=0.2, beta=0.8)(SEG_T, SEG_P) == pytest.approx(0.76190472, abs=1e-6)
    np.testing.assert_allclose(L.Tversky(axis=(1, 2, 3), reduction=None)(SEG4_T, SEG4_P), [0.5, 0.75757575],
                               rtol=1e-6)
    np.testing.assert_allclose(L.Tversky(alpha=0.2, beta=0.8, axis=(1, 2, 3), reduction=None)(SEG4_T, SEG4_P),
                               [0.5, 0.78494626], rtol=1e-6)
    # losses.py dice docstring
    np.testing.assert_allclose(L.dice(SEG4_T, SEG4_P, axis=(1, 2, 3)), [0.5, 0.75757575], rtol=1e-6)
    assert float(L.dice(SEG4_T, SEG4_P)) == pytest.approx(0.6164384, abs=1e-6)


def test_existing_losses_match_keras_numbers():
    # losses_test.py HingeTest, SquaredHingeTest (test_unweighted / test_weighted), LogCoshTest,
    # PoissonTest and KLDivergenceTest (expected values from their setup formulas)
    assert L.Hinge()(HINGE_T, HINGE_P) == pytest.approx(1.3)
    np.testing.assert_allclose(L.Hinge(reduction=None)(HINGE_T, HINGE_P), [1.1, 1.5])
    assert L.Hinge()(HINGE_T, HINGE_P, sample_weight=[1, 0]) == pytest.approx(0.55)
    assert L.SquaredHinge()(HINGE_T, HINGE_P) == pytest.approx(1.86)
    assert L.SquaredHinge(reduction="sum")(HINGE_T, HINGE_P) == pytest.approx(3.72)
    np.testing.assert_allclose(L.squared_hinge(HINGE_T, HINGE_P), [1.46, 2.26])
    yt = np.array([[1, 9, 2], [-5, -2, 6]], dtype=np.float64)
    yp = np.array([[4, 8, 12], [8, 1, 3]], dtype=np.float64)
    e = yp - yt
    assert L.LogCosh()(yt, yp, sample_weight=2.3) == pytest.approx(2.3 * np.sum(np.log(np.cosh(e))) / 6)
    np.testing.assert_allclose(L.log_cosh(yt, yp), np.log(np.cosh(e)).mean(axis=1))
    pt = np.array([[4, 8, 12], [8, 1, 3]], dtype=np.float64)
    pp = np.array([[1, 9, 2], [5, 2, 6]], dtype=np.float64)
    assert L.Poisson()(pt, pp) == pytest.approx(np.sum(pp - pt * np.log(pp)) / 6, rel=1e-6)
    np.testing.assert_allclose(L.poisson(pt, pp), np.mean(pp - pt * np.log(pp), axis=1), rtol=1e-6)
    kp = np.array([0.4, 0.9, 0.12, 0.36, 0.3, 0.4]).reshape(2, 3)
    kt = np.array([0.5, 0.8, 0.12, 0.7, 0.43, 0.8]).reshape(2, 3)
    assert L.KLDivergence()(kt, kp, sample_weight=2.3) == pytest.approx(2.3 * np.sum(kt * np.log(kt / kp)) / 2)
    np.testing.assert_allclose(L.kl_divergence(kt, kp), np.sum(kt * np.log(kt / kp), axis=1))


def _cases():
    rng = np.random.default_rng(3)
    bt = rng.integers(0, 2, (4, 3)).astype(float)
    onehot = np.eye(3)[[0, 2, 1, 2]]
    seg_t = rng.integers(0, 2, (3, 2, 2, 2)).astype(float)
    return {
        "bfce": (L.BinaryFocalCrossentropy(gamma=2.0, label_smoothing=0.1), bt, rng.uniform(0.05, 0.95, (4, 3))),
        "bfce_bal_logits": (L.BinaryFocalCrossentropy(True, 0.3, 1.5, from_logits=True), bt,
                            rng.standard_normal((4, 3)) * 2),
        "cfce": (L.CategoricalFocalCrossentropy(label_smoothing=0.1), onehot, rng.uniform(0.1, 2.0, (4, 3))),
        "cfce_logits": (L.CategoricalFocalCrossentropy(alpha=0.5, gamma=3.0, from_logits=True), onehot,
                        rng.standard_normal((4, 3))),
        "cosine": (L.CosineSimilarity(), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))),
        "cat_hinge": (L.CategoricalHinge(), onehot, rng.uniform(-1, 1, (4, 3))),
        "dice_axis": (L.Dice(axis=(1, 2, 3)), seg_t, rng.uniform(0.05, 0.95, (3, 2, 2, 2))),
        "tversky_axis": (L.Tversky(0.3, 0.7, axis=(1, 2, 3)), seg_t, rng.uniform(0.05, 0.95, (3, 2, 2, 2))),
        "dice": (L.Dice(), seg_t, rng.uniform(0.05, 0.95, (3, 2, 2, 2))),
        "tversky": (L.Tversky(0.2, 0.8), seg_t, rng.uniform(0.05, 0.95, (3, 2, 2, 2))),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_gradient_matches_finite_differences(name):
    loss, yt, yp = _cases()[name]
    per = loss.values(yt, yp)
    w = np.random.default_rng(5).uniform(0.1, 1.0, per.shape)
    g = loss.gradient(yt, yp, w)
    assert g.shape == yp.shape and g.dtype == np.float64
    num = numeric_grad(lambda: float(np.sum(loss.values(yt, yp) * w)), yp)
    assert rel_error(g, num) < 1e-7


@pytest.mark.parametrize("name", list(_cases()))
def test_value_and_gradient_is_the_training_steps_mean(name):
    """value_and_gradient(weight, rows) is sum(values) and the gradient of weight * mean(values)."""
    loss, yt, yp = _cases()[name]
    value, g = loss.value_and_gradient(yt, yp, 0.5, len(yp))
    per = loss.values(yt, yp)
    n = int(np.prod(per.shape[1:])) if per.ndim > 1 else 1
    assert value == pytest.approx(float(np.sum(per)) / n)
    num = numeric_grad(lambda: 0.5 * float(np.mean(loss.values(yt, yp))), yp)
    assert rel_error(g, num) < 1e-7


@pytest.mark.parametrize("name", ["bfce", "cfce", "cosine", "cat_hinge", "dice_axis"])
def test_reductions_and_sample_weight(name):
    loss, yt, yp = _cases()[name]
    per = loss.call(yt, yp)
    sw = np.random.default_rng(1).uniform(0, 2, per.shape)
    cfg = loss.get_config()
    red = {r: type(loss).from_config({**cfg, "reduction": r}) for r in
           ("sum", "sum_over_batch_size", "mean_with_sample_weight", None)}
    np.testing.assert_allclose(red[None](yt, yp, sample_weight=sw), per * sw)
    assert red["sum"](yt, yp, sample_weight=sw) == pytest.approx(np.sum(per * sw))
    assert red["sum_over_batch_size"](yt, yp, sample_weight=sw) == pytest.approx(np.sum(per * sw) / per.size)
    assert red["mean_with_sample_weight"](yt, yp, sample_weight=sw) == pytest.approx(np.sum(per * sw) / np.sum(sw))


def test_names_configs_and_function_forms():
    for name, cls in [("binary_focal_crossentropy", L.BinaryFocalCrossentropy),
                      ("categorical_focal_crossentropy", L.CategoricalFocalCrossentropy),
                      ("cosine_similarity", L.CosineSimilarity), ("categorical_hinge", L.CategoricalHinge),
                      ("dice", L.Dice), ("tversky", L.Tversky)]:
        assert type(L.get(name)) is cls and type(L.get(cls.__name__)) is cls
        assert type(L.get(getattr(L, name))) is cls
    t = L.deserialize(L.serialize(L.Tversky(0.2, 0.8, axis=(1, 2, 3), name="tv")))
    assert (t.alpha, t.beta, t.axis, t.name) == (0.2, 0.8, (1, 2, 3), "tv")
    f = L.deserialize(L.serialize(L.BinaryFocalCrossentropy(True, 0.4, 3.0, name="bf")))
    assert (f.apply_class_balancing, f.alpha, f.gamma, f.name) == (True, 0.4, 3.0, "bf")
    np.testing.assert_allclose(L.binary_focal_crossentropy(BFCE_T, BFCE_P, gamma=2.0), [0.515547, 0.020513],
                               rtol=1e-4)
    np.testing.assert_allclose(L.categorical_hinge(HINGE_T, HINGE_P), [1.2, 1.6])
    np.testing.assert_allclose(L.tversky(SEG4_T, SEG4_P, 0.2, 0.8, axis=(1, 2, 3)), [0.5, 0.78494626], rtol=1e-6)


def test_bad_arguments_name_themselves():
    with pytest.raises(ConfigError, match="axis=-1"):
        L.CosineSimilarity(axis=1)
    with pytest.raises(ConfigError, match="gamma must be >= 0"):
        L.BinaryFocalCrossentropy(gamma=-1.0)
    with pytest.raises(ConfigError, match="batch axis 0"):
        L.Dice(axis=(0, 1)).check_targets(np.zeros((2, 3)), (None, 3))


@pytest.mark.parametrize("make, targets", [
    (lambda: L.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=2.0), "binary"),
    (lambda: L.CategoricalFocalCrossentropy(), "onehot"), (lambda: L.CosineSimilarity(), "real"),
    (lambda: L.CategoricalHinge(), "onehot"), (lambda: L.Dice(axis=(1,)), "binary"),
    (lambda: L.Tversky(0.3, 0.7), "binary"),
])
def test_one_sgd_step_follows_the_reduced_loss(float64, make, targets):
    """fit's loss is the loss object's value on the batch, and one full-batch SGD step of a
    Dense(3, sigmoid) model moves the weights by the finite-difference gradient of that value."""
    from distdl.layers import Dense
    from distdl.models import Sequential
    from distdl.optimizers import SGD
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 4))
    y = {"binary": rng.integers(0, 2, (10, 3)).astype(float), "onehot": np.eye(3)[rng.integers(0, 3, 10)],
         "real": rng.standard_normal((10, 3))}[targets]
    loss = make()
    model = Sequential([Dense(3, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizer=SGD(learning_rate=0.5), loss=loss)
    w, b = [a.copy() for a in model.get_weights()]
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    expected = float(loss(y, p))
    g = numeric_grad(lambda: float(loss(y, p)), p) * p * (1.0 - p)   # dL/dz through the sigmoid
    hist = model.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(expected, rel=1e-9)
    got_w, got_b = model.get_weights()
    np.testing.assert_allclose(got_w, w - 0.5 * x.T @ g, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got_b, b - 0.5 * g.sum(0), rtol=1e-6, atol=1e-9)
    assert not np.allclose(got_w, w)
