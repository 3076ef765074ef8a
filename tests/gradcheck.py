"""Float64 central-difference gradient checks shared by the layer/activation/loss tests."""
from __future__ import annotations

import numpy as np


def numeric_grad(f, x, eps=1e-6):
    """Central differences of scalar f() with respect to array x (perturbed in place)."""
    g = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def rel_error(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)) + np.max(np.abs(b)), 1e-12))


def check_layer(layer, x, training=True, tol=1e-6, seed=0):
    """Assert a float64 layer's backward matches finite differences for inputs and weights.

    `x` is an array or a list of arrays; the scalar checked is sum(y * r) for a fixed random r
    (summed over every output for multi-output layers).
    """
    rng = np.random.default_rng(seed)
    multi_in = isinstance(x, (list, tuple))
    xs = [np.array(a, dtype=np.float64) for a in (x if multi_in else [x])]
    y = layer(xs if multi_in else xs[0], training=training)
    ys = y if isinstance(y, (list, tuple)) else [y]
    rs = [rng.standard_normal(np.shape(a)) for a in ys]

    def loss():
        out = layer.forward(xs if multi_in else xs[0], training=training)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return float(sum(np.sum(o * r) for o, r in zip(outs, rs)))

    loss()  # fresh cache for backward
    dx = layer.backward(rs if isinstance(y, (list, tuple)) else rs[0])
    dxs = dx if multi_in else [dx]
    analytic_w = [v.grad.copy() for v in layer.trainable_weights]
    for a, d in zip(xs, dxs):
        num = numeric_grad(loss, a)
        err = rel_error(d, num)
        assert err < tol, f"input gradient of {layer.name}: relative error {err:.2e}"
    for v, g in zip(layer.trainable_weights, analytic_w):
        num = numeric_grad(loss, v.value)
        err = rel_error(g, num)
        assert err < tol, f"gradient of {v.name}: relative error {err:.2e}"


def check_without_input_grad(layer, x, dy):
    """With `need_input_grad` False, backward returns None and writes the same weight gradients."""
    layer(x, training=True)
    layer.backward(dy)
    grads = [v.grad.copy() for v in layer.trainable_weights]
    layer.need_input_grad = False
    layer.forward(x, training=True)
    assert layer.backward(dy) is None
    for v, g in zip(layer.trainable_weights, grads):
        np.testing.assert_array_equal(v.grad, g)


def check_model(model, xs, tol=1e-6, seed=0):
    """Assert that a float64 model's gradients (every trainable weight, through its executor, with
    what layers added by add_loss) match finite differences of sum(outputs * r) + added losses."""
    ex = model.executor
    outs = ex.forward(xs, training=True)
    rng = np.random.default_rng(seed)
    rs = [rng.standard_normal(np.shape(o)) for o in outs]

    def objective():
        return float(sum(np.sum(o * r) for o, r in zip(ex.forward(xs, training=True), rs))) + ex.activity_loss

    objective()
    ex.backward(rs)
    analytic = model.grads.copy()
    numeric = numeric_grad(objective, model.params)
    err = rel_error(analytic, numeric)
    assert err < tol, f"model {model.name}: relative error {err:.2e} of its weights' gradient"
    return analytic
