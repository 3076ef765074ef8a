"""distdl.ops shape, indexing and creation ops: values against NumPy, gradients against finite
differences (float64), negative axes, and the errors that name the op and the shapes."""
import numpy as np
import pytest

import distdl.ops as ops
from distdl import backend
from distdl.autodiff import Tape, backward, recording
from distdl.errors import ConfigError, ShapeError
from opcheck import check_grad

RNG = np.random.default_rng(7)


def rand(*shape):
    return RNG.standard_normal(shape)


X = rand(2, 3, 4)

# (op applied to a Tensor, the same with NumPy): value and gradient checked for each
CASES = {
    "reshape": (lambda x: ops.reshape(x, (4, -1)), lambda x: x.reshape(4, -1)),
    "transpose": (lambda x: ops.transpose(x, (2, 0, 1)), lambda x: x.transpose(2, 0, 1)),
    "expand_dims": (lambda x: ops.expand_dims(x, -1), lambda x: x[..., None]),
    "expand_dims_tuple": (lambda x: ops.expand_dims(x, (0, 2)), lambda x: np.expand_dims(x, (0, 2))),
    "squeeze": (lambda x: ops.squeeze(ops.reshape(x, (2, 1, 12, 1)), axis=-1),
                lambda x: x.reshape(2, 1, 12)),
    "squeeze_all": (lambda x: ops.squeeze(ops.reshape(x, (2, 1, 12, 1))), lambda x: x.reshape(2, 12)),
    "ravel": (ops.ravel, np.ravel),
    "broadcast_to": (lambda x: ops.broadcast_to(x[:, :1], (5, 2, 3, 4)),
                     lambda x: np.broadcast_to(x[:, :1], (5, 2, 3, 4))),
    "tile": (lambda x: ops.tile(x, (2, 1, 3)), lambda x: np.tile(x, (2, 1, 3))),
    "tile_longer": (lambda x: ops.tile(x, (2, 1, 1, 2)), lambda x: np.tile(x, (2, 1, 1, 2))),
    "tile_shorter": (lambda x: ops.tile(x, 2), lambda x: np.tile(x, 2)),
    "repeat": (lambda x: ops.repeat(x, 2, axis=-2), lambda x: np.repeat(x, 2, axis=-2)),
    "repeat_counts": (lambda x: ops.repeat(x, [0, 2, 1], axis=1), lambda x: np.repeat(x, [0, 2, 1], axis=1)),
    "repeat_flat": (lambda x: ops.repeat(x, 3), lambda x: np.repeat(x, 3)),
    "pad_constant": (lambda x: ops.pad(x, ((0, 1), (2, 0), (1, 1)), constant_values=3.0),
                     lambda x: np.pad(x, ((0, 1), (2, 0), (1, 1)), constant_values=3.0)),
    "pad_reflect": (lambda x: ops.pad(x, ((1, 1), (2, 1), (3, 2)), mode="reflect"),
                    lambda x: np.pad(x, ((1, 1), (2, 1), (3, 2)), mode="reflect")),
    "pad_symmetric": (lambda x: ops.pad(x, 2, mode="symmetric"), lambda x: np.pad(x, 2, mode="symmetric")),
    "pad_edge": (lambda x: ops.pad(x, ((0, 0), (1, 2), (0, 3)), mode="edge"),
                 lambda x: np.pad(x, ((0, 0), (1, 2), (0, 3)), mode="edge")),
    "pad_wrap": (lambda x: ops.pad(x, (1, 2), mode="wrap"), lambda x: np.pad(x, (1, 2), mode="wrap")),
    "take": (lambda x: ops.take(x, np.array([[2, 0], [-1, 2]]), axis=-1),
             lambda x: np.take(x, [[2, 0], [-1, 2]], axis=-1)),
    "take_flat": (lambda x: ops.take(x, [5, 5, 23, 0]), lambda x: np.take(x, [5, 5, 23, 0])),
    "take_along_axis": (lambda x: ops.take_along_axis(x, np.array([[[0, 3, 3]]] * 2), axis=-1),
                        lambda x: np.take_along_axis(x, np.array([[[0, 3, 3]]] * 2), axis=-1)),
    "take_along_axis_flat": (lambda x: ops.take_along_axis(x, np.array([1, 1, 7])),
                             lambda x: np.take_along_axis(x.ravel(), np.array([1, 1, 7]), 0)),
    "flip": (lambda x: ops.flip(x, axis=(0, -1)), lambda x: np.flip(x, (0, 2))),
    "flip_all": (ops.flip, np.flip),
    "roll": (lambda x: ops.roll(x, 1, axis=-1), lambda x: np.roll(x, 1, axis=-1)),
    "roll_flat": (lambda x: ops.roll(x, -5), lambda x: np.roll(x, -5)),
    "roll_tuple": (lambda x: ops.roll(x, (1, -1), axis=(1, 2)), lambda x: np.roll(x, (1, -1), axis=(1, 2))),
    "moveaxis": (lambda x: ops.moveaxis(x, (0, -1), (-1, 0)), lambda x: np.moveaxis(x, (0, 2), (2, 0))),
    "swapaxes": (lambda x: ops.swapaxes(x, 0, -1), lambda x: np.swapaxes(x, 0, 2)),
    "tril": (lambda x: ops.tril(x, -1), lambda x: np.tril(x, -1)),
    "triu": (lambda x: ops.triu(x, 1), lambda x: np.triu(x, 1)),
    "slice": (lambda x: ops.slice(x, (1, 0, 1), (1, 2, 3)), lambda x: x[1:2, 0:2, 1:4]),
    "getitem_then_concat": (lambda x: ops.concatenate([x[:, :1], x, x[:, 2:]], axis=-2),
                            lambda x: np.concatenate([x[:, :1], x, x[:, 2:]], axis=1)),
    "stack": (lambda x: ops.stack([x[0], x[1] * 2.0, x[0]], axis=-1),
              lambda x: np.stack([x[0], x[1] * 2.0, x[0]], axis=-1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_gradient(name):
    op, ref = CASES[name]
    np.testing.assert_array_equal(np.asarray(op(X.copy()).value), ref(X.copy()))
    check_grad(op, X)


def test_reshape_keeps_float32_and_is_a_tensor():
    y = ops.reshape(np.ones((2, 3), np.float32), (-1,))
    assert isinstance(y, ops.Tensor) and y.dtype == np.float32 and y.shape == (6,)


def test_concatenate_and_stack_differentiate_each_input():
    a, b = rand(2, 3), rand(2, 1)
    check_grad(lambda a, b: ops.concatenate([a, b], axis=-1), a, b)
    check_grad(lambda a, b: ops.stack([a, b * a], axis=1), a, b)


def test_split_gives_pieces_each_differentiated():
    x = rand(6, 2)
    pieces = ops.split(x, 3)
    assert [p.shape for p in pieces] == [(2, 2)] * 3
    np.testing.assert_array_equal(pieces[2].value, x[4:])
    check_grad(lambda x: ops.split(x, [1, 4], axis=0)[1] * 3.0, x)
    # two pieces used together: the gradient of each lands in its own rows
    check_grad(lambda x: ops.concatenate(ops.split(x, 2, axis=-1)[::-1], axis=0), x)


def test_slice_update_gradients_for_inputs_and_updates():
    x, u = rand(4, 5), rand(2, 3)
    y = ops.slice_update(x, (1, 2), u)
    want = x.copy()
    want[1:3, 2:5] = u
    np.testing.assert_array_equal(y.value, want)
    gx, gu = check_grad(lambda x, u: ops.slice_update(x, (1, 2), u), x, u)
    assert not gx[1:3, 2:5].any()
    assert x.tolist() == np.asarray(x).tolist()  # the input was not changed in place


def test_take_repeated_indices_add_gradients():
    tape = Tape("t")
    with recording(tape):
        x = tape.leaf(np.arange(4.0))
        y = ops.take(x, [1, 1, 1, 3])
    g = backward(tape, [(y, np.ones(4))])[x._index]
    np.testing.assert_array_equal(g, [0, 3, 0, 1])


def test_pad_statistic_modes_compute_but_are_not_differentiated():
    x = rand(3)
    np.testing.assert_allclose(ops.pad(x, 1, mode="mean").value, np.pad(x, 1, mode="mean"))
    tape = Tape("layer 'mine'")
    with recording(tape), pytest.raises(ConfigError, match="ops.pad: mode 'mean' is not differentiated"):
        ops.pad(tape.leaf(x), 1, mode="mean")
    with pytest.raises(ConfigError, match="constant_values applies only to mode 'constant'"):
        ops.pad(x, 1, mode="edge", constant_values=1)


def test_size_ndim_and_shape():
    assert ops.size(X) == 24 and ops.ndim(X) == 3 and ops.size(3.0) == 1
    assert ops.shape(X) == (2, 3, 4)   # the function, not the module distdl.ops.shape


def test_creation_dtypes_follow_keras():
    # keras/src/ops/numpy_test.py, NumpyArrayCreateOpsCorrectnessTest.test_arange: arange(3) is int32;
    # Keras's numpy backend fills zeros/ones/eye/identity/full with floatx unless given a dtype
    assert ops.zeros((2, 3)).dtype == np.float32 and ops.ones(4).dtype == np.float32
    assert ops.full((2,), 7).dtype == np.float32 and ops.eye(3, 2, k=1).dtype == np.float32
    np.testing.assert_array_equal(ops.eye(3, 4, k=1).value, np.eye(3, 4, 1))
    np.testing.assert_array_equal(ops.identity(2).value, np.eye(2))
    assert ops.arange(5).dtype == np.int32 and ops.arange(1, 2.5, 0.5).dtype == np.float32
    np.testing.assert_array_equal(ops.arange(2, 9, 3).value, [2, 5, 8])
    np.testing.assert_allclose(ops.linspace(0, 1, 5).value, [0, 0.25, 0.5, 0.75, 1])
    values, step = ops.linspace(0, 1, 4, endpoint=False, retstep=True)
    assert step == 0.25 and values.shape == (4,)
    x = np.ones((2, 2), np.int64)
    assert ops.zeros_like(x).dtype == np.int64 and ops.full_like(x, 3, dtype="float32").dtype == np.float32
    np.testing.assert_array_equal(ops.ones_like(x).value, x)
    backend.set_floatx("float64")
    try:
        assert ops.zeros(1).dtype == np.float64 and ops.arange(0.5).dtype == np.float64
    finally:
        backend.set_floatx("float32")


def test_creation_ops_are_constants():
    tape = Tape("t")
    with recording(tape):
        x = tape.leaf(np.ones(3))
        assert ops.zeros_like(x)._tape is None and ops.full_like(x, 2.0)._tape is None


@pytest.mark.parametrize("call, match", [
    (lambda: ops.reshape(X, (5, -1)), r"ops.reshape: cannot reshape an input of shape \(2, 3, 4\) \(24 values\)"),
    (lambda: ops.squeeze(X, axis=1), r"ops.squeeze: axis 1 of an input of shape \(2, 3, 4\) has length 3"),
    (lambda: ops.swapaxes(X, 0, 3), r"ops.swapaxes: axis 3 is out of range for an input of rank 3"),
    (lambda: ops.concatenate([X, X[:, :, :1]], axis=1), r"ops.concatenate: shapes .* do not fit together"),
    (lambda: ops.stack([X, X[:1]]), r"ops.stack: all tensors must have the same shape"),
    (lambda: ops.split(X, 2, axis=1), r"ops.split: axis 1 of length 3 .* does not divide into 2"),
    (lambda: ops.broadcast_to(X, (3, 3, 4)), r"ops.broadcast_to: an input of shape \(2, 3, 4\) cannot"),
    (lambda: ops.take(X, [4], axis=-1), r"ops.take: an index in 4..4 is out of range for axis -1 of length 4"),
    (lambda: ops.take_along_axis(X, np.zeros((2, 3), int), axis=1), r"ops.take_along_axis: indices of shape"),
    (lambda: ops.slice(X, (0, 2, 0), (1, 2, 4)), r"ops.slice: a box of shape \(1, 2, 4\) at start indices"),
    (lambda: ops.tril(np.ones(3)), r"ops.tril: needs an input of rank 2 or more"),
    (lambda: ops.moveaxis(X, (0, 1), 2), r"ops.moveaxis: source \(0, 1\) and destination 2"),
])
def test_errors_name_the_op_and_shapes(call, match):
    with pytest.raises(ShapeError, match=match):
        call()
