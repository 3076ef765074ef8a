"""Learning-rate schedules against Keras 3's own tests
(keras-team/keras keras/src/optimizers/schedules/learning_rate_schedule_test.py, cited per test):
CosineDecayRestarts, PiecewiseConstantDecay, InverseTimeDecay, PolynomialDecay and CosineDecay with
warmup; their configs, and a schedule driving an optimizer through fit."""
import json
import math

import numpy as np
import pytest

from distdl import optimizers
from distdl.errors import ConfigError
from distdl.optimizers import schedules


def np_cosine_decay_restarts(step, decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
    """CosineDecayRestartsTest.np_cosine_decay_restarts: walk the periods one by one."""
    fac = 1.0
    while step >= decay_steps:
        step -= decay_steps
        decay_steps *= t_mul
        fac *= m_mul
    completed_fraction = step / decay_steps
    decay = fac * 0.5 * (1.0 + math.cos(math.pi * completed_fraction))
    return (1.0 - alpha) * decay + alpha


@pytest.mark.parametrize("kwargs", [{}, {"alpha": 0.1}, {"m_mul": 0.9}, {"t_mul": 1.0},
                                    {"t_mul": 3.0, "m_mul": 0.5, "alpha": 0.2}])
def test_cosine_decay_restarts_matches_keras(kwargs):
    # CosineDecayRestartsTest.test_decay / test_alpha / test_mmul / test_tmul: 1000 steps, steps
    # 0..1250 by 250, rtol 1e-6; the last case adds more periods (t_mul 3 with restarts at 1000, 4000)
    schedule = schedules.CosineDecayRestarts(1.0, 1000, **kwargs)
    for step in list(range(0, 1500, 250)) + [999, 1000, 3999, 4000, 5000, 13000]:
        assert schedule(step) == pytest.approx(np_cosine_decay_restarts(step, 1000, **kwargs), rel=1e-6, abs=1e-9)


def test_cosine_decay_restarts_restarts_at_each_period_start():
    schedule = schedules.CosineDecayRestarts(0.5, 10, t_mul=2.0, m_mul=0.5)
    assert schedule(0) == 0.5 and schedule(10) == pytest.approx(0.25) and schedule(30) == pytest.approx(0.125)
    assert schedule(9) < 0.05 and schedule(29) < schedule(10)


def test_cosine_decay_restarts_config_and_bad_steps():
    # CosineDecayRestartsTest.test_config's arguments
    s = schedules.CosineDecayRestarts(initial_learning_rate=0.05, first_decay_steps=10, alpha=0.1, t_mul=3.0,
                                      m_mul=4.0, name="my_cdr")
    config = s.get_config()
    assert config == {"initial_learning_rate": 0.05, "first_decay_steps": 10, "t_mul": 3.0, "m_mul": 4.0,
                      "alpha": 0.1, "name": "my_cdr"}
    back = schedules.deserialize(json.loads(json.dumps(schedules.serialize(s))))
    assert type(back) is schedules.CosineDecayRestarts and back.get_config() == config
    assert schedules.CosineDecayRestarts(1.0, 10).name == "SGDRDecay"
    with pytest.raises(ConfigError, match="CosineDecayRestarts argument first_decay_steps must be positive"):
        schedules.CosineDecayRestarts(1.0, 0)


def test_piecewise_constant_matches_keras():
    # PiecewiseConstantDecayTest.test_piecewise_values and test_boundary_values
    s = schedules.PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001])
    for step, want in ((-999, 1.0), (100, 1.0), (105, 0.1), (110, 0.1), (120, 0.01), (999, 0.001)):
        assert s(step) == pytest.approx(want, rel=1e-6)
    s = schedules.PiecewiseConstantDecay([1, 2, 3], [0.4, 0.5, 0.6, 0.7])
    assert [s(i) for i in range(5)] == pytest.approx([0.4, 0.4, 0.5, 0.6, 0.7])
    assert s.name == "PiecewiseConstant"
    with pytest.raises(ConfigError, match="one more value than boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay_matches_keras(staircase):
    # InverseTimeDecayTest.test_decay and test_staircase: 0.1, k = 10, rate 0.96, steps 0..10
    s = schedules.InverseTimeDecay(0.1, 10, 0.96, staircase=staircase)
    for i in range(11):
        want = 0.1 / (1 + 0.96 * (i // 10)) if staircase else 0.1 / (1 + i / 10 * 0.96)
        assert s(i) == pytest.approx(want, rel=1e-6)


def test_polynomial_decay_matches_keras():
    # LinearDecayTest (power 1): halfway, end, halfway with end, beyond end, beyond end with cycle
    lr, end = 0.05, 0.001
    assert schedules.PolynomialDecay(lr, 10, end_learning_rate=0.0)(5) == pytest.approx(lr * 0.5)
    assert schedules.PolynomialDecay(lr, 10, end)(10) == pytest.approx(end)
    assert schedules.PolynomialDecay(lr, 10, end)(5) == pytest.approx((lr + end) * 0.5)
    assert schedules.PolynomialDecay(lr, 10, end)(15) == pytest.approx(end)
    assert schedules.PolynomialDecay(lr, 10, end, cycle=True)(15) == pytest.approx((lr - end) * 0.25 + end)
    # SqrtDecayTest (power 0.5): halfway and beyond end with cycle
    assert schedules.PolynomialDecay(lr, 10, 0.0, power=0.5)(5) == pytest.approx(lr * 0.5 ** 0.5)
    assert schedules.PolynomialDecay(lr, 10, end, power=0.5, cycle=True)(15) == pytest.approx(
        (lr - end) * 0.25 ** 0.5 + end)


def test_cosine_decay_warmup_matches_keras():
    # CosineDecayTest.test_warmup_decay: warmup 2000 steps from 0 to 10, then 1000 steps of decay
    s = schedules.CosineDecay(0.0, 1000, warmup_target=10.0, warmup_steps=2000)
    for step in range(0, 3000, 250):
        if step < 2001:
            want = step / 2000 * 10.0
        else:
            want = 10.0 * 0.5 * (1.0 + math.cos(math.pi * min(step - 2000, 1000) / 1000))
        assert s(step) == pytest.approx(want, rel=1e-6, abs=1e-9)
    # test_alpha without warmup: floor at alpha beyond decay_steps
    assert schedules.CosineDecay(1.0, 1000, 0.1)(1250) == pytest.approx(0.1)
    assert schedules.CosineDecay(1.0, 10).get_config()["warmup_target"] is None


def test_a_restarting_schedule_drives_a_new_optimizer_step_by_step():
    """Nadam with CosineDecayRestarts: each step uses schedule(iterations), restarts included; its
    config carries the schedule."""
    s = schedules.CosineDecayRestarts(0.1, 2, t_mul=1.0)
    opt = optimizers.Nadam(s)
    w = np.zeros(3, np.float32)
    seen = []
    for _ in range(5):
        seen.append(opt.learning_rate)
        opt.apply_gradients([(np.ones(3, np.float32), w)])
    assert seen == pytest.approx([s(i) for i in range(5)]) and seen[2] == pytest.approx(0.1)
    assert opt.get_config()["learning_rate"]["class_name"] == "CosineDecayRestarts"
