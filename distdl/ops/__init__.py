"""`distdl.ops`: Keras 3's `keras.ops`, computed by NumPy and recorded for differentiation.

Write layers, losses and metrics with these exactly as with `keras.ops`; inside a layer's
`call` (and a custom loss) every op is recorded on the current tape (distdl.autodiff), so the
gradient comes without a hand-written backward. Outside a recording they just compute.
`ops.nn` holds the neural-network ops (activations, convolutions, pooling) as in Keras.

Modules: `core` (conversion, casting, shape, stop_gradient, comparisons), `math` and `trig`
(elementwise math), `reductions`, `activations`, `crossentropy` (and one_hot), `shape` (reshaping,
joining, indexing), `creation` (zeros, arange, eye: constants), `products` (dot, einsum,
tensordot), `linalg` (the ops.linalg namespace), `conv` (conv and pooling through distdl's layer
kernels), `spatial` (conv_transpose, unfold, adaptive pools), `normalization`, `attention`, `ctc`,
`control` (loops and branches run eagerly, custom_gradient), `segments` (scatter, segment
reductions), `fft`, `sorting` (sort, top_k, median, quantile), `statistics` (average,
nan-reductions, bincount), `joining` (stacks, splits, diag, meshgrid), `vector_products` (cross,
kron, correlate, vander), `elementwise` (the rest of NumPy's elementwise ops), `bitwise`,
`windows` (hamming, ..., logspace), `arrays` (array, copy, dtype, nonzero), `nn`. Every op is
wrapped so that on a symbolic tensor (functional API) it adds a graph node instead
(distdl.layers.tensor_op).
"""
import functools

from ..autodiff.tensor import Tensor, absolute, add, divide, matmul, multiply, negative, power, subtract
from ..layers import tensor_op
from ..layers.base import SymbolicTensor
from . import linalg, nn
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .arrays import *  # noqa: F401,F403
from .arrays import __all__ as _arrays
from .attention import *  # noqa: F401,F403
from .attention import __all__ as _attention
from .bitwise import *  # noqa: F401,F403
from .bitwise import __all__ as _bitwise
from .control import *  # noqa: F401,F403
from .control import __all__ as _control
from .conv import *  # noqa: F401,F403 (keras.ops has the nn ops too; binds `conv` to the function)
from .conv import __all__ as _conv
from .core import *  # noqa: F401,F403
from .core import __all__ as _core
from .creation import *  # noqa: F401,F403
from .creation import __all__ as _creation
from .crossentropy import *  # noqa: F401,F403
from .crossentropy import __all__ as _crossentropy
from .ctc import *  # noqa: F401,F403
from .ctc import __all__ as _ctc
from .elementwise import *  # noqa: F401,F403
from .elementwise import __all__ as _elementwise
from .fft import *  # noqa: F401,F403
from .fft import __all__ as _fft
from .joining import *  # noqa: F401,F403
from .joining import __all__ as _joining
from .math import *  # noqa: F401,F403
from .math import __all__ as _math
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization
from .products import *  # noqa: F401,F403
from .products import __all__ as _products
from .reductions import *  # noqa: F401,F403
from .reductions import __all__ as _reductions
from .segments import *  # noqa: F401,F403
from .segments import __all__ as _segments
from .shape import *  # noqa: F401,F403
from .shape import __all__ as _shape
from .sorting import *  # noqa: F401,F403
from .sorting import __all__ as _sorting
from .spatial import *  # noqa: F401,F403
from .spatial import __all__ as _spatial
from .statistics import *  # noqa: F401,F403
from .statistics import __all__ as _statistics
from .trig import *  # noqa: F401,F403
from .trig import __all__ as _trig
from .vector_products import *  # noqa: F401,F403
from .vector_products import __all__ as _vector_products
from .windows import *  # noqa: F401,F403
from .windows import __all__ as _windows
from .linalg import (cholesky, cholesky_inverse, det, eig, eigh, inv, logdet, lstsq,  # noqa: E402 (keras.ops
                     lu_factor, qr, slogdet, solve, solve_triangular, svd)        # has them at the top too)
from .core import shape  # noqa: E402,F811 (the function: importing the module distdl.ops.shape bound the name)

abs = absolute  # noqa: A001 (Keras's name)
true_divide = divide

__all__ = ["Tensor", "absolute", "abs", "add", "divide", "true_divide", "matmul", "multiply", "negative",
           "power", "subtract", "nn", "linalg", "cholesky", "cholesky_inverse", "det", "eig", "eigh", "inv",
           "logdet", "lstsq", "lu_factor", "qr", "slogdet", "solve", "solve_triangular", "svd",
           *_activations, *_arrays, *_attention, *_bitwise, *_control, *_conv, *_core, *_creation,
           *_crossentropy, *_ctc, *_elementwise, *_fft, *_joining, *_math, *_normalization, *_products,
           *_reductions, *_segments, *_shape, *_sorting, *_spatial, *_statistics, *_trig, *_vector_products,
           *_windows]


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
# the control ops take functions: on symbolic operands their bodies build the graph nodes
_PLAIN = {"Tensor", "nn", "linalg", "shape", "is_tensor", "convert_to_numpy", "dtype", *_control}
_WRAPPED: dict = {}  # one wrapper per function, so aliases (swish, silu) stay one object
for _name in __all__:
    if _name not in _PLAIN:
        _fn = globals()[_name]
        globals()[_name] = _WRAPPED.setdefault(id(_fn), _symbolic_aware(_fn))
for _space in (nn, linalg):
    for _name in _space.__all__:
        _fn = getattr(_space, _name)
        setattr(_space, _name, _WRAPPED.setdefault(id(_fn), _symbolic_aware(_fn)))
shape = _static_shape
