"""distdl.utils beyond to_categorical: pad_sequences, normalize, timeseries_dataset_from_array,
Progbar and plot_model, with the numbers of Keras's own tests (keras/src/utils/sequence_utils_test.py,
numerical_utils_test.py, timeseries_dataset_utils_test.py, progbar_test.py)."""
import io
import shutil
import stat
import sys

import numpy as np
import pytest

from distdl import layers, models, utils
from distdl.errors import ConfigError, ShapeError

# ----- pad_sequences (sequence_utils_test.py) -------------------------------------------------


def test_pad_sequences_int():
    a = [[1], [1, 2], [1, 2, 3]]
    assert utils.pad_sequences(a, maxlen=3, padding="pre").tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert utils.pad_sequences(a, maxlen=3, padding="post").tolist() == [[1, 0, 0], [1, 2, 0], [1, 2, 3]]
    assert utils.pad_sequences(a, maxlen=2, truncating="pre").tolist() == [[0, 1], [1, 2], [2, 3]]
    assert utils.pad_sequences(a, maxlen=2, truncating="post").tolist() == [[0, 1], [1, 2], [1, 2]]
    assert utils.pad_sequences(a, maxlen=3, value=1).tolist() == [[1, 1, 1], [1, 1, 2], [1, 2, 3]]
    out = utils.pad_sequences(a)
    assert out.dtype == np.int32 and out.shape == (3, 3)  # maxlen defaults to the longest


def test_pad_sequences_float():
    a = [[1.2], [1.2, 2.3], [1.2, 2.3, 3.4]]
    close = np.testing.assert_allclose
    close(utils.pad_sequences(a, maxlen=3, padding="pre", dtype="float32"), [[0, 0, 1.2], [0, 1.2, 2.3], [1.2, 2.3, 3.4]])
    close(utils.pad_sequences(a, maxlen=3, padding="post", dtype="float32"), [[1.2, 0, 0], [1.2, 2.3, 0], [1.2, 2.3, 3.4]])
    close(utils.pad_sequences(a, maxlen=2, truncating="pre", dtype="float32"), [[0, 1.2], [1.2, 2.3], [2.3, 3.4]])
    close(utils.pad_sequences(a, maxlen=2, truncating="post", dtype="float32"), [[0, 1.2], [1.2, 2.3], [1.2, 2.3]])
    close(utils.pad_sequences(a, maxlen=3, value=1, dtype="float32"), [[1, 1, 1.2], [1, 1.2, 2.3], [1.2, 2.3, 3.4]])


def test_pad_sequences_str():
    a = [["1"], ["1", "2"], ["1", "2", "3"]]
    assert utils.pad_sequences(a, maxlen=3, padding="pre", value="pad", dtype=object).tolist() == [
        ["pad", "pad", "1"], ["pad", "1", "2"], ["1", "2", "3"]]
    assert utils.pad_sequences(a, maxlen=3, padding="post", value="pad", dtype="<U3").tolist() == [
        ["1", "pad", "pad"], ["1", "2", "pad"], ["1", "2", "3"]]
    assert utils.pad_sequences(a, maxlen=2, truncating="pre", value="pad", dtype=object).tolist() == [
        ["pad", "1"], ["1", "2"], ["2", "3"]]
    with pytest.raises(ConfigError, match="dtype int32 cannot hold the string value 'pad'"):
        utils.pad_sequences(a, maxlen=2, truncating="post", value="pad")


def test_pad_sequences_vector():
    a = [[[1, 1]], [[2, 1], [2, 2]], [[3, 1], [3, 2], [3, 3]]]
    assert utils.pad_sequences(a, maxlen=3, padding="pre").tolist() == [
        [[0, 0], [0, 0], [1, 1]], [[0, 0], [2, 1], [2, 2]], [[3, 1], [3, 2], [3, 3]]]
    assert utils.pad_sequences(a, maxlen=3, padding="post").tolist() == [
        [[1, 1], [0, 0], [0, 0]], [[2, 1], [2, 2], [0, 0]], [[3, 1], [3, 2], [3, 3]]]
    assert utils.pad_sequences(a, maxlen=2, truncating="pre").tolist() == [
        [[0, 0], [1, 1]], [[2, 1], [2, 2]], [[3, 2], [3, 3]]]
    assert utils.pad_sequences(a, maxlen=2, truncating="post").tolist() == [
        [[0, 0], [1, 1]], [[2, 1], [2, 2]], [[3, 1], [3, 2]]]
    assert utils.pad_sequences(a, maxlen=3, value=1).tolist() == [
        [[1, 1], [1, 1], [1, 1]], [[1, 1], [2, 1], [2, 2]], [[3, 1], [3, 2], [3, 3]]]


