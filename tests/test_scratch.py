"""The scratch allocator's lifetime rule (distdl/layers/scratch.py) and what it must guarantee:
each call of a layer called twice per step backpropagates with its own buffers, inference
outputs are the caller's, and predicts of other batch sizes between train steps change nothing."""
import numpy as np
import pytest

from distdl.layers import (GRU, LSTM, Add, BatchNormalization, Bidirectional, Conv2D, Dense, Input,
                           MaxPooling2D, SimpleRNN, TimeDistributed)
from distdl.layers.scratch import Scratch
from distdl.models import Model, Sequential
from distdl.utils import set_random_seed


# ----- the rule itself ---------------------------------------------------------------------
def test_a_key_gives_the_same_buffer_until_its_shape_or_dtype_changes():
    s = Scratch()
    a = s.get("y", (2, 3), np.float32)
    assert s.get("y", (2, 3), np.float32) is a            # the next forward reuses it
    assert s.get("z", (2, 3), np.float32) is not a        # another key, another buffer
    a[...] = 7
    b = s.get("y", (4, 3), np.float32)                     # another shape replaces it...
    assert b is not a and b.shape == (4, 3) and np.all(a == 7)   # ...and leaves the old one intact
    assert s.get("y", (4, 3), np.float64) is not b         # so does another dtype
    assert s.get("y", (4, 3), np.float64).flags.c_contiguous


def test_each_call_slot_has_its_own_buffers_and_keeps_them():
    s = Scratch()
    first = s.get("y", (2,), np.float32)
    s.select(2)
    assert s.slot == 2
    third = s.get("y", (2,), np.float32)
    assert third is not first
    s.select(0)
    assert s.get("y", (2,), np.float32) is first
    s.select(2)
    assert s.get("y", (2,), np.float32) is third


def test_outputs_are_scratch_in_training_and_new_arrays_in_inference():
    s = Scratch()
    y = s.output("y", (3,), np.float32, training=True)
    assert s.output("y", (3,), np.float32, training=True) is y
    assert s.get("y", (3,), np.float32) is y
    p = s.output("y", (3,), np.float32, training=False)
    assert p is not y and s.output("y", (3,), np.float32, training=False) is not p
    assert s.get("y", (3,), np.float32) is y             # inference leaves the slot's buffer alone


def test_a_training_forward_reuses_last_steps_output_buffer():
    """The point of the rule: once shapes settle, a training step allocates no outputs. An eager
    call (`layer(x, training=True)`, user code) hands out a copy the user may keep."""
    layer = Conv2D(4, 3, padding="same", activation="relu")
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(np.float32)
    e1 = layer(x, training=True)  # builds the layer
    y1 = layer.forward(x, training=True)
    y2 = layer.forward(x, training=True)
    assert np.shares_memory(y1, y2)
    e2 = layer(2 * x, training=True)
    assert not np.shares_memory(e1, e2) and not np.shares_memory(e2, y2)
    np.testing.assert_array_equal(e1, layer(x, training=True))


# ----- layers called more than once per step -------------------------------------------------
def _dense():
    return Dense(5, activation="tanh", dtype="float64")


def _conv():  # im2col, padded, relu
    return Conv2D(4, 3, padding="same", activation="relu", dtype="float64")


def _winograd():  # 3x3 stride 1 with >= 16 channels and 8 filters
    return Conv2D(8, 3, padding="same", activation="relu", dtype="float64")


def _pool():  # overlapping windows: backward reads the cached padded input
    return MaxPooling2D(3, strides=2, padding="same", dtype="float64")


def _bn():
    return BatchNormalization(dtype="float64")


def _time_distributed():
    return TimeDistributed(Dense(5, activation="tanh", dtype="float64"), dtype="float64")


def _bidirectional():
    return Bidirectional(LSTM(4, return_sequences=True, dtype="float64"), dtype="float64")


LAYERS = {
    "dense": (_dense, (6,)), "conv": (_conv, (6, 5, 3)), "winograd": (_winograd, (6, 5, 16)),
    "pool": (_pool, (7, 6, 3)), "batchnorm": (_bn, (4, 3)),
    "simple_rnn": (lambda: SimpleRNN(4, return_sequences=True, dtype="float64"), (5, 3)),
    "lstm": (lambda: LSTM(4, return_sequences=True, dtype="float64"), (5, 3)),
    "gru": (lambda: GRU(4, return_sequences=True, dtype="float64"), (5, 3)),
    "time_distributed": (_time_distributed, (4, 3)), "bidirectional": (_bidirectional, (5, 3)),
}


