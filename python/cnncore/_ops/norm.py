"""Normalisation and regularisation: local_response_norm, batch_norm, dropout, dropout2d."""

import numbers

import numpy as np

from .. import _core
from ..tensor import _record, is_grad_enabled
from ._args import as_tensor, check_float, check_int, optional_tensor

__all__ = ["local_response_norm", "batch_norm", "dropout", "dropout2d"]


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    op = "local_response_norm"
    x = as_tensor(input, op, "input")
    n = check_int(size, op, "size")
    a = check_float(alpha, op, "alpha")
    b = check_float(beta, op, "beta")
    kk = check_float(k, op, "k")
    xc = x._c
    y = _core.local_response_norm_forward(xc, n, a, b, kk)
    return _record(y, (x,),
                   lambda g, needs: (_core.local_response_norm_backward(g, xc, n, a, b, kk),),
                   "LocalResponseNormBackward")


def _check_bool(value, op, arg):
    if not isinstance(value, (bool, np.bool_, numbers.Integral)):
        raise TypeError(f"{op}: {arg} must be a bool, but got {type(value).__name__}")
    return bool(value)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Updates running_mean/running_var in place when training (as torch)."""
    op = "batch_norm"
    x = as_tensor(input, op, "input")
    rm = optional_tensor(running_mean, op, "running_mean")
    rv = optional_tensor(running_var, op, "running_var")
    w = optional_tensor(weight, op, "weight")
    b = optional_tensor(bias, op, "bias")
    train = _check_bool(training, op, "training")
    mom = check_float(0.0 if momentum is None else momentum, op, "momentum")
    e = check_float(eps, op, "eps")
    xc = x._c
    wc = None if w is None else w._c
    y, save_mean, save_invstd = _core.batch_norm_forward(
        xc, None if rm is None else rm._c, None if rv is None else rv._c, wc,
        None if b is None else b._c, train, mom, e)

    def backward(g, needs):
        dx, dw, db = _core.batch_norm_backward(g, xc, wc, save_mean, save_invstd, train)
        return (dx if needs[0] else None, dw if needs[1] else None, db if needs[2] else None)

    return _record(y, (x, w, b), backward, "NativeBatchNormBackward")


def _dropout(input, p, training, inplace, channel_wise, op):
    x = as_tensor(input, op, "input")
    pv = check_float(p, op, "p")
    if pv < 0.0 or pv > 1.0:
        raise ValueError(f"{op}: dropout probability p has to be between 0 and 1, but got {p}")
    if not _check_bool(training, op, "training") or pv == 0.0:
        return x
    y, mask = _core.dropout_forward(x._c, pv, channel_wise)
    if inplace and not (is_grad_enabled() and x.requires_grad):
        x._c.copy_(y)
        return x
    return _record(y, (x,), lambda g, needs: (_core.dropout_backward(g, mask),), "DropoutBackward")


def dropout(input, p=0.5, training=True, inplace=False):
    return _dropout(input, p, training, inplace, False, "dropout")


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zeroes whole channels: input (N, C, H, W), or (N, C, L) as torch treats 3-D input."""
    return _dropout(input, p, training, inplace, True, "dropout2d")
