"""Matrix products: linear and matmul (torch names and arguments) over the packed C++ SGEMM."""

from __future__ import annotations

import numpy as np

from .. import _core
from ..tensor import Tensor, _record
from ._args import as_tensor, optional_tensor

__all__ = ["linear", "matmul"]


def _sum_to(g, shape):
    """Sums a gradient over the dims that broadcasting added or expanded, down to ``shape``.

    Uses the tensor_ops family's ``_core.sum_to_shape`` when the build has it; the numpy
    fallback is a small fraction of the matmul that produced ``g``.
    """
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    if hasattr(_core, "sum_to_shape"):
        return _core.sum_to_shape(g, list(shape))
    arr = g.numpy()
    lead = arr.ndim - len(shape)
    if lead:
        arr = arr.sum(axis=tuple(range(lead)), dtype=np.float64)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and arr.shape[i] != 1)
    if axes:
        arr = arr.sum(axis=axes, keepdims=True, dtype=np.float64)
    return _core.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _t(core):
    """The last two dims swapped, as a view: the GEMM reads it transposed, without a copy."""
    dims = list(range(core.ndim))
    dims[-2], dims[-1] = dims[-1], dims[-2]
    return core.permute(dims)


def linear(input, weight, bias=None):
    """y = input @ weight^T + bias: input (*, in_features), weight (out_features, in_features),
    bias (out_features) or None -> (*, out_features)."""
    x = as_tensor(input, "linear", "input")
    w = as_tensor(weight, "linear", "weight")
    b = optional_tensor(bias, "linear", "bias")
    y = _core.linear_forward(x._c, w._c, None if b is None else b._c)
    xc, wc = x._c, w._c

    def backward(g, needs):
        gx = _core.linear_backward_input(g, wc) if needs[0] else None
        gw = _core.linear_backward_weight(g, xc) if needs[1] else None
        gb = _core.linear_backward_bias(g) if needs[2] else None
        return gx, gw, gb

    return _record(y, (x, w, b), backward, "LinearBackward")


def _matmul_backward(ac, bc, g, needs):
    """Gradients of torch.matmul: a 1-D operand is a (1, K) row / (K, 1) column; each gradient is
    reduced over the batch dims its operand was broadcast along."""
    da, db = ac.ndim, bc.ndim
    k = ac.shape[-1]
    a1 = ac if da > 1 else ac.reshape([1, k])
    b1 = bc if db > 1 else bc.reshape([k, 1])
    m, n = a1.shape[-2], b1.shape[-1]
    batch = list(g.shape[: g.ndim - (da > 1) - (db > 1)])
    g1 = g.reshape(batch + [m, n])
    nb = int(np.prod(batch)) if batch else 1
    ga = gb = None
    if needs[0]:
        if batch and b1.ndim == 2 + len(batch) and a1.ndim == 2:
            # a shared by every batch: sum_b g_b @ b_b^T is one GEMM over (M, B*N) @ (B*N, K).
            gm = g1.permute([len(batch)] + list(range(len(batch))) + [len(batch) + 1])
            ga1 = _core.matmul(gm.reshape([m, nb * n]), _t(b1).reshape([nb * n, k]))
        else:
            ga1 = _sum_to(_core.matmul(g1, _t(b1)), a1.shape)
        ga = ga1.reshape(list(ac.shape))
    if needs[1]:
        if batch and a1.ndim == 2 + len(batch) and b1.ndim == 2:
            # b shared by every batch: sum_b a_b^T @ g_b is one GEMM over (K, B*M) @ (B*M, N).
            gb1 = _core.matmul(_t(a1.reshape([nb * m, k])), g1.reshape([nb * m, n]))
        else:
            gb1 = _sum_to(_core.matmul(_t(a1), g1), b1.shape)
        gb = gb1.reshape(list(bc.shape))
    return ga, gb


def matmul(input, other):
    """torch.matmul: (K)@(K) -> (), (M,K)@(K) -> (M), (K)@(K,N) -> (N), (M,K)@(K,N) -> (M,N), and
    batched (..., M, K) @ (..., K, N) with broadcast batch dims."""
    a = as_tensor(input, "matmul", "input")
    b = as_tensor(other, "matmul", "other")
    y = _core.matmul(a._c, b._c)
    ac, bc = a._c, b._c
    return _record(y, (a, b), lambda g, needs: _matmul_backward(ac, bc, g, needs), "MmBackward")


# The @ operator and Tensor.matmul, unless the tensor_ops family installed its own.
if not hasattr(Tensor, "__matmul__"):
    Tensor.__matmul__ = lambda self, other: matmul(self, other)
    Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
if not hasattr(Tensor, "matmul"):
    Tensor.matmul = lambda self, other: matmul(self, other)
