"""Adam (with optional AMSGrad) and AdamW, Adam with decoupled weight decay."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Optimizer
from .schedules import LearningRateSchedule

__all__ = ["Adam", "AdamW", "update_moments"]


def update_moments(g, m, v, s, beta_1: float, beta_2: float) -> None:
    """Adam's moment updates in place, through the scratch array `s` (Adam and Lamb share them):
    m += (1 - beta_1)(g - m), v += (1 - beta_2)(g^2 - v).

    Args:
        g: the gradient.
        m: the first moment (updated in place).
        v: the second moment (updated in place).
        s: a scratch array of g's shape (overwritten).
        beta_1: decay rate of the first moment.
        beta_2: decay rate of the second moment.
    """
    np.subtract(g, m, out=s)
    s *= 1.0 - beta_1
    m += s
    np.square(g, out=s)
    s -= v
    s *= 1.0 - beta_2
    v += s


class Adam(Optimizer):
    """Keras Adam: bias correction folded into `alpha = lr sqrt(1 - b2^t) / (1 - b1^t)`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        beta_1: decay rate of the first moment.
        beta_2: decay rate of the second moment.
        epsilon: added to the root of the second moment.
        amsgrad: use the running maximum of the second moment (AMSGrad).
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "adam"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = self._number("beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = self._number("beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon, self.amsgrad = self._number("epsilon", epsilon, 0), amsgrad

    def _active_slots(self):
        return ("momentum", "velocity", "velocity_hat") if self.amsgrad else ("momentum", "velocity")

    def _step(self, w, g, slots, s, lr, t):
        m, v = slots["momentum"], slots["velocity"]
        # scalars in the weights' dtype, as Keras computes them (matches its float32 numbers)
        dt = w.dtype.type
        one = dt(1.0)
        alpha = dt(lr) * np.sqrt(one - dt(self.beta_2) ** dt(t)) / (one - dt(self.beta_1) ** dt(t))
        update_moments(g, m, v, s, self.beta_1, self.beta_2)
        if self.amsgrad:
            np.maximum(slots["velocity_hat"], v, out=slots["velocity_hat"])
            v = slots["velocity_hat"]
        np.sqrt(v, out=s)
        s += self.epsilon
        np.multiply(m, alpha, out=g)
        g /= s
        w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004) applied before each update.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        weight_decay: the decay factor (not None).
        beta_1: decay rate of the first moment.
        beta_2: decay rate of the second moment.
        epsilon: added to the root of the second moment.
        amsgrad: use the running maximum of the second moment (AMSGrad).
        **kwargs: the other base Optimizer arguments (clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "adamw"

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 **kwargs) -> None:
        if weight_decay is None:
            raise ConfigError("AdamW argument weight_decay must be a float, got None.")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kwargs)
