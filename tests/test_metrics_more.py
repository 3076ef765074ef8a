"""The rest of Keras's metrics, against the numbers in keras/src/metrics/*_test.py (cited per test):
confusion counts, the *At* constraint metrics, AUC (ROC, PR, PRGAIN; interpolation, minoring,
majoring), F-scores, IoU, regression, probabilistic; plus state additivity (two halves' states
summed give the whole batch's result, as ranks' states do), names and configs."""
import numpy as np
import pytest

from distdl import metrics as M
from distdl.errors import ConfigError, ShapeError

CM_T = np.array(((0, 1, 0, 1, 0), (0, 0, 1, 1, 1), (1, 1, 1, 1, 0), (0, 0, 0, 0, 1)))
CM_P = np.array(((0, 0, 1, 1, 0), (1, 1, 1, 1, 1), (0, 1, 0, 1, 0), (1, 1, 1, 1, 1)))
TH_P = np.array(((0.9, 0.2, 0.8, 0.1), (0.2, 0.9, 0.7, 0.6), (0.1, 0.2, 0.4, 0.3), (0, 1, 0.7, 0.3)))
TH_T = np.array(((0, 1, 1, 0), (1, 0, 0, 0), (0, 0, 0, 0), (1, 1, 1, 1)))
TH_W = ((1.0, 2.0, 3.0, 5.0), (7.0, 11.0, 13.0, 17.0), (19.0, 23.0, 29.0, 31.0), (5.0, 15.0, 10.0, 0))


@pytest.mark.parametrize("cls, unweighted, weighted, th_unweighted, th_weights, th_weighted", [
    # confusion_metrics_test.py FalsePositivesTest, FalseNegativesTest, TrueNegativesTest, TruePositiveTest
    (M.FalsePositives, 7.0, 14.0, [7.0, 4.0, 2.0], TH_W, [125.0, 42.0, 12.0]),
    (M.FalseNegatives, 3.0, 5.0, [1.0, 4.0, 6.0], ((3.0,), (5.0,), (7.0,), (4.0,)), [4.0, 16.0, 23.0]),
    (M.TrueNegatives, 3.0, 4.0, [2.0, 5.0, 7.0], ((0.0, 2.0, 3.0, 5.0),), [5.0, 15.0, 23.0]),
    (M.TruePositives, 7.0, 12.0, [6.0, 3.0, 1.0], 37.0, [222.0, 111.0, 37.0]),
])
def test_confusion_counts_keras_numbers(cls, unweighted, weighted, th_unweighted, th_weights, th_weighted):
    assert cls()(CM_T, CM_P) == pytest.approx(unweighted)
    assert cls()(CM_T, CM_P, sample_weight=np.array((1.0, 1.5, 2.0, 2.5))) == pytest.approx(weighted)
    np.testing.assert_allclose(cls(thresholds=[0.15, 0.5, 0.85])(TH_T, TH_P), th_unweighted)
    np.testing.assert_allclose(cls(thresholds=[0.85, 0.15, 0.5])(TH_T, TH_P, sample_weight=th_weights),
                               np.array(th_weighted)[[2, 0, 1]])  # unsorted thresholds keep their order
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\]"):
        cls(thresholds=[-1, 0.5, 2])


SS_P = [0.0, 0.1, 0.2, 0.3, 0.4, 0.01, 0.02, 0.25, 0.26, 0.26]
SS_T = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
SS_W = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
PR_P = [0.0, 0.1, 0.2, 0.5, 0.6, 0.2, 0.5, 0.6, 0.8, 0.9]


