"""Optimizers with Keras 3 names, defaults and formulas: SGD, Adam, AdamW, RMSprop, Adagrad.

Each optimizer has ONE update rule, `_step(w, g, slots, s, lr, t)`, over arrays of
one shape, used by two entry points:
- the arena path (the training loop): `build(size, dtype, segments)` then
  `update(params, grads)`, a few vectorised calls over the whole flat arena;
- Keras's custom-loop path: `apply_gradients(zip(grads, variables))`, per variable.
Both clip gradients (clipnorm per variable, global_clipnorm over all, clipvalue
elementwise), then apply decoupled weight decay `w -= w * wd * lr`, then step, so
they agree bitwise on the same data. `g` and `s` are scratch buffers the rule may
overwrite (in the arena path `g` is the gradient buffer the loop refills).
"""
from __future__ import annotations

import sys
from typing import Any, Iterable

import numpy as np

from . import schedules
from .errors import ConfigError, ShapeError, unknown_name
from .schedules import LearningRateSchedule

# `from distdl.optimizers.schedules import ExponentialDecay` works as in Keras.
sys.modules[__name__ + ".schedules"] = schedules

# Keras config keys we accept when they carry their no-op default values.
_NOOP_DEFAULTS = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                  "loss_scale_factor": None, "gradient_accumulation_steps": None}