def test_pad_sequences_bad_input_is_named():
    with pytest.raises(ConfigError, match="padding must be 'pre' or 'post'; got 'middle'"):
        utils.pad_sequences([[1]], padding="middle")
    with pytest.raises(ConfigError, match="truncating must be"):
        utils.pad_sequences([[1]], truncating="both")
    with pytest.raises(ConfigError, match=r"sequences\[1\] is not a sequence"):
        utils.pad_sequences([[1], 5])
    with pytest.raises(ShapeError, match=r"sequences\[1\] have shape \(3,\), the first sequence's have \(2,\)"):
        utils.pad_sequences([[[1, 1]], [[1, 2, 3]]])
    assert utils.pad_sequences([[], [4]], maxlen=2).tolist() == [[0, 0], [0, 4]]


# ----- normalize (numerical_utils_test.py) ------------------------------------------------------

@pytest.mark.parametrize("order", [1, 2, 3])
def test_normalize_by_order(order):
    x = np.random.default_rng(1337).uniform(size=(3, 3))
    norm = np.linalg.norm(x, order, axis=-1)
    np.testing.assert_allclose(utils.normalize(x, axis=-1, order=order), x / norm[:, None])


def test_normalize_axis_zero_and_a_zero_row():
    x = np.array([[3.0, 0.0, 12.0], [4.0, 5.0, 0.0]])
    out = utils.normalize(x, axis=0)
    np.testing.assert_allclose(out, [[0.6, 0.0, 1.0], [0.8, 1.0, 0.0]])
    np.testing.assert_array_equal(utils.normalize(np.zeros((2, 3))), np.zeros((2, 3)))  # norm 0 divides by 1


# ----- timeseries_dataset_from_array (timeseries_dataset_utils_test.py) -------------------------

def _check_windows(dataset, n_batches, last_size, length, start_of, rate=1):
    batches = list(dataset)
    assert len(batches) == len(dataset) == n_batches
    for i, (x, y) in enumerate(batches):
        assert x.shape == ((5 if i < n_batches - 1 else last_size), length)
        np.testing.assert_array_equal(x[:, 0] * 2, y)
        for j in range(len(x)):
            s = start_of(i, j)
            np.testing.assert_array_equal(x[j], np.arange(s, s + length * rate, rate))


def test_timeseries_basics_sampling_rate_and_stride():
    data = np.arange(100)
    ds = utils.timeseries_dataset_from_array(data, data * 2, sequence_length=9, batch_size=5)
    _check_windows(ds, 19, 2, 9, lambda i, j: i * 5 + j)
    ds = utils.timeseries_dataset_from_array(data, data * 2, sequence_length=9, batch_size=5, sampling_rate=2)
    _check_windows(ds, 17, 4, 9, lambda i, j: i * 5 + j, rate=2)
    ds = utils.timeseries_dataset_from_array(data, data * 2, sequence_length=9, batch_size=5, sequence_stride=3)
    _check_windows(ds, 7, 1, 9, lambda i, j: i * 15 + j * 3)


def test_timeseries_regression_and_no_targets():
    data = np.arange(10)
    ds = utils.timeseries_dataset_from_array(data, data[3:], sequence_length=3, batch_size=1)
    assert len(ds) == 7
    for i, (x, y) in enumerate(ds):
        assert x.tolist() == [list(range(i, i + 3))] and y.tolist() == [i + 3]
    ds = utils.timeseries_dataset_from_array(np.arange(50), None, sequence_length=10, batch_size=5)
    batches = list(ds)
    assert len(batches) == 9 and batches[-1].shape == (1, 10) and batches[0].shape == (5, 10)
    np.testing.assert_array_equal(batches[8][0], np.arange(40, 50))
    single = utils.timeseries_dataset_from_array(np.arange(6), np.arange(6), sequence_length=2, batch_size=None)
    assert len(single) == 5 and single[4][0].tolist() == [4, 5] and single[4][1] == 4


def test_timeseries_start_and_end_index():
    ds = utils.timeseries_dataset_from_array(np.arange(100), None, sequence_length=9, batch_size=5, sequence_stride=3,
                                             sampling_rate=2, start_index=10, end_index=90)
    values = np.concatenate(list(ds))
    assert values.min() > 9 and values.max() < 90  # Keras's check
    # 80 steps hold 80 - 8 * 2 = 64 window starts, every 3rd taken: 22 windows, the first at 10
    assert values.shape == (22, 9) and values[0].tolist() == list(range(10, 28, 2))


def test_timeseries_shuffle_is_seeded_and_reshuffles_each_pass():
    data = np.arange(10)
    ds = utils.timeseries_dataset_from_array(data, data * 2, sequence_length=5, batch_size=1, shuffle=True, seed=123)
    first = [x[0].tolist() for x, _ in ds]
    second = [x[0].tolist() for x, _ in ds]
    assert sorted(first) == [list(range(s, s + 5)) for s in range(6)]
    assert first != [list(range(s, s + 5)) for s in range(6)] and second != first
    again = utils.timeseries_dataset_from_array(data, data * 2, sequence_length=5, batch_size=1, shuffle=True, seed=123)
    assert [x[0].tolist() for x, _ in again] == first
    assert all((x[:, 0] * 2 == y).all() for x, y in again)


