"""Optimizers against hand-computed Keras formulas, on both entry points, plus state and config."""
import json
import math

import numpy as np
import pytest

from distdl import optimizers
from distdl.arena import Variable
from distdl.errors import ConfigError, ShapeError
from distdl.optimizers import schedules

RNG = np.random.default_rng(0)
W0 = RNG.normal(size=7)
GRADS = [RNG.normal(size=7) for _ in range(3)]
SEGMENTS = [(0, 3), (3, 7)]


# ----- reference formulas, written out per element from reference.md / Keras 3 ------------
def ref_sgd(w, grads, lr, mu=0.0, nesterov=False):
    w, m = w.copy(), np.zeros_like(w)
    for g in grads:
        if mu == 0:
            w = w - lr * g
            continue
        m = mu * m - lr * g
        w = w + (mu * m - lr * g if nesterov else m)
    return w


def ref_adam(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    w, m, v, vhat = w.copy(), np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = w - w * wd * lr
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        vhat = np.maximum(vhat, v)
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w = w - alpha * m / (np.sqrt(vhat if amsgrad else v) + eps)
    return w


def ref_rmsprop(w, grads, lr, rho=0.9, mu=0.0, eps=1e-7, centered=False):
    w, v, gbar, mom = w.copy(), np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        gbar = rho * gbar + (1 - rho) * g
        inc = lr * g / np.sqrt((v - gbar ** 2 if centered else v) + eps)
        mom = mu * mom + inc
        w = w - (mom if mu > 0 else inc)
    return w


def ref_adagrad(w, grads, lr, init=0.1, eps=1e-7):
    w, acc = w.copy(), np.full_like(w, init)
    for g in grads:
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + eps)
    return w


CASES = [
    ("sgd", lambda: optimizers.SGD(0.1), lambda n: ref_sgd(W0, GRADS[:n], 0.1)),
    ("momentum", lambda: optimizers.SGD(0.1, momentum=0.9), lambda n: ref_sgd(W0, GRADS[:n], 0.1, 0.9)),
    ("nesterov", lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
     lambda n: ref_sgd(W0, GRADS[:n], 0.1, 0.9, True)),
    ("adam", lambda: optimizers.Adam(0.01), lambda n: ref_adam(W0, GRADS[:n], 0.01)),
    ("amsgrad", lambda: optimizers.Adam(0.01, amsgrad=True),
     lambda n: ref_adam(W0, GRADS[:n], 0.01, amsgrad=True)),
    ("adamw", lambda: optimizers.AdamW(0.01, weight_decay=0.1),
     lambda n: ref_adam(W0, GRADS[:n], 0.01, wd=0.1)),
    ("rmsprop", lambda: optimizers.RMSprop(0.01), lambda n: ref_rmsprop(W0, GRADS[:n], 0.01)),
    ("rmsprop_centered", lambda: optimizers.RMSprop(0.01, centered=True),
     lambda n: ref_rmsprop(W0, GRADS[:n], 0.01, centered=True)),
    ("rmsprop_momentum", lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
     lambda n: ref_rmsprop(W0, GRADS[:n], 0.01, mu=0.5, centered=True)),
    ("adagrad", lambda: optimizers.Adagrad(0.1), lambda n: ref_adagrad(W0, GRADS[:n], 0.1)),
]


def run_arena(opt, grads, w0=W0, dtype=np.float64):
    params = w0.astype(dtype)
    opt.build(params.size, dtype, SEGMENTS)
    for g in grads:
        buf = g.astype(dtype)  # the loop's gradient buffer: the optimizer may clobber it
        opt.update(params, buf)
    return params


def run_apply(opt, grads, w0=W0, dtype=np.float64):
    parts = [w0[a:b].astype(dtype) for a, b in SEGMENTS]
    for g in grads:
        gs = [g[a:b].astype(dtype) for a, b in SEGMENTS]
        kept = [x.copy() for x in gs]
        opt.apply_gradients(zip(gs, parts))
        assert all(np.array_equal(x, y) for x, y in zip(gs, kept))  # caller's grads untouched
    return np.concatenate(parts)