class Optimizer:
    """Base: learning rate (float or schedule), clipping, weight decay, state, config."""

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, **kwargs: Any):
        for key, value in kwargs.items():
            if key not in _NOOP_DEFAULTS:
                raise ConfigError(f"{type(self).__name__} got an unknown argument {key!r}.")
            if value != _NOOP_DEFAULTS[key]:
                raise ConfigError(f"{type(self).__name__} does not support {key}={value!r}.")
        if sum(x is not None for x in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ConfigError("Only one of clipnorm, clipvalue and global_clipnorm can be set.")
        for arg, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                           ("global_clipnorm", global_clipnorm), ("weight_decay", weight_decay)):
            if value is not None and not float(value) >= 0:
                raise ConfigError(f"{type(self).__name__} argument {arg} must be >= 0, got {value!r}.")
        self.learning_rate = learning_rate
        self.weight_decay, self.clipnorm = weight_decay, clipnorm
        self.clipvalue, self.global_clipnorm = clipvalue, global_clipnorm
        self.name = name or self._default_name
        self.iterations = 0
        self.built = False
        self._slots: dict[str, np.ndarray] = {}
        self._segments: list[tuple[int, int]] = []
        self._scratch: np.ndarray | None = None
        self._pending_state: dict | None = None
        self._var_state: dict[int, tuple[np.ndarray, dict, np.ndarray, np.ndarray]] = {}

    _default_name = "optimizer"

    # ----- learning rate -------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The current learning rate (a schedule is evaluated at `iterations`)."""
        return self.current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value: float | LearningRateSchedule) -> None:
        if isinstance(value, dict):
            value = schedules.deserialize(value)
        if not isinstance(value, LearningRateSchedule):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"learning_rate must be a number or a schedule, got {value!r}.") from None
        self._learning_rate = value

    def current_learning_rate(self) -> float:
        """The learning rate the next step uses."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if isinstance(lr, LearningRateSchedule) else lr

    # ----- arena path ----------------------------------------------------
    def build(self, size: int, dtype="float32", segments: list[tuple[int, int]] | None = None) -> None:
        """Create the slot arrays (each of shape (size,)) and scratch for a flat arena."""
        dtype = np.dtype(dtype)
        self._segments = [(int(a), int(b)) for a, b in (segments or [(0, int(size))])]
        self._slots = self._init_slots((int(size),), dtype)
        self._scratch = np.empty(int(size), dtype=dtype)
        self.built = True
        if self._pending_state is not None:
            pending, self._pending_state = self._pending_state, None
            self.set_state(pending)

    def update(self, params: np.ndarray, grads: np.ndarray) -> None:
        """One step on the flat arena in place; `grads` is used as scratch (clobbered)."""
        if not self.built:
            if self.clipnorm is not None:
                raise ConfigError("An optimizer with clipnorm needs build(size, dtype, segments) "
                                  "before update, to know each variable's segment.")
            self.build(params.size, params.dtype)
        if params.shape != self._scratch.shape or grads.shape != params.shape:
            raise ShapeError(f"{type(self).__name__} was built for {self._scratch.shape} parameters, "
                             f"got params {params.shape} and grads {grads.shape}.")
        lr = self.current_learning_rate()
        segs = [grads[a:b] for a, b in self._segments]
        self._clip(segs, [self._scratch[a:b] for a, b in self._segments])
        self._decay(params, self._scratch, lr)
        self._step(params, grads, self._slots, self._scratch, lr, self.iterations + 1)
        self.iterations += 1

    # ----- Keras custom-training-loop path --------------------------------
    def apply_gradients(self, grads_and_vars: Iterable) -> int:
        """Keras's `apply_gradients`: update NumPy arrays (or distdl Variables) in place."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        arrays = [getattr(v, "value", v) for _, v in pairs]
        states = []
        for (g, _), w in zip(pairs, arrays):
            if not isinstance(w, np.ndarray) or not np.issubdtype(w.dtype, np.floating):
                raise ConfigError(f"apply_gradients needs float NumPy arrays or Variables, got {type(w).__name__}.")
            if np.shape(g) != w.shape:
                raise ShapeError(f"Gradient of shape {np.shape(g)} does not match its variable's shape {w.shape}.")
            if id(w) not in self._var_state:  # holding w keeps its id from being reused
                self._var_state[id(w)] = (w, self._init_slots(w.shape, w.dtype),
                                          np.empty_like(w), np.empty_like(w))
            _, slots, gbuf, s = self._var_state[id(w)]
            np.copyto(gbuf, g, casting="same_kind")
            states.append((slots, gbuf, s))
        lr = self.current_learning_rate()
        self._clip([st[1].reshape(-1) for st in states], [st[2].reshape(-1) for st in states])
        t = self.iterations + 1
        for w, (slots, gbuf, s) in zip(arrays, states):
            self._decay(w, s, lr)
            self._step(w, gbuf, slots, s, lr, t)
        for _, v in pairs:  # Keras applies variable constraints after the update
            constraint = getattr(v, "constraint", None)
            if constraint is not None:
                v.value[...] = constraint(v.value)
        self.iterations += 1
        return self.iterations

    def apply(self, grads: list, trainable_variables: list) -> int:
        """Keras 3's `apply(grads, trainable_variables)`: same as `apply_gradients`."""
        return self.apply_gradients(zip(grads, trainable_variables))

    # ----- shared pieces -------------------------------------------------
    def _clip(self, grads: list[np.ndarray], scratch: list[np.ndarray]) -> None:
        """Clip a list of 1-D gradient arrays in place, Keras's way (scratch: same shapes)."""
        if self.clipnorm is not None and self.clipnorm > 0:
            c = self.clipnorm
            for g, s in zip(grads, scratch):
                norm = np.sqrt(np.sum(np.square(g, out=s)))
                g *= c
                g /= max(norm, c)
        elif self.global_clipnorm is not None and self.global_clipnorm > 0:
            c = self.global_clipnorm
            dtype = grads[0].dtype if grads else np.float32
            sq = np.array([np.sum(np.square(g, out=s)) for g, s in zip(grads, scratch)], dtype=dtype)
            norm = np.sqrt(np.sum(sq))
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(1.0 / norm, 1.0 / c) + (norm - norm)  # NaN when norm is not finite
            for g in grads:
                g *= scale
        elif self.clipvalue is not None and self.clipvalue > 0:
            for g in grads:
                np.clip(g, -self.clipvalue, self.clipvalue, out=g)

    def _decay(self, w: np.ndarray, s: np.ndarray, lr: float) -> None:
        """Decoupled weight decay before the update: `w -= w * wd * lr`."""
        if self.weight_decay:
            np.multiply(w, self.weight_decay, out=s)
            s *= lr
            w -= s

    def _init_slots(self, shape: tuple, dtype) -> dict[str, np.ndarray]:
        return {name: np.zeros(shape, dtype=dtype) for name in self._active_slots()}

    @property
    def slot_names(self) -> tuple[str, ...]:
        """Names of the per-variable slots, in the order Keras creates them for one variable."""
        return self._active_slots()

    def _active_slots(self) -> tuple[str, ...]:
        return ()

    def _step(self, w, g, slots, s, lr: float, t: int) -> None:
        raise NotImplementedError

    # ----- state and config ----------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """The arena-path slots by name, in `slot_names` order; `iterations` is kept separately.

        These are the live arrays (so a broadcast into them updates the optimizer);
        copy them to keep a snapshot across further updates.
        """
        return dict(self._slots)

    def set_state(self, state: dict) -> None:
        """Restore slots from `get_state` (and `iterations` if the dict has it); checks shapes."""
        state = dict(state)
        if "iterations" in state:
            self.iterations = int(np.asarray(state.pop("iterations")))
        if not self.built:
            self._pending_state = state  # applied (and checked) by build
            return
        expected = set(self._slots)
        if set(state) != expected:
            raise ConfigError(f"{type(self).__name__} state needs slots {sorted(expected)}, "
                              f"got {sorted(state)}.")
        for name, arr in state.items():
            arr = np.asarray(arr)
            if arr.shape != self._slots[name].shape:
                raise ShapeError(f"{type(self).__name__} slot {name!r} has shape {self._slots[name].shape}, "
                                 f"got an array of shape {arr.shape}.")
            self._slots[name][...] = arr

    def get_config(self) -> dict:
        lr = self._learning_rate
        return {"name": self.name,
                "learning_rate": schedules.serialize(lr) if isinstance(lr, LearningRateSchedule) else lr,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} lr={self.learning_rate} iterations={self.iterations}>"


class SGD(Optimizer):
    """`m = mu m - lr g; w += m` (Nesterov: `w += mu m - lr g`); plain: `w -= lr g`."""

    _default_name = "SGD"

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        if not 0 <= momentum <= 1:
            raise ConfigError(f"SGD momentum must be in [0, 1], got {momentum!r}.")
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def _active_slots(self):
        return ("momentum",) if self.momentum != 0 else ()

    def _step(self, w, g, slots, s, lr, t):
        if self.momentum == 0:
            g *= lr
            w -= g
            return
        m = slots["momentum"]
        m *= self.momentum
        np.multiply(g, lr, out=s)
        m -= s
        if self.nesterov:
            np.multiply(m, self.momentum, out=g)
            g -= s
            w += g
        else:
            w += m

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras Adam: bias correction folded into `alpha = lr sqrt(1 - b2^t) / (1 - b1^t)`."""

    _default_name = "adam"

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _active_slots(self):
        return ("momentum", "velocity", "velocity_hat") if self.amsgrad else ("momentum", "velocity")

    def _step(self, w, g, slots, s, lr, t):
        m, v = slots["momentum"], slots["velocity"]
        # scalars in the weights' dtype, as Keras computes them (matches its float32 numbers)
        dt = w.dtype.type
        one = dt(1.0)
        alpha = dt(lr) * np.sqrt(one - dt(self.beta_2) ** dt(t)) / (one - dt(self.beta_1) ** dt(t))
        np.subtract(g, m, out=s)
        s *= 1.0 - self.beta_1
        m += s
        np.square(g, out=s)
        s -= v
        s *= 1.0 - self.beta_2
        v += s
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
    """Adam with decoupled weight decay (default 0.004) applied before each update."""

    _default_name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        if weight_decay is None:
            raise ConfigError("AdamW argument weight_decay must be a float, got None.")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """`v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps)`; centered and momentum variants."""

    _default_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

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
    """`acc += g^2; w -= lr g / sqrt(acc + eps)`, acc starting at `initial_accumulator_value`."""

    _default_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

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


_ALL = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def serialize(optimizer: Optimizer) -> dict:
    """{'class_name': ..., 'config': ...} (JSON-able, schedules included)."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict) -> Optimizer:
    """A new optimizer from `serialize`'s output (class names are case-insensitive)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ConfigError(f"An optimizer config must be a dict with 'class_name', got {config!r}.")
    name = str(config["class_name"])
    if name.lower() not in _ALL:
        raise unknown_name("optimizer", name, _ALL)
    try:
        return _ALL[name.lower()].from_config(dict(config.get("config") or {}))
    except TypeError as exc:
        raise ConfigError(f"Bad config for optimizer {name!r}: {exc}.") from None


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name ('adam', 'SGD', ...; Keras defaults), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": {}})
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ConfigError(f"Could not interpret optimizer identifier {identifier!r}.")
