"""keras.ops.dot_product_attention, written over recorded ops (einsum, softmax), so its gradient
is theirs. Shapes: query (B, T, N, H), key and value (B, S, K, H) with K dividing N (grouped
heads share a key/value head, as JAX's), output (B, T, N, H); `bias` and the boolean `mask`
(True: attend) broadcast against the logits (B, N, T, S).
"""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Tensor, as_tensor
from ..errors import ConfigError, ShapeError
from .activations import softmax
from .math import where
from .trig import tanh
from .products import einsum
from .shape import repeat

__all__ = ["dot_product_attention"]

_LARGE_NEGATIVE = 3.38953e38 * -0.7   # the masked logit of Keras's backends (float32)


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                          flash_attention=None, attn_logits_soft_cap=None) -> Tensor:
    """softmax(scale * Q K^T + bias, masked) V per head; scale defaults to 1 / sqrt(H);
    `is_causal` masks keys after each query; `attn_logits_soft_cap` c maps logits to
    c * tanh(logits / c). Flash attention is a kernel this NumPy library has not."""
    if flash_attention:
        raise ConfigError("ops.dot_product_attention: flash_attention is not available in distdl (NumPy).")
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4 or k.shape != v.shape or q.shape[0] != k.shape[0] \
            or q.shape[-1] != k.shape[-1] or q.shape[2] % k.shape[2]:
        raise ShapeError(f"ops.dot_product_attention: query (B, T, N, H), key and value (B, S, K, H) with K "
                         f"dividing N, got {q.shape}, {k.shape} and {v.shape}.")
    groups = q.shape[2] // k.shape[2]
    if groups > 1:
        k, v = repeat(k, groups, axis=2), repeat(v, groups, axis=2)
    scale = float(1.0 / np.sqrt(k.shape[-1])) if scale is None else float(scale)   # a weak Python float
    logits = einsum("btnh,bsnh->bnts", q, k) * scale
    if attn_logits_soft_cap is not None:
        logits = tanh(logits / attn_logits_soft_cap) * attn_logits_soft_cap
    if bias is not None:
        logits = logits + bias
    keep = None if mask is None else np.asarray(as_tensor(mask).value, dtype=bool)
    if is_causal:
        t, s = logits.shape[2], logits.shape[3]
        causal = np.tril(np.ones((t, s), dtype=bool))
        keep = causal if keep is None else keep & causal
    if keep is not None:
        logits = where(np.broadcast_to(keep, logits.shape), logits, np.asarray(_LARGE_NEGATIVE, logits.dtype))
    return einsum("bnts,bsnh->btnh", softmax(logits, axis=-1), v)
