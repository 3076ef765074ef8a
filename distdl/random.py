"""`keras.random` for layers written with distdl.ops: normal, uniform, dropout,
and `SeedGenerator`, the same on any number of ranks.

Inside a layer's `call` during a fit, a draw whose first axis is the call's batch rows is taken
as this rank's rows of a draw over the whole global batch: the numbers for global row r are a
function of (the fit's seed, the generator's seed, the step, the layer, which draw of the call
it is, r), from a counter-based Philox generator advanced to this rank's first row, as the
built-in Dropout does. So a model with a sampling layer (a VAE) follows the same trajectory on
1, 2 or 3 ranks. Other shapes are drawn whole, alike on every rank. Outside a fit, draws follow
the seed generator's own counter. Normals come from uniforms by Box-Muller, so any slice of
rows can be drawn alone.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autodiff.tensor import Tensor, as_tensor, multiply, value_of
from .layers import recorded

__all__ = ["SeedGenerator", "normal", "uniform", "dropout"]


class SeedGenerator:
    """Keras's seed state: a seed and a counter of draws made outside a fit.

    Args:
        seed: an int (None: 0, so runs repeat; distdl's fits are seeded by the fit's seed too).
    """

    def __init__(self, seed=None, **kwargs) -> None:
        self.seed = int(seed or 0)
        self.draws = 0

    def get_config(self) -> dict:
        """The constructor arguments."""
        return {"seed": self.seed}


def _seed_of(seed) -> int:
    if isinstance(seed, SeedGenerator):
        return seed.seed
    return int(seed or 0)


def _uniform01(shape, seed, lane: int) -> np.ndarray:
    """float64 uniforms in [0, 1) of `shape`, rank-sliced inside a fit (see the module docstring)."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape, dtype=np.int64))
    place = recorded.random_place()
    if place is None:  # outside a layer's call: the generator's own counter
        draw = seed.draws if isinstance(seed, SeedGenerator) else 0
        if isinstance(seed, SeedGenerator):
            seed.draws += 1
        key, counter, first = _seed_of(seed), [draw, 0, 0, lane], 0
    else:
        ctx, stream, draw, rows = place
        row = n // shape[0] if shape and shape[0] else 0
        batched = bool(shape) and shape[0] == rows and ctx.global_rows
        first = ctx.row_start * row if batched else 0
        key = (int(ctx.seed) & (2 ** 64 - 1)) | ((_seed_of(seed) & (2 ** 64 - 1)) << 64)
        counter = [draw, ctx.step, stream, lane]
    bits = np.random.Philox(key=key, counter=counter)
    bits.advance(first // 4)
    return np.random.Generator(bits).random(first % 4 + n)[first % 4:].reshape(shape)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> Tensor:
    """Uniform numbers in [minval, maxval) of `shape` (not differentiated)."""
    u = _uniform01(shape, seed, 0)
    return Tensor((minval + (maxval - minval) * u).astype(dtype or backend.floatx()))


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Normal numbers of `shape` (Box-Muller from two uniform lanes; not differentiated)."""
    u1, u2 = _uniform01(shape, seed, 0), _uniform01(shape, seed, 1)
    z = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
    return Tensor((mean + stddev * z).astype(dtype or backend.floatx()))


def dropout(inputs, rate, noise_shape=None, seed=None) -> Tensor:
    """Zero a `rate` fraction of `inputs` and scale the rest by 1 / (1 - rate) (differentiated
    with respect to `inputs`)."""
    x = as_tensor(inputs)
    shape = np.shape(value_of(x)) if noise_shape is None else tuple(
        np.shape(value_of(x))[i] if d is None else d for i, d in enumerate(noise_shape))
    keep = _uniform01(shape, seed, 0) >= rate
    scale = (keep / (1.0 - rate)).astype(np.result_type(value_of(x)))
    return multiply(x, scale)