@pytest.mark.parametrize("name,make,ref", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("steps", [1, 3])
def test_matches_formulas_and_both_paths_agree_bitwise(name, make, ref, steps):
    expected = ref(steps)
    opt = make()
    arena = run_arena(opt, GRADS[:steps])
    assert opt.iterations == steps
    np.testing.assert_allclose(arena, expected, rtol=1e-12, atol=1e-14)
    other = make()
    applied = run_apply(other, GRADS[:steps])
    assert other.iterations == steps
    assert np.array_equal(arena, applied)
    # float32, the default, follows the same numbers to float32 precision
    f32 = run_arena(make(), GRADS[:steps], dtype=np.float32)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, expected, rtol=1e-4, atol=1e-5)
    assert np.array_equal(f32, run_apply(make(), GRADS[:steps], dtype=np.float32))


def test_single_steps_by_hand():
    w = run_arena(optimizers.SGD(0.1), [np.array([0.5, -1.0])], w0=np.array([1.0, 2.0]))
    np.testing.assert_allclose(w, [0.95, 2.1])
    # Adam's first step moves each weight by about lr * sign(g): m = 0.1 g, v = 0.001 g^2
    w = run_arena(optimizers.Adam(0.5), [np.array([2.0, -4.0])], w0=np.array([0.0, 0.0]))
    step = 0.5 * math.sqrt(0.001) / 0.1 * np.array([0.2, -0.4]) / (np.sqrt([0.004, 0.016]) + 1e-7)
    np.testing.assert_allclose(w, -step, rtol=1e-12)
    # Adagrad: acc = 0.1 + 9 = 9.1; w = 1 - 0.1 * 3 / sqrt(9.1 + 1e-7)
    w = run_arena(optimizers.Adagrad(0.1), [np.array([3.0])], w0=np.array([1.0]))
    np.testing.assert_allclose(w, [1 - 0.3 / math.sqrt(9.1 + 1e-7)], rtol=1e-14)


def test_clipnorm_is_per_variable():
    # segment norms: |(3, 4, 0)| = 5 and |(0, 0.3, 0.4, 0)| = 0.5
    g = np.array([3.0, 4.0, 0.0, 0.0, 0.3, 0.4, 0.0])
    w = run_arena(optimizers.SGD(1.0, clipnorm=1.0), [g], w0=np.zeros(7))
    np.testing.assert_allclose(w, -np.array([0.6, 0.8, 0, 0, 0.3, 0.4, 0]), rtol=1e-15)
    assert np.array_equal(w, run_apply(optimizers.SGD(1.0, clipnorm=1.0), [g], w0=np.zeros(7)))


def test_global_clipnorm_and_clipvalue():
    g = np.array([3.0, 4.0, 0.0, 0.0, 0.0, 12.0, 0.0])  # global norm 13
    w = run_arena(optimizers.SGD(1.0, global_clipnorm=2.6), [g], w0=np.zeros(7))
    np.testing.assert_allclose(w, -g * 0.2, rtol=1e-15)
    assert np.array_equal(w, run_apply(optimizers.SGD(1.0, global_clipnorm=2.6), [g], w0=np.zeros(7)))
    small = run_arena(optimizers.SGD(1.0, global_clipnorm=100.0), [g], w0=np.zeros(7))
    np.testing.assert_allclose(small, -g, rtol=1e-15)
    w = run_arena(optimizers.SGD(1.0, clipvalue=3.5), [g], w0=np.zeros(7))
    np.testing.assert_array_equal(w, -np.array([3.0, 3.5, 0, 0, 0, 3.5, 0]))
    with pytest.raises(ConfigError, match="Only one of clipnorm"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)


