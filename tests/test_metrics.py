"""Metrics: hand-computed results, weighted accumulation, additive states, 'accuracy' resolution."""
import numpy as np
import pytest

from distdl import metrics as M
from distdl.errors import ConfigError, ShapeError


def test_per_sample_functions_by_hand():
    assert np.array_equal(M.binary_accuracy([[1], [0], [1]], [[0.7], [0.2], [0.5]]), [1, 1, 0])
    assert np.array_equal(M.binary_accuracy([[1, 0]], [[0.9, 0.8]]), [0.5])
    assert np.array_equal(M.categorical_accuracy([[0, 1, 0], [1, 0, 0]], [[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]]),
                          [1, 0])
    assert np.array_equal(M.sparse_categorical_accuracy([1, 0], [[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]]), [1, 0])
    assert np.array_equal(M.sparse_categorical_accuracy([[1], [0]], [[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]]),
                          [1, 0])
    scores = [[0.1, 0.5, 0.2, 0.2], [0.4, 0.3, 0.2, 0.1]]
    assert np.array_equal(M.sparse_top_k_categorical_accuracy([2, 2], scores, k=2), [1, 0])
    assert np.array_equal(M.top_k_categorical_accuracy(np.eye(4)[[3, 1]], scores, k=2), [1, 1])


def test_keras_documented_results():
    m = M.BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(0.5)
    m = M.CategoricalAccuracy()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)
    m = M.SparseTopKCategoricalAccuracy(k=1)
    m.update_state([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    auc = M.AUC()
    auc.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert auc.result() == pytest.approx(0.75)  # 3 of the 4 positive/negative pairs ordered right


def test_accumulation_over_updates_with_sample_weights():
    m = M.SparseCategoricalAccuracy()
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    m.update_state([0, 0, 0], p, sample_weight=[1.0, 2.0, 3.0])        # correct, wrong, correct: 4 / 6
    m.update_state([1, 1], [[0.3, 0.7], [0.8, 0.2]], sample_weight=[0.5, 1.5])   # 0.5 / 2
    assert m.result() == pytest.approx((4.0 + 0.5) / (6.0 + 2.0))
    mse = M.get("mse")
    mse.update_state([[1.0, 2.0]], [[2.0, 4.0]])       # (1 + 4) / 2 = 2.5
    mse.update_state([[0.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]], sample_weight=[2.0, 1.0])
    assert mse.name == "mse" and mse.result() == pytest.approx((2.5 + 2 * 1.0 + 0.0) / (1 + 3))
    mean = M.Mean()
    mean.update_state([[1.0, 3.0], [5.0, 7.0]], sample_weight=[[1.0, 0.0], [1.0, 1.0]])
    # Keras: values*weights averaged per row -> [0.5, 6]; weights averaged per row -> [0.5, 1]
    assert mean.result() == pytest.approx(6.5 / 1.5)
    m.reset_state()
    assert m.result() == 0.0 and np.array_equal(m.get_state(), [0.0, 0.0])


def test_precision_recall_by_hand():
    yt, yp = [0, 1, 1, 1, 0], [0.7, 0.2, 0.6, 0.9, 0.4]    # tp 2, fp 1, fn 1
    p, r = M.Precision(), M.Recall()
    p.update_state(yt, yp)
    r.update_state(yt, yp, sample_weight=[1, 3, 1, 1, 1])   # tp 2, fn 3
    assert p.result() == pytest.approx(2 / 3) and r.result() == pytest.approx(2 / 5)


def _feed(metric, yt, yp, sw):
    metric.update_state(yt, yp, sample_weight=sw)
    return metric


@pytest.mark.parametrize("factory, kind", [
    (lambda: M.get("accuracy"), "sparse"), (M.BinaryAccuracy, "binary"), (M.CategoricalAccuracy, "onehot"),
    (lambda: M.TopKCategoricalAccuracy(k=2), "onehot"), (M.Precision, "binary"), (M.Recall, "binary"),
    (M.AUC, "binary"), (lambda: M.get("mae"), "onehot"), (lambda: M.get("binary_crossentropy"), "binary"),
])
def test_summed_states_equal_metric_of_concatenated_data(factory, kind):
    rng = np.random.default_rng(3)
    n = 11
    if kind == "binary":
        yt, yp = rng.integers(0, 2, (n, 1)).astype(float), rng.uniform(0, 1, (n, 1))
    else:
        labels, yp = rng.integers(0, 4, n), rng.dirichlet(np.ones(4), n)
        yt = labels if kind == "sparse" else np.eye(4)[labels]
    sw = rng.uniform(0.1, 2.0, n)
    whole = _feed(factory(), yt, yp, sw)
    a, b = _feed(factory(), yt[:4], yp[:4], sw[:4]), _feed(factory(), yt[4:], yp[4:], sw[4:])
    empty = _feed(factory(), yt[:0], yp[:0], sw[:0])          # a rank with no samples
    total = a.get_state() + b.get_state() + empty.get_state()
    assert total.shape == (a.state_size,) and total.dtype == np.float64
    fresh = factory()
    fresh.set_state(total)
    assert fresh.result() == pytest.approx(whole.result(), rel=1e-12)
    assert np.allclose(fresh.get_state(), whole.get_state())
    assert 0.0 < whole.result()


def test_set_state_rejects_wrong_size():
    with pytest.raises(ShapeError, match="expects a state of shape \\(2,\\)"):
        M.BinaryAccuracy().set_state(np.zeros(3))


def test_accuracy_resolves_from_shapes_and_keeps_the_name():
    binary = M.get("acc")
    binary.update_state(np.array([[1], [0]]), np.array([[0.8], [0.7]]))
    assert binary.name == "acc" and binary.result() == pytest.approx(0.5)
    sparse = M.get("accuracy")
    sparse.update_state(np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]))
    assert sparse._fn is M.sparse_categorical_accuracy and sparse.result() == 1.0
    sparse_col = M.get("accuracy")
    sparse_col.update_state(np.array([[1], [0]]), np.array([[0.1, 0.9], [0.3, 0.7]]))
    assert sparse_col._fn is M.sparse_categorical_accuracy and sparse_col.result() == 0.5
    onehot = M.get("Accuracy".lower())
    onehot.update_state(np.eye(3)[[2, 1]], np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]))
    assert onehot._fn is M.categorical_accuracy and onehot.result() == 0.5


