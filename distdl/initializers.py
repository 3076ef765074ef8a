"""Weight initializers by Keras 3 name, drawing from a given `numpy.random.Generator`.

Every initializer is a callable `init(shape, dtype=None, rng=None) -> ndarray`.
An initializer built with `seed=` is deterministic on its own (same values on
every call); otherwise it draws from `rng` (the model passes `utils.init_rng()`).
Values are drawn in float64 and cast, so float32 and float64 weights agree.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from . import backend
from . import registry
from .errors import ConfigError, ShapeError, unknown_name

__all__ = ["compute_fans", "Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "TruncatedNormal",
           "RandomUniform", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
           "LecunUniform", "LecunNormal", "Orthogonal", "Identity", "zeros", "ones", "constant", "identity",
           "random_normal", "truncated_normal", "random_uniform", "variance_scaling", "orthogonal", "get",
           "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
           "serialize", "deserialize"]

# Keras's correction so that a normal truncated at 2 stddev keeps the wanted stddev.
_TRUNC_STD_CORRECTION = 0.87962566103423978


def compute_fans(shape: tuple[int, ...], input_axes: list[int] | None = None,
                 output_axes: list[int] | None = None) -> tuple[int, int]:
    """(fan_in, fan_out) as in Keras: 2-D (in, out); conv (..., in, out) x receptive field.

    Args:
        shape: the weight's shape.
        input_axes: with `output_axes` (Keras 3.x), fan_in is the product of these axes' sizes.
        output_axes: with `input_axes`, fan_out is the product of these axes' sizes.
    """
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        return (math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng: np.random.Generator, shape, mean: float, stddev: float) -> np.ndarray:
    """Normal draws with values beyond 2 stddev redrawn (vectorised over the bad ones)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    out *= stddev
    out += mean
    return out


class Initializer:
    """Base: subclasses implement `_sample(shape, rng) -> float64 array`.

    Args:
        seed: a fixed seed (the same values on every call), or None to draw from the caller's `rng`.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _rng(self, rng: np.random.Generator | None) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng(int(self.seed))
        if rng is None:
            from .utils import init_rng
            return init_rng()
        return rng

    def __call__(self, shape, dtype=None, rng: np.random.Generator | None = None) -> np.ndarray:
        shape = tuple(int(d) for d in shape)
        dtype = np.dtype(dtype or backend.floatx())
        return np.asarray(self._sample(shape, self._rng(rng)), dtype=dtype)

    def _sample(self, shape, rng):
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor arguments, JSON-able, as Keras saves them."""
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> "Initializer":
        """A new initializer from `get_config`'s output.

        Args:
            config: the constructor arguments.
        """
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class Zeros(Initializer):
    """All zeros (Keras's bias default)."""

    def __init__(self) -> None:
        super().__init__(None)

    def _sample(self, shape, rng):
        return np.zeros(shape)

    def get_config(self) -> dict:
        return {}


