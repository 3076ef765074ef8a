"""SGD with optional (Nesterov) momentum."""
from __future__ import annotations

import numpy as np

from .base import Optimizer
from .schedules import LearningRateSchedule

__all__ = ["SGD"]


class SGD(Optimizer):
    """`m = mu m - lr g; w += m` (Nesterov: `w += mu m - lr g`); plain: `w -= lr g`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        momentum: in [0, 1]; 0 gives plain SGD.
        nesterov: use Nesterov momentum.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "SGD"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = self._number("momentum", momentum, 0, 1), nesterov

    def _active_slots(self):
        return ("momentum",) if self.momentum != 0 else ()

    def _step(self, w, g, slots, s, lr, t):
        if self.momentum == 0:
            g *= lr
            w -= g
            return
        m = slots["momentum"]
        m *= self.momentum
        if self.nesterov:
            np.multiply(g, lr, out=s)
            m -= s
            np.multiply(m, self.momentum, out=g)
            g -= s
            w += g
        else:  # g as scratch: m + (-lr g) rounds exactly as m - lr g
            g *= -lr
            m += g
            w += m

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
