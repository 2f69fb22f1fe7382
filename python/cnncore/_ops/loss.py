"""Losses: nll_loss, cross_entropy (log_softmax + nll + label smoothing), mse, l1, smooth l1,
binary cross entropy (on probabilities and on logits)."""

import numpy as np

from .. import _core
from ..tensor import _record
from ._args import as_tensor, check_choice, check_float, check_int, optional_tensor

__all__ = ["nll_loss", "cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "triplet_margin_loss",
           "cosine_embedding_loss"]


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
        arr = np.broadcast_to(w.detach().numpy(), shape)
    except ValueError:
        raise ValueError(f"{op}: {arg} of shape {tuple(w.shape)} cannot be broadcast to the "
                         f"input's shape {tuple(shape)}") from None
    return _core.from_numpy(np.array(arr, dtype=np.float32, order="C"))


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


# ---- embedding losses (Siamese networks) ---------------------------------------------------------
# These work on (N, D) embeddings, small next to the convolutions that produce them, so they are
# vectorised numpy (float64) rather than C++ kernels for now; forward and backward are still one
# recorded op each.
def _embeddings(tensors, names, op):
    ts = [as_tensor(t, op, n) for t, n in zip(tensors, names)]
    for t, n in zip(ts, names):
        if t.dtype != np.float32:
            raise TypeError(f"{op}: {n} must be float32, but got {t.dtype}")
        if t.ndim not in (1, 2):
            raise ValueError(f"{op}: {n} must be (D) or (N, D), but got shape {tuple(t.shape)}")
    for t, n in zip(ts[1:], names[1:]):
        if tuple(t.shape) != tuple(ts[0].shape):
            raise ValueError(f"{op}: {n} shape {tuple(t.shape)} must match {names[0]} shape "
                             f"{tuple(ts[0].shape)}")
    return ts


def _reduce_np(per_sample, red):
    """(loss as float32 _core tensor, d loss / d per_sample as float64 array of its shape)."""
    n = per_sample.size
    if red == _core.Reduction.none:
        out, scale = per_sample, np.ones_like(per_sample)
    elif red == _core.Reduction.sum:
        out, scale = np.asarray(per_sample.sum()), np.ones_like(per_sample)
    else:
        out = np.asarray(per_sample.sum() / n if n else np.nan)
        scale = np.full_like(per_sample, 1.0 / n if n else np.nan)
    # np.array, not ascontiguousarray: the latter turns a 0-d loss into shape (1,).
    return _core.from_numpy(np.array(out, dtype=np.float32, order="C")), scale


def _incoming(g, scale, red):
    gg = g.numpy().astype(np.float64)
    return scale * (gg if red == _core.Reduction.none else gg.reshape(()))


def _to_core(a):
    return _core.from_numpy(np.array(a, dtype=np.float32, order="C"))


def _pairwise_distance(a, b, p, eps):
    """torch.pairwise_distance: ||a - b + eps||_p over the last dim, and d/da of it."""
    diff = a - b + eps
    ad = np.abs(diff)
    if np.isinf(p):
        d = ad.max(axis=-1)
        grad = np.where(ad == d[..., None], np.sign(diff), 0.0)
        return d, grad
    d = (ad ** p).sum(axis=-1) ** (1.0 / p)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.sign(diff) * ad ** (p - 1) / (d[..., None] ** (p - 1))
    return d, np.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    op = "triplet_margin_loss"
    a, pos, neg = _embeddings((anchor, positive, negative), ("anchor", "positive", "negative"), op)
    m = check_float(margin, op, "margin")
    pn = check_float(p, op, "p")
    if pn <= 0:
        raise ValueError(f"{op}: p must be > 0, but got {p}")
    e = check_float(eps, op, "eps")
    red = _reduction(reduction, size_average, reduce, op)
    A, P, N = (t._c.numpy().astype(np.float64) for t in (a, pos, neg))
    d_ap, g_ap = _pairwise_distance(A, P, pn, e)
    d_an, g_an = _pairwise_distance(A, N, pn, e)
    use_pn = np.zeros_like(d_an, dtype=bool)
    if swap:
        d_pn, g_pn = _pairwise_distance(P, N, pn, e)
        use_pn = d_pn < d_an
        d_an = np.where(use_pn, d_pn, d_an)
    raw = m + d_ap - d_an
    loss, scale = _reduce_np(np.maximum(raw, 0.0), red)

    def backward(g, needs):
        w = (_incoming(g, scale, red) * (raw > 0))[..., None]
        wa, wp = w * ~use_pn[..., None], w * use_pn[..., None]
        da = w * g_ap - wa * g_an
        dp = -w * g_ap - (wp * g_pn if swap else 0.0)
        dn = wa * g_an + (wp * g_pn if swap else 0.0)
        return tuple(_to_core(x) if need else None for x, need in zip((da, dp, dn), needs))

    return _record(loss, (a, pos, neg), backward, "TripletMarginLossBackward")


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    op = "cosine_embedding_loss"
    x1, x2 = _embeddings((input1, input2), ("input1", "input2"), op)
    t = as_tensor(target, op, "target")
    expected = tuple(x1.shape[:-1])
    if tuple(t.shape) != expected:
        raise ValueError(f"{op}: target must have shape {expected}, but got {tuple(t.shape)}")
    y = t._c.numpy()
    if not np.all((y == 1) | (y == -1)):
        bad = y[(y != 1) & (y != -1)].reshape(-1)[0]
        raise ValueError(f"{op}: target values must be 1 or -1, but got {bad}")
    m = check_float(margin, op, "margin")
    red = _reduction(reduction, size_average, reduce, op)
    A, B = x1._c.numpy().astype(np.float64), x2._c.numpy().astype(np.float64)
    prod = (A * B).sum(-1)
    m1, m2 = (A * A).sum(-1) + 1e-12, (B * B).sum(-1) + 1e-12  # torch's EPSILON
    denom = np.sqrt(m1 * m2)
    cos = prod / denom
    per = np.where(y == 1, 1.0 - cos, np.where(y == -1, np.maximum(cos - m, 0.0), 0.0))
    loss, scale = _reduce_np(per, red)

    def backward(g, needs):
        dcos = _incoming(g, scale, red) * np.where(y == 1, -1.0, (y == -1) & (cos - m > 0))
        dcos = dcos[..., None]
        d1 = dcos * (B / denom[..., None] - cos[..., None] * A / m1[..., None])
        d2 = dcos * (A / denom[..., None] - cos[..., None] * B / m2[..., None])
        return (_to_core(d1) if needs[0] else None, _to_core(d2) if needs[1] else None, None)

    return _record(loss, (x1, x2, t), backward, "CosineEmbeddingLossBackward")
