"""Keras 3 masking: Embedding(mask_zero=True) and Masking as sources, propagation through the
executors, and SimpleRNN / LSTM / GRU / Bidirectional skipping masked steps, forward and backward."""
import numpy as np
import pytest

from distdl import utils
from distdl.errors import ShapeError
from distdl.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, Flatten, Input, Masking,
                           SimpleRNN, TimeDistributed)
from distdl.layers.base import deserialize, serialize
from distdl.models import Model, Sequential
from gradcheck import numeric_grad, rel_error

F64 = "float64"
RNNS = [
    lambda **k: SimpleRNN(3, dtype=F64, **k),
    lambda **k: SimpleRNN(3, activation="relu", dtype=F64, **k),
    lambda **k: LSTM(3, dtype=F64, **k),                                    # fused default step
    lambda **k: LSTM(3, recurrent_activation="hard_sigmoid", dtype=F64, **k),
    lambda **k: GRU(3, dtype=F64, **k),
    lambda **k: GRU(3, reset_after=False, dtype=F64, **k),
]
IDS = ["simple", "simple-relu", "lstm", "lstm-generic", "gru", "gru-reset-before"]
# padding at the end, padding at the start, a fully masked sample, a gap in the middle
MASK = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 1, 1, 0]], dtype=bool)


def built(layer, shape, seed=0):
    layer.ensure_built(shape)
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(rng.normal(0, 0.5, v.shape))
    return layer


def check_masked(layer, x, mask, training=True, tol=1e-6):
    """Float64 finite differences for inputs and weights of sum(y * r), with a mask."""
    rng = np.random.default_rng(1)
    y = layer.forward(x, training, mask=mask)
    ys = y if isinstance(y, list) else [y]
    rs = [rng.standard_normal(a.shape) for a in ys]

    def loss():
        out = layer.forward(x, training, mask=mask)
        return float(sum(np.sum(o * r) for o, r in zip(out if isinstance(out, list) else [out], rs)))

    loss()
    dx = layer.backward(rs if isinstance(y, list) else rs[0])
    grads = [v.grad.copy() for v in layer.trainable_weights]
    assert rel_error(dx, numeric_grad(loss, x)) < tol, f"input gradient of {layer.name}"
    assert not np.any(dx[~mask]), "masked steps get no input gradient"
    for v, g in zip(layer.trainable_weights, grads):
        assert rel_error(g, numeric_grad(loss, v.value)) < tol, f"gradient of {v.name}"


# ----- sources -----------------------------------------------------------------------
def test_embedding_mask_zero_makes_the_mask():
    emb = Embedding(5, 2, mask_zero=True)
    idx = np.array([[3, 1, 0], [0, 0, 4]])
    assert emb.supports_masking and emb.creates_mask
    np.testing.assert_array_equal(emb.compute_mask(idx, None), idx != 0)
    plain = Embedding(5, 2)
    assert not plain.supports_masking and plain.compute_mask(idx, None) is None


def test_masking_layer_zeroes_masked_steps_and_round_trips():
    layer = Masking(mask_value=-1.0, dtype=F64)
    x = np.array([[[1.0, -1.0], [-1.0, -1.0], [0.0, 2.0]]])
    y = layer(x)
    np.testing.assert_array_equal(y, [[[1.0, -1.0], [0.0, 0.0], [0.0, 2.0]]])
    np.testing.assert_array_equal(layer.compute_mask(x, None), [[True, False, True]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[[1, 1], [0, 0], [1, 1]]])
    spec = serialize(layer)
    assert spec["class_name"] == "Masking" and spec["config"]["mask_value"] == -1.0
    assert serialize(deserialize(spec)) == spec


def test_rnn_config_keeps_zero_output_for_mask():
    spec = serialize(LSTM(2, zero_output_for_mask=True))
    assert spec["config"]["zero_output_for_mask"] is True
    assert deserialize(spec).zero_output_for_mask


# ----- recurrent consumers: exact gradients ----------------------------------------------
@pytest.mark.parametrize("make", RNNS, ids=IDS)
@pytest.mark.parametrize("opts", [dict(), dict(return_sequences=True), dict(go_backwards=True),
                                  dict(return_sequences=True, go_backwards=True, zero_output_for_mask=True),
                                  dict(return_state=True, zero_output_for_mask=True)])
def test_masked_gradients(make, opts):
    layer = built(make(**opts), (5, 2))
    check_masked(layer, np.random.default_rng(2).normal(size=(4, 5, 2)), MASK)


@pytest.mark.parametrize("make", [RNNS[2], RNNS[3], RNNS[4]], ids=["lstm", "lstm-generic", "gru"])
def test_masked_gradients_with_dropout(make):
    layer = built(make(dropout=0.3, recurrent_dropout=0.4, return_sequences=True), (5, 2))
    check_masked(layer, np.random.default_rng(3).normal(size=(4, 5, 2)), MASK)


