"""The `Optimizer` base: learning rate (float or schedule), clipping, decoupled weight decay, the
arena (`update`: a whole arena or a slice) and per-variable (`apply_gradients`) entry points, slot
state and config. Subclasses supply one update rule, `_step(w, g, slots, s, lr, t)`."""
from __future__ import annotations

from numbers import Real
from typing import Any, Iterable

import numpy as np

from ..errors import ConfigError, ShapeError, finite_number
from . import schedules
from .schedules import LearningRateSchedule

__all__ = ["Optimizer"]

# Keras config keys we accept when they carry their no-op default values.
_NOOP_DEFAULTS = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                  "loss_scale_factor": None, "gradient_accumulation_steps": None}


class Optimizer:
    """Base: learning rate (float or schedule), clipping, weight decay, state, config.

    Args:
        learning_rate: a float, or a LearningRateSchedule (or its config dict) evaluated at `iterations`.
        weight_decay: decoupled weight decay factor (`w -= w * wd * lr` before each step), or None.
        clipnorm: clip each variable's gradient to this norm, or None.
        clipvalue: clip every gradient element to [-clipvalue, clipvalue], or None.
        global_clipnorm: clip all gradients together to this norm, or None (at most one clip option).
        name: the optimizer's name; None takes the class's Keras name.
        **kwargs: Keras's EMA / loss-scale / accumulation options, accepted only at their no-op defaults.
    """

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if key not in _NOOP_DEFAULTS:
                raise ConfigError(f"{type(self).__name__} got an unknown argument {key!r}.")
            if value != _NOOP_DEFAULTS[key]:
                raise ConfigError(f"{type(self).__name__} does not support {key}={value!r}.")
        if sum(x is not None for x in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ConfigError("Only one of clipnorm, clipvalue and global_clipnorm can be set.")
        for arg, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                           ("global_clipnorm", global_clipnorm), ("weight_decay", weight_decay)):
            if value is not None:
                self._number(arg, value, 0)
        self.learning_rate = learning_rate
        self.weight_decay, self.clipnorm = weight_decay, clipnorm
        self.clipvalue, self.global_clipnorm = clipvalue, global_clipnorm
        self.name = name or self._default_name
        self.iterations = 0
        self.built = False
        self._slots: dict[str, np.ndarray] = {}
        self._segments: list[tuple[int, int]] = []
        self._shapes: list[tuple] = []
        self._scratch: np.ndarray | None = None
        self._pending_state: dict | None = None
        self._var_state: dict[int, tuple[np.ndarray, dict, np.ndarray, np.ndarray]] = {}

    def _number(self, arg: str, value, low: float | None = None, high: float | None = None,
                high_open: bool = False) -> float:
        """`value` as a float when finite and in range, else a ConfigError naming this optimizer
        and `arg` (`Adam argument beta_1 must be a finite number in [0, 1), got nan.`)."""
        return finite_number(f"{type(self).__name__} argument {arg}", value, low, high, high_open)

    _default_name = "optimizer"
    elementwise = False  # True when _step treats every element alone: slices may be stepped apart

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
            if not isinstance(value, Real) or isinstance(value, bool):
                raise ConfigError(f"{type(self).__name__} argument learning_rate must be a number or a "
                                  f"schedule, got {value!r}.")
            value = self._number("learning_rate", value)
        self._learning_rate = value

    def current_learning_rate(self) -> float:
        """The learning rate the next step uses."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if isinstance(lr, LearningRateSchedule) else lr

    # ----- arena path ----------------------------------------------------
    def build(self, size: int, dtype: str | np.dtype = "float32",
              segments: list[tuple[int, int]] | None = None, shapes: list[tuple] | None = None) -> None:
        """Create the slot arrays (each of shape (size,)) and scratch for a flat arena.

        Args:
            size: number of parameters in the arena.
            dtype: the arena's dtype.
            segments: (start, stop) of each variable, for clipnorm and per-variable rules; None: one segment.
            shapes: each variable's shape, for rules that need it (Adafactor's factored moments);
                None or empty: each segment is a 1-D variable.
        """
        dtype = np.dtype(dtype)
        self._segments = [(int(a), int(b)) for a, b in (segments or [(0, int(size))])]
        shapes = [(b - a,) for a, b in self._segments] if not shapes else [tuple(s) for s in shapes]
        if len(shapes) != len(self._segments) or any(
                int(np.prod(sh)) != b - a for sh, (a, b) in zip(shapes, self._segments)):
            raise ShapeError(f"{type(self).__name__}.build got shapes {shapes} that do not fill "
                             f"the segments {self._segments}.")
        self._shapes = shapes
        self._slots = self._init_slots((int(size),), dtype)
        self._scratch = np.empty(int(size), dtype=dtype)
        self.built = True
        if self._pending_state is not None:
            pending, self._pending_state = self._pending_state, None
            self.set_state(pending)

    def update(self, params: np.ndarray, grads: np.ndarray, slots: dict | None = None) -> None:
        """One step, in place, over flat arrays of one shape that the caller hands in (the one
        arena path, optax-style: state arrays in, updated in place).

        `slots=None`: `params` is the whole arena and the optimizer's own state is used (built on
        first use). Otherwise `params`, `grads` and `slots` (name -> array) are one slice of the
        arena and of `get_state()`'s arrays, cut alike: a sharded step, where each rank steps its
        own slice once per step, bitwise what the whole-arena step gives on that slice (needs
        `sliceable`). `grads` is the rule's scratch (clobbered).

        Args:
            params: the flat parameters, updated in place.
            grads: their gradients, same shape (used as scratch).
            slots: slices of the slot arrays by name, or None to use the optimizer's own state.
        """
        whole = slots is None
        if whole:
            if not self.built:
                if self.clipnorm is not None or not self.elementwise:
                    raise ConfigError(f"{type(self).__name__} with clipnorm or a per-variable rule needs "
                                      "build(size, dtype, segments) before update, to know each "
                                      "variable's segment.")
                self.build(params.size, params.dtype)
            slots, s = self._slots, self._scratch
            if params.shape != s.shape or grads.shape != params.shape:
                raise ShapeError(f"{type(self).__name__} was built for {s.shape} parameters, "
                                 f"got params {params.shape} and grads {grads.shape}.")
        elif not self.sliceable:
            raise ConfigError(f"{type(self).__name__} cannot update a slice of the parameters "
                              "(its rule or its clipnorm/global_clipnorm needs all of them).")
        else:
            s = self._scratch[:params.size]  # scratch: any memory of the slice's size
        lr = self.current_learning_rate()
        if self.clipnorm or self.global_clipnorm or self.clipvalue:
            spans = self._segments if whole else [(0, params.size)]
            self._clip([grads[a:b] for a, b in spans], [s[a:b] for a, b in spans])
        self._decay(params, s, lr)
        self._step_arena(params, grads, slots, s, lr, self.iterations + 1)
        self.iterations += 1

    def _step_arena(self, params, grads, slots, s, lr: float, t: int) -> None:
        """The rule over the arena's flat arrays (or a slice): one call for an elementwise rule;
        a per-variable rule (distdl.optimizers.layerwise) steps each variable's segment instead."""
        self._step(params, grads, slots, s, lr, t)

    @property
    def sliceable(self) -> bool:
        """Whether `update` may step a slice: an elementwise rule and no norm clipping (a norm
        needs every element)."""
        return self.built and self.elementwise and not self.clipnorm and not self.global_clipnorm

    # ----- Keras custom-training-loop path --------------------------------
    def apply_gradients(self, grads_and_vars: Iterable) -> int:
        """Keras's `apply_gradients`: update NumPy arrays (or distdl Variables) in place.

        Args:
            grads_and_vars: (gradient, variable) pairs; pairs whose gradient is None are skipped.
        """
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
        """Keras 3's `apply(grads, trainable_variables)`: same as `apply_gradients`.

        Args:
            grads: one gradient per variable.
            trainable_variables: float NumPy arrays or distdl Variables.
        """
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

    def set_state(self, state: dict, copy: bool = True) -> None:
        """Restore slots from `get_state` (and `iterations` if the dict has it); checks names and
        shapes. `copy=False` keeps the given arrays themselves as the slots from now on (same
        shapes and dtypes), e.g. memory that every rank of a node shares (distdl.comm.strategies).

        Args:
            state: slot arrays by name (plus 'iterations', optionally).
            copy: copy the values into the slots rather than adopt the arrays.
        """
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
            arr, old = np.asarray(arr), self._slots[name]
            if arr.shape != old.shape or not (copy or arr.dtype == old.dtype):
                raise ShapeError(f"{type(self).__name__} slot {name!r} has shape {old.shape} {old.dtype}, "
                                 f"got an array of shape {arr.shape} {arr.dtype}.")
            if copy:
                old[...] = arr
            else:
                self._slots[name] = arr

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able (a schedule as its config), as Keras saves them."""
        lr = self._learning_rate
        return {"name": self.name,
                "learning_rate": schedules.serialize(lr) if isinstance(lr, LearningRateSchedule) else lr,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        """A new optimizer from `get_config`'s output.

        Args:
            config: the constructor arguments.
        """
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} lr={self.learning_rate} iterations={self.iterations}>"
