"""distdl.ops and Python's operators on symbolic tensors (TensorOp nodes), Lambda, and subclassed
models whose call mixes built-in layers with ops and add_loss (the VAE of Keras's guide "Making new
layers and models via subclassing"), with model-level gradient checks in float64."""
from __future__ import annotations

import numpy as np
import pytest

import distdl as keras
from distdl import ops
from distdl.errors import ConfigError
from distdl.layers import Dense, Input, Lambda, Layer
from distdl.models import Model, Sequential, load_model
from distdl.random import SeedGenerator, normal
from gradcheck import check_layer, check_model

F64 = "float64"


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _ops_model(dtype=F64):
    inp = Input(shape=(4,), dtype=dtype)
    h = Dense(6, dtype=dtype)(inp)
    y = ops.tanh(h) * 2.0 + 1.0
    z = ops.concatenate([y, ops.square(h[:, :2])], axis=-1) / (1.0 + ops.abs(h[:, :1]))
    return Model(inp, Dense(3, dtype=dtype)(ops.relu(z - 0.5)))


def test_ops_and_operators_on_symbolic_tensors_build_a_graph_that_computes_and_differentiates():
    model = _ops_model()
    x = _x(5, 4)
    k1, b1, k2, b2 = model.get_weights()
    h = x @ k1 + b1
    z = np.concatenate([np.tanh(h) * 2 + 1, h[:, :2] ** 2], axis=-1) / (1 + np.abs(h[:, :1]))
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(z - 0.5, 0) @ k2 + b2, rtol=1e-10)
    assert ops.shape(model.outputs[0]) == (None, 3)
    check_model(model, [x])


def test_a_model_with_ops_saves_and_loads_without_code(tmp_path):
    model = _ops_model("float32")
    x = _x(3, 4).astype("float32")
    for name in ("m.h5", "m.keras"):
        model.save(tmp_path / name)
        back = load_model(tmp_path / name)
        np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_an_op_that_drops_the_batch_axis_cannot_be_an_output_or_feed_a_layer():
    inp = Input(shape=(4,))
    total = ops.mean(inp)
    assert not total.batched and ops.shape(total) == ()
    with pytest.raises(ConfigError, match="has no batch axis"):
        Model(inp, total)
    with pytest.raises(ConfigError, match="Layer 'late' was called on a tensor without the batch axis"):
        Dense(2, name="late")(total)


# ----- Lambda --------------------------------------------------------------------------------
def scaled_square(x, scale=1.0):
    return ops.square(x) * scale


def test_lambda_runs_its_function_with_arguments_and_differentiates():
    layer = Lambda(scaled_square, arguments={"scale": 3.0}, dtype=F64)
    x = _x(4, 3)
    np.testing.assert_allclose(layer(x), 3 * x ** 2)
    check_layer(Lambda(lambda t: ops.sin(t) * t[:, :1], dtype=F64), x)
    inp = Input(shape=(3,))
    assert Model(inp, Lambda(lambda t: t[:, :2])(inp)).output_shapes == [(2,)]
    assert Lambda(lambda t: t, output_shape=(7,))(inp).shape == (7,)
    assert Lambda(lambda t: t, output_shape=lambda s: (s[0], 9))(inp).shape == (9,)


def test_lambda_saves_a_registered_function_by_name_and_refuses_an_anonymous_one(tmp_path):
    register = keras.saving.register_keras_serializable(package="OpsTest")
    fn = register(scaled_square)
    model = Sequential([Input(shape=(3,)), Lambda(fn, arguments={"scale": 2.0})])
    model.save(tmp_path / "ok.h5")
    x = _x(2, 3).astype("float32")
    np.testing.assert_allclose(load_model(tmp_path / "ok.h5").predict(x, verbose=0), 2 * x ** 2, rtol=1e-6)
    anonymous = Sequential([Input(shape=(3,)), Lambda(lambda t: t * 2, name="doubler")])
    with pytest.raises(Exception, match="Lambda layer 'doubler' wraps an anonymous function"):
        anonymous.save(tmp_path / "no.h5")


