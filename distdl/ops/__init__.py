"""`distdl.ops`: Keras 3's `keras.ops`, computed by NumPy and recorded for differentiation.

Write layers, losses and metrics with these exactly as with `keras.ops`; inside a layer's
`call` (and a custom loss) every op is recorded on the current tape (distdl.autodiff), so the
gradient comes without a hand-written backward. Outside a recording they just compute.
`ops.nn` holds the neural-network ops (activations, convolutions, pooling) as in Keras.

Modules: `core` (conversion, casting, shape, stop_gradient, comparisons), `math` and `trig`
(elementwise math), `reductions`, `activations`, `crossentropy` (and one_hot), `shape` (reshaping,
joining, indexing), `creation` (zeros, arange, eye: constants), `linalg` (dot, einsum, tensordot),
`conv` (conv and pooling through distdl's layer kernels), `sorting` (sort, top_k, median, quantile),
`statistics` (average, nan-reductions, bincount), `joining` (stacks, splits, diag, meshgrid),
`vector_products` (cross, kron, correlate, vander), `elementwise` (the rest of NumPy's elementwise
ops), `bitwise`, `windows` (hamming, ..., logspace), `arrays` (array, copy, dtype, nonzero), `nn`.
Every op is wrapped so that on a
symbolic tensor (functional API) it adds a graph node instead (distdl.layers.tensor_op).
"""
import functools

from ..autodiff.tensor import Tensor, absolute, add, divide, matmul, multiply, negative, power, subtract
from ..layers import tensor_op
from ..layers.base import SymbolicTensor
from . import nn
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .conv import *  # noqa: F401,F403 (keras.ops has the nn ops too; binds `conv` to the function)
from .conv import __all__ as _conv
from .core import *  # noqa: F401,F403
from .core import __all__ as _core
from .creation import *  # noqa: F401,F403
from .creation import __all__ as _creation
from .crossentropy import *  # noqa: F401,F403
from .crossentropy import __all__ as _crossentropy
from .linalg import *  # noqa: F401,F403
from .linalg import __all__ as _linalg
from .math import *  # noqa: F401,F403
from .math import __all__ as _math
from .reductions import *  # noqa: F401,F403
from .reductions import __all__ as _reductions
from .shape import *  # noqa: F401,F403
from .shape import __all__ as _shape
from .trig import *  # noqa: F401,F403
from .trig import __all__ as _trig
from .arrays import *  # noqa: F401,F403
from .arrays import __all__ as _arrays
from .bitwise import *  # noqa: F401,F403
from .bitwise import __all__ as _bitwise
from .elementwise import *  # noqa: F401,F403
from .elementwise import __all__ as _elementwise
from .joining import *  # noqa: F401,F403
from .joining import __all__ as _joining
from .vector_products import *  # noqa: F401,F403
from .vector_products import __all__ as _vector_products
from .sorting import *  # noqa: F401,F403
from .sorting import __all__ as _sorting
from .statistics import *  # noqa: F401,F403
from .statistics import __all__ as _statistics
from .windows import *  # noqa: F401,F403
from .windows import __all__ as _windows
from .core import shape  # noqa: E402,F811 (the function: importing the module distdl.ops.shape bound the name)

abs = absolute  # noqa: A001 (Keras's name)
true_divide = divide

__all__ = ["Tensor", "absolute", "abs", "add", "divide", "true_divide", "matmul", "multiply", "negative",
           "power", "subtract", "nn", *_activations, *_conv, *_core, *_creation, *_crossentropy, *_linalg,
           *_math, *_reductions, *_shape, *_trig,
           *_arrays, *_bitwise, *_elementwise, *_joining, *_vector_products, *_sorting, *_statistics, *_windows]


def _symbolic_aware(fn):
    """`fn` that, given a symbolic tensor (functional API), adds a graph node instead of computing."""
    tensor_op.register(fn)

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if tensor_op.has_symbolic(args) or (kwargs and tensor_op.has_symbolic(kwargs.values())):
            return tensor_op.symbolic_call(fn.__name__, args, kwargs)
        return fn(*args, **kwargs)
    return op


def _static_shape(x) -> tuple:
    """keras.ops.shape: a symbolic tensor's shape has None for the batch axis."""
    if isinstance(x, SymbolicTensor):
        return ((None,) if x.batched else ()) + tuple(x.shape)
    return _core_shape(x)


_core_shape = shape
_PLAIN = {"Tensor", "nn", "shape", "is_tensor", "convert_to_numpy", "dtype"}
_WRAPPED: dict = {}  # one wrapper per function, so aliases (swish, silu) stay one object
for _name in __all__:
    if _name not in _PLAIN:
        _fn = globals()[_name]
        globals()[_name] = _WRAPPED.setdefault(id(_fn), _symbolic_aware(_fn))
for _name in nn.__all__:
    _fn = getattr(nn, _name)
    setattr(nn, _name, _WRAPPED.setdefault(id(_fn), _symbolic_aware(_fn)))
shape = _static_shape