def test_constraint_metrics_keras_numbers():
    # confusion_metrics_test.py SensitivityAtSpecificityTest, SpecificityAtSensitivityTest,
    # PrecisionAtRecallTest, RecallAtPrecisionTest
    high = [0.0, 0.1, 0.2, 0.3, 0.4, 0.1, 0.45, 0.5, 0.8, 0.9]
    assert M.SensitivityAtSpecificity(0.8)(SS_T, high) == pytest.approx(0.8)
    assert M.SensitivityAtSpecificity(0.4)(SS_T, SS_P) == pytest.approx(0.6)
    assert M.SensitivityAtSpecificity(0.4)(SS_T, SS_P, sample_weight=SS_W) == pytest.approx(0.675)
    assert M.SpecificityAtSensitivity(1.0)(SS_T, SS_P) == pytest.approx(0.2)
    assert M.SpecificityAtSensitivity(0.4)(SS_T, SS_P) == pytest.approx(0.6)
    assert M.SpecificityAtSensitivity(0.4)(SS_T, SS_P, sample_weight=SS_W) == pytest.approx(0.4)
    onehot = np.eye(3)[[0, 0, 0, 0, 0, 2, 2, 2, 2, 2]]
    assert M.SpecificityAtSensitivity(0.4, class_id=2)(onehot, np.array([SS_P] * 3).T) == pytest.approx(0.6)
    assert M.PrecisionAtRecall(0.8)(SS_T, PR_P) == pytest.approx(2.0 / 3)
    assert M.PrecisionAtRecall(0.6)(SS_T, PR_P) == pytest.approx(0.75)
    assert M.PrecisionAtRecall(7.0 / 8)(SS_T, PR_P, sample_weight=[2, 1, 2, 1, 2, 1, 2, 2, 1, 2]) == \
        pytest.approx(0.7)
    assert M.RecallAtPrecision(0.75)([0, 1, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.5, 0.6, 0.9, 0.9],
                                     sample_weight=[1, 2, 1, 2, 1, 2, 1]) == pytest.approx(0.6)
    assert M.RecallAtPrecision(2.0 / 3)([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.9]) == 0.0
    inputs = np.random.default_rng(0).integers(0, 2, (100, 1))
    assert M.SensitivityAtSpecificity(0.7)(inputs, inputs.astype("float32")) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"`specificity` must be in the range \[0, 1\]"):
        M.SensitivityAtSpecificity(-1)
    with pytest.raises(ConfigError, match="num_thresholds must be an integer > 0"):
        M.SensitivityAtSpecificity(0.4, num_thresholds=-1)


AUC_T, AUC_P, AUC_W = np.array([0, 0, 1, 1]), np.array([0, 0.5, 0.3, 0.9]), [1, 2, 3, 4]


@pytest.mark.parametrize("kwargs, weighted, expected", [
    # confusion_metrics_test.py AUCTest (num_thresholds=3)
    ({}, False, 0.75),
    ({}, True, 0.7855),
    ({"summation_method": "majoring"}, True, 1.0),
    ({"summation_method": "minoring"}, True, 0.571),
    ({"curve": "PR", "summation_method": "majoring"}, True, 0.429 + 0.571),
    ({"curve": "PR", "summation_method": "minoring"}, True, 0.7 * 0.429),
    ({"curve": "PR"}, True, 2.416 / 7 + 4 / 7),
    ({"curve": "PRGAIN", "summation_method": "majoring"}, True, 1.0),
    ({"curve": "PRGAIN", "summation_method": "minoring"}, True, 0.0),
    ({"curve": "PRGAIN"}, True, 0.5),
])
def test_auc_keras_numbers(kwargs, weighted, expected):
    auc = M.AUC(num_thresholds=3, **kwargs)
    assert auc(AUC_T, AUC_P, sample_weight=AUC_W if weighted else None) == pytest.approx(expected, abs=1e-3)


def test_auc_thresholds_logits_and_errors():
    # confusion_metrics_test.py AUCTest: test_unweighted_all_correct, test_unweighted_from_logits,
    # test_manual_thresholds, test_weighted_pr_interpolation_negative_weights
    assert M.AUC()(AUC_T, AUC_T) == 1.0
    p32 = AUC_P.astype(np.float32)  # Keras's float32 y_pred: the 0.5 score's logit is exactly 0
    logits = -np.log(np.float32(1.0) / (p32 + np.float32(1e-12)) - np.float32(1.0))
    assert M.AUC(num_thresholds=3, from_logits=True)(AUC_T, logits) == pytest.approx(0.75, abs=1e-3)
    manual = M.AUC(num_thresholds=2, thresholds=[0.5])
    assert manual.num_thresholds == 3 and manual(AUC_T, AUC_P) == pytest.approx(0.75, abs=1e-3)
    assert M.AUC(num_thresholds=3, curve="PR")(AUC_T, AUC_P, sample_weight=[-1, -2, -3, -4]) == 0.0
    with pytest.raises(ConfigError, match="num_thresholds must be > 1"):
        M.AUC(num_thresholds=1)
    with pytest.raises(ConfigError, match="curve must be"):
        M.AUC(curve="Invalid")
    with pytest.raises(ConfigError, match="summation_method must be"):
        M.AUC(summation_method="Invalid")


