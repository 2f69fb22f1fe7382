"""Stateless ops with torch.nn.functional's names, argument names, order and defaults.

Also importable as ``cnncore.nn.functional``.
"""

from ._ops import activation as _activation
from ._ops import composite as _composite
from ._ops import conv as _conv
from ._ops import linalg as _linalg
from ._ops import loss as _loss
from ._ops import norm as _norm
from ._ops import pool as _pool
from ._ops import resample as _resample
from ._ops import tensor_ops as _tensor_ops
from ._ops.activation import *  # noqa: F401,F403
from ._ops.composite import *  # noqa: F401,F403
from ._ops.conv import *  # noqa: F401,F403
from ._ops.linalg import *  # noqa: F401,F403
from ._ops.loss import *  # noqa: F401,F403
from ._ops.norm import *  # noqa: F401,F403
from ._ops.pool import *  # noqa: F401,F403
from ._ops.resample import *  # noqa: F401,F403
from ._ops.tensor_ops import *  # noqa: F401,F403

__all__ = [
    *_activation.__all__,
    *_composite.__all__,
    *_conv.__all__,
    *_linalg.__all__,
    *_loss.__all__,
    *_norm.__all__,
    *_pool.__all__,
    *_resample.__all__,
    *_tensor_ops.__all__,
]