# ----- subclassed models mixing layers and ops: the guide's VAE ---------------------------------
class Sampling(Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = normal(shape=ops.shape(z_mean), seed=self.seed_generator, dtype=z_mean.dtype)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class Encoder(Layer):
    def __init__(self, latent_dim=2, intermediate_dim=5, **kwargs):
        super().__init__(**kwargs)
        self.dense_proj = Dense(intermediate_dim, activation="relu", dtype=self.dtype)
        self.dense_mean = Dense(latent_dim, dtype=self.dtype)
        self.dense_log_var = Dense(latent_dim, dtype=self.dtype)
        self.sampling = Sampling(dtype=self.dtype)

    def call(self, inputs):
        x = self.dense_proj(inputs)
        z_mean, z_log_var = self.dense_mean(x), self.dense_log_var(x)
        return z_mean, z_log_var, self.sampling((z_mean, z_log_var))


class VAE(keras.Model):
    def __init__(self, original_dim, dtype=F64, **kwargs):
        super().__init__(**kwargs)
        self.encoder = Encoder(dtype=dtype)
        self.decoder = Dense(original_dim, activation="sigmoid", dtype=dtype)

    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        reconstructed = self.decoder(z)
        kl_loss = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
        self.add_loss(kl_loss)
        return reconstructed


def test_the_guides_vae_differentiates_exactly_and_its_loss_adds_the_kl_term():
    vae = VAE(6)
    vae.build((None, 6))
    x = np.random.default_rng(3).random((8, 6))
    check_model(vae, [x])  # the sampling noise is a function of the step: fixed across the checks
    vae.compile("sgd", keras.losses.MeanSquaredError())
    logs = vae.evaluate(x, x, batch_size=8, verbose=0, return_dict=True)
    enc = vae.encoder
    h = np.maximum(x @ enc.dense_proj.kernel.value + enc.dense_proj.bias.value, 0)
    mean = h @ enc.dense_mean.kernel.value + enc.dense_mean.bias.value
    log_var = h @ enc.dense_log_var.kernel.value + enc.dense_log_var.bias.value
    kl = -0.5 * np.mean(log_var - mean ** 2 - np.exp(log_var) + 1)
    out = vae.predict(x, verbose=0)
    assert logs["loss"] == pytest.approx(np.mean((out - x) ** 2) + kl, rel=1e-9)
    before = vae.get_weights()
    vae.fit(x, x, batch_size=4, epochs=2, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, vae.get_weights()))


def test_random_draws_in_a_call_are_rows_of_one_global_draw():
    """What makes a sampling layer rank-count independent: rows [a, b) of a draw made for a batch
    of n rows equal the same rows of the whole draw."""
    from distdl.layers import recorded
    from distdl.layers.base import RunContext
    ctx = RunContext(seed=9)
    ctx.step, ctx.global_rows = 4, 6

    def draw(row_start, rows):
        ctx.row_start = row_start
        recorded.RANDOM_STACK.append([ctx, 3, 0, rows])
        try:
            return normal((rows, 5), seed=SeedGenerator(7)).numpy()
        finally:
            recorded.RANDOM_STACK.pop()

    whole = draw(0, 6)
    np.testing.assert_array_equal(np.concatenate([draw(0, 2), draw(2, 3), draw(5, 1)]), whole)
    assert abs(whole.mean()) < 1.5 and 0.2 < whole.std() < 2.5


def test_a_custom_layer_on_a_variable_length_input():
    class Pairwise(Layer):
        def call(self, x):
            return ops.concatenate([x, x[:, ::-1] * 2.0], axis=-1)

    inp = Input(shape=(None, 3))
    layer = Pairwise()
    model = Model(inp, layer(inp))
    assert model.output_shapes == [(None, 6)]
    for steps in (2, 5):
        x = _x(2, steps, 3).astype("float32")
        np.testing.assert_allclose(model.predict(x, verbose=0), np.concatenate([x, 2 * x[:, ::-1]], -1), rtol=1e-6)


def test_linalg_ops_on_symbolic_square_matrices():
    """The shape probe runs on invertible, positive definite matrices, so inv and cholesky can be
    graph nodes."""
    inp = Input(shape=(3, 3), dtype=F64)
    spd = ops.matmul(inp, ops.transpose(inp, (0, 2, 1)))
    model = Model(inp, ops.linalg.inv(inp) + ops.linalg.cholesky(spd))
    x = _x(2, 3, 3) + 3 * np.eye(3)
    want = np.linalg.inv(x) + np.linalg.cholesky(x @ x.transpose(0, 2, 1))
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-10)
    weighted = Model(inp, ops.linalg.inv(Dense(3, dtype=F64)(inp) + 3.0 * np.eye(3)))
    check_model(weighted, [x], tol=1e-5)