FB_T = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 1]]
FB_P = [[0.9, 0.1, 0], [0.2, 0.6, 0.2], [0, 0, 1], [0.4, 0.3, 0.3], [0, 0.9, 0.1], [0, 0, 1]]


@pytest.mark.parametrize("average, beta, expected", [
    # f_score_metrics_test.py test_fbeta_random_score (threshold 0.66) ...
    (None, 0.5, [0.71428573, 0.5, 0.833334]), ("micro", 1.0, 0.6666667), ("macro", 2.0, 0.6548822),
    ("weighted", 0.5, 0.6825397),
])
def test_fbeta_with_threshold_keras_numbers(average, beta, expected):
    m = M.FBetaScore(average=average, beta=beta, threshold=0.66)
    m.update_state([[0, 0, 1], [1, 1, 0], [1, 1, 1]], [[0.7, 0.7, 0.7], [1, 0, 0], [0.9, 0.8, 0]])
    np.testing.assert_allclose(m.result(), expected, atol=1e-5)


@pytest.mark.parametrize("average, beta, weights, expected", [
    # ... test_fbeta_random_score_none and test_fbeta_weighted_random_score_none (threshold None)
    (None, 1.0, None, [0.8, 0.6666667, 1.0]), ("micro", 0.5, None, 0.833334), ("macro", 1.0, None, 0.822222),
    ("weighted", 2.0, None, 0.829365), (None, 0.5, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0], [0.9375, 0.714286, 1.0]),
    ("micro", 1.0, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0], 0.9), ("macro", 2.0, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0], 0.899522),
    ("weighted", 1.0, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0], 0.902857), ("macro", 1.0, [1, 0, 1, 1, 0, 1], 0.666667),
])
def test_fbeta_argmax_keras_numbers(average, beta, weights, expected):
    m = M.FBetaScore(average=average, beta=beta)
    m.update_state(FB_T, FB_P, sample_weight=weights)
    np.testing.assert_allclose(m.result(), expected, atol=1e-5)


def test_f1_and_fbeta_weights_and_errors():
    # f_score_metrics_test.py test_fbeta_scalar_weight, test_fbeta_2d_weight, F1ScoreTest.test_correctness
    m = M.FBetaScore(threshold=0.5)
    m.update_state(np.array([[1, 1], [1, 0]]), np.array([[0.2, 0.6], [0.2, 0.6]]), sample_weight=0.5)
    np.testing.assert_allclose(m.result(), [0.0, 0.6666665], atol=1e-5)
    m = M.FBetaScore(threshold=0.5)
    m.update_state(np.array([[1, 1], [1, 0]]), np.array([[0.2, 0.6], [0.2, 0.6]]),
                   sample_weight=np.array([[0.5, 0.2], [0.3, 0.8]]))
    np.testing.assert_allclose(m.result(), [0.0, 0.333333], atol=1e-5)
    np.testing.assert_allclose(M.F1Score()(FB_T, FB_P), M.FBetaScore(beta=1.0)(FB_T, FB_P), atol=1e-6)
    with pytest.raises(ConfigError, match="average must be"):
        M.F1Score(average="invalid")
    with pytest.raises(ConfigError, match="beta must be > 0"):
        M.FBetaScore(beta=0.0)
    with pytest.raises(ConfigError, match="0 < threshold <= 1"):
        M.F1Score(threshold=0.0)
    with pytest.raises(ShapeError, match="2-D y_true and y_pred"):
        M.F1Score().update_state([1, 0], [0.4, 0.6])


