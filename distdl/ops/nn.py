"""`keras.ops.nn`: the activations and the convolution/pooling ops."""
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv

__all__ = [*_activations, *_conv]