@pytest.mark.parametrize("opts", [dict(), dict(return_sequences=True, merge_mode=None),
                                  dict(return_state=True, merge_mode="sum")])
def test_masked_bidirectional_gradients(opts):
    merge = opts.pop("merge_mode", "concat")
    layer = built(Bidirectional(LSTM(2, dtype=F64, **opts), merge_mode=merge, dtype=F64), (5, 2))
    check_masked(layer, np.random.default_rng(4).normal(size=(4, 5, 2)), MASK)


# ----- the key property: padding changes nothing ------------------------------------------
LENGTHS = [5, 3, 1, 4]


def _length_mask(pre):
    """(4, 5) mask of LENGTHS valid steps per row, padded at the start (pre) or the end."""
    mask = np.zeros((4, 5), bool)
    for b, n in enumerate(LENGTHS):
        mask[b, 5 - n:] = pre
        mask[b, :n] |= not pre
    return mask


def _padded(rng, pre):
    x, mask = rng.normal(size=(4, 5, 2)), _length_mask(pre)
    x[~mask] = 0.0
    return x, mask


def _unpadded(x, mask, b):
    return x[b:b + 1][:, mask[b]]


@pytest.mark.parametrize("make", RNNS, ids=IDS)
@pytest.mark.parametrize("pre", [False, True], ids=["post", "pre"])
@pytest.mark.parametrize("backwards", [False, True], ids=["fwd", "bwd"])
def test_padded_batch_matches_unpadded_sequences(make, pre, backwards):
    rng = np.random.default_rng(5)
    layer = built(make(go_backwards=backwards, return_state=True), (5, 2))
    x, mask = _padded(rng, pre)
    outs = layer.forward(x, True, mask=mask)
    r = [rng.normal(size=o.shape) for o in outs]
    layer.backward(r)
    padded = [v.grad.copy() for v in layer.trainable_weights]
    summed = [np.zeros_like(g) for g in padded]
    for b in range(4):
        got = layer.forward(_unpadded(x, mask, b), True)
        for o, ref in zip(got, outs):
            np.testing.assert_allclose(o[0], ref[b], rtol=1e-12, atol=1e-14)
        layer.backward([ri[b:b + 1] for ri in r])
        for s, v in zip(summed, layer.trainable_weights):
            s += v.grad
    for g, s in zip(padded, summed):
        np.testing.assert_allclose(g, s, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("zero", [False, True])
def test_sequence_outputs_at_masked_steps_follow_keras(zero):
    layer = built(GRU(3, return_sequences=True, zero_output_for_mask=zero, dtype=F64), (5, 2))
    x = np.random.default_rng(6).normal(size=(4, 5, 2))
    y = layer.forward(x, mask=MASK)
    for b in range(4):
        prev = np.zeros(3)
        for t in range(5):
            if MASK[b, t]:
                prev = y[b, t]
            else:   # the previous output carried over, or zeros
                np.testing.assert_array_equal(y[b, t], 0.0 if zero else prev)
    assert np.array_equal(layer.forward(x, mask=np.ones((4, 5), bool)), layer.forward(x))


def test_bad_mask_shape_is_one_sentence():
    layer = built(LSTM(2, name="seq"), (5, 2))
    with pytest.raises(ShapeError, match=r"'seq'.*mask of shape \(4, 3\)"):
        layer.forward(np.zeros((4, 5, 2), np.float32), mask=np.ones((4, 3), bool))


# ----- executors ---------------------------------------------------------------------------
def _tokens(rng, pre=False):
    ids = rng.integers(1, 9, size=(4, 5))
    ids[~_length_mask(pre)] = 0
    return ids


def _shift(pre_ids):
    """The same valid tokens as `pre_ids` (padded at the start), padded at the end."""
    return np.array([np.concatenate([r[r != 0], np.zeros(np.sum(r == 0), r.dtype)]) for r in pre_ids])


def test_sequential_text_model_ignores_padding():
    utils.set_random_seed(3)  # fixed weights: the unmasked check below must not depend on test order
    pre = _tokens(np.random.default_rng(7), pre=True)
    post = _shift(pre)
    layers = [Input((5,)), Embedding(9, 8, mask_zero=True), LSTM(6, return_sequences=True), Dropout(0.2),
              LSTM(4), Dense(2)]
    model = Sequential(layers)
    np.testing.assert_allclose(model.predict(post, verbose=0), model.predict(pre, verbose=0),
                               rtol=1e-5, atol=1e-6)
    model(post)
    assert model.executor.masked and model.executor.output_masks is None   # the last LSTM returns no sequence
    layers[1].mask_zero = layers[1].supports_masking = False                 # the same model without masks
    # without masks the padding changes the outputs (by 1e-3 to 3e-3 over 40 random inits)
    assert np.max(np.abs(model.predict(post, verbose=0) - model.predict(pre, verbose=0))) > 1e-4


def test_functional_bidirectional_model_ignores_padding_and_exposes_output_masks():
    inp = Input((5,))
    h = Embedding(9, 4, mask_zero=True)(inp)
    seq = Bidirectional(GRU(3, return_sequences=True))(h)
    last = Bidirectional(SimpleRNN(2))(seq)
    out = TimeDistributed(Dense(1))(seq)
    model = Model(inp, [last, out])
    pre = _tokens(np.random.default_rng(8), pre=True)
    post = _shift(pre)
    a, b = model.predict(post, verbose=0), model.predict(pre, verbose=0)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a[1][post != 0], b[1][pre != 0], rtol=1e-5, atol=1e-6)
    model(post)
    masks = model.executor.output_masks
    assert masks[0] is None and np.array_equal(masks[1], post != 0)


