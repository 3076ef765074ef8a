"""distdl.ops.dot_product_attention: values against a per-head NumPy loop (softmax(QK^T s + bias)
V, masked and causal, grouped heads), gradients of query, key, value and bias in float64."""
import numpy as np
import pytest

import distdl.ops as ops
from distdl.errors import ShapeError
from opcheck import check_grad

RNG = np.random.default_rng(12)


def reference(q, k, v, bias=None, keep=None, scale=None):
    b, t, n, h = q.shape
    s, kh = k.shape[1], k.shape[2]
    scale = 1 / np.sqrt(h) if scale is None else scale
    out = np.zeros_like(q)
    for i in range(b):
        for j in range(n):
            kj = j // (n // kh)
            logits = q[i, :, j] @ k[i, :, kj].T * scale
            if bias is not None:
                logits = logits + np.broadcast_to(bias, (b, n, t, s))[i, j]
            if keep is not None:
                logits = np.where(np.broadcast_to(keep, (b, n, t, s))[i, j], logits, -np.inf)
            p = np.exp(logits - logits.max(-1, keepdims=True))
            out[i, :, j] = (p / p.sum(-1, keepdims=True)) @ v[i, :, kj]
    return out


@pytest.mark.parametrize("heads_kv", [2, 1], ids=["multi-head", "grouped"])
def test_attention_values_and_gradients(heads_kv):
    q = RNG.standard_normal((2, 3, 2, 4))
    k, v = RNG.standard_normal((2, 5, heads_kv, 4)), RNG.standard_normal((2, 5, heads_kv, 4))
    np.testing.assert_allclose(ops.dot_product_attention(q, k, v).value, reference(q, k, v), rtol=1e-10)
    bias = RNG.standard_normal((1, 2, 3, 5))
    np.testing.assert_allclose(ops.dot_product_attention(q, k, v, bias=bias, scale=0.3).value,
                               reference(q, k, v, bias, scale=0.3), rtol=1e-10)
    check_grad(lambda a, b, c, d: ops.dot_product_attention(a, b, c, bias=d), q, k, v, bias)


def test_mask_and_causal():
    q, k, v = (RNG.standard_normal((1, 4, 1, 3)) for _ in range(3))
    mask = RNG.random((1, 1, 4, 4)) > 0.3
    mask[..., 0] = True
    np.testing.assert_allclose(ops.dot_product_attention(q, k, v, mask=mask).value, reference(q, k, v, keep=mask),
                               rtol=1e-10)
    causal = np.tril(np.ones((4, 4), dtype=bool))
    out = ops.dot_product_attention(q, k, v, is_causal=True).value
    np.testing.assert_allclose(out, reference(q, k, v, keep=causal), rtol=1e-10)
    np.testing.assert_allclose(out[0, 0, 0], v[0, 0, 0])     # the first query sees only the first key
    check_grad(lambda a, b, c: ops.dot_product_attention(a, b, c, mask=mask, is_causal=True), q, k, v)


def test_shapes_are_checked():
    with pytest.raises(ShapeError, match="ops.dot_product_attention: query \\(B, T, N, H\\)"):
        ops.dot_product_attention(np.ones((1, 2, 3, 4)), np.ones((1, 2, 2, 4)), np.ones((1, 2, 2, 4)))


def test_float32_stays_float32():
    q = RNG.standard_normal((1, 2, 1, 4)).astype(np.float32)
    out = ops.dot_product_attention(q, q, q, mask=np.ones((1, 1, 2, 2), dtype=bool), is_causal=True)
    assert out.dtype == np.float32
