"""Update strategies (`distdl.comm.strategies`): the serial step against the optimizer's own arena
path, the one `Optimizer.update` over a whole arena or slices, model.params/grads as the arena,
and which strategy a fit picks on 1, 2 and 3 ranks."""
import re

import numpy as np
import pytest

from distdl import optimizers, utils
from distdl.comm import SerialComm
from distdl.comm.strategies import SerialUpdate
from distdl.errors import ConfigError, ShapeError
from distdl.layers import Dense
from distdl.models import Sequential
from mpirun import run_mpi

RNG = np.random.default_rng(3)


def _model(optimizer, dtype="float32", constraint=None):
    utils.set_random_seed(1)
    model = Sequential([Dense(9, activation="relu", kernel_regularizer="l1_l2", input_shape=(5,),
                              kernel_constraint=constraint, dtype=dtype),
                        Dense(3, dtype=dtype)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _fill_grads(model, step):
    model.grads[...] = np.random.default_rng(step).standard_normal(model.grads.size)


@pytest.mark.parametrize("make", [
    lambda: optimizers.AdamW(0.01, weight_decay=0.05, clipvalue=0.3),
    lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True, clipnorm=0.5),
    lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True, global_clipnorm=1.0),
    lambda: optimizers.Adagrad(0.1)])
@pytest.mark.parametrize("constraint", [None, "max_norm"])
def test_serial_strategy_is_bitwise_the_arena_update(make, constraint):
    """SerialUpdate.step: penalty gradients, optimizer.update over the arena, constraints, as the
    training loop did them before strategies existed."""
    a, b = _model(make(), constraint=constraint), _model(make(), constraint=constraint)
    strategy = SerialComm().update_strategy(a)
    assert isinstance(strategy, SerialUpdate) and not strategy.sharded
    for step in range(4):
        _fill_grads(a, step)
        _fill_grads(b, step)
        strategy.step()
        for v in b.regularized:
            v.grad += v.regularizer.gradient(v.value)
        b.optimizer.update(b.params, b.grads)
        for v in b.constrained:
            v.value[...] = v.constraint(v.value)
        assert np.array_equal(a.params, b.params)
    for name, slot in a.optimizer.get_state().items():
        assert np.array_equal(slot, b.optimizer.get_state()[name]), name
    assert a.optimizer.iterations == b.optimizer.iterations == 4


@pytest.mark.parametrize("make", [lambda: optimizers.AdamW(0.01, weight_decay=0.05, clipvalue=0.3, amsgrad=True),
                                  lambda: optimizers.SGD(0.1, momentum=0.9),
                                  lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                                  lambda: optimizers.Adagrad(0.1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_on_slices_is_bitwise_the_whole_arena(make, dtype):
    """Stepping [0, k) and [k, P) apart, with slices of the slots, equals one whole step."""
    whole, parts = make(), make()
    size, cut = 23, 16
    for opt in (whole, parts):
        opt.build(size, dtype, [(0, 10), (10, size)])
    w0 = RNG.standard_normal(size).astype(dtype)
    pw, qw = w0.copy(), w0.copy()
    for t in range(3):
        g = RNG.standard_normal(size).astype(dtype)
        whole.update(pw, g.copy())
        gq, slots = g.copy(), parts.get_state()
        for lo, hi in ((0, cut), (cut, size)):
            parts.update(qw[lo:hi], gq[lo:hi], {k: s[lo:hi] for k, s in slots.items()})
            parts.iterations -= 1  # each rank of a sharded step counts its one step once
        parts.iterations += 1
        assert np.array_equal(pw, qw), t
    for name, slot in whole.get_state().items():
        assert np.array_equal(slot, parts.get_state()[name]), name


def test_norm_clipping_refuses_a_slice():
    opt = optimizers.SGD(0.1, clipnorm=1.0)
    opt.build(4, np.float32)
    assert not opt.sliceable
    with pytest.raises(ConfigError, match="cannot update a slice"):
        opt.update(np.zeros(2, np.float32), np.zeros(2, np.float32), {})


def test_set_state_without_copy_adopts_the_arrays():
    opt = optimizers.Adam()
    opt.build(5, np.float32)
    mine = {k: np.full(5, 2.0, np.float32) for k in opt.slot_names}
    opt.set_state(mine, copy=False)
    assert all(opt.get_state()[k] is a for k, a in mine.items())
    opt.update(np.zeros(5, np.float32), np.ones(5, np.float32))
    assert not np.array_equal(mine["momentum"], np.full(5, 2.0))  # the update wrote them
    with pytest.raises(ShapeError, match="float64"):
        opt.set_state({k: np.zeros(5) for k in opt.slot_names}, copy=False)


def test_params_and_grads_are_the_arena():
    model = Sequential([Dense(3, input_shape=(2,))])
    assert isinstance(model.comm, SerialComm)  # a communicator from construction, never None
    model.build()
    assert model.params is model.trainable_arena.params and model.grads is model.trainable_arena.grads
    model.trainable_arena.move_params(np.zeros(model.params.size, np.float32), copy=False)
    assert model.params is model.trainable_arena.params and not model.params.any()
    model.params += 1.0  # in place: the arena itself
    assert np.array_equal(model.layers[0].kernel.value, np.ones((2, 3)))
    with pytest.raises(AttributeError, match=r"model\.params\[\.\.\.\]"):
        model.params = np.zeros(model.params.size, np.float32)
    assert Sequential([Dense(3)]).params is None  # not built yet


@pytest.mark.mpi
@pytest.mark.parametrize("n", [1, 2, 3])
def test_fit_picks_the_strategy_from_world_optimizer_and_env(n, tmp_path):
    """DISTDL_ALLREDUCE, the optimizer (norm clipping), constraints and the gradients' size pick
    serial, allreduce or node-shared; a model recompiled with other slots is laid out anew in the
    node buffer and trains as with MPI's allreduce; one that stops being sharded gets private
    weights."""
    modes = ("mpi", "auto", "shm") if n > 1 else ("auto",)
    for mode in modes:
        p = run_mpi(n, "strategy_choice.py", mode, tmp_path / mode, env={"DISTDL_ALLREDUCE": mode})
        assert p.returncode == 0, p.stdout + p.stderr
        assert sorted(re.findall(r"choice ok rank (\d+)", p.stdout)) == [str(r) for r in range(n)], p.stdout
    ref = np.load(tmp_path / f"{modes[0]}_rank0.npy")
    for mode in modes:
        for r in range(n):
            got = np.load(tmp_path / f"{mode}_rank{r}.npy")
            if n < 3:  # a + b = b + a: bitwise; three ranks may sum in another order than MPI's
                assert np.array_equal(got, ref), (mode, r)
            else:
                np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
