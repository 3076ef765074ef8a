"""Keras 3 `.weights.h5` layout: group and dataset names, reading hand-built files, mismatch errors."""
import os

import h5py
import numpy as np
import pytest

from distdl.errors import CheckpointError
from distdl.saving.keras_format import (keras_group_names, read_keras_optimizer_vars, read_keras_weights,
                                        write_keras_weights)


def model_layers(seed=0):
    """(class_name, arrays) in Keras variable order for a model using every weighted layer kind."""
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.standard_normal(shape).astype("float32")

    return [
        ("Conv2D", [r(3, 3, 1, 4), r(4)]),
        ("BatchNormalization", [r(4), r(4), r(4), rng.random(4).astype("float32")]),
        ("MaxPooling2D", []),
        ("Flatten", []),
        ("Dense", [r(16, 8), r(8)]),
        ("Embedding", [r(50, 6)]),
        ("LSTM", [r(6, 4 * 5), r(5, 4 * 5), r(4 * 5)]),
        ("GRU", [r(5, 3 * 2), r(2, 3 * 2), r(2, 3 * 2)]),
        ("Bidirectional", [r(2, 4 * 3), r(3, 4 * 3), r(4 * 3), r(2, 4 * 3), r(3, 4 * 3), r(4 * 3)]),
        ("Dense", [r(8, 1), r(1)]),
    ]


def shapes_of(layers):
    return [(cls, [a.shape for a in arrays]) for cls, arrays in layers]


