"""`distdl.ops`: Keras 3's `keras.ops`, computed by NumPy and recorded for differentiation.

Write layers, losses and metrics with these exactly as with `keras.ops`; inside a layer's
`call` (and a custom loss) every op is recorded on the current tape (distdl.autodiff), so the
gradient comes without a hand-written backward. Outside a recording they just compute.
`ops.nn` holds the neural-network ops (activations, convolutions, pooling) as in Keras.

Modules: `core` (conversion, casting, shape, stop_gradient, comparisons), `math` (elementwise
math), `reductions`, `activations`, `shape` (reshaping, joining, indexing), `creation` (zeros,
arange, eye: constants), `linalg` (dot,
einsum, tensordot), `conv` (conv and pooling through distdl's layer kernels), `nn`.
"""
from ..autodiff.tensor import Tensor, absolute, add, divide, matmul, multiply, negative, power, subtract
from . import nn
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .core import *  # noqa: F401,F403
from .core import __all__ as _core
from .conv import *  # noqa: F401,F403 (keras.ops has the nn ops too; binds `conv` to the function)
from .conv import __all__ as _conv
from .creation import *  # noqa: F401,F403
from .creation import __all__ as _creation
from .linalg import *  # noqa: F401,F403
from .linalg import __all__ as _linalg
from .math import *  # noqa: F401,F403
from .math import __all__ as _math
from .reductions import *  # noqa: F401,F403
from .reductions import __all__ as _reductions
from .shape import *  # noqa: F401,F403
from .shape import __all__ as _shape
from .core import shape  # the function (importing the module distdl.ops.shape bound the name)

abs = absolute  # noqa: A001 (Keras's name)
true_divide = divide

__all__ = ["Tensor", "absolute", "abs", "add", "divide", "true_divide", "matmul", "multiply", "negative",
           "power", "subtract", "nn", *_activations, *_core, *_math, *_reductions,
           *_conv, *_creation, *_linalg, *_shape]