@pytest.mark.parametrize("kwargs, name", [({"start_index": -1}, "start_index"), ({"start_index": 11}, "start_index"),
                                          ({"end_index": -1}, "end_index"), ({"end_index": 11}, "end_index"),
                                          ({"sampling_rate": 0}, "sampling_rate"),
                                          ({"sequence_stride": 0}, "sequence_stride")])
def test_timeseries_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ConfigError, match=f"{name} must be"):
        utils.timeseries_dataset_from_array(np.arange(10), None, 3, **kwargs)


# ----- Progbar (progbar_test.py) ---------------------------------------------------------------

@pytest.mark.parametrize("stateful, stateless, shown", [([], None, "1.0000"), (["value"], None, "2.0000"),
                                                        (None, [], "2.0000"), (None, ["value"], "1.0000")])
def test_progbar_stateful_and_stateless_values(stateful, stateless, shown):
    out = io.StringIO()
    bar = utils.Progbar(3, stateful_metrics=stateful, stateless_metrics=stateless, interval=0.0, verbose=1,
                        stream=out, line_interval=0.0)
    bar.update(1, values=[("value", 0.0)])
    bar.update(2, values=[("value", 2.0)])
    assert out.getvalue().splitlines()[-1].endswith(f"value: {shown}")


def test_progbar_takes_keras_positional_arguments_arrays_and_a_zero_target():
    out = io.StringIO()
    bar = utils.Progbar(1, 10, 1, 0.0, stream=out)  # target, width, verbose, interval
    bar.update(1, values=[("values", [0.0, 1.0, 2.0])], finalize=True)
    assert out.getvalue().startswith("1/1 " + "━" * 10) and "values: 1.0000" in out.getvalue()
    for verbose in (1, 2):
        utils.Progbar(0, verbose=verbose, stream=io.StringIO()).update(0, finalize=True)
    with pytest.raises(ConfigError, match="only one of stateful_metrics and stateless_metrics"):
        utils.Progbar(1, stateful_metrics=[], stateless_metrics=[])


def test_progbar_logger_and_the_utility_are_one_class():
    from distdl.callbacks import progress
    assert progress.Progbar is utils.Progbar


# ----- plot_model ------------------------------------------------------------------------------

def _functional():
    inputs = layers.Input((4,), name="x")
    a = layers.Dense(3, name="left")(inputs)
    b = layers.Dense(3, name="right")(inputs)
    return models.Model(inputs, layers.Add(name="sum")([a, b]), name="fork")


def test_model_to_dot_has_the_graph_edges():
    text = utils.model_to_dot(_functional(), show_shapes=True)
    for edge in ('"x" -> "left"', '"x" -> "right"', '"left" -> "sum"', '"right" -> "sum"'):
        assert edge in text
    assert text.count("->") == 4 and "output: (None, 3)" in text
    seq = models.Sequential([layers.Input((2,)), layers.Dense(2, name="a"), layers.Dense(1, name="b")])
    text = utils.model_to_dot(seq, show_shapes=True, show_layer_names=True)
    assert '"a" -> "b"' in text and text.count("->") == 1
    assert '"b" [label="b (Dense)\\noutput: (None, 1)"];' in text  # DOT's line break inside the label


def test_plot_model_runs_dot_with_an_argument_list(tmp_path, monkeypatch):
    """A stand-in `dot` on PATH records its arguments and copies its standard input to the -o file."""
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\n"
                    "open(args[args.index('-o') + 1], 'wb').write(b' '.join(a.encode() for a in args) + b'\\n' + sys.stdin.buffer.read())\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(fake.parent))
    target = tmp_path / "my model; rm -rf x.svg"  # a shell would split this name
    assert utils.plot_model(_functional(), to_file=str(target)) == str(target)
    head, _, body = target.read_bytes().partition(b"\n")
    assert head.decode() == f"-Tsvg -o {target}" and b'"left" -> "sum"' in body
    utils.plot_model(_functional(), to_file=tmp_path / "plain")
    assert (tmp_path / "plain").read_bytes().startswith(b"-Tpng")


def test_plot_model_without_dot_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImportError, match="plot_model needs Graphviz's `dot` program on PATH"):
        utils.plot_model(_functional(), to_file=tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_plot_model_writes_a_png_with_graphviz(tmp_path):
    path = utils.plot_model(_functional(), to_file=tmp_path / "model.png", show_shapes=True, show_layer_names=True)
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# ----- what Keras's utils also export ----------------------------------------------------------

def test_custom_object_helpers_and_json_round_trip_exist():
    assert callable(utils.register_keras_serializable) and callable(utils.custom_object_scope)
    model = _functional()
    again = models.model_from_json(model.to_json())
    assert [l.name for l in again.layers] == [l.name for l in model.layers]
    x = np.ones((2, 4), "float32")
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0))
