"""Nadam, Adamax, Lion, Adadelta, Ftrl, Lamb and Adafactor: Keras 3's golden numbers, both entry
points (the arena and apply_gradients) agreeing bitwise, which of them shard, state, config, names,
and saving their slots in distdl checkpoints and Keras archives.

The golden numbers are copied from keras-team/keras keras/src/optimizers/<name>_test.py
(test_single_step, test_single_step_1d/_2d, test_correctness_with_golden, test_weight_decay),
each cited where it is used."""
import json
import zipfile

import numpy as np
import pytest
from mpirun import run_ranks

from distdl import optimizers
from distdl.errors import ConfigError
from distdl.layers import Dense
from distdl.models import Sequential, load_model
from distdl.saving import keras_format

NEW = {"Nadam": optimizers.Nadam, "Adamax": optimizers.Adamax, "Lion": optimizers.Lion,
       "Adadelta": optimizers.Adadelta, "Ftrl": optimizers.Ftrl, "Lamb": optimizers.Lamb,
       "Adafactor": optimizers.Adafactor}
ELEMENTWISE = ["Nadam", "Adamax", "Lion", "Adadelta", "Ftrl"]
PER_VARIABLE = ["Lamb", "Adafactor"]


def apply_steps(opt, w, grads):
    """w (float32) after `opt.apply_gradients` with each gradient in turn."""
    w = np.array(w, dtype=np.float32)
    for g in grads:
        opt.apply_gradients([(np.asarray(g, dtype=np.float32), w)])
    return w


# keras/src/optimizers/<name>_test.py::test_single_step (Adafactor: test_single_step_1d): lr 0.5,
# grads [1, 6, 7, 2] on [1, 2, 3, 4], rtol = atol = 1e-4 there
SINGLE = {"Nadam": [0.4686, 1.4686, 2.4686, 3.4686], "Adamax": [0.5, 1.5, 2.5, 3.5],
          "Adadelta": [0.9993, 1.9993, 2.9993, 3.9993], "Lion": [0.5, 1.5, 2.5, 3.5],
          "Ftrl": [0.2218, 1.3954, 2.3651, 2.8814], "Lamb": [-0.3693, 0.6306, 1.6306, 2.6306],
          "Adafactor": [-0.3693, 0.6307, 1.6307, 2.6307]}


@pytest.mark.parametrize("name", list(SINGLE))
def test_single_step_matches_keras(name):
    w = apply_steps(NEW[name](learning_rate=0.5), [1.0, 2.0, 3.0, 4.0], [[1.0, 6.0, 7.0, 2.0]])
    np.testing.assert_allclose(w, SINGLE[name], rtol=1e-4, atol=1e-4)


def test_adafactor_single_step_on_a_matrix_matches_keras():
    # adafactor_test.py::test_single_step_2d: the factored (row, column) second moments
    w = apply_steps(optimizers.Adafactor(learning_rate=0.5), [[1.0, 2.0], [3.0, 4.0]], [[[1.0, 6.0], [7.0, 2.0]]])
    np.testing.assert_allclose(w, [[0.7007, -0.0081], [1.2492, 3.4407]], rtol=1e-4, atol=1e-4)