def test_masking_layer_in_a_model_and_dropped_by_flatten():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4, 5, 2)).astype(np.float32)
    x[0, 3:] = 0.0
    model = Sequential([Input((5, 2)), Masking(), LSTM(3, return_sequences=True), Dense(2)])
    model(x)
    np.testing.assert_array_equal(model.executor.output_masks[0], np.any(x != 0, axis=-1))
    x_pre = x.copy()
    x_pre[0] = np.concatenate([x[0, 3:], x[0, :3]])        # the same valid steps, padded at the start
    np.testing.assert_allclose(model(x_pre)[0, 2:], model(x)[0, :3], rtol=1e-5, atol=1e-6)
    flat = Sequential([Input((5, 2)), Masking(), LSTM(3, return_sequences=True), Flatten(), Dense(2)])
    flat(x)
    assert flat.executor.output_masks is None


def test_models_without_mask_sources_take_the_plain_path():
    model = Sequential([Input((4,)), Dense(3), Dense(2)])
    model.build()
    assert not model.executor.masked and model.executor.output_masks is None


def _fit_text_model(ids, y, weights=None, mask_zero=True):
    """Embedding -> LSTM -> Dense(sigmoid) trained 3 epochs from `weights` (the same data order
    every time); returns (weights after, loss history)."""
    model = Sequential([Input((ids.shape[1],)), Embedding(9, 4, mask_zero=mask_zero), LSTM(4),
                        Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam")
    if weights is not None:
        model.set_weights(weights)
    utils.set_random_seed(12)
    hist = model.fit(ids, y, epochs=3, batch_size=8, verbose=0)
    return model.get_weights(), hist.history["loss"]


def test_masked_model_trains_as_if_the_padding_were_not_there(float64):
    """The same sequences padded at the end, at the start, or with 3 more padding steps train to
    the same weights and losses (rounding only: 1e-12); without the mask they do not."""
    rng = np.random.default_rng(10)
    pre = np.concatenate([_tokens(rng, pre=True) for _ in range(8)])  # 32 sequences of 5, 3, 1, 4 tokens
    post = _shift(pre)
    longer = np.concatenate([post, np.zeros((len(post), 3), post.dtype)], axis=1)
    y = (post[:, 0] > 4).astype(np.float64)
    utils.set_random_seed(3)
    start = Sequential([Input((5,)), Embedding(9, 4), LSTM(4), Dense(1)]).get_weights()
    want, want_loss = _fit_text_model(post, y, start)
    assert want_loss[-1] < want_loss[0]  # it learns
    assert not np.array_equal(want[1], start[1])
    np.testing.assert_array_equal(want[0][0], start[0][0])  # padding's embedding row never gets a gradient
    for ids in (pre, longer):
        got, loss = _fit_text_model(ids, y, start)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    # the control: without the mask, where the padding sits changes the training
    plain_post, _ = _fit_text_model(post, y, start, mask_zero=False)
    plain_pre, _ = _fit_text_model(pre, y, start, mask_zero=False)
    assert max(np.max(np.abs(a - b)) for a, b in zip(plain_post, plain_pre)) > 1e-3


# ----- GlobalAveragePooling1D: the mean over unmasked steps --------------------------------------
def test_global_average_pooling_1d_averages_unmasked_steps_with_exact_gradients():
    from distdl.layers import GlobalAveragePooling1D
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5, 3))
    layer = built(GlobalAveragePooling1D(dtype=F64), (5, 3))
    y = layer.forward(x, mask=MASK)
    for b in range(4):
        want = x[b, MASK[b]].mean(axis=0) if MASK[b].any() else np.zeros(3)  # no step: 0, not NaN
        np.testing.assert_allclose(y[b], want, rtol=1e-12)
    check_masked(layer, x, MASK)
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=1), rtol=1e-12)  # no mask: all steps


