"""SimpleRNN, LSTM, GRU, Embedding, Bidirectional and TimeDistributed: textbook equations,
Keras parameter counts, float64 finite-difference gradients, empty batches and configs."""
import numpy as np
import pytest

from distdl.errors import ConfigError, DataError, ShapeError
from distdl.layers.base import Layer, deserialize, serialize
from distdl.layers.embedding import Embedding
from distdl.layers.recurrent import GRU, LSTM, SimpleRNN
from distdl.layers.wrappers import Bidirectional, TimeDistributed
from distdl.saving import register_keras_serializable
from gradcheck import check_layer, check_without_input_grad, numeric_grad, rel_error

F64 = "float64"


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def randomize(layer, rng):
    """Replace every weight by N(0, 0.5) so no gate is trivially zero."""
    for v in layer.weights:
        v.assign(rng.normal(0, 0.5, v.shape))


def built(layer, shape, rng=None):
    layer.ensure_built(shape)
    if rng is not None:
        randomize(layer, rng)
    return layer


@register_keras_serializable(package="Test")  # a test's class is found only when registered (Keras 3)
class Affine(Layer):
    """A minimal Dense stand-in (x @ w + b) so TimeDistributed is tested on its own."""

    def __init__(self, units, **kw):
        super().__init__(**kw)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

    def forward(self, x, training=False):
        self.cache = x
        return x @ self.w.value + self.b.value

    def backward(self, dy):
        np.matmul(self.cache.T, dy, out=self.w.grad)
        np.sum(dy, axis=0, out=self.b.grad)
        return dy @ self.w.value.T


# ----- Keras parameter counts and weight layout ----------------------------------
@pytest.mark.parametrize("layer, count", [
    (SimpleRNN(32), 1568), (LSTM(32), 6272), (GRU(32), 4800), (GRU(32, reset_after=False), 4704)])
def test_param_counts_match_keras(layer, count):
    built(layer, (7, 16))
    assert layer.count_params() == count
    assert [v.name.split("/")[-1] for v in layer.weights] == ["kernel", "recurrent_kernel", "bias"]


