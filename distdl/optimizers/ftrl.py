"""FTRL-Proximal (follow the regularized leader), Keras 3's formula: an elementwise rule whose
weights are recomputed each step from an accumulated linear term, with L1, L2 and L2-shrinkage."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Optimizer
from .schedules import LearningRateSchedule

__all__ = ["Ftrl"]


class Ftrl(Optimizer):
    """Keras Ftrl, per element (p = learning_rate_power, n = accumulator, z = linear):
    `z += g + 2 l2s w - (( n + g^2)^-p - n^-p) / lr * w;  n += g^2;
    w = (clip(z, -l1, l1) - z) / (n^-p / lr + 2 (l2 + beta / (2 lr)))`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        learning_rate_power: <= 0; how the per-coordinate rate falls with the accumulator (-0.5: 1/sqrt).
        initial_accumulator_value: >= 0, start value of the accumulators.
        l1_regularization_strength: >= 0.
        l2_regularization_strength: >= 0.
        l2_shrinkage_regularization_strength: >= 0; an L2 penalty on the gradient only (magnitude shrinkage).
        beta: added to the L2 term as `beta / (2 lr)`.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "ftrl"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0, l2_shrinkage_regularization_strength: float = 0.0,
                 beta: float = 0.0, **kwargs) -> None:
        if learning_rate_power > 0:
            raise ConfigError(f"Ftrl argument learning_rate_power must be <= 0, got {learning_rate_power!r}.")
        for arg, value in (("initial_accumulator_value", initial_accumulator_value),
                           ("l1_regularization_strength", l1_regularization_strength),
                           ("l2_regularization_strength", l2_regularization_strength),
                           ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength)):
            if value < 0:
                raise ConfigError(f"Ftrl argument {arg} must be >= 0, got {value!r}.")
        super().__init__(learning_rate, **kwargs)
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def _active_slots(self):
        return ("accumulator", "linear")

    def _init_slots(self, shape, dtype):
        return {"accumulator": np.full(shape, self.initial_accumulator_value, dtype=dtype),
                "linear": np.zeros(shape, dtype=dtype)}

    def _step(self, w, g, slots, s, lr, t):
        n, z = slots["accumulator"], slots["linear"]
        dt = w.dtype.type
        lr, p = dt(lr), dt(-self.learning_rate_power)
        l1 = dt(self.l1_regularization_strength)
        l2 = dt(self.l2_regularization_strength) + dt(self.beta) / (dt(2.0) * lr)
        old_pow = np.power(n, p)
        np.square(g, out=s)
        n += s  # the new accumulator
        if self.l2_shrinkage_regularization_strength:
            g += dt(2 * self.l2_shrinkage_regularization_strength) * w
        z += g
        np.power(n, p, out=s)  # new_accum ** -lr_power
        old_pow -= s
        old_pow /= lr
        old_pow *= w
        z += old_pow  # z -= (new_pow - old_pow) / lr * w
        s /= lr
        s += dt(2.0) * l2  # the quadratic term
        np.clip(z, -l1, l1, out=g)
        g -= z
        np.divide(g, s, out=w)

    def get_config(self) -> dict:
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
