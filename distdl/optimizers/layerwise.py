"""Per-variable rules, Keras 3 formulas: Lamb (a trust ratio ||w|| / ||update|| per variable) and
Adafactor (second moments factored into row and column averages per matrix, its update scaled by
each variable's RMS).

Each step of these needs reductions over a whole variable, so they do not shard: `elementwise` is
False, `sliceable` follows, and the training loop's update strategy (distdl.comm.strategies) takes
the allreduce path, where every rank steps the whole arena, variable by variable, after one sum of
the gradients. Sharding them by whole variables would need slices cut at variable boundaries, which
the node's reduce-update (equal cache-line slices) does not give; the optimizer step is a small part
of a step's time, so the full update costs little. On the arena path the slots are arena-shaped like
every optimizer's, so checkpoints save and restore them unchanged.
"""
from __future__ import annotations

import numpy as np

from .adam import update_moments
from .base import Optimizer
from .schedules import LearningRateSchedule

__all__ = ["Lamb", "Adafactor"]


class _PerVariable(Optimizer):
    """An optimizer whose `_step` sees one variable at a time, in its own shape."""

    elementwise = False

    def _step_arena(self, params, grads, slots, s, lr, t):
        for (a, b), shape in zip(self._segments, self._shapes):
            self._step(params[a:b].reshape(shape), grads[a:b].reshape(shape),
                       {k: v[a:b].reshape(shape) for k, v in slots.items()}, s[a:b].reshape(shape), lr, t)


def _rms(x) -> np.floating:
    return np.sqrt(np.mean(np.square(x)))


class Lamb(_PerVariable):
    """Keras Lamb: Adam's bias-corrected direction `r = m_hat / (sqrt(v_hat) + eps)`, scaled per
    variable by the trust ratio `||w|| / ||r||` (1 where either norm is 0): `w -= ratio lr r`.

    Args:
        learning_rate: a float or a LearningRateSchedule.
        beta_1: decay rate of the first moment.
        beta_2: decay rate of the second moment.
        epsilon: added to the root of the bias-corrected second moment.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "lamb"

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _active_slots(self):
        return ("momentum", "velocity")

    def _step(self, w, g, slots, s, lr, t):
        m, v = slots["momentum"], slots["velocity"]
        dt = w.dtype.type
        one = dt(1.0)
        update_moments(g, m, v, s, self.beta_1, self.beta_2)
        np.divide(v, one - dt(self.beta_2) ** dt(t), out=s)
        np.sqrt(s, out=s)
        s += self.epsilon
        np.divide(m, one - dt(self.beta_1) ** dt(t), out=g)
        g /= s  # g is now the direction r
        w_norm, r_norm = np.sqrt(np.sum(np.square(w))), np.sqrt(np.sum(np.square(g)))
        ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else one
        g *= dt(ratio * dt(lr))
        w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adafactor(_PerVariable):
    """Keras Adafactor. With `rho = min(lr, 1 / sqrt(t))`, `alpha = max(epsilon_2, rms(w)) rho`,
    `q = g^2 + epsilon_1` and `b = 1 - t^beta_2_decay`: a variable of 2 or more dimensions keeps
    row means `r = b r + (1 - b) mean(q, -1)` and column means `c = b c + (1 - b) mean(q, -2)` and
    takes `v = r / mean(r) (outer) c`; one of fewer keeps `v = b v + (1 - b) q`. Then
    `u = g / sqrt(v)`, `w -= alpha u / max(1, rms(u) / clip_threshold)`.

    The slots `r` and `c` are variable-shaped like every slot (so the arena holds them), of which
    the first `size / shape[-1]` and `size / shape[-2]` elements are the row and column means.

    Args:
        learning_rate: a float or a LearningRateSchedule; the step never exceeds 1 / sqrt(t).
        beta_2_decay: exponent of the second-moment decay schedule.
        epsilon_1: added to the squared gradients.
        epsilon_2: lower bound of the RMS that scales the step.
        clip_threshold: the update's RMS is clipped to this.
        relative_step: Keras's flag to cap a constant learning rate by 1 / sqrt(t); `rho` above
            applies that cap in every case, so it is kept for the config only.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue, global_clipnorm, name).
    """

    _default_name = "adafactor"

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_2_decay: float = -0.8,
                 epsilon_1: float = 1e-30, epsilon_2: float = 1e-3, clip_threshold: float = 1.0,
                 relative_step: bool = True, **kwargs) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, relative_step

    def _active_slots(self):
        return ("r", "c", "velocity")

    def _step(self, w, g, slots, s, lr, t):
        v = slots["velocity"]
        dt = w.dtype.type
        one, tt = dt(1.0), dt(t)
        rho = min(dt(lr), one / np.sqrt(tt))
        alpha = max(dt(self.epsilon_2), _rms(w)) * rho
        b = one - tt ** dt(self.beta_2_decay)
        np.square(g, out=s)
        s += dt(self.epsilon_1)
        if w.ndim >= 2:
            rows, cols = w.shape[:-1], w.shape[:-2] + w.shape[-1:]
            r = slots["r"].reshape(-1)[:int(np.prod(rows))].reshape(rows)
            c = slots["c"].reshape(-1)[:int(np.prod(cols))].reshape(cols)
            r[...] = b * r + (one - b) * np.mean(s, axis=-1)
            c[...] = b * c + (one - b) * np.mean(s, axis=-2)
            np.multiply((r / np.mean(r, axis=-1, keepdims=True))[..., None], c[..., None, :], out=v)
        else:
            v *= b
            s *= one - b
            v += s
        np.sqrt(v, out=s)
        g /= s  # g is now u
        g /= max(one, _rms(g) / dt(self.clip_threshold))
        g *= alpha
        w -= g

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}