def test_weight_decay_before_update():
    # w = 2 - 2 * 0.5 * 0.1 = 1.9, then SGD: 1.9 - 0.1 * 1 = 1.8
    w = run_arena(optimizers.SGD(0.1, weight_decay=0.5), [np.array([1.0])], w0=np.array([2.0]))
    np.testing.assert_allclose(w, [1.8], rtol=1e-15)
    assert optimizers.AdamW().weight_decay == 0.004
    with pytest.raises(ConfigError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)


def test_schedules_by_hand():
    e = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert e(0) == pytest.approx(0.1) and e(10) == pytest.approx(0.05) and e(5) == pytest.approx(0.1 * 0.5 ** 0.5)
    assert schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == pytest.approx(0.05)
    p = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [p(s) for s in (0, 10, 11, 20, 21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    c = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert c(0) == pytest.approx(1.0) and c(50) == pytest.approx(0.55) and c(300) == pytest.approx(0.1)
    cw = schedules.CosineDecay(0.0, 100, warmup_target=1.0, warmup_steps=10)
    assert cw(5) == pytest.approx(0.5) and cw(10) == pytest.approx(1.0) and cw(60) == pytest.approx(0.5)
    assert schedules.InverseTimeDecay(1.0, 10, 0.5)(20) == pytest.approx(0.5)
    poly = schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.0, power=2.0)
    assert poly(5) == pytest.approx(0.25) and poly(50) == 0.0
    assert schedules.PolynomialDecay(1.0, 10, 0.0, cycle=True)(15) == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="one more value"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0])


def test_schedule_drives_learning_rate_and_float_replaces_it():
    from distdl.optimizers.schedules import PiecewiseConstantDecay
    opt = optimizers.SGD(PiecewiseConstantDecay([0], [1.0, 0.5]))
    params = np.zeros(1)
    opt.build(1, np.float64)
    for _ in range(2):
        assert opt.learning_rate == opt.current_learning_rate()
        opt.update(params, np.ones(1))
    np.testing.assert_allclose(params, [-1.5])  # lr 1.0 at step 0, 0.5 at step 1
    opt.learning_rate = 0.25
    opt.update(params, np.ones(1))
    assert opt.learning_rate == 0.25 and params[0] == pytest.approx(-1.75)


@pytest.mark.parametrize("make", [lambda: optimizers.Adam(0.01, amsgrad=True),
                                  lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True),
                                  lambda: optimizers.SGD(0.1, momentum=0.9),
                                  lambda: optimizers.Adagrad(0.1)])
def test_state_round_trip_continues_identically(make):
    opt = make()
    params = run_arena(opt, GRADS[:2], dtype=np.float32)
    state = {k: v.copy() for k, v in opt.get_state().items()}
    it, saved = opt.iterations, params.copy()
    assert list(state) == list(opt.slot_names) and all(a.shape == (7,) for a in state.values())
    opt.update(params, GRADS[2].astype(np.float32))
    fresh = make()
    fresh.build(7, np.float32, SEGMENTS)
    fresh.set_state(state)
    fresh.iterations = it
    fresh.update(saved, GRADS[2].astype(np.float32))
    assert np.array_equal(params, saved) and fresh.iterations == opt.iterations == 3


def test_set_state_checks_shapes_and_slots():
    opt = optimizers.Adam()
    opt.build(7, np.float32, SEGMENTS)
    with pytest.raises(ShapeError, match=r"'velocity'.*\(7,\).*\(6,\)"):
        opt.set_state({"momentum": np.zeros(7), "velocity": np.zeros(6)})
    with pytest.raises(ConfigError, match="velocity"):
        opt.set_state({"momentum": np.zeros(7)})
    with pytest.raises(ShapeError, match=r"\(7,\)"):
        opt.update(np.zeros(5, np.float32), np.zeros(5, np.float32))


