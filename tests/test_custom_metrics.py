"""Custom metrics (issue 13 item 5): `Metric` subclasses with add_variable / add_weight as Keras 3
writes them (their variables are the state summed across ranks), function metrics averaged like
MeanMetricWrapper, and the refusal of states that are not sums. The 1/2/3-rank run is in
test_custom_losses.py (tests/mpi_scripts/custom_objectives.py trains with both)."""
import numpy as np
import pytest

from distdl import initializers, ops, utils
from distdl import metrics as M
from distdl.errors import ConfigError
from distdl.layers import Dense
from distdl.metrics import Metric
from distdl.models import Sequential


class CategoricalTruePositives(Metric):
    """The Keras guide's custom metric ("Training & evaluation with the built-in methods"); the
    argmax of y_pred (an array here) is NumPy's, ops.argmax being another part of issue 13."""

    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.argmax(y_pred, axis=1).reshape(-1, 1)
        values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
        values = ops.cast(values, "float32")
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            values = ops.multiply(values, sample_weight[:, None])
        self.true_positives.assign_add(ops.sum(values))

    def result(self):
        return self.true_positives.value

    def reset_state(self):
        self.true_positives.assign(0.0)


class ExampleMetric(Metric):
    """keras/src/metrics/metric_test.py's ExampleMetric (epsilon written out: 1e-7)."""

    def __init__(self, name="mean_square_error", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.sum = self.add_variable(name="sum", shape=(), initializer=initializers.Zeros())
        self.total = self.add_variable(name="total", shape=(), initializer=initializers.Zeros(), dtype="int32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        self.sum.assign(self.sum + ops.sum((y_true - y_pred) ** 2))
        self.total.assign(self.total + ops.shape(y_true)[0])

    def result(self):
        return ops.cast(self.sum, self.dtype) / (ops.cast(self.total, self.dtype) + 1e-7)

    def reset_state(self):
        self.sum.assign(0.0)
        self.total.assign(0)


def _classifier(x, y, metrics):
    utils.set_random_seed(3)
    model = Sequential([Dense(3, activation="softmax", input_shape=(x.shape[1],))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=metrics)
    return model


def _data(rows=53):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 4)).astype("float32")
    return x, rng.integers(0, 3, (rows, 1))


def test_keras_example_metric_end_to_end():
    """keras/src/metrics/metric_test.py test_end_to_end_flow and test_stateless_result (via set_state)."""
    metric = ExampleMetric(name="mse")
    assert metric.name == "mse" and len(metric.variables) == 2 and metric.state_size == 2
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.random((20, 3)), rng.random((20, 3))
    for b in range(0, 20 // 8 + 1):
        metric.update_state(y_true[b * 8:(b + 1) * 8], y_pred[b * 8:(b + 1) * 8])
    assert metric.total.numpy() == 20 and metric.total.dtype == np.int32
    assert float(metric.result()) == pytest.approx(np.sum((y_true - y_pred) ** 2) / 20, rel=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    metric.set_state(np.array([12.0, 3.0]))
    assert float(metric.result()) == pytest.approx(4.0)


def test_guide_metric_counts_like_numpy_in_evaluate():
    """evaluate's printed metric is the NumPy count of right predictions, in batches that do not
    divide the rows, with and without sample weights."""
    x, y = _data()
    model = _classifier(x, y, [CategoricalTruePositives()])
    hits = (np.argmax(model.predict(x, verbose=0), axis=1) == y[:, 0]).astype(np.float64)
    scores = model.evaluate(x, y, batch_size=10, verbose=0, return_dict=True)
    assert scores["categorical_true_positives"] == hits.sum() and 0 < hits.sum() < len(x)
    sw = np.random.default_rng(2).uniform(0, 1, len(x))
    scores = model.evaluate(x, y, batch_size=10, verbose=0, sample_weight=sw, return_dict=True)
    assert scores["categorical_true_positives"] == pytest.approx(np.sum(hits * sw), rel=1e-5)


def test_subclass_metric_in_fit_sums_the_epoch():
    """With a learning rate of 0 the predictions stay put: fit's epoch value is the whole-data count."""
    x, y = _data()
    model = _classifier(x, y, [CategoricalTruePositives(name="ctp"), ExampleMetric(name="sq")])
    model.optimizer.learning_rate = 0.0
    pred = model.predict(x, verbose=0)
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    hits = np.sum(np.argmax(pred, axis=1) == y[:, 0])
    assert hist["ctp"] == [hits, hits]
    np.testing.assert_allclose(hist["sq"], np.sum((y - pred) ** 2) / len(x), rtol=1e-5)


def test_function_metrics_average_like_mean_metric_wrapper():
    """A per-sample function returning a tensor, and a scalar one (a batch mean, counted once per
    row), against NumPy over evaluate's predictions."""
    def prob_of_label(y_true, y_pred):
        return ops.convert_to_tensor(y_pred)[np.arange(len(y_true)), np.asarray(y_true)[:, 0]]

    def batch_mean_square(y_true, y_pred):
        return ops.mean(ops.square(ops.convert_to_tensor(y_pred)))

    x, y = _data()
    model = _classifier(x, y, [prob_of_label, batch_mean_square])
    pred = model.predict(x, verbose=0).astype(np.float64)
    scores = model.evaluate(x, y, batch_size=10, verbose=0, return_dict=True)
    assert scores["prob_of_label"] == pytest.approx(np.mean(pred[np.arange(len(x)), y[:, 0]]), rel=1e-5)
    assert scores["batch_mean_square"] == pytest.approx(np.mean(pred ** 2), rel=1e-5)
    m = M.get(batch_mean_square)
    m.update_state(np.zeros((4, 1)), np.full((4, 2), 2.0))
    m.update_state(np.zeros((1, 1)), np.full((1, 2), 7.0))
    assert m.result() == pytest.approx((4 * 4.0 + 49.0) / 5)   # Keras would give (4 + 49) / 2


def test_add_weight_initial_values_and_default_reset():
    """Keras 3's add_weight alias; a variable starting at 1 keeps 1 + the summed changes; the
    default reset_state puts every variable back to its initial value; variables act in ops."""
    class OnesCount(Metric):
        def __init__(self, name="ones_count", **kwargs):
            super().__init__(name=name, **kwargs)
            self.count = self.add_weight(shape=(2,), initializer="ones", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.count.assign_add(ops.sum(ops.convert_to_tensor(y_pred), axis=0))
            self.count.assign_sub(ops.convert_to_tensor([0.5, 0.5]))

        def result(self):
            return ops.sum(self.count * 2.0)

    m = OnesCount()
    assert m.dtype == "float32" and m.count.dtype == np.float32 and m.state_size == 2
    np.testing.assert_array_equal(m.count.numpy(), [1.0, 1.0])
    m.update_state(None, np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(m.get_state(), [3.5, 5.5])            # changes, not values
    state = m.get_state()
    m.reset_state()
    np.testing.assert_array_equal(m.count.numpy(), [1.0, 1.0])
    m.set_state(state + state)                                         # two ranks' changes summed
    assert float(m(None, np.zeros((1, 2)))) == 2 * (2 + 7 + 11 - 1.0)


@pytest.mark.parametrize("aggregation", ["mean", "only_first_replica", "none"])
def test_non_sum_aggregation_is_refused_at_compile(aggregation):
    class RunningMax(Metric):
        def __init__(self, name="running_max", **kwargs):
            super().__init__(name=name, **kwargs)
            self.best = self.add_variable(shape=(), initializer="zeros", aggregation=aggregation, name="best")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.best.assign(max(float(self.best.numpy()), float(np.max(y_pred))))

        def result(self):
            return self.best.value

    x, y = _data()
    with pytest.raises(ConfigError, match=f"Metric 'running_max' declares variable 'best' with aggregation="
                                          f"'{aggregation}', .* only summed states .* under several ranks"):
        _classifier(x, y, [RunningMax()])
    with pytest.raises(ConfigError, match="Metric 'peak' declares variable 'best'"):
        M.get(RunningMax, name="peak")


def test_bad_metric_definitions_get_a_sentence():
    class NoSuper(Metric):
        def __init__(self):
            self.v = self.add_variable(shape=())

    class NoSuperNoVariables(Metric):
        def __init__(self):
            pass

    with pytest.raises(ConfigError, match=r"NoSuper.__init__ must call super\(\).__init__"):
        NoSuper()
    with pytest.raises(ConfigError, match=r"NoSuperNoVariables.__init__ must call super\(\).__init__"):
        M.get(NoSuperNoVariables())
    with pytest.raises(ConfigError, match="aggregation 'max'; valid values are"):
        ExampleMetric().add_variable(shape=(), aggregation="max", name="m")


def test_subclass_config_and_class_lookup():
    """get(cls) keeps the subclass's own default name (Keras calls cls()); the config records it."""
    assert M.get(CategoricalTruePositives).name == "categorical_true_positives"
    assert M.serialize(CategoricalTruePositives(name="tp")) == {  # Keras writes a user class's registered name
        "class_name": "CategoricalTruePositives", "config": {"name": "tp"},
        "registered_name": "CategoricalTruePositives"}
    with pytest.raises(ConfigError, match="Unknown metric class 'CategoricalTruePositives'"):
        M.deserialize(M.serialize(CategoricalTruePositives()))