# keras/src/optimizers/<name>_test.py::test_correctness_with_golden: x = ones(10), one step with
# gradient 0.01 everywhere, then five with arange(0.1, 1.1, 0.1); x is compared to golden[i] before
# step i + 2, rtol = atol = 5e-4 there
GOLDEN = {
    "Nadam": (dict(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5), [
        [0.4281] * 10,
        [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718, -0.1717],
        [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085, -0.7084],
        [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23, -1.2299],
        [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455, -1.7454]]),
    "Adamax": (dict(learning_rate=0.2, beta_1=0.85, beta_2=0.95, epsilon=1e-6), [
        [0.8] * 10,
        [0.6827, 0.6873, 0.6888, 0.6896, 0.6901, 0.6904, 0.6906, 0.6908, 0.6909, 0.691],
        [0.5333, 0.5407, 0.5431, 0.5444, 0.5451, 0.5456, 0.546, 0.5462, 0.5464, 0.5466],
        [0.368, 0.3773, 0.3804, 0.382, 0.3829, 0.3835, 0.384, 0.3843, 0.3846, 0.3848],
        [0.1933, 0.204, 0.2076, 0.2094, 0.2105, 0.2112, 0.2117, 0.2121, 0.2124, 0.2126]]),
    "Adadelta": (dict(learning_rate=1.0, rho=0.8, epsilon=1e-6),
                 [[v] * 10 for v in (0.9978, 0.9947, 0.9915, 0.9882, 0.9849)]),
    "Lion": ({}, [[v] * 10 for v in (0.999, 0.998, 0.997, 0.996, 0.995)]),
    "Ftrl": (dict(learning_rate=0.05, learning_rate_power=-0.2, initial_accumulator_value=0.4,
                  l1_regularization_strength=0.05, l2_regularization_strength=0.15,
                  l2_shrinkage_regularization_strength=0.01, beta=0.3), [
        [0.0] * 10,
        [-0.0034, -0.0077, -0.0118, -0.0157, -0.0194, -0.023, -0.0263, -0.0294, -0.0325, -0.0354],
        [-0.0078, -0.0162, -0.0242, -0.0317, -0.0387, -0.0454, -0.0516, -0.0575, -0.0631, -0.0685],
        [-0.0121, -0.0246, -0.0363, -0.0472, -0.0573, -0.0668, -0.0757, -0.0842, -0.0922, -0.0999],
        [-0.0164, -0.0328, -0.0481, -0.0623, -0.0753, -0.0875, -0.099, -0.1098, -0.1201, -0.1299]]),
    "Lamb": ({}, [[v] * 10 for v in (0.999, 0.9982, 0.9974, 0.9965, 0.9955)]),
    "Adafactor": (dict(learning_rate=0.5, beta_2_decay=-0.65, epsilon_1=1e-15, epsilon_2=1e-4,
                       clip_threshold=0.9, relative_step=False), [
        [0.55] * 10,
        [0.3031, 0.3026, 0.3025, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024, 0.3024],
        [0.1671, 0.1665, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663, 0.1663],
        [0.0923, 0.0916, 0.0915, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914, 0.0914],
        [0.0554, 0.0548, 0.0546, 0.0546, 0.0546, 0.0546, 0.0546, 0.0545, 0.0545, 0.0545]]),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_trajectory_matches_keras_golden(name):
    kwargs, golden = GOLDEN[name]
    opt = NEW[name](**kwargs)
    x = apply_steps(opt, np.ones(10), [np.full(10, 0.01)])
    grads = np.arange(0.1, 1.1, 0.1)
    for row in golden:
        np.testing.assert_allclose(x, row, rtol=5e-4, atol=5e-4)
        opt.apply_gradients([(grads.astype(np.float32), x)])


@pytest.mark.parametrize("name", [n for n in NEW if n != "Ftrl"])  # ftrl_test.py has no such case
def test_weight_decay_matches_keras(name):
    # <name>_test.py::test_weight_decay: three optimizers (lr 1, weight_decay 0.004) each step
    # var1 = 2.0 once with a zero gradient: 1.9760959
    var1 = np.array(2.0, dtype=np.float32)
    for _ in range(3):
        NEW[name](learning_rate=1.0, weight_decay=0.004).apply_gradients([(np.zeros((), np.float32), var1)])
    assert abs(float(var1) - 1.9760959) < 1e-6


def two_variables(dtype=np.float64):
    """A (3, 4) matrix and a (4,) vector as one flat arena, and three steps of gradients."""
    rng = np.random.default_rng(3)
    shapes, segments = [(3, 4), (4,)], [(0, 12), (12, 16)]
    return (rng.normal(size=16).astype(dtype), [rng.normal(size=16).astype(dtype) for _ in range(3)],
            shapes, segments)


def arena_run(opt, params, grads, shapes, segments):
    params = params.copy()
    opt.build(params.size, params.dtype, segments, shapes)
    for g in grads:
        opt.update(params, g.copy())
    return params


@pytest.mark.parametrize("wd", [None, 0.01])
@pytest.mark.parametrize("name", list(NEW))
def test_arena_and_apply_gradients_agree_bitwise(name, wd):
    """The arena path steps each variable as apply_gradients does: Lamb's trust ratio and
    Adafactor's factored moments per variable, not over the whole arena."""
    params, grads, shapes, segments = two_variables()
    arena = arena_run(NEW[name](0.05, weight_decay=wd), params, grads, shapes, segments)
    opt, ws = NEW[name](0.05, weight_decay=wd), [params[a:b].reshape(s).copy() for (a, b), s in zip(segments, shapes)]
    for g in grads:
        opt.apply_gradients([(g[a:b].reshape(s), w) for (a, b), s, w in zip(segments, shapes, ws)])
    np.testing.assert_array_equal(arena, np.concatenate([w.reshape(-1) for w in ws]))
    assert not np.array_equal(arena, params)


def test_lamb_and_adafactor_use_each_variable_alone():
    """One arena of two variables does not step as one variable of their joint length would."""
    params, grads, shapes, segments = two_variables()
    for name in PER_VARIABLE:
        split = arena_run(NEW[name](0.05), params, grads, shapes, segments)
        joint = arena_run(NEW[name](0.05), params, grads, [(16,)], [(0, 16)])
        assert not np.allclose(split, joint), name


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_optimizers_step_slices_bitwise_like_the_whole(name):
    """What the sharded step does: slices [0, 5), [5, 11), [11, 16) stepped apart, each with its
    slice of the slots, give the whole-arena update bitwise (and the slots too)."""
    params, grads, shapes, segments = two_variables(np.float32)
    whole, sharded = NEW[name](0.05, weight_decay=0.01), NEW[name](0.05, weight_decay=0.01)
    ref = arena_run(whole, params, grads, shapes, segments)
    sharded.build(16, np.float32, segments, shapes)
    got = params.copy()
    assert sharded.sliceable
    for g in grads:
        g = g.copy()
        for lo, hi in ((0, 5), (5, 11), (11, 16)):
            it = sharded.iterations
            sharded.update(got[lo:hi], g[lo:hi], {k: s[lo:hi] for k, s in sharded.get_state().items()})
            sharded.iterations = it if hi < 16 else sharded.iterations  # one step per whole pass
    np.testing.assert_array_equal(got, ref)
    for k, v in whole.get_state().items():
        np.testing.assert_array_equal(sharded.get_state()[k], v)


@pytest.mark.parametrize("name", PER_VARIABLE)
def test_per_variable_optimizers_refuse_slices_and_an_unbuilt_arena(name):
    params, grads, shapes, segments = two_variables()
    opt = NEW[name]()
    with pytest.raises(ConfigError, match=f"{name} with clipnorm or a per-variable rule needs build"):
        opt.update(params.copy(), grads[0].copy())
    opt.build(16, params.dtype, segments, shapes)
    assert not opt.sliceable  # so distdl.comm.strategies takes the allreduce path and a full update
    with pytest.raises(ConfigError, match=f"{name} cannot update a slice"):
        opt.update(params[:5].copy(), grads[0][:5].copy(), {k: s[:5] for k, s in opt.get_state().items()})


@pytest.mark.parametrize("name", list(NEW))
def test_state_round_trip_continues_identically(name):
    """A fresh optimizer given the slots and `iterations` continues bitwise (Nadam's schedule
    product is derived from `iterations`, so it needs no slot)."""
    params, grads, shapes, segments = two_variables(np.float32)
    opt = NEW[name](0.05)
    w = arena_run(opt, params, grads[:2], shapes, segments)
    state, saved = {k: v.copy() for k, v in opt.get_state().items()}, w.copy()
    assert list(state) == list(opt.slot_names) and all(a.shape == (16,) for a in state.values())
    opt.update(w, grads[2].copy())
    fresh = NEW[name](0.05)
    fresh.build(16, np.float32, segments, shapes)
    fresh.set_state({**state, "iterations": 2})
    fresh.update(saved, grads[2].copy())
    np.testing.assert_array_equal(w, saved)


def test_nadam_schedule_product_follows_iterations_both_ways():
    """Nadam's u_1 ... u_t is a function of `iterations` (Keras keeps it as a variable): after
    steps, a jump back (a restore of an earlier state) or forward gives the product afresh."""
    def by_hand(t):
        u = np.float32(1.0)
        for i in range(1, t + 1):
            u = u * np.float32(0.9) * (np.float32(1) - np.float32(0.5) * np.float32(0.96) ** np.float32(i))
        return float(u)
    opt = optimizers.Nadam()
    opt.build(4, np.float32)
    assert opt.u_product == 1.0
    for _ in range(3):
        opt.update(np.zeros(4, np.float32), np.ones(4, np.float32))
    assert opt.u_product == by_hand(3)
    opt.iterations = 1
    assert opt.u_product == by_hand(1)
    opt.iterations = 7
    assert opt.u_product == by_hand(7) != by_hand(6)


def test_ftrl_accumulator_starts_at_its_initial_value():
    opt = optimizers.Ftrl(initial_accumulator_value=0.4)
    opt.build(5, np.float32)
    np.testing.assert_array_equal(opt.get_state()["accumulator"], np.full(5, 0.4, np.float32))
    np.testing.assert_array_equal(opt.get_state()["linear"], np.zeros(5, np.float32))


# Keras 3 defaults (keras/src/optimizers/<name>.py signatures)
DEFAULTS = {"nadam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
            "adamax": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
            "lion": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.99),
            "adadelta": dict(learning_rate=0.001, rho=0.95, epsilon=1e-7),
            "ftrl": dict(learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                         l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                         l2_shrinkage_regularization_strength=0.0, beta=0.0),
            "lamb": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
            "adafactor": dict(learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                              clip_threshold=1.0, relative_step=True)}


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_get_by_name_gives_keras_defaults_and_config_round_trips(name):
    for ident in (name, name.upper(), type(optimizers.get(name)).__name__):
        opt = optimizers.get(ident)
        assert type(opt).__name__.lower() == name and opt.name == name
    config = optimizers.get(name).get_config()
    assert {k: config[k] for k in DEFAULTS[name]} == DEFAULTS[name]
    custom = optimizers.get(name)
    custom = type(custom)(learning_rate=optimizers.schedules.CosineDecayRestarts(0.1, 5), clipvalue=0.5,
                          weight_decay=0.01, name="mine")
    text = json.dumps(optimizers.serialize(custom))
    back = optimizers.deserialize(json.loads(text))
    assert type(back) is type(custom) and back.get_config() == custom.get_config()
    assert isinstance(back._learning_rate, optimizers.schedules.CosineDecayRestarts)


