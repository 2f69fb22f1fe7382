"""Ops composed from the others (autograd comes for free), plus the embedding lookup: pairwise
distances, cosine similarity, the triplet and cosine-embedding losses of Siamese networks."""

from __future__ import annotations

from builtins import max as builtins_max

import numpy as np

from .. import _core
from ..tensor import Tensor, _record
from . import tensor_ops as T
from ._args import as_tensor, check_choice, check_float, check_int

__all__ = ["embedding", "pairwise_distance", "cosine_similarity", "triplet_margin_loss",
           "cosine_embedding_loss", "normalize"]


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of weight (num_embeddings, dim) picked by int64 indices of any shape -> (*, dim).
    The gradient scatters back into weight; the padding_idx row gets none."""
    op = "embedding"
    idx = as_tensor(input, op, "input")
    w = as_tensor(weight, op, "weight")
    if idx.dtype != np.int64:
        raise TypeError(f"{op}: input must hold int64 indices, but got {idx.dtype}")
    if w.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim), but got "
                         f"shape {w.shape}")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise ValueError(f"{op}: max_norm, scale_grad_by_freq and sparse are not supported")
    n = w.shape[0]
    if padding_idx is not None:
        padding_idx = check_int(padding_idx, op, "padding_idx")
        if not -n <= padding_idx < n:
            raise ValueError(f"{op}: padding_idx must be within num_embeddings ({n}), but got "
                             f"{padding_idx}")
        padding_idx %= n
    ids = idx._c.numpy()
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise IndexError(f"{op}: index {bad} is out of range for {n} embeddings")
    table = w._c.numpy()
    out = _core.from_numpy(np.require(np.take(table, ids, axis=0), np.float32, "C"))

    def backward(g, needs):
        grad = np.zeros(table.shape, np.float32)
        np.add.at(grad, ids.reshape(-1), g.numpy().reshape(-1, table.shape[1]))
        if padding_idx is not None:
            grad[padding_idx] = 0.0
        return (None, _core.from_numpy(grad))

    return _record(out, (idx, w), backward, "EmbeddingBackward")


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim, as torch."""
    p = check_float(p, "pairwise_distance", "p")
    if p <= 0:
        raise ValueError(f"pairwise_distance: p must be positive, but got {p}")
    d = T.abs(T.add(T.sub(x1, x2), eps))
    if p == 2.0:
        return T.sqrt(T.sum(T.mul(d, d), -1, keepdim))
    if p == 1.0:
        return T.sum(d, -1, keepdim)
    return T.pow(T.sum(T.pow(d, p), -1, keepdim), 1.0 / p)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p, eps) along dim, as torch.nn.functional.normalize. The norm is
    clamped before the root (max(sum |x|^p, eps^p)^(1/p) is the same number), so a zero vector
    gives a zero result and a zero gradient instead of the 0 * inf of d sqrt(s)/ds at 0."""
    op = "normalize"
    x = as_tensor(input, op, "input")
    p = check_float(p, op, "p")
    eps = check_float(eps, op, "eps")
    dim = check_int(dim, op, "dim")
    if out is not None:
        raise ValueError(f"{op}: out= is not supported (got a {type(out).__name__})")
    if not p > 0:
        raise ValueError(f"{op}: p must be positive (or inf), but got {p}")
    if not eps > 0:
        raise ValueError(f"{op}: eps must be positive, but got {eps}")
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have at least one dim, but got a 0-d tensor")
    if p == float("inf"):
        norm = T.clamp(T.max(T.abs(x), dim, True).values, min=eps)
    elif p == 2.0:
        norm = T.sqrt(T.clamp(T.sum(T.mul(x, x), dim, True), min=eps * eps))
    elif p == 1.0:
        norm = T.clamp(T.sum(T.abs(x), dim, True), min=eps)
    else:
        # eps^p underflows float32 for large p; the smallest normal float keeps pow finite.
        floor = builtins_max(eps ** p, float(np.finfo(np.float32).tiny))
        norm = T.pow(T.clamp(T.sum(T.pow(T.abs(x), p), dim, True), min=floor), 1.0 / p)
    return T.div(x, norm)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """x1 . x2 / max(||x1|| ||x2||, eps) along dim."""
    dot = T.sum(T.mul(x1, x2), dim)
    n1 = T.sum(T.mul(x1, x1), dim)
    n2 = T.sum(T.mul(x2, x2), dim)
    return T.div(dot, T.clamp(T.sqrt(T.mul(n1, n2)), min=eps))


def _reduce(loss, reduction, op):
    check_choice(reduction, ("none", "mean", "sum"), op, "reduction")
    if reduction == "mean":
        return T.mean(loss)
    if reduction == "sum":
        return T.sum(loss)
    return loss


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) with d the p-norm pairwise distance; swap uses
    min(d(a, n), d(p, n)) as the negative distance (Balntas et al.)."""
    op = "triplet_margin_loss"
    a, po, ne = (as_tensor(v, op, n) for v, n in ((anchor, "anchor"), (positive, "positive"),
                                                    (negative, "negative")))
    if not (a.shape == po.shape == ne.shape):
        raise ValueError(f"{op}: anchor, positive and negative must have the same shape, but "
                         f"got {a.shape}, {po.shape} and {ne.shape}")
    margin = check_float(margin, op, "margin")
    d_ap = pairwise_distance(a, po, p, eps)
    d_an = pairwise_distance(a, ne, p, eps)
    if swap:
        d_an = T.minimum(d_an, pairwise_distance(po, ne, p, eps))
    loss = T.clamp(T.add(T.sub(d_ap, d_an), margin), min=0.0)
    if size_average is not None or reduce is not None:
        reduction = "mean" if (size_average is not False and reduce is not False) else (
            "sum" if reduce is not False else "none")
    return _reduce(loss, reduction, op)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1."""
    op = "cosine_embedding_loss"
    x1, x2 = as_tensor(input1, op, "input1"), as_tensor(input2, op, "input2")
    t = as_tensor(target, op, "target")
    if x1.shape != x2.shape or x1.ndim not in (1, 2):
        raise ValueError(f"{op}: input1 and input2 must be 1-D or 2-D of the same shape, but got "
                         f"{x1.shape} and {x2.shape}")
    tv = t._c.numpy() if not isinstance(t, np.ndarray) else t
    if not np.isin(tv, (1, -1)).all():
        raise ValueError(f"{op}: target values must be 1 or -1")
    margin = check_float(margin, op, "margin")
    dim = x1.ndim - 1
    eps = 1e-12  # torch's EPSILON: keeps zero vectors finite
    dot = T.sum(T.mul(x1, x2), dim)
    denom = T.sqrt(T.mul(T.add(T.sum(T.mul(x1, x1), dim), eps),
                         T.add(T.sum(T.mul(x2, x2), dim), eps)))
    cos = T.div(dot, denom)
    pos_mask = Tensor._wrap(_core.from_numpy(np.require(tv == 1, np.float32, "C")))
    neg_mask = Tensor._wrap(_core.from_numpy(np.require(tv == -1, np.float32, "C")))
    loss = T.add(T.mul(T.sub(1.0, cos), pos_mask),
                 T.mul(T.clamp(T.sub(cos, margin), min=0.0), neg_mask))
    if size_average is not None or reduce is not None:
        reduction = "mean" if (size_average is not False and reduce is not False) else (
            "sum" if reduce is not False else "none")
    return _reduce(loss, reduction, op)