def test_iou_keras_numbers():
    # iou_metrics_test.py IoUTest, BinaryIoUTest, MeanIoUTest
    assert M.IoU(2, [0, 1])([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(1 / 3, abs=1e-3)
    w = np.array([0.2, 0.3, 0.4, 0.1])
    expected = (0.1 / (0.4 + 0.5 - 0.1) + 0.2 / (0.6 + 0.5 - 0.2)) / 2
    assert M.IoU(2, [1, 0])(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1.0]), sample_weight=w) == \
        pytest.approx(expected, abs=1e-3)
    assert M.IoU(2, [0, 1])(np.array([[0, 0], [1, 1]]), np.array([[0, 1], [0, 1.0]]),
                            sample_weight=np.array([[0.2, 0.3], [0.4, 0.1]])) == pytest.approx(expected, abs=1e-3)
    assert M.IoU(2, [0, 1]).result() == 0.0
    assert M.IoU(2, [0, 1])([1], [1.0]) == pytest.approx(1.0, abs=1e-3)
    assert M.IoU(4, [0, 1, 2, 3])([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(1 / 3, abs=1e-3)
    assert M.BinaryIoU([0, 1], threshold=0.3)([0, 1, 0, 1], [0.1, 0.2, 0.4, 0.7], sample_weight=w) == \
        pytest.approx(expected, abs=1e-3)
    assert M.BinaryIoU([0, 1], threshold=0.5)([0, 1, 0, 1], [0.1, 0.2, 0.4, 0.7]) == \
        pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-3)
    assert M.MeanIoU(2)([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(1 / 3, abs=1e-3)
    for ignore, label in ((255, 255), (-1, -1)):
        assert M.MeanIoU(3, ignore_class=ignore)([0, 1, 2, label], [0, 1, 1, 1]) == \
            pytest.approx((1 + 0.5 + 0) / 3, abs=1e-3)
    onehot = M.MeanIoU(2, sparse_y_true=False, sparse_y_pred=False)
    assert onehot(np.eye(2)[[0, 0, 1, 1]], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])) == \
        pytest.approx(1 / 3, abs=1e-3)
    with pytest.raises(ConfigError, match="target_class_ids"):
        M.IoU(2, [2])


def test_regression_keras_numbers():
    # regression_metrics_test.py RootMeanSquaredErrorTest, MeanAbsolutePercentageErrorTest,
    # MeanSquaredLogarithmicErrorTest, CosineSimilarityTest, LogCoshErrorTest
    assert M.RootMeanSquaredError()([2, 4, 6], [1, 3, 2]) == pytest.approx(np.sqrt(6))
    assert M.RootMeanSquaredError()([2, 4, 6, 8], [1, 3, 2, 3], sample_weight=[0, 1, 0, 1]) == \
        pytest.approx(np.sqrt(13))
    assert M.MeanAbsolutePercentageError()(CM_T, CM_P.astype("float32")) == pytest.approx(35e7, rel=1e-6)
    assert M.MeanAbsolutePercentageError()(CM_T, CM_P.astype("float32"),
                                           sample_weight=np.array([1.0, 1.5, 2.0, 2.5])) == \
        pytest.approx(40e7, rel=1e-6)
    assert M.MeanSquaredLogarithmicError()(CM_T, CM_P) == pytest.approx(0.24022, abs=1e-5)
    assert M.MeanSquaredLogarithmicError()(CM_T, CM_P, sample_weight=np.array([1.0, 1.5, 2.0, 2.5])) == \
        pytest.approx(0.26082, abs=1e-5)
    yt = np.array([[1, 9, 2], [-5, -2, 6]], dtype=np.float64)
    yp = np.array([[4, 8, 12], [8, 1, 3]], dtype=np.float64)
    cos = np.sum(yt / np.linalg.norm(yt, axis=1, keepdims=True) * yp / np.linalg.norm(yp, axis=1, keepdims=True),
                 axis=1)
    assert M.CosineSimilarity()(yt, yp) == pytest.approx(np.mean(cos))
    assert M.CosineSimilarity()(yt, yp, sample_weight=[1.2, 3.4]) == pytest.approx(np.sum(cos * [1.2, 3.4]) / 4.6)
    lc = np.log(np.cosh(yp - yt))
    assert M.LogCoshError()(yt, yp) == pytest.approx(np.sum(lc) / 6)
    sw = np.array([[1.2] * 3, [3.4] * 3])
    assert M.LogCoshError()(yt, yp, sample_weight=[[1.2], [3.4]]) == pytest.approx(np.sum(lc * sw) / np.sum(sw))


@pytest.mark.parametrize("aggregation, regressors, weights, expected", [
    # regression_metrics_test.py R2ScoreTest test_r2_sklearn_comparison and test_r2_tfa_comparison
    (None, 0, None, [0.37, -1.295, 0.565]), (None, 1, None, [-0.26, -3.59, 0.13]),
    ("uniform_average", 0, None, -0.12), ("variance_weighted_average", 0, None, -0.12),
    (None, 0, [0.8, 0.1, 0.4], [0.17305559, -8.836666, -0.521]),
    (None, 2, [0.8, 0.1, 0.4], [0.17305559, -8.836666, -0.521]),
    ("uniform_average", 1, [0.8, 0.1, 0.4], -7.123073577880859),
    ("variance_weighted_average", 1, [0.8, 0.1, 0.4], -3.742044448852539),
])
def test_r2_keras_numbers(aggregation, regressors, weights, expected):
    yt = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    yp = [[0.4, 0.5, 0.6], [0.1, 0.2, 0.3], [0.5, 0.8, 0.2]] if weights is None else \
        [[0.4, 0.9, 1.6], [0.1, 1.2, 0.6], [1.5, 0.8, 0.6]]
    r2 = M.R2Score(aggregation, regressors)
    r2.update_state(yt, yp, weights)
    np.testing.assert_allclose(r2.result(), expected, atol=1e-5)


def test_probabilistic_keras_numbers():
    # probabilistic_metrics_test.py KLDivergenceTest, BinaryCrossentropyTest, CategoricalCrossentropyTest,
    # SparseCategoricalCrossentropyTest
    kp = np.array([0.4, 0.9, 0.12, 0.36, 0.3, 0.4]).reshape(2, 3)
    kt = np.array([0.5, 0.8, 0.12, 0.7, 0.43, 0.8]).reshape(2, 3)
    kl = kt * np.log(kt / kp)
    assert M.KLDivergence()(kt, kp) == pytest.approx(np.sum(kl) / 2)
    assert M.KLDivergence()(kt, kp, sample_weight=[[1.2], [3.4]]) == \
        pytest.approx(np.sum(kl * [[1.2], [3.4]]) / 4.6)
    bt, bp = np.array([[1, 0], [1, 0]]), np.array([[1, 1], [1, 0]], dtype=np.float32)
    assert M.BinaryCrossentropy()(bt, bp) == pytest.approx(3.9855, abs=1e-3)
    assert M.BinaryCrossentropy()(bt, bp, sample_weight=[1.5, 2.0]) == pytest.approx(3.4162, abs=1e-3)
    lt, lz = np.array([[1, 0, 1], [0, 1, 1]]), np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])
    assert M.BinaryCrossentropy(from_logits=True)(lt, lz) == pytest.approx(3.333, abs=1e-3)
    assert M.BinaryCrossentropy(from_logits=True)(lt, lz, sample_weight=[2.0, 2.5]) == pytest.approx(3.7037, abs=1e-3)
    assert M.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.array([[1, 0, 1]]), np.array([[10.0, -10.0, -10.0]])) == pytest.approx((10.0 + 0.5) / 3.0, abs=1e-3)
    ct, cp = np.array([[0, 1, 0], [0, 0, 1]]), np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    cz = np.array([[1, 9, 0], [1, 8, 1]], dtype=np.float32)
    assert M.CategoricalCrossentropy()(ct, cp) == pytest.approx(1.176, abs=1e-3)
    assert M.CategoricalCrossentropy()(ct, cp, sample_weight=[1.5, 2.0]) == pytest.approx(1.338, abs=1e-3)
    assert M.CategoricalCrossentropy(from_logits=True)(ct, cz) == pytest.approx(3.5011, abs=1e-3)
    assert M.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(ct, cz) == pytest.approx(3.667, abs=1e-3)
    assert M.SparseCategoricalCrossentropy()([1, 2], cp) == pytest.approx(1.176, abs=1e-3)
    assert M.SparseCategoricalCrossentropy(from_logits=True)([1, 2], cz, sample_weight=[1.5, 2.0]) == \
        pytest.approx(4.0012, abs=1e-3)


