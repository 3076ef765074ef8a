"""`summary()` parameter counts equal Keras's for every layer family.

Each expected count is Keras's formula written out (and, where the issue quotes one,
the number Keras prints), so a layer that creates a wrong-sized weight fails here.
"""
import re

import pytest

from distdl.layers import (GRU, LSTM, AveragePooling2D, BatchNormalization, Bidirectional, Concatenate,
                           Conv1D, Conv2D, Dense, Dropout, Embedding, Flatten, GlobalAveragePooling1D,
                           GlobalMaxPooling2D, Input, LayerNormalization, MaxPooling1D, MaxPooling2D,
                           Permute, RepeatVector, Reshape, SimpleRNN, TimeDistributed, UpSampling2D,
                           ZeroPadding2D)
from distdl.models import Model, Sequential


pytestmark = pytest.mark.usefixtures("float32")


def _summary(model) -> str:
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _one(layer, input_shape):
    model = Sequential([layer])
    model.build(input_shape)
    return model, _summary(model)


def _row(text, layer):
    """The summary row of `layer`: (output shape text, Param # as int)."""
    m = re.search(rf"^{re.escape(layer.name)} \({type(layer).__name__}\)\s+(\(.*?\)|\[.*?\])\s+([\d,]+)",
                  text, re.M)
    assert m, text
    return m.group(1), int(m.group(2).replace(",", ""))


def lstm(units, features):
    return 4 * (features * units + units * units + units)


def gru(units, features, reset_after=True):
    return 3 * (features * units + units * units) + (2 if reset_after else 1) * 3 * units


def simple_rnn(units, features):
    return features * units + units * units + units


