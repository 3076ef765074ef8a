"""distdl.ops control flow (cond, switch, loops, scan, map, associative_scan, custom_gradient):
values from keras/src/ops/core_test.py where it has them, gradients through the recorded steps
against float64 finite differences, and the refusal of a symbolic predicate."""
import numpy as np
import pytest

import distdl
import distdl.ops as ops
from distdl.errors import ConfigError
from opcheck import check_grad

RNG = np.random.default_rng(3)


def test_cond_runs_one_branch_and_differentiates_it():
    ran = []
    y = ops.cond(True, lambda: ran.append("t") or 1.0, lambda: ran.append("f") or 2.0)
    assert y == 1.0 and ran == ["t"]
    x = RNG.standard_normal(4)
    check_grad(lambda a: ops.cond(ops.sum(a) > -100, lambda: ops.sin(a), lambda: a), x)
    check_grad(lambda a: ops.cond(np.array(False), lambda: ops.sin(a), lambda: a * a), x)


def test_symbolic_predicate_is_refused_with_the_op_name():
    inp = distdl.Input((3,))
    with pytest.raises(ConfigError, match="ops.cond: the predicate is a symbolic tensor"):
        ops.cond(inp, lambda: inp, lambda: inp)
    with pytest.raises(ConfigError, match="ops.while_loop: the predicate is a symbolic tensor"):
        ops.while_loop(lambda x: x, lambda x: x, inp)
    with pytest.raises(ConfigError, match="ops.switch: the index is a symbolic tensor"):
        ops.switch(inp, [lambda: inp])


def test_switch_clamps_the_index():
    branches = [lambda x: x + 1, lambda x: x * 10]
    assert ops.switch(0, branches, 2.0) == 3.0
    assert ops.switch(5, branches, 2.0) == 20.0     # clamped, as Keras's backends do
    assert ops.switch(-3, branches, 2.0) == 3.0


def test_loops_keras_golden_values():
    # core_test.py test_fori_loop: sum of range(10)
    assert ops.fori_loop(0, 10, lambda i, x: x + i, 0) == 45
    # core_test.py test_while_loop: count both loop variables up to 10
    x, y = ops.while_loop(lambda x, y: x[0, 0] < 10, lambda x, y: (x + 1, y + 1), (np.ones((2, 3)), np.ones(3)))
    np.testing.assert_array_equal(x.value, np.full((2, 3), 10.0))
    np.testing.assert_array_equal(y.value, np.full(3, 10.0))
    single = ops.while_loop(lambda x: x < 10, lambda x: x + 1, 0, maximum_iterations=4)
    assert single == 4


def test_loop_gradients():
    x = RNG.standard_normal(3)
    check_grad(lambda a: ops.fori_loop(0, 3, lambda i, v: v * a + i, a), x)
    check_grad(lambda a: ops.while_loop(lambda v, k: k < 3, lambda v, k: (ops.tanh(v) * 2.0, k + 1), (a, 0))[0], x)


def test_scan_golden_reverse_and_gradient():
    # core_test.py test_scan: a cumulative sum
    carry, ys = ops.scan(lambda c, x: (c + x, c + x), 0.0, np.array([1.0, 2, 3, 4, 5]))
    assert carry == 15.0
    np.testing.assert_array_equal(ys.value, [1, 3, 6, 10, 15])
    carry, ys = ops.scan(lambda c, x: (c + x, c + x), 0.0, np.array([1.0, 2, 3, 4, 5]), reverse=True)
    np.testing.assert_array_equal(ys.value, [15, 14, 12, 9, 5])
    carry, ys = ops.scan(lambda c, _: (c * 2, None), 1.0, length=3)
    assert carry == 8.0 and ys is None
    xs, h0 = RNG.standard_normal((4, 3)), RNG.standard_normal(3)
    check_grad(lambda h, s: ops.scan(lambda c, x: (ops.tanh(c * x + 0.5), c * c), h, s)[1], h0, xs)
    check_grad(lambda h, s: ops.scan(lambda c, x: (ops.tanh(c + x[0]) * x[1], None), h, (s, s * 2.0))[0], h0, xs)


def test_map_and_vectorized_map():
    x = RNG.standard_normal((3, 2))
    np.testing.assert_allclose(ops.map(lambda r: ops.sum(r * r), x).value, np.sum(x * x, axis=1))
    out = ops.vectorized_map(lambda r: (r[0], r[1] * 2.0), x)
    np.testing.assert_allclose(out[1].value, x[:, 1] * 2)
    check_grad(lambda a: ops.map(lambda r: ops.sin(r) * r, a), x)


def test_associative_scan_values_reverse_axis_and_gradient():
    # core_test.py test_associative_scan: a cumulative sum with f = add
    x = np.array([1.0, 2, 3, 4, 5])
    np.testing.assert_array_equal(ops.associative_scan(lambda a, b: a + b, x).value, np.cumsum(x))
    np.testing.assert_array_equal(ops.associative_scan(lambda a, b: a + b, x, reverse=True).value,
                                  np.cumsum(x[::-1])[::-1])
    m = RNG.standard_normal((2, 4))
    np.testing.assert_allclose(ops.associative_scan(lambda a, b: a * b, m, axis=1).value, np.cumprod(m, axis=1))
    pair = ops.associative_scan(lambda a, b: (a[0] + b[0], a[1] * b[1]), (x, x))
    np.testing.assert_allclose(pair[1].value, np.cumprod(x))
    check_grad(lambda a: ops.associative_scan(lambda p, q: p * q, a, axis=-1), m)


def test_custom_gradient_uses_the_given_gradient():
    @ops.custom_gradient
    def log1pexp(x):   # the example of keras.ops.custom_gradient's docstring
        e = ops.exp(x)

        def grad(upstream):
            return ops.multiply(upstream, 1.0 - 1.0 / ops.add(1, e))
        return ops.log(1 + e), grad

    x = RNG.standard_normal(5)
    np.testing.assert_allclose(log1pexp(x).value, np.log1p(np.exp(x)))
    check_grad(log1pexp, x)

    @ops.custom_gradient
    def clipped(x, y):   # a deliberately "wrong" gradient proves grad_fn is what is used
        return x * y, lambda g: (g * 0.0 + 7.0, None)

    from distdl.autodiff import Tape, backward, recording
    tape = Tape("t")
    with recording(tape):
        a = tape.leaf(np.ones(2))
        out = clipped(a, 3.0)
    np.testing.assert_array_equal(backward(tape, [(out, np.ones(2))])[a._index], [7.0, 7.0])


def test_a_python_bool_branch_on_symbolic_operands_builds_the_graph():
    inp = distdl.Input((3,))
    out = ops.cond(True, lambda: ops.sparsemax(ops.layer_normalization(inp)), lambda: inp)
    model = distdl.Model(inp, out)
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    want = ops.sparsemax(ops.layer_normalization(x)).value
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_scan_needs_steps_and_equal_lengths():
    from distdl.errors import ShapeError
    with pytest.raises(ShapeError, match="ops.scan: give xs or length"):
        ops.scan(lambda c, x: (c, x), 0.0)
    with pytest.raises(ShapeError, match="ops.scan: the inputs' first axes \\(and length\\) must agree"):
        ops.scan(lambda c, x: (c, x), 0.0, (np.ones(3), np.ones(4)))
