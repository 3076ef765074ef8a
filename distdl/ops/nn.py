"""`keras.ops.nn`: the activations, the cross-entropies and one_hot, and the convolution/pooling ops, attention,
normalizations, spatial rearrangements and CTC."""
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv
from .crossentropy import *  # noqa: F401,F403
from .crossentropy import __all__ as _crossentropy
from .attention import *  # noqa: F401,F403
from .attention import __all__ as _attention
from .ctc import *  # noqa: F401,F403
from .ctc import __all__ as _ctc
from .fft import polar
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization
from .reductions import moments
from .spatial import *  # noqa: F401,F403
from .spatial import __all__ as _spatial

__all__ = [*_activations, *_conv, *_crossentropy, "moments", *_attention, *_ctc, "polar", *_normalization,
           *_spatial]
