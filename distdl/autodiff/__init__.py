"""Reverse-mode differentiation for code written with `distdl.ops` (NumPy only).

`tape` records ops as they run and runs them backwards; `tensor` is the `Tensor` type, its
operators and the arithmetic they need. User-written layers, losses and metrics are recorded
here, so nobody writes a backward pass; built-in layers keep their hand-written ones (a call of
one inside a recording is one node whose vjp is that layer's `backward`).
"""
from .tape import backward, current_tape, recording, unbroadcast
from .tensor import Tape, Tensor, VariableBase, as_tensor, is_tracked, result, value_of

__all__ = ["Tape", "Tensor", "VariableBase", "as_tensor", "backward", "current_tape", "is_tracked",
           "recording", "result", "unbroadcast", "value_of"]