def test_get_serialize_deserialize():
    assert isinstance(M.get("binary_accuracy"), M.BinaryAccuracy)
    assert isinstance(M.get(M.categorical_accuracy), M.CategoricalAccuracy)
    assert isinstance(M.get(M.AUC), M.AUC)
    assert M.get("mae").name == "mae" and M.get("MeanSquaredError").name == "MeanSquaredError"
    assert M.get(M.MeanSquaredError).name == "mean_squared_error"
    m = M.BinaryAccuracy(threshold=0.3)
    assert M.get(m) is m
    cfg = M.serialize(m)
    assert cfg == {"class_name": "BinaryAccuracy", "config": {"name": "binary_accuracy", "threshold": 0.3}}
    assert M.deserialize(cfg).get_config() == m.get_config()
    assert M.serialize(M.get("acc")) == "acc" and M.deserialize("acc").name == "acc"
    topk = M.deserialize(M.serialize(M.SparseTopKCategoricalAccuracy(k=3, name="top3")))
    assert topk.name == "top3" and topk._fn_kwargs == {"k": 3}
    custom = M.get(lambda yt, yp: np.abs(np.asarray(yt) - yp).max(axis=-1), name="maxerr")
    custom.update_state([[0.0, 1.0]], [[0.5, 3.0]])
    assert custom.name == "maxerr" and custom.result() == pytest.approx(2.0)
    cfg = M.serialize(custom)  # the config records the function's name; loading looks it up again
    assert cfg == {"class_name": "MeanMetricWrapper", "config": {"name": "maxerr", "fn": "<lambda>"}}
    with pytest.raises(ConfigError, match="Unknown metric function '<lambda>'"):
        M.deserialize(cfg)
    with pytest.raises(ConfigError, match="Unknown metric 'acuracy'; valid names are: .*accuracy"):
        M.get("acuracy")
    wrapped = M.deserialize({"class_name": "MeanMetricWrapper",
                             "config": {"name": "m", "fn": "mean_absolute_error"}})
    assert wrapped.name == "m" and wrapped._fn is M._FUNCTIONS["mean_absolute_error"]
    with pytest.raises(ConfigError, match="Unknown metric function 'mean_abs_err'"):
        M.deserialize({"class_name": "MeanMetricWrapper", "config": {"name": "m", "fn": "mean_abs_err"}})
    with pytest.raises(ConfigError, match="threshold"):
        M.BinaryAccuracy(threshold=1.5)