def test_weight_shapes_and_lstm_forget_bias():
    lstm = built(LSTM(5), (3, 4))
    assert [v.shape for v in lstm.weights] == [(4, 20), (5, 20), (20,)]
    np.testing.assert_array_equal(lstm.bias.value, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    gru = built(GRU(5), (3, 4))
    assert [v.shape for v in gru.weights] == [(4, 15), (5, 15), (2, 15)]
    rk = lstm.recurrent_kernel.value               # orthogonal over the whole (u, 4u) matrix, as Keras
    assert rk.dtype == np.float32
    np.testing.assert_allclose(rk @ rk.T, np.eye(5), atol=1e-5)


# ----- forward against the textbook equations (Keras gate order) ---------------
def test_lstm_two_steps_match_equations():
    rng = np.random.default_rng(1)
    layer = built(LSTM(3, dtype=F64, return_sequences=True, return_state=True), (2, 4), rng)
    x = rng.normal(size=(2, 2, 4))
    seq, h_last, c_last = layer(x)
    W, U, b = (v.value for v in layer.weights)
    h = c = np.zeros((2, 3))
    for t in range(2):
        z = x[:, t] @ W + h @ U + b
        i, f, g, o = sig(z[:, :3]), sig(z[:, 3:6]), np.tanh(z[:, 6:9]), sig(z[:, 9:])
        c = f * c + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(seq[:, t], h, rtol=1e-12)
    np.testing.assert_allclose(h_last, h, rtol=1e-12)
    np.testing.assert_allclose(c_last, c, rtol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_one_step_matches_equations(reset_after):
    rng = np.random.default_rng(2)
    layer = built(GRU(3, dtype=F64, reset_after=reset_after), (1, 4), rng)
    x = rng.normal(size=(5, 1, 4))
    W, U, b = (v.value for v in layer.weights)
    # a nonzero previous state makes the recurrent terms count: feed a 2-step sequence
    x2 = rng.normal(size=(5, 2, 4))
    h1 = layer(x2[:, :1])
    bx, bh = (b[0], b[1]) if reset_after else (b, np.zeros(9))
    xz = x2[:, 1] @ W + bx
    hu = h1 @ U + bh
    z = sig(xz[:, :3] + hu[:, :3])
    r = sig(xz[:, 3:6] + hu[:, 3:6])
    if reset_after:
        hh = np.tanh(xz[:, 6:] + r * hu[:, 6:])
    else:
        hh = np.tanh(xz[:, 6:] + (r * h1) @ U[:, 6:])
    expected = z * h1 + (1 - z) * hh
    np.testing.assert_allclose(layer(x2), expected, rtol=1e-12)
    # and the first step from a zero state
    xz0 = x[:, 0] @ W + bx
    z0, r0 = sig(xz0[:, :3] + bh[:3]), sig(xz0[:, 3:6] + bh[3:6])
    hh0 = np.tanh(xz0[:, 6:] + r0 * bh[6:])
    np.testing.assert_allclose(layer(x), (1 - z0) * hh0, rtol=1e-12)


def test_simple_rnn_matches_equations_and_go_backwards_reverses():
    rng = np.random.default_rng(3)
    fwd = built(SimpleRNN(4, dtype=F64, return_sequences=True), (3, 2), rng)
    x = rng.normal(size=(2, 3, 2))
    W, U, b = (v.value for v in fwd.weights)
    h = np.zeros((2, 4))
    for t in range(3):
        h = np.tanh(x[:, t] @ W + h @ U + b)
        np.testing.assert_allclose(fwd(x)[:, t], h, rtol=1e-12)
    bwd = built(SimpleRNN(4, dtype=F64, return_sequences=True, go_backwards=True), (3, 2))
    bwd.set_weights(fwd.get_weights())
    # Keras: go_backwards processes reversed input and returns outputs in processing order
    np.testing.assert_allclose(bwd(x), fwd(x[:, ::-1]), rtol=1e-12)


def test_float32_default_dtype():
    x = np.random.default_rng(16).normal(size=(2, 4, 5))
    layer = LSTM(3)
    out = layer(x)
    assert out.dtype == np.float32 and out.shape == (2, 3) and layer.kernel.value.dtype == np.float32
    wide = built(LSTM(3, dtype=F64), (4, 5))
    wide.set_weights([w.astype(np.float64) for w in layer.get_weights()])
    np.testing.assert_allclose(out, wide(x), rtol=1e-5, atol=1e-6)


# ----- gradients (float64 central differences) ----------------------------------
OPTIONS = [dict(), dict(return_sequences=True), dict(return_state=True, go_backwards=True),
           dict(return_sequences=True, return_state=True), dict(go_backwards=True, return_sequences=True)]


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("opts", OPTIONS)
def test_rnn_gradients(cls, opts):
    rng = np.random.default_rng(4)
    layer = built(cls(3, dtype=F64, **opts), (4, 2), rng)
    check_layer(layer, rng.normal(size=(2, 4, 2)))


@pytest.mark.parametrize("layer", [
    GRU(2, dtype=F64, reset_after=False, return_sequences=True),
    LSTM(2, dtype=F64, activation="relu", recurrent_activation="hard_sigmoid"),   # uses_input path
    SimpleRNN(3, dtype=F64, use_bias=False),
    LSTM(2, dtype=F64, use_bias=False),                 # fused step without the ones column
    LSTM(1, dtype=F64, return_sequences=True, unit_forget_bias=False)])
def test_rnn_gradients_variants(layer):
    rng = np.random.default_rng(5)
    built(layer, (3, 2), rng)
    check_layer(layer, rng.normal(size=(3, 3, 2)))


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_rnn_gradients_single_step_single_sample(cls):
    rng = np.random.default_rng(6)
    layer = built(cls(2, dtype=F64), (1, 3), rng)
    check_layer(layer, rng.normal(size=(1, 1, 3)))


def test_return_state_accepts_none_upstream_gradients():
    rng = np.random.default_rng(7)
    layer = built(LSTM(3, dtype=F64, return_state=True), (2, 2), rng)
    x = rng.normal(size=(2, 2, 2))
    out, h, c = layer(x)
    dy = rng.normal(size=out.shape)
    dx_none = layer.backward([dy, None, None])
    dx_zero = layer.backward([dy, np.zeros_like(h), np.zeros_like(c)])
    np.testing.assert_array_equal(dx_none, dx_zero)
    assert np.any(dx_none != 0)
    # output and last state are the same tensor here: their gradients add up
    both = layer.backward([dy, dy, None])
    np.testing.assert_allclose(both, layer.backward([2 * dy, None, None]), rtol=1e-12)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_without_input_grad_returns_none_and_same_weight_grads(cls):
    rng = np.random.default_rng(8)
    layer = built(cls(3, dtype=F64), (4, 2), rng)
    check_without_input_grad(layer, rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 3)))


