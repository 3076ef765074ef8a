"""Per-coordinate adaptive rules: RMSprop (plain, centered, with momentum), Adagrad and Adadelta."""
from __future__ import annotations

import numpy as np

from .base import Optimizer
from .schedules import LearningRateSchedule

__all__ = ["RMSprop", "Adagrad", "Adadelta"]


class RMSprop(Optimizer):
    """`v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps)`; centered and momentum variants.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        rho: decay rate of the squared-gradient average.
        momentum: momentum of the update (0: none).
        epsilon: added inside the square root.
        centered: divide by the gradient's estimated variance rather than its second moment.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "rmsprop"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, rho: float = 0.9,
                 momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum = self._number("rho", rho, 0, 1), self._number("momentum", momentum, 0, 1)
        self.epsilon, self.centered = self._number("epsilon", epsilon, 0), centered

    def _active_slots(self):
        return (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                + (("average_gradient",) if self.centered else ()))

    def _step(self, w, g, slots, s, lr, t):
        v = slots["velocity"]
        v *= self.rho
        np.square(g, out=s)
        s *= 1.0 - self.rho
        v += s
        if self.centered:
            a = slots["average_gradient"]
            a *= self.rho
            np.multiply(g, 1.0 - self.rho, out=s)
            a += s
            np.square(a, out=s)
            np.subtract(v, s, out=s)
            s += self.epsilon
        else:
            np.add(v, self.epsilon, out=s)
        np.sqrt(s, out=s)
        g *= lr
        g /= s  # g is now the increment lr g / sqrt(denominator)
        if self.momentum > 0:
            mom = slots["momentum"]
            mom *= self.momentum
            mom += g
            w -= mom
        else:
            w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """`acc += g^2; w -= lr g / sqrt(acc + eps)`, acc starting at `initial_accumulator_value`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        initial_accumulator_value: start value of the squared-gradient sums.
        epsilon: added inside the square root.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "adagrad"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001,
                 initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = self._number("initial_accumulator_value", initial_accumulator_value, 0)
        self.epsilon = self._number("epsilon", epsilon, 0)

    def _active_slots(self):
        return ("accumulator",)

    def _init_slots(self, shape, dtype):
        return {"accumulator": np.full(shape, self.initial_accumulator_value, dtype=dtype)}

    def _step(self, w, g, slots, s, lr, t):
        acc = slots["accumulator"]
        np.square(g, out=s)
        acc += s
        np.add(acc, self.epsilon, out=s)
        np.sqrt(s, out=s)
        g *= lr
        g /= s
        w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Keras Adadelta: `acc_g = rho acc_g + (1 - rho) g^2`,
    `d = -g sqrt(acc_d + eps) / sqrt(acc_g + eps)`, `acc_d = rho acc_d + (1 - rho) d^2`, `w += lr d`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        rho: decay rate of both running averages.
        epsilon: added inside the square roots.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "adadelta"
    elementwise = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, rho: float = 0.95,
                 epsilon: float = 1e-7, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _active_slots(self):
        return ("accumulated_grad", "accumulated_delta_var")

    def _step(self, w, g, slots, s, lr, t):
        acc_g, acc_d = slots["accumulated_grad"], slots["accumulated_delta_var"]
        acc_g *= self.rho
        np.square(g, out=s)
        s *= 1.0 - self.rho
        acc_g += s
        np.add(acc_d, self.epsilon, out=s)
        np.sqrt(s, out=s)
        g *= s
        np.add(acc_g, self.epsilon, out=s)
        np.sqrt(s, out=s)
        g /= s  # g is now -d
        acc_d *= self.rho
        np.square(g, out=s)
        s *= 1.0 - self.rho
        acc_d += s
        g *= lr
        w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