def test_config_round_trip_is_json_and_includes_schedule():
    opt = optimizers.RMSprop(schedules.ExponentialDecay(0.1, 10, 0.9), momentum=0.5,
                             centered=True, clipnorm=1.0)
    spec = json.loads(json.dumps(optimizers.serialize(opt)))
    again = optimizers.deserialize(spec)
    assert isinstance(again, optimizers.RMSprop) and again.get_config() == opt.get_config()
    again.iterations = 10
    assert again.learning_rate == pytest.approx(0.09)
    keras_cfg = {**optimizers.Adam().get_config(), "use_ema": False, "ema_momentum": 0.99}
    assert optimizers.Adam.from_config(keras_cfg).beta_2 == 0.999
    with pytest.raises(ConfigError, match="use_ema"):
        optimizers.Adam(use_ema=True)


def test_get_builds_new_instances_with_keras_defaults():
    a, b = optimizers.get("adam"), optimizers.get("Adam")
    assert a is not b and a.learning_rate == 0.001 and a.epsilon == 1e-7
    assert optimizers.get("SGD").learning_rate == 0.01
    assert optimizers.get("rmsprop").rho == 0.9
    assert optimizers.get("adagrad").initial_accumulator_value == 0.1
    assert isinstance(optimizers.get("adamw"), optimizers.AdamW)
    assert optimizers.get(a) is a
    assert optimizers.get({"class_name": "SGD", "config": {"momentum": 0.5}}).momentum == 0.5
    with pytest.raises(ConfigError, match="adadelta, adafactor, adagrad, adam, adamax, adamw, ftrl, lamb"):
        optimizers.get("adamx")


def test_apply_gradients_on_variables_applies_constraints():
    from distdl.constraints import NonNeg
    var = Variable("v", np.array([0.5, 1.0]), constraint=NonNeg())
    opt = optimizers.SGD(1.0)
    opt.apply_gradients([(np.array([1.0, 0.5]), var), (None, np.zeros(2))])
    np.testing.assert_array_equal(var.value, [0.0, 0.5])
    assert opt.iterations == 1
    with pytest.raises(ShapeError):
        opt.apply_gradients([(np.ones(3), var)])
    w = np.array([1.0])
    assert opt.apply([np.array([0.25])], [w]) == 2 and w[0] == 0.75


def test_amsgrad_keeps_the_largest_velocity():
    # a big gradient then small ones: v shrinks, vhat keeps the maximum, so the steps differ
    grads = [np.array([10.0]), np.array([0.01]), np.array([0.01])]
    ams = run_arena(optimizers.Adam(0.1, beta_2=0.5, amsgrad=True), grads, w0=np.zeros(1))
    plain = run_arena(optimizers.Adam(0.1, beta_2=0.5), grads, w0=np.zeros(1))
    np.testing.assert_allclose(ams, ref_adam(np.zeros(1), grads, 0.1, b2=0.5, amsgrad=True), rtol=1e-12)
    np.testing.assert_allclose(plain, ref_adam(np.zeros(1), grads, 0.1, b2=0.5), rtol=1e-12)
    assert abs(ams[0] - plain[0]) > 1e-3


def test_slot_names_follow_keras_order():
    assert optimizers.SGD().slot_names == ()
    assert optimizers.SGD(momentum=0.9).slot_names == ("momentum",)
    assert optimizers.Adam(amsgrad=True).slot_names == ("momentum", "velocity", "velocity_hat")
    assert optimizers.RMSprop(momentum=0.5, centered=True).slot_names == (
        "velocity", "momentum", "average_gradient")
    assert optimizers.Adagrad().slot_names == ("accumulator",)
    opt = optimizers.Adagrad(initial_accumulator_value=0.5)
    opt.build(4, "float32")
    np.testing.assert_array_equal(opt.get_state()["accumulator"], np.full(4, 0.5, np.float32))


def test_get_state_returns_live_arrays():
    opt = optimizers.SGD(0.1, momentum=0.9)
    params = np.zeros(3)
    opt.build(3, np.float64)
    opt.get_state()["momentum"][...] = 1.0  # e.g. a broadcast from rank 0 into the slot
    opt.update(params, np.zeros(3))
    np.testing.assert_allclose(params, [0.9, 0.9, 0.9])