def test_padded_text_classifier_matches_the_unpadded_sequences():
    """Keras's text-classification pattern: Embedding(mask_zero) -> GlobalAveragePooling1D -> Dense."""
    from distdl.layers import GlobalAveragePooling1D
    m = Sequential([Input((6,), dtype="int64"), Embedding(9, 4, mask_zero=True), GlobalAveragePooling1D(),
                    Dense(2)])
    seqs = [[3, 1, 4], [5, 2, 6, 1, 5, 8], [7]]
    padded = np.array([s + [0] * (6 - len(s)) for s in seqs])
    got = m.predict(padded, verbose=0)
    emb, (kernel, bias) = m.layers[0].weights[0].value, (v.value for v in m.layers[2].weights)
    for b, s in enumerate(seqs):
        np.testing.assert_allclose(got[b], emb[s].mean(axis=0) @ kernel + bias, rtol=1e-5)


# ----- merge layers: Keras 3's mask rules ---------------------------------------------------------
def test_merge_layers_combine_masks_as_keras():
    from distdl.layers import Add, Concatenate, Dot
    a, b = np.zeros((4, 5, 2)), np.zeros((4, 5, 3))
    m1, m2 = MASK, np.roll(MASK, 1, axis=1)
    np.testing.assert_array_equal(Add().compute_mask([a, a], [m1, m2]), m1 & m2)
    np.testing.assert_array_equal(Add().compute_mask([a, a], [m1, None]), m1)
    assert Add().compute_mask([a, a], [None, None]) is None
    np.testing.assert_array_equal(Concatenate().compute_mask([a, b], [m1, m2]), m1 | m2)
    assert Concatenate().compute_mask([a, b], [m1, None]).all()  # an unmasked input keeps every step
    np.testing.assert_array_equal(Concatenate(axis=1).compute_mask([a, a], [m1, m2]), np.concatenate([m1, m2], 1))
    assert not Dot(axes=-1).supports_masking


def test_a_mask_reaches_an_lstm_through_concatenate():
    """Two masked embeddings concatenated on the feature axis feed the LSTM the union of their masks."""
    from distdl.layers import Concatenate
    t1, t2 = Input((5,), dtype="int64"), Input((5,), dtype="int64")
    e1, e2 = Embedding(6, 2, mask_zero=True), Embedding(6, 3, mask_zero=True)
    lstm = LSTM(4)
    model = Model([t1, t2], lstm(Concatenate()([e1(t1), e2(t2)])))
    x1 = np.array([[1, 2, 0, 0, 0], [0, 0, 3, 4, 5]])
    x2 = np.array([[1, 2, 3, 0, 0], [0, 0, 0, 4, 5]])
    feats = np.concatenate([e1.forward(x1), e2.forward(x2)], axis=-1)
    want = lstm.forward(feats, mask=(x1 != 0) | (x2 != 0))
    np.testing.assert_allclose(model.predict([x1, x2], verbose=0), want, rtol=1e-6)
    assert not np.allclose(want, lstm.forward(feats))  # the mask matters here


# ----- BatchNormalization: training moments over the unmasked steps only --------------------------
def test_batch_normalization_moments_leave_masked_steps_out():
    from distdl.layers import BatchNormalization
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 5, 3)) * 2 + 1
    bn = built(BatchNormalization(momentum=0.0, dtype=F64), (5, 3))
    bn.moving_mean.assign(np.zeros(3))
    bn.moving_variance.assign(np.ones(3))
    y = bn.forward(x, training=True, mask=MASK)
    kept = x[MASK]                                  # (unmasked steps, 3)
    np.testing.assert_allclose(bn.moving_mean.value, kept.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance.value, kept.var(axis=0), rtol=1e-12)
    gamma, beta = bn.gamma.value, bn.beta.value
    want = (x - kept.mean(axis=0)) / np.sqrt(kept.var(axis=0) + bn.epsilon) * gamma + beta
    np.testing.assert_allclose(y, want, rtol=1e-10)  # every step is normalised, masked ones too


def test_batch_normalization_masked_gradients():
    from distdl.layers import BatchNormalization
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 5, 3))
    bn = built(BatchNormalization(dtype=F64), (5, 3))
    r = rng.standard_normal(x.shape)
    moving = [v.value.copy() for v in bn.non_trainable_weights]

    def loss():
        for v, m in zip(bn.non_trainable_weights, moving):  # the moving statistics do not matter here
            v.assign(m)
        return float(np.sum(bn.forward(x, training=True, mask=MASK) * r))

    loss()
    dx = bn.backward(r)
    grads = [v.grad.copy() for v in bn.trainable_weights]
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6
    for v, g in zip(bn.trainable_weights, grads):
        assert rel_error(g, numeric_grad(loss, v.value)) < 1e-6, v.name