def _two_calls(make, shape, shared: bool):
    """Model([a, b], f(a) + g(b)) with f = g one shared layer, or two layers with equal weights."""
    set_random_seed(0)
    a, b = Input(shape=shape, dtype="float64"), Input(shape=shape, dtype="float64")
    f = make()
    g = f if shared else make()
    model = Model([a, b], Add(dtype="float64")([f(a), g(b)]))
    if not shared:
        g.set_weights(f.get_weights())
    return model, f, g


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_layer_called_twice_per_step_backpropagates_each_call_with_its_own_buffers(name):
    """A shared layer's gradients are the sums of two separate layers' with the same weights, over
    two steps (the second reuses the first step's buffers); were the calls' buffers one, the
    second call's forward would overwrite what the first call's backward reads."""
    make, shape = LAYERS[name]
    shared, s, _ = _two_calls(make, shape, True)
    twin, f, g = _two_calls(make, shape, False)
    rng = np.random.default_rng(1)
    for _ in range(2):
        xa, xb = rng.standard_normal((2, 3) + shape)
        r = rng.standard_normal((3,) + shared.output_shapes[0])
        y = shared.executor.forward([xa, xb], training=True)[0].copy()
        np.testing.assert_allclose(y, twin.executor.forward([xa, xb], training=True)[0], rtol=1e-9, atol=1e-12)
        shared.executor.backward([r])
        twin.executor.backward([r])
        for vs, vf, vg in zip(s.trainable_weights, f.trainable_weights, g.trainable_weights):
            np.testing.assert_allclose(vs.grad, vf.grad + vg.grad, rtol=1e-9, atol=1e-12)


def _sequential():
    set_random_seed(3)
    model = Sequential([Input((8, 8, 3)), Conv2D(16, 3, padding="same", activation="relu"),
                        BatchNormalization(), Conv2D(8, 3, activation="relu"), MaxPooling2D(2),
                        TimeDistributed(Dense(6)), TimeDistributed(LSTM(5)), GRU(4), Dense(3),
                        BatchNormalization()])   # its inference output would be scratch, were it not new
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_predict_with_another_batch_size_between_train_steps_changes_nothing():
    """Inference with other shapes between steps, in scratch's slots, leaves training bitwise alone;
    and each predict batch's output survives the next batch (predict keeps them all)."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 8, 8, 3)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32)
    plain, probed = _sequential(), _sequential()
    predicted = []
    for epoch in range(2):
        plain.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        probed.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        predicted.append(probed.predict(x[:7], batch_size=3, verbose=0))
    for a, b in zip(plain.get_weights(), probed.get_weights()):
        np.testing.assert_array_equal(a, b)
    whole = probed.predict(x[:7], batch_size=7, verbose=0)
    np.testing.assert_allclose(probed.predict(x[:7], batch_size=3, verbose=0), whole, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(predicted[0], predicted[1])   # the weights moved in between


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_inference_outputs_are_the_callers_to_keep(name):
    make, shape = LAYERS[name]
    layer = make()
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((2, 1) + shape)   # batch of one: no layer may return a view of its scratch
    y1 = layer(x1)
    kept = y1.copy()
    layer(x2)
    np.testing.assert_array_equal(y1, kept)


@pytest.mark.parametrize("make", [SimpleRNN, GRU], ids=["simple_rnn", "gru"])
def test_a_returned_sequence_is_never_a_view_of_the_states_backward_reads(make):
    """With one sample, (T, 1, u) states transposed are contiguous: a sequence returned as that view
    had its masked steps zeroed in the states too (zero_output_for_mask), and backward then read
    zeros. Per-sample gradients must add up to the batch's."""
    rng = np.random.default_rng(6)
    x, r = rng.standard_normal((2, 2, 4, 3))
    mask = np.array([[True, False, True, True], [True, True, True, True]])
    layer = make(3, return_sequences=True, zero_output_for_mask=True, dtype="float64")
    layer(x[:1])

    def grads(rows):
        layer.forward(x[rows], training=True, mask=mask[rows])
        layer.backward(r[rows])
        return [v.grad.copy() for v in layer.trainable_weights]
    for g0, g1, both in zip(grads(slice(0, 1)), grads(slice(1, 2)), grads(slice(0, 2))):
        np.testing.assert_allclose(g0 + g1, both, rtol=1e-10, atol=1e-12)


def test_winograd_keeps_one_set_of_chunk_buffers_for_full_chunks_and_one_for_a_short_last_chunk(monkeypatch):
    """Batches whose last chunks differ in size replace the short chunk's buffers, never add more."""
    from distdl.layers import winograd
    layer = _winograd()
    rng = np.random.default_rng(7)
    layer(rng.standard_normal((1, 6, 5, 16)))
    monkeypatch.setattr(winograd, "_CHUNK_BYTES", 4 * 16 * 3 * 3 * (16 + 8) * 2 * 4)  # 4 images a chunk
    counts = []
    for n in (5, 6, 7, 8):
        layer.forward(rng.standard_normal((n, 6, 5, 16)), training=True)
        assert layer._wino.step == 4
        layer.backward(rng.standard_normal((n, 6, 5, 8)))
        counts.append(len(layer.scratch._bufs))
    assert counts[0] == counts[1] == counts[2] == counts[3]
