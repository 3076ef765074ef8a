"""Layers by family; `from distdl.layers import Dense` as in Keras."""
from .base import Layer, RunContext, SymbolicTensor, deserialize, serialize
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
