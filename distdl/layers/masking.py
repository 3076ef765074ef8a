"""Masking: marks the time steps whose features all equal `mask_value` as padding (Keras 3)."""
from __future__ import annotations

import numpy as np

from .base import Layer

__all__ = ["Masking"]


class Masking(Layer):
    """Output x with the masked steps zeroed; mask any(x != mask_value, axis=-1), shape (batch, timesteps).

    Later layers that support masking pass the mask on, and recurrent layers skip the masked steps.

    Args:
        mask_value: the value that marks padding: a step whose features all equal it is masked.
        **kwargs: the base `Layer` arguments (name, dtype, ...).
    """

    supports_masking = True
    creates_mask = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value

    def compute_mask(self, inputs, mask):
        return np.any(np.not_equal(inputs, self.mask_value), axis=-1)

    def forward(self, x, training=False):
        keep = np.any(np.not_equal(x, self.mask_value), axis=-1, keepdims=True).astype(x.dtype)
        self.cache = keep
        return x * keep

    def backward(self, dy):
        return dy * self.cache if self.need_input_grad else None

    def get_config(self):
        cfg = super().get_config()
        cfg["mask_value"] = self.mask_value
        return cfg
