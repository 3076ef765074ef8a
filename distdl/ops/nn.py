"""`keras.ops.nn`: the activations, the cross-entropies and one_hot, and the convolution/pooling ops."""
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv
from .crossentropy import *  # noqa: F401,F403
from .crossentropy import __all__ as _crossentropy
from .reductions import moments

__all__ = [*_activations, *_conv, *_crossentropy, "moments"]
