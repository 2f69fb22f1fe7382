"""Stateless ops with torch.nn.functional's names, argument names, order and defaults.

Also importable as ``cnncore.nn.functional``.
"""

from ._ops.activation import *  # noqa: F401,F403
from ._ops import activation as _activation

__all__ = [*_activation.__all__]
