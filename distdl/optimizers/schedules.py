"""Learning-rate schedules (Keras 3 names and formulas): callables of the step count.

Also importable as `distdl.optimizers.schedules`, as in Keras. An optimizer whose
`learning_rate` is a schedule uses `schedule(optimizer.iterations)` each step.
"""
from __future__ import annotations

import math
from typing import Any

from .. import registry
from ..errors import ConfigError, finite_number

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "CosineDecay", "CosineDecayRestarts", "serialize", "deserialize", "get"]


class LearningRateSchedule:
    """Base: `__call__(step) -> float`, plus `get_config`/`from_config`."""

    def __call__(self, step) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able, as Keras saves them."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "LearningRateSchedule":
        """A new schedule from `get_config`'s output.

        Args:
            config: the constructor arguments.
        """
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def _positive(cls_name: str, arg: str, value) -> float:
    if not finite_number(f"{cls_name} argument {arg}", value) > 0:
        raise ConfigError(f"{cls_name} argument {arg} must be positive, got {value!r}.")
    return value


def _finite(cls_name: str, **values) -> None:
    """Refuse a NaN, inf or non-number among `values` (a schedule's rates), naming the argument."""
    for arg, value in values.items():
        if value is not None:
            finite_number(f"{cls_name} argument {arg}", value)


class ExponentialDecay(LearningRateSchedule):
    """`lr0 * decay_rate ** (step / decay_steps)`, the exponent floored when `staircase`.

    Args:
        initial_learning_rate: the learning rate at step 0.
        decay_steps: steps per decay period (> 0).
        decay_rate: factor per period.
        staircase: decay in whole periods.
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay") -> None:
        _finite("ExponentialDecay", initial_learning_rate=initial_learning_rate, decay_rate=decay_rate)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = _positive("ExponentialDecay", "decay_steps", decay_steps)
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step) -> float:
        p = float(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate * self.decay_rate ** p)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """`lr0 / (1 + decay_rate * step / decay_steps)` (step / decay_steps floored when `staircase`).

    Args:
        initial_learning_rate: the learning rate at step 0.
        decay_steps: steps per decay period (> 0).
        decay_rate: rate of the inverse-time decay.
        staircase: decay in whole periods.
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay") -> None:
        _finite("InverseTimeDecay", initial_learning_rate=initial_learning_rate, decay_rate=decay_rate)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = _positive("InverseTimeDecay", "decay_steps", decay_steps)
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step) -> float:
        p = float(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate / (1.0 + self.decay_rate * p))

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """`values[0]` while step <= boundaries[0], `values[i+1]` while step <= boundaries[i+1], ...

    Args:
        boundaries: increasing step numbers.
        values: one more learning rate than boundaries.
        name: the schedule's name.
    """

    def __init__(self, boundaries: list, values: list, name: str = "PiecewiseConstant") -> None:
        if len(values) != len(boundaries) + 1:
            raise ConfigError(f"PiecewiseConstantDecay needs one more value than boundaries; got "
                              f"{len(boundaries)} boundaries and {len(values)} values.")
        _finite("PiecewiseConstantDecay", **{f"values[{i}]": v for i, v in enumerate(values)},
                **{f"boundaries[{i}]": b for i, b in enumerate(boundaries)})
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step) -> float:
        step = float(step)
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return float(value)
        return float(self.values[-1])

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """`(lr0 - end) * (1 - step / decay_steps) ** power + end`; with `cycle`, decay_steps grows.

    Args:
        initial_learning_rate: the learning rate at step 0.
        decay_steps: steps per decay period (> 0).
        end_learning_rate: the rate reached at decay_steps.
        power: exponent of the polynomial.
        cycle: restart beyond decay_steps (the period grows in multiples of it).
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay") -> None:
        _finite("PolynomialDecay", initial_learning_rate=initial_learning_rate,
                end_learning_rate=end_learning_rate, power=power)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = _positive("PolynomialDecay", "decay_steps", decay_steps)
        self.end_learning_rate, self.power, self.cycle, self.name = end_learning_rate, power, cycle, name

    def __call__(self, step) -> float:
        step, steps = float(step), float(self.decay_steps)
        if self.cycle:
            steps *= 1.0 if step == 0 else math.ceil(step / steps)
        else:
            step = min(step, steps)
        frac = 1.0 - step / steps
        return float((self.initial_learning_rate - self.end_learning_rate) * frac ** self.power
                     + self.end_learning_rate)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power,
                "cycle": self.cycle, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Optional linear warmup to `warmup_target`, then cosine decay to `alpha` x the start.

    Args:
        initial_learning_rate: the learning rate at step 0.
        decay_steps: steps per decay period (> 0).
        alpha: the final rate as a fraction of the start.
        name: the schedule's name.
        warmup_target: rate reached by the linear warmup, or None for no warmup.
        warmup_steps: steps of warmup.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None,
                 warmup_steps: int = 0) -> None:
        _finite("CosineDecay", initial_learning_rate=initial_learning_rate, alpha=alpha,
                warmup_target=warmup_target, warmup_steps=warmup_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = _positive("CosineDecay", "decay_steps", decay_steps)
        self.alpha, self.name = alpha, name
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def _decay(self, step: float, start_lr: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start_lr * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step) -> float:
        step = float(step)
        if self.warmup_target is None:
            return float(self._decay(min(step, self.decay_steps), self.initial_learning_rate))
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return float(delta * step / self.warmup_steps + self.initial_learning_rate)
        return float(self._decay(step - self.warmup_steps, self.warmup_target))

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """SGDR: cosine decay from `initial_learning_rate` to `alpha` x it over `first_decay_steps`,
    then a restart; period i lasts `first_decay_steps * t_mul^i` steps and starts at `m_mul^i` x the
    initial rate.

    Args:
        initial_learning_rate: the learning rate at step 0.
        first_decay_steps: steps of the first period (> 0).
        t_mul: growth factor of each period's length.
        m_mul: factor of each period's starting rate.
        alpha: the floor of each period as a fraction of the initial rate.
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: int, t_mul: float = 2.0,
                 m_mul: float = 1.0, alpha: float = 0.0, name: str = "SGDRDecay") -> None:
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = _positive("CosineDecayRestarts", "first_decay_steps", first_decay_steps)
        self.t_mul, self.m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step) -> float:
        frac = float(step) / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(frac)
            frac -= restart
        else:  # periods 0 .. i-1 together span (1 - t_mul^i) / (1 - t_mul) first periods
            restart = math.floor(math.log(1.0 - frac * (1.0 - self.t_mul)) / math.log(self.t_mul))
            done = (1.0 - self.t_mul ** restart) / (1.0 - self.t_mul)
            frac = (frac - done) / self.t_mul ** restart
        cosine = 0.5 * self.m_mul ** restart * (1.0 + math.cos(math.pi * frac))
        return float(self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha))

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul, "m_mul": self.m_mul,
                "alpha": self.alpha, "name": self.name}


_ALL = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay,
                                PolynomialDecay, CosineDecay, CosineDecayRestarts)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """{'class_name': ..., 'config': ...} (JSON-able).

    Args:
        schedule: the schedule.
    """
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """Inverse of `serialize`; also reads Keras's form (extra 'module' and 'registered_name').

    Args:
        config: a dict from `serialize`.
    """
    return registry.deserialize("learning-rate schedule", _ALL, config)


def get(identifier: Any) -> LearningRateSchedule:
    """A schedule from an instance or a config dict.

    Args:
        identifier: either of those.
    """
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    return deserialize(identifier)
