"""Integer ops of keras.ops: bitwise and/or/xor/invert, shifts, `gcd` and `lcm`. They are
defined on integer (and, for the logical ones, bool) tensors only and never differentiated;
float input is refused with a sentence naming the op, as NumPy would refuse it less clearly."""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, _binary, as_tensor
from ..errors import ConfigError

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_invert", "bitwise_not", "bitwise_left_shift",
           "bitwise_right_shift", "left_shift", "right_shift", "gcd", "lcm"]


def _integers(name: str, *xs, bools: bool = True) -> list:
    ts = [as_tensor(x) for x in xs]
    for t in ts:
        kind = np.result_type(t.value).kind
        if kind not in ("iub" if bools else "iu"):
            raise ConfigError(f"ops.{name}: needs integer{' or bool' if bools else ''} tensors, got dtype "
                              f"{np.result_type(t.value)}.")
    return ts


def _binary_int(name: str, fn, x, y, bools: bool = True) -> Tensor:
    a, b = _integers(name, x, y, bools=bools)
    return Tensor(_binary(name, fn, a, b))


def bitwise_and(x, y) -> Tensor:
    """x & y bit by bit (integer or bool tensors)."""
    return _binary_int("bitwise_and", np.bitwise_and, x, y)


def bitwise_or(x, y) -> Tensor:
    """x | y bit by bit (integer or bool tensors)."""
    return _binary_int("bitwise_or", np.bitwise_or, x, y)


def bitwise_xor(x, y) -> Tensor:
    """x ^ y bit by bit (integer or bool tensors)."""
    return _binary_int("bitwise_xor", np.bitwise_xor, x, y)


def bitwise_invert(x) -> Tensor:
    """~x bit by bit (for signed integers -x - 1; for bools: not)."""
    (t,) = _integers("bitwise_invert", x)
    return Tensor(np.invert(t.value))


def bitwise_not(x) -> Tensor:
    """~x bit by bit (keras.ops.bitwise_not, as bitwise_invert)."""
    (t,) = _integers("bitwise_not", x)
    return Tensor(np.invert(t.value))


def bitwise_left_shift(x, y) -> Tensor:
    """x << y: the bits of x moved y places up (integers)."""
    return _binary_int("bitwise_left_shift", np.left_shift, x, y, bools=False)


def bitwise_right_shift(x, y) -> Tensor:
    """x >> y: the bits of x moved y places down, the sign kept (integers)."""
    return _binary_int("bitwise_right_shift", np.right_shift, x, y, bools=False)


def left_shift(x, y) -> Tensor:
    """x << y (keras.ops.left_shift, as bitwise_left_shift)."""
    return _binary_int("left_shift", np.left_shift, x, y, bools=False)


def right_shift(x, y) -> Tensor:
    """x >> y (keras.ops.right_shift, as bitwise_right_shift)."""
    return _binary_int("right_shift", np.right_shift, x, y, bools=False)


def gcd(x1, x2) -> Tensor:
    """The greatest common divisor of |x1| and |x2| elementwise (integers; gcd(0, 0) = 0)."""
    return _binary_int("gcd", np.gcd, x1, x2, bools=False)


def lcm(x1, x2) -> Tensor:
    """The least common multiple of |x1| and |x2| elementwise (integers; 0 if either is 0)."""
    return _binary_int("lcm", np.lcm, x1, x2, bools=False)