# ----- empty batches, shape errors, config ------------------------------------
@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_empty_batch(cls):
    layer = built(cls(3, return_sequences=True, return_state=True), (4, 2), np.random.default_rng(0))
    outs = layer(np.zeros((0, 4, 2)), training=True)
    assert [o.shape for o in outs][:2] == [(0, 4, 3), (0, 3)]
    dx = layer.backward([np.zeros((0, 4, 3)), None] + [None] * (len(outs) - 2))
    assert dx.shape == (0, 4, 2)
    assert all(np.all(v.grad == 0) for v in layer.weights)


def test_rnn_shape_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"'my_lstm'.*\(batch, timesteps, features\)"):
        LSTM(3, name="my_lstm").ensure_built((5,))
    layer = built(GRU(2, name="g"), (3, 4))
    with pytest.raises(ShapeError, match=r"'g'.*\(batch, timesteps, 4\), got \(2, 3, 5\)"):
        layer.forward(np.zeros((2, 3, 5)))
    with pytest.raises(ConfigError, match=r"dropout must be a number in \[0, 1\), got 1.5"):
        LSTM(3, dropout=1.5)


# ----- dropout (input mask per sample shared by all steps; recurrent mask on h_{t-1} before U) --
@pytest.mark.parametrize("layer", [
    SimpleRNN(3, dtype=F64, dropout=0.4, recurrent_dropout=0.3, return_sequences=True),
    LSTM(3, dtype=F64, dropout=0.4, recurrent_dropout=0.3),
    GRU(3, dtype=F64, dropout=0.4, recurrent_dropout=0.3, go_backwards=True),
    GRU(3, dtype=F64, dropout=0.4, recurrent_dropout=0.3, reset_after=False, return_sequences=True)])
def test_dropout_gradients(layer):
    rng = np.random.default_rng(13)
    built(layer, (3, 4), rng)
    x = rng.normal(size=(5, 3, 4))
    check_layer(layer, x, training=True)
    assert np.any(layer.cache["in_mask"] == 0) and np.any(layer.cache["rec_mask"] == 0)


def test_input_dropout_is_one_mask_per_sample_and_off_at_inference():
    rng = np.random.default_rng(14)
    drop = built(LSTM(3, dtype=F64, dropout=0.5, return_sequences=True), (4, 6), rng)
    plain = built(LSTM(3, dtype=F64, return_sequences=True), (4, 6))
    plain.set_weights(drop.get_weights())
    x = rng.normal(size=(3, 4, 6))
    np.testing.assert_array_equal(drop(x, training=False), plain(x))
    y = drop(x, training=True)
    mask = drop.cache["in_mask"]
    assert mask.shape == (3, 6) and set(np.unique(mask)) == {0.0, 2.0}
    np.testing.assert_allclose(y, plain(x * mask[:, None, :]), rtol=1e-12)


def test_dropout_masks_depend_on_global_rows_not_on_rank():
    layer = built(GRU(2, dropout=0.5, recurrent_dropout=0.5), (2, 8))
    full = layer._dropout_mask(1, 0.5, 5, 8)
    layer.ctx = type(layer.ctx)(seed=layer.ctx.seed)
    layer.ctx.row_start = 3
    np.testing.assert_array_equal(layer._dropout_mask(1, 0.5, 2, 8), full[3:])
    assert not np.array_equal(layer._dropout_mask(2, 0.5, 2, 8), full[3:])


@pytest.mark.parametrize("layer", [
    LSTM(4, kernel_initializer="he_normal", return_sequences=True, go_backwards=True),
    GRU(2, reset_after=False, recurrent_activation="hard_sigmoid"), SimpleRNN(3, activation="relu"),
    Embedding(7, 2, mask_zero=True), TimeDistributed(Affine(3)),
    Bidirectional(LSTM(3, return_sequences=True), merge_mode="sum"),
    Bidirectional(GRU(2), backward_layer=GRU(2, go_backwards=True))])
def test_config_round_trip(layer):
    spec = serialize(layer)
    assert serialize(deserialize(spec)) == spec


# ----- Embedding -------------------------------------------------------------
def test_embedding_lookup_and_scatter_gradient():
    rng = np.random.default_rng(8)
    emb = built(Embedding(6, 3, dtype=F64), (4,), rng)
    idx = np.array([[1, 5, 1, 0], [5, 5, 2, 1]])
    out = emb(idx.astype(np.float64))                     # float arrays of whole numbers are accepted
    np.testing.assert_array_equal(out, emb.embeddings.value[idx])
    r = rng.normal(size=out.shape)
    dx = emb.backward(r)
    assert dx.shape == idx.shape and not np.any(dx)
    num = numeric_grad(lambda: float(np.sum(emb.forward(idx) * r)), emb.embeddings.value)
    assert rel_error(emb.embeddings.grad, num) < 1e-8
    assert not np.any(emb.embeddings.grad[[3, 4]])       # unused rows get no gradient


