"""Activations and (log-)softmax."""

from .. import _core
from ..tensor import _record
from ._args import as_tensor

__all__ = ["relu"]


def relu(input, inplace=False):
    x = as_tensor(input, "relu", "input")
    y = _core.relu_forward(x._c)
    return _record(y, (x,), lambda g, needs: (_core.relu_backward(g, y),), "ReluBackward")
