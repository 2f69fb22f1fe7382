"""Activations and (log-)softmax."""

from .. import _core
from ..tensor import _record, is_grad_enabled
from ._args import as_tensor, check_float, check_int

__all__ = ["relu", "relu6", "leaky_relu", "hardtanh", "sigmoid", "tanh", "softmax",
           "log_softmax"]


def _finish(x, y_core, inplace, backward, name):
    """Records y; with inplace=True and no graph to protect, writes y into x and returns x."""
    if inplace and not (is_grad_enabled() and x.requires_grad):
        x._c.copy_(y_core)
        return x
    return _record(y_core, (x,), backward, name)


def relu(input, inplace=False):
    x = as_tensor(input, "relu", "input")
    y = _core.relu_forward(x._c)
    return _finish(x, y, inplace, lambda g, needs: (_core.relu_backward(g, y),), "ReluBackward")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    x = as_tensor(input, "leaky_relu", "input")
    a = check_float(negative_slope, "leaky_relu", "negative_slope")
    y = _core.leaky_relu_forward(x._c, a)
    xc = x._c
    return _finish(x, y, inplace, lambda g, needs: (_core.leaky_relu_backward(g, xc, a),),
                   "LeakyReluBackward")


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    x = as_tensor(input, "hardtanh", "input")
    lo = check_float(min_val, "hardtanh", "min_val")
    hi = check_float(max_val, "hardtanh", "max_val")
    y = _core.hardtanh_forward(x._c, lo, hi)
    xc = x._c
    return _finish(x, y, inplace, lambda g, needs: (_core.hardtanh_backward(g, xc, lo, hi),),
                   "HardtanhBackward")


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def sigmoid(input):
    x = as_tensor(input, "sigmoid", "input")
    y = _core.sigmoid_forward(x._c)
    return _record(y, (x,), lambda g, needs: (_core.sigmoid_backward(g, y),), "SigmoidBackward")


def tanh(input):
    x = as_tensor(input, "tanh", "input")
    y = _core.tanh_forward(x._c)
    return _record(y, (x,), lambda g, needs: (_core.tanh_backward(g, y),), "TanhBackward")


def _softmax_dim(x, dim, op):
    if dim is None:
        # torch's legacy implicit choice (_get_softmax_dim): dim 0 for 0-, 1- and 3-D input.
        return 0 if x.ndim in (0, 1, 3) else 1
    return check_int(dim, op, "dim")


def _check_dtype(dtype, op):
    if dtype is not None and str(dtype) not in ("float32", "cnncore.float32"):
        raise TypeError(f"{op}: dtype must be None or float32, but got {dtype}")


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = as_tensor(input, "softmax", "input")
    _check_dtype(dtype, "softmax")
    d = _softmax_dim(x, dim, "softmax")
    y = _core.softmax_forward(x._c, d)
    return _record(y, (x,), lambda g, needs: (_core.softmax_backward(g, y, d),), "SoftmaxBackward")


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = as_tensor(input, "log_softmax", "input")
    _check_dtype(dtype, "log_softmax")
    d = _softmax_dim(x, dim, "log_softmax")
    y = _core.log_softmax_forward(x._c, d)
    return _record(y, (x,), lambda g, needs: (_core.log_softmax_backward(g, y, d),),
                   "LogSoftmaxBackward")