def test_embedding_defaults_and_errors():
    emb = built(Embedding(1000, 8, name="emb"), (3,))
    w = emb.embeddings.value
    assert w.shape == (1000, 8) and w.dtype == np.float32
    assert -0.05 <= w.min() < -0.04 and 0.04 < w.max() <= 0.05
    with pytest.raises(DataError, match=r"'emb'.*index 1000.*input_dim=1000"):
        emb.forward(np.array([[1, 1000, 2]]))
    with pytest.raises(DataError, match=r"'emb'.*index -1"):
        emb.forward(np.array([[-1, 0, 2]]))
    with pytest.raises(DataError, match=r"'emb'.*integer"):
        emb.forward(np.array([[0.5, 0, 2]]))
    out = emb.forward(np.zeros((0, 3)))
    assert out.shape == (0, 3, 8)
    emb.backward(out)
    assert not np.any(emb.embeddings.grad)


# ----- wrappers ----------------------------------------------------------------
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("opts", [dict(), dict(return_sequences=True), dict(return_state=True)])
def test_bidirectional_gradients(merge_mode, opts):
    rng = np.random.default_rng(9)
    layer = built(Bidirectional(LSTM(2, dtype=F64, **opts), merge_mode=merge_mode, dtype=F64), (3, 2), rng)
    check_layer(layer, rng.normal(size=(2, 3, 2)))


def test_bidirectional_forward_matches_two_layers():
    rng = np.random.default_rng(10)
    bi = built(Bidirectional(GRU(3, dtype=F64, return_sequences=True), dtype=F64), (4, 2), rng)
    assert [v.name for v in bi.weights][0].startswith("forward_gru")
    assert [v.name for v in bi.weights][3].startswith("backward_gru")
    assert bi.count_params() == 2 * (2 * 9 + 3 * 9 + 2 * 9)
    f = built(GRU(3, dtype=F64, return_sequences=True), (4, 2))
    b = built(GRU(3, dtype=F64, return_sequences=True, go_backwards=True), (4, 2))
    w = bi.get_weights()
    f.set_weights(w[:3])
    b.set_weights(w[3:])
    x = rng.normal(size=(2, 4, 2))
    # Keras flips the backward sequence back to input order before concatenating
    expected = np.concatenate([f(x), b(x)[:, ::-1]], axis=-1)
    np.testing.assert_allclose(bi(x), expected, rtol=1e-12)
    assert bi.output_shape == (4, 6)


def test_bidirectional_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="merge_mode"):
        Bidirectional(LSTM(2), merge_mode="max")
    with pytest.raises(ConfigError, match="go_backwards"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2))


def test_bidirectional_passes_context_and_draws_distinct_masks():
    rng = np.random.default_rng(15)
    bi = built(Bidirectional(LSTM(2, dtype=F64, dropout=0.5, recurrent_dropout=0.5), dtype=F64), (3, 6), rng)
    ctx = type(bi.ctx)(seed=7)
    bi.ctx, bi.stream_id = ctx, 4
    assert bi.forward_layer.ctx is ctx and bi.backward_layer.stream_id == 4
    x = rng.normal(size=(4, 3, 6))
    bi(x, training=True)
    assert not np.array_equal(bi.forward_layer.cache["in_mask"], bi.backward_layer.cache["in_mask"])
    check_layer(bi, x, training=True)


def test_time_distributed_applies_per_step():
    rng = np.random.default_rng(11)
    td = built(TimeDistributed(Affine(3, dtype=F64), dtype=F64), (5, 4), rng)
    x = rng.normal(size=(2, 5, 4))
    w, b = td.get_weights()
    np.testing.assert_allclose(td(x), x @ w + b, rtol=1e-12)
    assert td.output_shape == (5, 3) and td.count_params() == 15
    check_layer(td, rng.normal(size=(1, 1, 4)))
    check_layer(td, x)
    assert td(np.zeros((0, 5, 4))).shape == (0, 5, 3)


def test_time_distributed_wraps_an_rnn():
    rng = np.random.default_rng(12)
    td = built(TimeDistributed(SimpleRNN(2, dtype=F64), dtype=F64), (3, 2, 2), rng)
    check_layer(td, rng.normal(size=(2, 3, 2, 2)))