def tree(path):
    """{name: shape for datasets, None for groups} of a whole HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(
            name, tuple(obj.shape) if isinstance(obj, h5py.Dataset) else None))
    return out


def test_group_names_follow_keras_numbering():
    assert keras_group_names(["Dense", "Conv2D", "Dense", "BatchNormalization", "Dense", "SimpleRNN"]) == [
        "dense", "conv2d", "dense_1", "batch_normalization", "dense_2", "simple_rnn"]


def test_written_layout_matches_keras(tmp_path):
    path = tmp_path / "m.weights.h5"
    layers = model_layers()
    write_keras_weights(path, layers)
    t = tree(path)
    assert t == {
        "vars": None, "layers": None,
        "layers/conv2d": None, "layers/conv2d/vars": None,
        "layers/conv2d/vars/0": (3, 3, 1, 4), "layers/conv2d/vars/1": (4,),
        "layers/batch_normalization": None, "layers/batch_normalization/vars": None,
        **{f"layers/batch_normalization/vars/{i}": (4,) for i in range(4)},
        "layers/max_pooling2d": None, "layers/max_pooling2d/vars": None,
        "layers/flatten": None, "layers/flatten/vars": None,
        "layers/dense": None, "layers/dense/vars": None,
        "layers/dense/vars/0": (16, 8), "layers/dense/vars/1": (8,),
        "layers/embedding": None, "layers/embedding/vars": None, "layers/embedding/vars/0": (50, 6),
        "layers/lstm": None, "layers/lstm/vars": None, "layers/lstm/cell": None, "layers/lstm/cell/vars": None,
        "layers/lstm/cell/vars/0": (6, 20), "layers/lstm/cell/vars/1": (5, 20), "layers/lstm/cell/vars/2": (20,),
        "layers/gru": None, "layers/gru/vars": None, "layers/gru/cell": None, "layers/gru/cell/vars": None,
        "layers/gru/cell/vars/0": (5, 6), "layers/gru/cell/vars/1": (2, 6), "layers/gru/cell/vars/2": (2, 6),
        "layers/bidirectional": None, "layers/bidirectional/vars": None,
        **{f"layers/bidirectional/{d}_layer{s}": None for d in ("forward", "backward")
           for s in ("", "/vars", "/cell", "/cell/vars")},
        **{f"layers/bidirectional/{d}_layer/cell/vars/{i}": shape for d in ("forward", "backward")
           for i, shape in enumerate([(2, 12), (3, 12), (12,)])},
        "layers/dense_1": None, "layers/dense_1/vars": None,
        "layers/dense_1/vars/0": (8, 1), "layers/dense_1/vars/1": (1,),
    }
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["layers/lstm/cell/vars/1"][()], layers[6][1][1])
        np.testing.assert_array_equal(f["layers/bidirectional/backward_layer/cell/vars/0"][()], layers[8][1][3])
        assert f["layers/dense/vars/0"].dtype == np.float32
        assert f["layers/dense/vars/0"].compression is None
    assert os.listdir(tmp_path) == ["m.weights.h5"]  # written via a temp file, renamed


def test_round_trip_exact(tmp_path):
    path = tmp_path / "m.weights.h5"
    layers = model_layers()
    write_keras_weights(path, layers)
    back = read_keras_weights(path, shapes_of(layers))
    assert len(back) == len(layers)
    for (_, want), got in zip(layers, back):
        assert len(want) == len(got)
        for a, b in zip(want, got):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_reads_hand_built_file_without_groups_for_weightless_layers(tmp_path):
    """Built with h5py the way Keras lays it out, but with no groups for Flatten/Dropout."""
    path = tmp_path / "hand.weights.h5"
    k0 = np.arange(12, dtype="float64").reshape(4, 3)
    k1 = np.arange(6, dtype="float64").reshape(3, 2) * -1
    lstm = [np.full((2, 8), 0.5), np.full((2, 8), -0.5), np.arange(8.0)]
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        f["layers/dense/vars/0"] = k0
        f["layers/dense/vars/1"] = np.array([1.0, 2.0, 3.0])
        f["layers/dense_1/vars/0"] = k1
        f["layers/dense_1/vars/1"] = np.array([7.0, 8.0])
        for i, a in enumerate(lstm):
            f[f"layers/lstm/cell/vars/{i}"] = a
        f["optimizer/vars/0"] = np.array(10)  # iterations: not layer weights, ignored
    expected = [("Dense", [(4, 3), (3,)]), ("Flatten", []), ("Dropout", []), ("Dense", [(3, 2), (2,)]),
                ("LSTM", [(2, 8), (2, 8), (8,)])]
    got = read_keras_weights(path, expected)
    np.testing.assert_array_equal(got[0][0], k0)
    np.testing.assert_array_equal(got[0][1], [1.0, 2.0, 3.0])
    assert got[1] == [] and got[2] == []
    np.testing.assert_array_equal(got[3][0], k1)
    np.testing.assert_array_equal(got[3][1], [7.0, 8.0])
    for a, b in zip(got[4], lstm):
        np.testing.assert_array_equal(a, b)


def test_reads_keras_2_13_dependency_root(tmp_path):
    path = tmp_path / "old.weights.h5"
    with h5py.File(path, "w") as f:
        f["_layer_checkpoint_dependencies/dense/vars/0"] = np.ones((2, 1))
        f["_layer_checkpoint_dependencies/dense/vars/1"] = np.zeros(1)
    got = read_keras_weights(path, [("Dense", [(2, 1), (1,)])])
    np.testing.assert_array_equal(got[0][0], np.ones((2, 1)))


@pytest.fixture
def two_dense(tmp_path):
    path = tmp_path / "m.weights.h5"
    write_keras_weights(path, [("Dense", [np.zeros((4, 3)), np.zeros(3)]),
                               ("Dense", [np.zeros((3, 2)), np.zeros(2)])])
    return path


def test_wrong_shape_names_file_group_and_both_shapes(two_dense):
    with pytest.raises(CheckpointError, match=r"'.*m\.weights\.h5' dataset 'layers/dense_1/vars/0' has shape "
                                              r"\(3, 2\), but layer 1 \(Dense\) expects \(3, 5\)"):
        read_keras_weights(two_dense, [("Dense", [(4, 3), (3,)]), ("Dense", [(3, 5), (5,)])])


def test_swapped_layer_order_is_a_shape_error(two_dense):
    with pytest.raises(CheckpointError, match=r"'layers/dense/vars/0' has shape \(4, 3\), but layer 0 "
                                              r"\(Dense\) expects \(3, 2\)"):
        read_keras_weights(two_dense, [("Dense", [(3, 2), (2,)]), ("Dense", [(4, 3), (3,)])])


def test_missing_group_is_named(two_dense):
    with pytest.raises(CheckpointError, match=r"has no group 'layers/conv2d/vars' for layer 2 \(Conv2D\), "
                                              r"which needs shapes \[\(3, 3, 2, 4\), \(4,\)\]"):
        read_keras_weights(two_dense, [("Dense", [(4, 3), (3,)]), ("Dense", [(3, 2), (2,)]),
                                       ("Conv2D", [(3, 3, 2, 4), (4,)])])


def test_wrong_count_is_named(two_dense):
    with pytest.raises(CheckpointError, match=r"group 'layers/dense/vars' holds 2 arrays with shapes "
                                              r"\[\(4, 3\), \(3,\)\], but layer 0 \(Dense\) expects 1"):
        read_keras_weights(two_dense, [("Dense", [(4, 3)]), ("Dense", [(3, 2), (2,)])])


def test_weights_no_layer_takes_are_an_error(two_dense):
    with pytest.raises(CheckpointError, match=r"holds weights under 'layers/dense_1' that match no layer"):
        read_keras_weights(two_dense, [("Dense", [(4, 3), (3,)])])


def test_not_hdf5_missing_and_legacy_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_keras_weights(tmp_path / "none.weights.h5", [])
    bad = tmp_path / "bad.weights.h5"
    bad.write_text("hello")
    with pytest.raises(CheckpointError, match=r"'.*bad\.weights\.h5' is not an HDF5 file"):
        read_keras_weights(bad, [])
    legacy = tmp_path / "legacy.h5"
    with h5py.File(legacy, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        f["model_weights/dense/dense/kernel:0"] = np.zeros((2, 2))
    with pytest.raises(CheckpointError, match="legacy Keras 2 .h5 file"):
        read_keras_weights(legacy, [("Dense", [(2, 2)])])


def test_bidirectional_arrays_must_split_evenly(tmp_path):
    with pytest.raises(CheckpointError, match=r"'bidirectional' \(Bidirectional\) has 3 arrays"):
        write_keras_weights(tmp_path / "b.weights.h5", [("Bidirectional", [np.zeros(1)] * 3)])
    assert os.listdir(tmp_path) == []


def test_optimizer_vars_written_in_keras_order_and_read_back(tmp_path):
    path = tmp_path / "m.weights.h5"
    kernel, bias = np.ones((2, 3), "float32"), np.zeros(3, "float32")
    opt = [np.array(7, "int32"), np.array(0.001, "float32"),
           kernel * 0.1, kernel * 0.2, bias + 0.3, bias + 0.4]  # iterations, lr, (m, v) per variable
    write_keras_weights(path, [("Dense", [kernel, bias])], optimizer_vars=opt)
    t = tree(path)
    assert {k: v for k, v in t.items() if k.startswith("optimizer/vars/")} == {
        "optimizer/vars/0": (), "optimizer/vars/1": (), "optimizer/vars/2": (2, 3), "optimizer/vars/3": (2, 3),
        "optimizer/vars/4": (3,), "optimizer/vars/5": (3,)}
    back = read_keras_optimizer_vars(path)
    assert [a.dtype for a in back] == [a.dtype for a in opt]
    for a, b in zip(opt, back):
        np.testing.assert_array_equal(a, b)
    write_keras_weights(path, [("Dense", [kernel, bias])])
    assert read_keras_optimizer_vars(path) == [] and "optimizer" not in tree(path)
    # the layer reader ignores the optimizer group either way
    assert len(read_keras_weights(path, [("Dense", [(2, 3), (3,)])])[0]) == 2
