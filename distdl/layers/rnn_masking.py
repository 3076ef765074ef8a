"""Keras 3 masking rules for the recurrent layers (see `keras.src.backend.numpy.rnn`).

At a masked step the states are carried over unchanged; the step's output is the carried
output (h), or zeros with `zero_output_for_mask` (which Bidirectional forces on when it
returns sequences). The time loops in `rnn_cells` take `skip` (T, B, 1) bool, True where a
step is masked, in processing order (reversed for go_backwards).
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError

__all__ = ["steps_to_skip", "zero_masked_outputs", "output_grads", "output_masks", "carry", "pass_through"]


def steps_to_skip(layer, mask, B: int, T: int):
    """`skip` (T, B, 1) in processing order from a (B, T) mask; None when no step is masked.

    Args:
        layer: the recurrent layer (its go_backwards; named in the error).
        mask: the (B, T) bool mask, True where a step is kept, or None.
        B: the batch size.
        T: the number of time steps.
    """
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (B, T):
        raise ShapeError(f"{type(layer).__name__} layer {layer.name!r} got a mask of shape {mask.shape} "
                         f"for inputs of (batch, timesteps) = ({B}, {T}).")
    if mask.all():
        return None
    skip = np.logical_not(mask.T)
    return (skip[::-1] if layer.go_backwards else skip)[:, :, None]


def zero_masked_outputs(out, skip, return_sequences: bool) -> None:
    """zero_output_for_mask: zero the output at masked steps in place.

    Args:
        out: the output, (B, T, u) with return_sequences, else (B, u).
        skip: the (T, B, 1) skip flags.
        return_sequences: whether `out` holds every step.
    """
    np.copyto(out, 0, where=skip.transpose(1, 0, 2) if return_sequences else skip[-1])


def output_grads(d_out, skip, return_sequences: bool):
    """The upstream gradient of the output with the zeroed (constant) masked outputs removed.

    Args:
        d_out: the gradient of the output, shaped like it.
        skip: the (T, B, 1) skip flags.
        return_sequences: whether the output holds every step.
    """
    return np.where(skip.transpose(1, 0, 2) if return_sequences else skip[-1], 0, d_out)


def output_masks(layer, mask):
    """Keras's RNN.compute_mask: the input mask for a returned sequence, none for the last output
    and the states.

    Args:
        layer: the recurrent layer (its return_sequences and return_state).
        mask: the input's (B, T) mask, or None.
    """
    out = mask if layer.return_sequences else None
    return [out] + [None] * layer._n_states if layer.return_state else out


def carry(skip_t, *pairs) -> None:
    """At a masked step each (new, old) state pair keeps the old state in the masked rows.

    Args:
        skip_t: the step's (B, 1) skip flags.
        *pairs: (new, old) state arrays; new is written in place.
    """
    for new, old in pairs:
        np.copyto(new, old, where=skip_t)


def pass_through(skip_t, saved, *grads) -> None:
    """A masked step is the identity: its rows' state gradients leave it as they entered.

    Args:
        skip_t: the step's (B, 1) skip flags.
        saved: the state gradients as they entered the step.
        *grads: the state gradients after the step, reset in place in the masked rows.
    """
    for g, kept in zip(grads, saved):
        np.copyto(g, kept, where=skip_t)