@pytest.mark.parametrize("make,message", [
    (lambda: optimizers.Lion(beta_1=0.0), "Lion argument beta_1 must be in \\(0, 1\\]"),
    (lambda: optimizers.Lion(beta_1=1.5), "Lion argument beta_1 must be in \\(0, 1\\]"),
    (lambda: optimizers.Ftrl(learning_rate_power=0.1), "Ftrl argument learning_rate_power must be <= 0"),
    (lambda: optimizers.Ftrl(initial_accumulator_value=-0.1), "Ftrl argument initial_accumulator_value"),
    (lambda: optimizers.Ftrl(l1_regularization_strength=-0.1), "Ftrl argument l1_regularization_strength"),
    (lambda: optimizers.Ftrl(l2_shrinkage_regularization_strength=-1), "l2_shrinkage_regularization_strength"),
    (lambda: optimizers.Nadam(use_ema=True), "Nadam does not support use_ema=True"),
    (lambda: optimizers.get("lamb_v2"), "lamb_v2"),
])
def test_bad_arguments_get_one_sentence(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_build_refuses_shapes_that_do_not_fill_the_segments():
    with pytest.raises(Exception, match="shapes \\[\\(3, 3\\)\\] that do not fill the segments"):
        optimizers.Adafactor().build(8, "float32", [(0, 8)], [(3, 3)])


def small_model(opt):
    model = Sequential([Dense(4, activation="tanh", input_shape=(3,)), Dense(2)])
    model.compile(optimizer=opt, loss="mse")
    rng = np.random.default_rng(1)
    return model, rng.normal(size=(12, 3)).astype("float32"), rng.normal(size=(12, 2)).astype("float32")


@pytest.mark.parametrize("name", list(NEW))
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_saved_slots_resume_training_bitwise(tmp_path, name, suffix):
    """model.save then load_model (distdl's checkpoint or Keras's archive): the slots come back and
    one more epoch gives the weights the uninterrupted model gets."""
    model, x, y = small_model(NEW[name](0.01))
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    model.save(tmp_path / f"m{suffix}")
    back = load_model(tmp_path / f"m{suffix}")
    assert type(back.optimizer) is type(model.optimizer) and back.optimizer.iterations == 6
    for k, v in model.optimizer.get_state().items():
        np.testing.assert_array_equal(back.optimizer.get_state()[k], v)
    for m in (model, back):
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for w, g in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(w, g)


def keras_optimizer_vars(tmp_path, opt):
    """The optimizer/vars of a `.keras` archive of small_model after one epoch, and the model."""
    model, x, y = small_model(opt)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        (tmp_path / "w.weights.h5").write_bytes(z.read("model.weights.h5"))
    return keras_format.read_keras_optimizer_vars(tmp_path / "w.weights.h5"), model


def test_keras_archive_optimizer_variables_follow_keras_order(tmp_path):
    """Keras's optimizer/vars: iterations, learning rate, then per variable its slots interleaved
    (add_optimizer_variables), Nadam's momentum-schedule product last (its `_u_product`)."""
    vars_, model = keras_optimizer_vars(tmp_path, optimizers.Nadam(0.01))
    weights, state = model.trainable_weights, model.optimizer.get_state()
    assert len(vars_) == 2 + 2 * len(weights) + 1 and int(vars_[0]) == 3
    np.testing.assert_array_equal(vars_[2], state["momentum"][:12].reshape(3, 4))
    np.testing.assert_array_equal(vars_[3], state["velocity"][:12].reshape(3, 4))
    u = np.float32(1.0)
    for t in (1, 2, 3):
        u = u * np.float32(0.9) * (np.float32(1) - np.float32(0.5) * np.float32(0.96) ** np.float32(t))
    assert vars_[-1].shape == () and np.float32(vars_[-1]) == u


def test_keras_archive_holds_adafactor_row_and_column_means_in_keras_shapes(tmp_path):
    """keras/src/optimizers/adafactor.py build: per variable r (shape[:-1]), c (shape[:-2] +
    shape[-1:]) and velocity; a variable under 2-D has scalar r and c."""
    vars_, model = keras_optimizer_vars(tmp_path, optimizers.Adafactor(0.01))
    shapes = [np.shape(a) for a in vars_[2:]]
    assert shapes == [(3,), (4,), (3, 4), (), (), (4,), (4,), (2,), (4, 2), (), (), (2,)]
    r = model.optimizer.get_state()["r"]
    np.testing.assert_array_equal(vars_[2], r[:3])
    assert np.all(vars_[2] > 0) and float(vars_[5]) == 0.0


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "shm"])
@pytest.mark.parametrize("name", ["Nadam", "Lamb", "Adafactor"])
def test_ranks_follow_the_single_process_trajectory(tmp_path, name, mode):
    """Real mpirun on 2 and 3 ranks against one plain process (float64, 3 epochs of 7 steps):
    the weights and every slot agree, on every rank alike. With DISTDL_ALLREDUCE=shm Nadam takes
    the sharded step (weights one copy per node) and Lamb and Adafactor the full update."""
    runs = run_ranks("optimizer_trajectory.py", tmp_path / "one", name, ranks=(1,))
    runs.update(run_ranks("optimizer_trajectory.py", tmp_path / mode, name, ranks=(2, 3),
                          env={"DISTDL_ALLREDUCE": mode}))
    ref = runs[1][0]
    assert int(ref["iterations"]) == 21 and ref["loss"][-1] < ref["loss"][0]
    for n in (2, 3):
        for r in range(n):
            got = runs[n][r]
            assert got.keys() == ref.keys()
            np.testing.assert_array_equal(got["params"], runs[n][0]["params"])
            for key in ref:
                if key != "node_shared":
                    np.testing.assert_allclose(got[key], ref[key], rtol=1e-10, atol=1e-12, err_msg=f"{n} {r} {key}")
        assert [bool(r["node_shared"]) for r in runs[n]] == [mode == "shm" and name == "Nadam"] * n
