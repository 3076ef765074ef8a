"""distdl.ops ctc_loss and ctc_decode: the golden numbers of keras/src/ops/nn_test.py
(test_ctc_loss, test_ctc_decode greedy), a brute-force sum over alignments, and the loss's
gradient against float64 finite differences (padding, unequal lengths, repeated labels)."""
import itertools

import numpy as np
import pytest

import distdl.ops as ops
from distdl.errors import ConfigError, ShapeError
from opcheck import check_grad


def test_ctc_loss_keras_golden():
    labels = np.array([[1, 2, 1], [1, 2, 2]])
    outputs = np.array([[[0.4, 0.8, 0.4], [0.2, 0.8, 0.3], [0.9, 0.4, 0.5]],
                        [[0.4, 0.8, 0.4], [0.2, 0.3, 0.3], [0.4, 0.3, 0.2]]])
    out = ops.ctc_loss(labels, outputs, np.array([3, 2]), np.array([3, 2]))
    np.testing.assert_allclose(out.value, [3.4411672, 1.91680186], rtol=1e-6)


def brute_force(labels, logits, blank=0):
    """-log of the summed probability of every frame path that collapses to `labels`."""
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(logits.shape[1]), repeat=len(logits)):
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        if [c for c in merged if c != blank] == list(labels):
            total += np.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return -np.log(total)


def test_ctc_loss_matches_a_sum_over_alignments():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((2, 5, 3))
    target = np.array([[1, 1, 0], [2, 1, 2]])
    out = ops.ctc_loss(target, logits, [2, 3], [5, 4]).value
    np.testing.assert_allclose(out[0], brute_force([1, 1], logits[0]))
    np.testing.assert_allclose(out[1], brute_force([2, 1, 2], logits[1, :4]))
    # mask_index: another blank class
    np.testing.assert_allclose(ops.ctc_loss(target[:1] + 1, logits[:1], [2], [5], mask_index=0).value[0],
                               brute_force([2, 2], logits[0]))


def test_ctc_loss_gradient():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((3, 6, 4))
    target = np.array([[1, 2, 2, 0], [3, 1, 0, 0], [2, 2, 2, 1]])
    check_grad(lambda x: ops.ctc_loss(target, x, [3, 2, 2], [6, 4, 5]), logits)
    check_grad(lambda x: ops.ctc_loss(target, x, [3, 2, 2], [6, 4, 5], mask_index=3), logits)


def test_ctc_loss_checks_lengths():
    with pytest.raises(ShapeError, match="ops.ctc_loss: output_length must hold 1 lengths between 0 and 2"):
        ops.ctc_loss(np.array([[1]]), np.zeros((1, 2, 3)), [1], [5])


def test_ctc_decode_greedy_keras_golden():
    # nn_test.py test_ctc_decode, strategy="greedy"
    inputs = np.array([[[0.1, 0.4, 0.2, 0.4], [0.3, -0.3, 0.4, 0.2], [0.3, 0.2, 0.4, 0.3]],
                       [[0.7, 0.4, 0.3, 0.2], [0.3, 0.3, 0.4, 0.1], [0.6, -0.1, 0.1, 0.5]],
                       [[0.1, 0.4, 0.2, 0.7], [0.3, 0.3, -0.2, 0.7], [0.3, 0.2, 0.4, 0.1]]])
    (decoded,), scores = ops.ctc_decode(inputs, sequence_lengths=[3, 3, 1], strategy="greedy", mask_index=0)
    np.testing.assert_array_equal(decoded.value, [[1, 2, -1], [2, -1, -1], [3, -1, -1]])
    np.testing.assert_allclose(scores.value, [[-1.2], [-1.7], [-0.7]])
    (decoded,), _ = ops.ctc_decode(inputs, [3, 3, 1], merge_repeated=False, mask_index=0)
    np.testing.assert_array_equal(decoded.value, [[1, 2, 2], [2, -1, -1], [3, -1, -1]])
    # nn_test.py test_ctc_decode, strategy="beam_search" (beam_width 4, top_paths 2)
    decoded, scores = ops.ctc_decode(inputs, [3, 3, 1], strategy="beam_search", beam_width=4, top_paths=2,
                                     mask_index=0)
    np.testing.assert_array_equal(decoded.value, [[[1, 2, -1], [2, -1, -1], [3, -1, -1]],
                                                  [[2, -1, -1], [3, -1, -1], [1, -1, -1]]])
    np.testing.assert_allclose(scores.value, [[-2.426537, -2.435596], [-2.127681, -2.182338],
                                              [-1.063386, -1.363386]], rtol=1e-6)
    with pytest.raises(ConfigError, match="ops.ctc_decode: strategy must be 'greedy' or 'beam_search'"):
        ops.ctc_decode(inputs, [3, 3, 1], strategy="best")


def test_beam_search_scores_are_prefix_probabilities():
    """With a beam wide enough to keep every prefix, a prefix's score is its total CTC probability:
    exp(-ctc_loss) of that labelling."""
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((1, 4, 3))
    decoded, scores = ops.ctc_decode(logits, [4], strategy="beam_search", beam_width=1000, top_paths=3)
    for k in range(3):
        labels = [c for c in decoded.value[k, 0] if c >= 0]
        target = np.array([labels + [0] * (4 - len(labels))])
        nll = ops.ctc_loss(target, logits, [len(labels)], [4]).value[0]
        np.testing.assert_allclose(scores.value[0, k], -nll, rtol=1e-10)
