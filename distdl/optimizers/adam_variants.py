"""Elementwise relatives of Adam, Keras 3 formulas: Nadam (Nesterov momentum), Adamax (infinity
norm) and Lion (sign of an interpolated momentum). Each treats every element alone, so the
sharded step (distdl.comm.strategies) may step any slice of the arena."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Optimizer
from .schedules import LearningRateSchedule

__all__ = ["Nadam", "Adamax", "Lion"]


class Nadam(Optimizer):
    """Keras Nadam: Adam with Nesterov momentum and the momentum schedule
    `u_t = beta_1 (1 - 0.5 * 0.96^t)`.

    Keras keeps the running product `u_1 ... u_t` as an optimizer variable; here it is a function
    of the step alone (recomputed after a restore or a jump of `iterations`, else extended by one
    factor per step), so the saved state is only the momentum and velocity slots, and every rank of
    a sharded step computes the same scalar.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        beta_1: decay rate of the first moment.
        beta_2: decay rate of the second moment.
        epsilon: added to the root of the bias-corrected second moment.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "nadam"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._u_cache: tuple[int, np.dtype, np.floating] | None = None

    def _active_slots(self):
        return ("momentum", "velocity")

    @property
    def u_product(self) -> float:
        """The momentum-schedule product u_1 ... u_t after the steps taken (1 before any), in the
        slots' dtype: the scalar Keras saves after Nadam's slots."""
        dt = self._slots["momentum"].dtype.type if self.built else np.float32
        return float(self._u_product(self.iterations, dt))

    def _u(self, i, dt):
        return dt(self.beta_1) * (dt(1.0) - dt(0.5) * dt(0.96) ** dt(i))

    def _u_product(self, t: int, dt) -> np.floating:
        """u_1 u_2 ... u_t in the weights' dtype, multiplied in step order as Keras's variable is
        (`prod * beta_1 * (1 - 0.5 * 0.96^i)`); O(1) per step, O(t) once after a jump."""
        prod, done = dt(1.0), 0
        if self._u_cache is not None and self._u_cache[1] == dt and self._u_cache[0] <= t:
            done, _, prod = self._u_cache
        for i in range(done + 1, t + 1):
            prod = prod * dt(self.beta_1) * (dt(1.0) - dt(0.5) * dt(0.96) ** dt(i))
        self._u_cache = (t, dt, prod)
        return prod

    def _step(self, w, g, slots, s, lr, t):
        m, v = slots["momentum"], slots["velocity"]
        dt = w.dtype.type
        one = dt(1.0)
        u_t, u_next = self._u(t, dt), self._u(t + 1, dt)
        prod = self._u_product(t, dt)
        prod_next = prod * u_next
        np.subtract(g, m, out=s)
        s *= dt(1.0 - self.beta_1)
        m += s
        np.square(g, out=s)
        s -= v
        s *= dt(1.0 - self.beta_2)
        v += s
        # m_hat = u_{t+1} m / (1 - prod u_{t+1}) + (1 - u_t) g / (1 - prod)
        g *= (one - u_t) / (one - prod)
        np.multiply(m, u_next / (one - prod_next), out=s)
        g += s
        g *= dt(lr)
        np.divide(v, one - dt(self.beta_2) ** dt(t), out=s)
        np.sqrt(s, out=s)
        s += dt(self.epsilon)
        g /= s
        w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Keras Adamax: `m += (g - m)(1 - b1); u = max(b2 u, |g|); w -= lr m / ((1 - b1^t)(u + eps))`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        beta_1: decay rate of the first moment.
        beta_2: decay rate of the infinity norm.
        epsilon: added to the norm.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "adamax"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _active_slots(self):
        return ("momentum", "norm")

    def _step(self, w, g, slots, s, lr, t):
        m, u = slots["momentum"], slots["norm"]
        dt = w.dtype.type
        np.subtract(g, m, out=s)
        s *= 1.0 - self.beta_1
        m += s
        u *= self.beta_2
        np.abs(g, out=s)
        np.maximum(u, s, out=u)
        np.add(u, self.epsilon, out=s)
        s *= dt(1.0) - dt(self.beta_1) ** dt(t)
        np.multiply(m, dt(lr), out=g)
        g /= s
        w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Lion(Optimizer):
    """Keras Lion: `w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        beta_1: interpolation of momentum and gradient inside the sign, in (0, 1].
        beta_2: decay rate of the momentum.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "lion"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.99, **kwargs) -> None:
        if not 0 < beta_1 <= 1:
            raise ConfigError(f"Lion argument beta_1 must be in (0, 1] (else it is SignSGD), got {beta_1!r}.")
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _active_slots(self):
        return ("momentum",)

    def _step(self, w, g, slots, s, lr, t):
        m = slots["momentum"]
        dt = w.dtype.type
        np.multiply(m, dt(self.beta_1), out=s)
        m *= dt(self.beta_2)
        s += g * dt(1.0 - self.beta_1)
        g *= dt(1.0 - self.beta_2)
        m += g
        np.sign(s, out=s)
        s *= dt(lr)
        w -= s

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