def _stateful_cases():
    rng = np.random.default_rng(11)
    b_t, b_p = rng.integers(0, 2, (40, 1)), rng.uniform(0, 1, (40, 1))
    c_t = np.eye(3)[rng.integers(0, 3, 40)]
    c_p = rng.dirichlet(np.ones(3), 40)
    r_t, r_p = rng.standard_normal((40, 2)), rng.standard_normal((40, 2))
    return [
        (lambda: M.AUC(num_thresholds=50), b_t, b_p), (lambda: M.AUC(curve="PR"), b_t, b_p),
        (lambda: M.PrecisionAtRecall(0.5), b_t, b_p), (lambda: M.TruePositives([0.2, 0.7]), b_t, b_p),
        (lambda: M.F1Score(average="macro"), c_t, c_p), (lambda: M.FBetaScore("weighted", 2.0, 0.3), c_t, c_p),
        (lambda: M.MeanIoU(3), c_t.argmax(1), c_p.argmax(1)), (lambda: M.BinaryIoU(), b_t, b_p),
        (lambda: M.R2Score(), r_t, r_p), (M.RootMeanSquaredError, r_t, r_p),
        (M.CosineSimilarity, r_t, r_p), (M.CategoricalCrossentropy, c_t, c_p),
    ]


@pytest.mark.parametrize("i", range(12))
def test_states_add_up_across_parts(i):
    """Two parts' states summed (what the ranks' allreduce does) give the whole batch's result."""
    make, yt, yp = _stateful_cases()[i]
    w = np.random.default_rng(i).uniform(0.2, 2.0, len(yt))
    whole, a, b, total = make(), make(), make(), make()
    whole.update_state(yt, yp, sample_weight=w)
    for m, sl in ((a, slice(0, 13)), (b, slice(13, None))):
        m.build_for_output(np.shape(yp))
        m.update_state(yt[sl], yp[sl], sample_weight=w[sl])
    total.build_for_output(np.shape(yp))
    total.set_state(a.get_state() + b.get_state())
    np.testing.assert_allclose(total.result(), whole.result(), rtol=1e-12)


