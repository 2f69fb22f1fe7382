"""Losses: nll_loss, cross_entropy (log_softmax + nll + label smoothing), mse, l1, smooth l1,
binary cross entropy (on probabilities and on logits)."""

import numpy as np

from .. import _core
from ..tensor import _record
from ._args import (as_tensor, check_choice, check_float, check_int, host_numpy, on_device,
                    optional_tensor)

__all__ = ["nll_loss", "cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits"]


def _reduction(reduction, size_average, reduce, op):
    """torch's rule: the deprecated size_average/reduce, when given, override reduction."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else bool(size_average)
        reduce = True if reduce is None else bool(reduce)
        reduction = "mean" if (size_average and reduce) else ("sum" if reduce else "none")
    check_choice(reduction, ("none", "mean", "sum"), op, "reduction")
    return getattr(_core.Reduction, reduction)


def _core_or_none(t):
    return None if t is None else t._c




def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    op = "nll_loss"
    x = as_tensor(input, op, "input")
    t = as_tensor(target, op, "target")
    w = optional_tensor(weight, op, "weight")
    ii = check_int(ignore_index, op, "ignore_index")
    red = _reduction(reduction, size_average, reduce, op)
    xc, tc, wc = x._c, t._c, _core_or_none(w)
    loss, tw = _core.nll_loss_forward(xc, tc, wc, red, ii)

    def backward(g, needs):
        return (_core.nll_loss_backward(g, xc, tc, wc, red, ii, tw),)

    return _record(loss, (x,), backward, "NllLossBackward")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """log_softmax over the class dim (1, or 0 for a 1-D input) then PyTorch's loss formula.

    target: int64 class indices, or float class probabilities of the input's shape (those get a
    gradient too, as in torch)."""
    op = "cross_entropy"
    x = as_tensor(input, op, "input")
    t = as_tensor(target, op, "target")
    w = optional_tensor(weight, op, "weight")
    ii = check_int(ignore_index, op, "ignore_index")
    ls = check_float(label_smoothing, op, "label_smoothing")
    red = _reduction(reduction, size_average, reduce, op)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must be (C), (N, C) or (N, C, d1, ...), but got a 0-D "
                         "tensor")
    dim = 0 if x.ndim == 1 else 1
    logp = _core.log_softmax_forward(x._c, dim)
    tc, wc = t._c, _core_or_none(w)
    loss, tw = _core.cross_entropy_logp_forward(logp, tc, wc, red, ii, ls)

    soft = tc.dtype == "float32"

    def backward(g, needs):
        dx = None
        if needs[0]:
            dlogp = _core.cross_entropy_logp_backward(g, logp, tc, wc, red, ii, ls, tw)
            dx = _core.log_softmax_backward(dlogp, logp, dim)
        dt = None
        if soft and needs[1]:
            dt = _core.cross_entropy_logp_backward_target(g, logp, tc, wc, red, ls, tw)
        return dx, dt

    return _record(loss, (x, t if soft else None), backward, "CrossEntropyLossBackward")


def _pair(input, target, op):
    x = as_tensor(input, op, "input")
    t = as_tensor(target, op, "target")
    return x, t


def _broadcast(weight, shape, op, arg):
    """weight broadcast to the input's shape, as a contiguous float32 _core tensor."""
    if weight is None:
        return None
    w = as_tensor(weight, op, arg)
    if tuple(w.shape) == tuple(shape):
        return w._c
    try:
        arr = np.broadcast_to(host_numpy(w._c), shape)
    except ValueError:
        raise ValueError(f"{op}: {arg} of shape {tuple(w.shape)} cannot be broadcast to the "
                         f"input's shape {tuple(shape)}") from None
    # keeps 0-d shapes; on the weight's device
    return on_device(np.array(arr, dtype=np.float32, order="C"), w._c.device)


def _same_shape_weight(weight, x, op):
    """torch's weighted mse/l1: the weight must have the input's shape (no broadcasting)."""
    if weight is None:
        return None
    w = as_tensor(weight, op, "weight")
    if tuple(w.shape) != tuple(x.shape):
        raise ValueError(f"{op}: weight must have the input's shape {tuple(x.shape)}, but got "
                         f"{tuple(w.shape)}")
    return w._c


def _symmetric_loss(x, t, forward, backward_fn, name):
    """A loss of d = x - t: the target's gradient is the input's with the roles swapped."""
    loss = forward(x._c, t._c)

    def backward(g, needs):
        gx = backward_fn(g, x._c, t._c) if needs[0] else None
        gt = backward_fn(g, t._c, x._c) if needs[1] else None
        return gx, gt

    return _record(loss, (x, t), backward, name)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """weight (optional, the input's shape) multiplies each term; mean then divides by its sum.
    The weight gets no gradient."""
    op = "mse_loss"
    x, t = _pair(input, target, op)
    red = _reduction(reduction, size_average, reduce, op)
    wc = _same_shape_weight(weight, x, op)
    return _symmetric_loss(x, t, lambda a, b: _core.mse_loss_forward(a, b, red, wc),
                           lambda g, a, b: _core.mse_loss_backward(g, a, b, red, wc),
                           "MseLossBackward")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    op = "l1_loss"
    x, t = _pair(input, target, op)
    red = _reduction(reduction, size_average, reduce, op)
    wc = _same_shape_weight(weight, x, op)
    return _symmetric_loss(x, t, lambda a, b: _core.l1_loss_forward(a, b, red, wc),
                           lambda g, a, b: _core.l1_loss_backward(g, a, b, red, wc),
                           "L1LossBackward")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    op = "smooth_l1_loss"
    x, t = _pair(input, target, op)
    red = _reduction(reduction, size_average, reduce, op)
    b = check_float(beta, op, "beta")
    return _symmetric_loss(x, t, lambda p, q: _core.smooth_l1_loss_forward(p, q, red, b),
                           lambda g, p, q: _core.smooth_l1_loss_backward(g, p, q, red, b),
                           "SmoothL1LossBackward")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    op = "binary_cross_entropy"
    x, t = _pair(input, target, op)
    red = _reduction(reduction, size_average, reduce, op)
    wc = _broadcast(weight, x.shape, op, "weight")
    loss = _core.binary_cross_entropy_forward(x._c, t._c, wc, red)
    xc, tc = x._c, t._c

    def backward(g, needs):
        return (_core.binary_cross_entropy_backward(g, xc, tc, wc, red) if needs[0] else None,
                _core.binary_cross_entropy_backward_target(g, xc, tc, wc, red) if needs[1]
                else None)

    return _record(loss, (x, t), backward, "BinaryCrossEntropyBackward")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    op = "binary_cross_entropy_with_logits"
    x, t = _pair(input, target, op)
    red = _reduction(reduction, size_average, reduce, op)
    wc = _broadcast(weight, x.shape, op, "weight")
    pc = _broadcast(pos_weight, x.shape, op, "pos_weight")
    loss = _core.bce_with_logits_forward(x._c, t._c, wc, pc, red)
    xc, tc = x._c, t._c

    def backward(g, needs):
        return (_core.bce_with_logits_backward(g, xc, tc, wc, pc, red) if needs[0] else None,
                _core.bce_with_logits_backward_target(g, xc, tc, wc, pc, red) if needs[1]
                else None)

    return _record(loss, (x, t), backward, "BinaryCrossEntropyWithLogitsBackward")