class Ones(Zeros):
    """All ones (BatchNormalization gamma)."""

    def _sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every entry equal to `value`.

    Args:
        value: the fill value.
    """

    def __init__(self, value: float = 0.0) -> None:
        super().__init__(None)
        self.value = value

    def _sample(self, shape, rng):
        return np.full(shape, float(self.value))

    def get_config(self) -> dict:
        return {"value": self.value}


class RandomNormal(Initializer):
    """Normal(mean, stddev).

    Args:
        mean: mean of the draws.
        stddev: standard deviation of the draws.
        seed: as in `Initializer`.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def _sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, size=shape)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal(mean, stddev) with draws beyond 2 stddev redrawn."""

    def _sample(self, shape, rng):
        return _truncated_normal(rng, shape, self.mean, self.stddev)


class RandomUniform(Initializer):
    """Uniform on [minval, maxval).

    Args:
        minval: lower bound.
        maxval: upper bound (excluded).
        seed: as in `Initializer`.
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def _sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, size=shape)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(Initializer):
    """Keras VarianceScaling: variance `scale / n` with n = fan_in, fan_out or their mean.

    Args:
        scale: positive scale of the variance.
        mode: "fan_in", "fan_out" or "fan_avg".
        distribution: "truncated_normal" (or "normal"), "untruncated_normal" or "uniform".
        seed: as in `Initializer`.
        input_axes: axes for fan_in (see `compute_fans`), or None.
        output_axes: axes for fan_out, or None.
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None,
                 input_axes: list[int] | None = None, output_axes: list[int] | None = None) -> None:
        super().__init__(seed)
        self.input_axes, self.output_axes = input_axes, output_axes
        if not scale > 0:
            raise ConfigError(f"VarianceScaling scale must be positive, got {scale!r}.")
        if mode not in self._MODES:
            raise unknown_name("VarianceScaling mode", mode, self._MODES)
        distribution = str(distribution).lower()
        if distribution == "normal":  # Keras accepts the legacy alias
            distribution = "truncated_normal"
        if distribution not in self._DISTS:
            raise unknown_name("VarianceScaling distribution", distribution, self._DISTS)
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def _sample(self, shape, rng):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        if self.distribution == "truncated_normal":
            return _truncated_normal(rng, shape, 0.0, math.sqrt(scale) / _TRUNC_STD_CORRECTION)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(scale), size=shape)
        limit = math.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, size=shape)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset whose config is only the seed (as in Keras).

    Args:
        seed: as in `Initializer`.
        input_axes: axes for fan_in (see `compute_fans`), or None.
        output_axes: axes for fan_out, or None.
    """

    _PRESET: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed: int | None = None, input_axes: list[int] | None = None,
                 output_axes: list[int] | None = None) -> None:
        super().__init__(*self._PRESET, seed=seed, input_axes=input_axes, output_axes=output_axes)

    def get_config(self) -> dict:
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform with limit sqrt(6 / (fan_in + fan_out)) (Dense and Conv default)."""
    _PRESET = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out)) / .8796."""
    _PRESET = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform with limit sqrt(6 / fan_in)."""
    _PRESET = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(2 / fan_in) / .8796."""
    _PRESET = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform with limit sqrt(3 / fan_in)."""
    _PRESET = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(1 / fan_in) / .8796."""
    _PRESET = (1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times `gain`, over (prod(shape[:-1]), shape[-1]).

    Args:
        gain: multiplier of the matrix.
        seed: as in `Initializer`.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = gain

    def _sample(self, shape, rng):
        if len(shape) < 2:
            raise ShapeError(f"Orthogonal initializer needs a shape of rank >= 2, got {shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes the decomposition unique (uniform over orthogonal matrices)
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape)

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """`gain` times the identity matrix (2-D shapes only; rectangular allowed).

    Args:
        gain: multiplier of the matrix.
    """

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__(None)
        self.gain = gain

    def _sample(self, shape, rng):
        if len(shape) != 2:
            raise ShapeError(f"Identity initializer needs a 2-D shape, got {shape}.")
        return self.gain * np.eye(*shape)

    def get_config(self) -> dict:
        return {"gain": self.gain}


_CLASSES: dict[str, type] = {c.__name__: c for c in (
    Zeros, Ones, Constant, RandomNormal, TruncatedNormal, RandomUniform, VarianceScaling,
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal,
    Orthogonal, Identity)}
_ALIASES: dict[str, type] = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "random_normal": RandomNormal, "normal": RandomNormal, "truncated_normal": TruncatedNormal,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
    "OrthogonalInitializer": Orthogonal, "identity": Identity, "IdentityInitializer": Identity,
}
_ALL = {**_CLASSES, **_ALIASES}

# Keras-style function aliases: `initializers.glorot_uniform(seed=1)`.
zeros, ones, constant = Zeros, Ones, Constant
random_normal, truncated_normal, random_uniform = RandomNormal, TruncatedNormal, RandomUniform
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal


def _accepting_rng(fn: Callable) -> Callable:
    """Wrap a Keras-style user function `fn(shape, dtype=None)` so it accepts `rng=`."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return fn
    if any(p.name == "rng" or p.kind is p.VAR_KEYWORD for p in params):
        return fn

    def init(shape, dtype=None, rng=None):
        return fn(shape, dtype=dtype)
    return init


def serialize(initializer) -> dict | None:
    """{'class_name': ..., 'config': ...} as Keras writes it (None stays None).

    Args:
        initializer: an Initializer, or None.
    """
    return registry.serialize(initializer)


def deserialize(config: dict) -> Initializer:
    """Inverse of `serialize`; accepts class names and snake_case aliases.

    Args:
        config: a dict from `serialize`, or a class name or alias.
    """
    return registry.deserialize("initializer", _ALL, config)


def get(identifier: Any) -> Callable | None:
    """An initializer from None, a name, a config dict, an instance, a class or a callable.

    Args:
        identifier: any of those; a callable `fn(shape, dtype=None)` is wrapped to accept `rng=`.
    """
    return registry.get("initializer", _ALL, Initializer, identifier, wrap_callable=_accepting_rng)