def test_names_and_configs_round_trip():
    for name, cls in [("f1_score", M.F1Score), ("r2_score", M.R2Score), ("true_positives", M.TruePositives),
                      ("root_mean_squared_error", M.RootMeanSquaredError), ("logcosh", M.LogCoshError),
                      ("AUC", M.AUC), ("f_beta_score", M.FBetaScore), ("false_negatives", M.FalseNegatives),
                      ("cosine_similarity", M.CosineSimilarity)]:
        assert type(M.get(name)) is cls
    for m in (M.AUC(num_thresholds=7, curve="PR", summation_method="minoring", name="pr"),
              M.SensitivityAtSpecificity(0.4, num_thresholds=100, class_id=1, name="sas"),
              M.FBetaScore("micro", 2.0, 0.4), M.MeanIoU(4, ignore_class=0), M.IoU(3, [2, 0]),
              M.BinaryIoU([1], 0.3), M.R2Score(None, 2), M.FalseNegatives([0.1, 0.9]),
              M.BinaryCrossentropy(from_logits=True, label_smoothing=0.2)):
        again = M.deserialize(M.serialize(m))
        assert type(again) is type(m) and again.get_config() == m.get_config() and again.state_size == m.state_size


def test_keras_configs_load():
    """Configs as Keras 3 writes them (dtype, and keys distdl supports at their default only)."""
    auc = M.AUC.from_config({"name": "auc", "dtype": "float32", "num_thresholds": 200, "curve": "ROC",
                             "summation_method": "interpolation", "multi_label": False, "num_labels": None,
                             "label_weights": None, "from_logits": False})
    assert auc.num_thresholds == 200 and auc.curve == "ROC"
    f1 = M.F1Score.from_config({"name": "f1_score", "dtype": "float32", "average": "macro", "beta": 1.0,
                                "threshold": None})
    assert f1.average == "macro"
    cce = M.CategoricalCrossentropy.from_config({"name": "cce", "dtype": "float32", "from_logits": True,
                                                 "label_smoothing": 0.2, "axis": -1})
    assert cce.get_config() == {"name": "cce", "from_logits": True, "label_smoothing": 0.2}
    sas = M.SensitivityAtSpecificity.from_config({"name": "s", "dtype": "float32", "class_id": None,
                                                  "num_thresholds": 100, "specificity": 0.4})
    assert sas.specificity == 0.4 and sas.num_thresholds == 100
    with pytest.raises(ConfigError, match="supports only beta=1.0, not beta=2.0"):
        M.F1Score.from_config({"name": "f1", "beta": 2.0})


def test_per_class_results_reach_evaluate_logs(float64):
    """F1Score(average=None) and TruePositives with a list of thresholds log arrays, as in Keras,
    equal to the metrics run on the model's predictions."""
    from distdl.layers import Dense
    from distdl.models import Sequential
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4)), np.eye(3)[np.arange(20) % 3]
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="categorical_crossentropy",
                  metrics=[M.F1Score(), M.TruePositives([0.3, 0.6])])
    logs = model.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["f1_score"], M.F1Score()(y, p), rtol=1e-12)
    np.testing.assert_allclose(logs["true_positives"], M.TruePositives([0.3, 0.6])(y, p))
    assert logs["f1_score"].shape == (3,)
