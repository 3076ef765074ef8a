"""Embedding: integer indices (batch, ...) -> rows of a (input_dim, output_dim) table."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from .. import constraints, initializers, regularizers
from .base import Layer
from .layer_utils import positive_int, serialize_component

__all__ = ["Embedding"]


class Embedding(Layer):
    """Looks up `embeddings[index]` for every index; output shape input_shape + (output_dim,).

    With `mask_zero=True`, index 0 is padding: the output carries the mask `inputs != 0`
    (batch, timesteps) to later layers, and recurrent layers skip the masked steps (Keras 3).

    Args:
        input_dim: the vocabulary size (largest index + 1).
        output_dim: the size of each embedding vector.
        embeddings_initializer: initializer of the (input_dim, output_dim) table.
        embeddings_regularizer: regularizer of the table.
        embeddings_constraint: constraint on the table.
        mask_zero: whether index 0 is padding, to be masked.
        input_length: Keras 2's fixed sequence length (sets the input shape).
        **kwargs: the base `Layer` arguments.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = positive_int(self, "input_dim", input_dim)
        self.output_dim = positive_int(self, "output_dim", output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = embeddings_regularizer
        self.embeddings_constraint = embeddings_constraint
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.creates_mask = self.mask_zero
        if input_length is not None and self.declared_input_shape is None:   # Keras 2 argument
            self.declared_input_shape = (int(input_length),)

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer, name="embeddings",
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _indices(self, x) -> np.ndarray:
        """Validated int64 indices; float arrays must hold whole numbers."""
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.integer):
            idx = x.astype(np.int64, copy=False)
        else:
            idx = x.astype(np.int64)
            if x.size and not np.array_equal(idx, x):
                bad = x.flat[int(np.flatnonzero(idx.ravel() != x.ravel())[0])]
                raise DataError(f"Embedding layer {self.name!r} needs integer indices, got {bad!r}.")
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= self.input_dim:
                bad = lo if lo < 0 else hi
                raise DataError(f"Embedding layer {self.name!r} got index {bad}, outside "
                                f"[0, input_dim={self.input_dim}).")
        return idx

    def forward(self, x, training=False):
        idx = self._indices(x)
        self.cache = idx
        return np.take(self.embeddings.value, idx, axis=0)

    def compute_mask(self, inputs, mask):
        """inputs != 0 with mask_zero (the padding index), else no mask; shape of `inputs`.

        Args:
            inputs: the integer indices.
            mask: the incoming mask (ignored: the indices decide).
        """
        return np.not_equal(inputs, 0) if self.mask_zero else None

    def backward(self, dy):
        """Scatter-add dy into the embeddings grad; indices get a zero gradient.

        Args:
            dy: the loss gradient w.r.t. the output, input_shape + (output_dim,).
        """
        idx = self.cache
        if self.embeddings.trainable:
            g = self.embeddings.grad
            g.fill(0)
            np.add.at(g, idx.ravel(), np.asarray(dy, dtype=g.dtype).reshape(-1, self.output_dim))
        return np.zeros(idx.shape, dtype=self.dtype)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(input_dim=self.input_dim, output_dim=self.output_dim,
                   embeddings_initializer=serialize_component(initializers, self.embeddings_initializer),
                   embeddings_regularizer=serialize_component(regularizers, self.embeddings_regularizer),
                   embeddings_constraint=serialize_component(constraints, self.embeddings_constraint),
                   mask_zero=self.mask_zero)
        return cfg