# (layer factory, input shape without batch, Keras's count, Keras's output shape)
CASES = {
    "lstm": (lambda: LSTM(32), (10, 16), 6272, "(None, 32)"),
    "gru": (lambda: GRU(32), (10, 16), 4800, "(None, 32)"),
    "gru_reset_before": (lambda: GRU(32, reset_after=False), (10, 16), gru(32, 16, False), "(None, 32)"),
    "simple_rnn": (lambda: SimpleRNN(32, return_sequences=True), (10, 16), 1568, "(None, 10, 32)"),
    "conv2d": (lambda: Conv2D(32, 3), (28, 28, 1), 320, "(None, 26, 26, 32)"),
    "conv2d_strided_same_nobias": (lambda: Conv2D(8, (3, 5), strides=2, padding="same", use_bias=False),
                                   (9, 7, 3), 3 * 5 * 3 * 8, "(None, 5, 4, 8)"),
    "conv1d": (lambda: Conv1D(16, 5), (20, 8), 5 * 8 * 16 + 16, "(None, 16, 16)"),
    "batch_norm": (lambda: BatchNormalization(), (64,), 256, "(None, 64)"),
    "batch_norm_on_images": (lambda: BatchNormalization(), (5, 5, 12), 4 * 12, "(None, 5, 5, 12)"),
    "layer_norm": (lambda: LayerNormalization(), (64,), 128, "(None, 64)"),
    "embedding": (lambda: Embedding(1000, 64), (10,), 64000, "(None, 10, 64)"),
    "bidirectional_lstm": (lambda: Bidirectional(LSTM(16)), (5, 8), 2 * 1600, "(None, 32)"),
    "bidirectional_gru_sum": (lambda: Bidirectional(GRU(8), merge_mode="sum"), (5, 4), 2 * gru(8, 4), "(None, 8)"),
    "dense_on_3d": (lambda: Dense(5), (10, 7), 7 * 5 + 5, "(None, 10, 5)"),
    "time_distributed_dense": (lambda: TimeDistributed(Dense(4)), (6, 3), 3 * 4 + 4, "(None, 6, 4)"),
    "max_pool_2d": (lambda: MaxPooling2D(2), (8, 6, 3), 0, "(None, 4, 3, 3)"),
    "avg_pool_2d": (lambda: AveragePooling2D(2), (8, 6, 3), 0, "(None, 4, 3, 3)"),
    "max_pool_1d": (lambda: MaxPooling1D(2), (9, 4), 0, "(None, 4, 4)"),
    "global_avg_1d": (lambda: GlobalAveragePooling1D(), (9, 4), 0, "(None, 4)"),
    "global_max_2d": (lambda: GlobalMaxPooling2D(), (5, 6, 3), 0, "(None, 3)"),
    "zero_padding": (lambda: ZeroPadding2D(1), (5, 6, 3), 0, "(None, 7, 8, 3)"),
    "upsampling": (lambda: UpSampling2D(2), (5, 6, 3), 0, "(None, 10, 12, 3)"),
    "flatten": (lambda: Flatten(), (5, 6, 3), 0, "(None, 90)"),
    "reshape": (lambda: Reshape((8, 8, 1)), (8, 8), 0, "(None, 8, 8, 1)"),
    "permute": (lambda: Permute((2, 1)), (5, 3), 0, "(None, 3, 5)"),
    "repeat_vector": (lambda: RepeatVector(4), (3,), 0, "(None, 4, 3)"),
    "dropout": (lambda: Dropout(0.5), (7,), 0, "(None, 7)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_parameter_count_and_output_shape_match_keras(case):
    make, shape, count, out_shape = CASES[case]
    layer = make()
    model, text = _one(layer, shape)
    assert _row(text, layer) == (out_shape, count)
    assert layer.count_params() == model.count_params() == count
    assert f"Total params: {count:,} " in text


def test_formulas_agree_with_the_counts_keras_prints():
    assert lstm(32, 16) == 6272 and gru(32, 16) == 4800 and simple_rnn(32, 16) == 1568
    assert lstm(16, 8) == 1600


def test_batch_norm_moving_statistics_are_non_trainable():
    layer = BatchNormalization()
    _, text = _one(layer, (64,))
    assert "Total params: 256 (1.00 KB)" in text
    assert "Trainable params: 128 (512" in text and "Non-trainable params: 128 (512" in text
    assert sorted(v.name.split("/")[-1] for v in layer.non_trainable_weights) == ["moving_mean", "moving_variance"]


def test_totals_add_up_over_a_stacked_model_with_sizes_in_bytes():
    """Embedding -> LSTM -> Dense: per-row counts sum to the totals; float32 is 4 bytes each."""
    layers = [Embedding(50, 8), LSTM(4, return_sequences=True), GlobalAveragePooling1D(), Dense(3)]
    model = Sequential(layers)
    model.build((7,))
    text = _summary(model)
    want = [50 * 8, lstm(4, 8), 0, 4 * 3 + 3]
    assert [_row(text, layer)[1] for layer in layers] == want
    total = sum(want)  # 400 + 208 + 15 = 623 -> 2,492 bytes
    assert f"Total params: {total:,} ({total * 4 / 1024:.2f} KB)" in text
    assert model.count_params() == total


def test_functional_summary_shows_connected_to():
    """Two inputs, a shared Dense and a multi-output LSTM: Keras's `layer[node][tensor]` entries."""
    a = Input((8,), name="a")
    b = Input((8,), name="b")
    shared = Dense(4, name="shared")
    seq = Input((5, 3), name="seq")
    out, _, cell = LSTM(4, return_state=True, name="rnn")(seq)
    merged = Concatenate(name="merged")([shared(a), shared(b), out, cell])
    model = Model([a, b, seq], Dense(2, name="head")(merged))
    text = _summary(model)
    header = next(line for line in text.splitlines() if line.startswith("Layer (type)"))
    assert header.split()[-2:] == ["Connected", "to"]

    def connected(name):
        line = next(line for line in text.splitlines() if line.startswith(name + " ("))
        return line.split("  ")[-1].strip()

    assert connected("a") == "-"
    assert connected("shared") == "a[0][0], b[0][0]"  # one row, both calls
    assert connected("rnn") == "seq[0][0]"           # one call, however many outputs are used
    assert connected("merged") == "shared[0][0], shared[1][0], rnn[0][0], rnn[0][2]"
    assert connected("head") == "merged[0][0]"
    assert _row(text, model.get_layer("shared"))[1] == 8 * 4 + 4
    assert _row(text, model.get_layer("rnn"))[1] == lstm(4, 3)
    assert model.count_params() == 36 + lstm(4, 3) + 16 * 2 + 2  # head: 4 x 4 merged features -> 2


def test_sequential_summary_has_no_connected_to_column():
    model, text = _one(Dense(3), (4,))
    assert "Connected to" not in text
    assert _row(text, model.layers[0]) == ("(None, 3)", 15)


def test_summary_of_an_unbuilt_sequential_prints_what_keras_3_prints(capsys):
    """Keras 3 (keras/src/utils/summary_utils.py) shows an unbuilt layer's shape as '?' and its
    parameters as '0 (unbuilt)' instead of refusing."""
    from distdl.layers import Dense
    from distdl.models import Sequential
    model = Sequential([Dense(4, name="first"), Dense(2, name="second")], name="lazy")
    model.summary()
    text = capsys.readouterr().out
    assert "first (Dense)" in text and text.count("0 (unbuilt)") == 2 and " ?" in text
    assert "Total params: 0 (0.00 B)" in text
    import numpy as np
    model.predict(np.ones((1, 3), dtype="float32"), verbose=0)
    model.summary()
    assert "Total params: 26" in capsys.readouterr().out
