"""Convolution and transposed convolution (torch.nn.functional names and arguments)."""

from __future__ import annotations

import numpy as np

from .. import _core
from ..tensor import Tensor, _record
from ._args import OptionsCache, as_tensor, check_int, optional_tensor, pair

__all__ = ["conv2d", "conv_transpose2d", "explain_conv"]


def _padding(padding, op: str) -> _core.Padding2d:
    """int, (ph, pw), 'valid', 'same' or ((top, bottom), (left, right)) -> Padding2d."""
    if isinstance(padding, str):
        if padding == "valid":
            return _core.Padding2d.valid()
        if padding == "same":
            return _core.Padding2d.same()
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid', 'same' or "
                         f"((top, bottom), (left, right)), but got '{padding}'")
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        (t, b), (l, r) = (pair(p, op, "padding") for p in padding)
        return _core.Padding2d.asymmetric(t, b, l, r)
    ph, pw = pair(padding, op, "padding")
    return _core.Padding2d.symmetric(ph, pw)


def _build_options(stride, padding, dilation, groups, op: str) -> _core.Conv2dOptions:
    sh, sw = pair(stride, op, "stride")
    dh, dw = pair(dilation, op, "dilation")
    g = check_int(groups, op, "groups")
    return _core.Conv2dOptions(sh, sw, _padding(padding, op), dh, dw, g)


_options = OptionsCache(_build_options)


def _batched(x: Tensor, op: str):
    """(C, H, W) is one unbatched image, as in torch: -> (1, C, H, W) and whether it was 3-D."""
    if x.ndim == 3:
        return x._c.reshape([1, *x.shape]), True
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 3-D (C, H, W) or 4-D (N, C, H, W), but got "
                         f"{x.ndim}-D with shape {tuple(x.shape)}")
    return x._c, False


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    op = "conv2d"
    x = as_tensor(input, op, "input")
    w = as_tensor(weight, op, "weight")
    b = optional_tensor(bias, op, "bias")
    opt = _options(stride, padding, dilation, groups, op)
    xc, unbatched = _batched(x, op)
    wc = w._c
    y = _core.conv2d_forward(xc, wc, None if b is None else b._c, opt)

    def backward(g, needs):
        # All wanted gradients in one call (the bias summed in the weight gradient's pass over
        # dy where that pass is direct).
        dx, dw, db = _core.conv2d_backward(g.reshape(list(y.shape)) if unbatched else g, xc, wc,
                                           opt, needs)
        if dx is not None and unbatched:
            dx = dx.reshape(list(xc.shape)[1:])
        return dx, dw, db

    out = y.reshape(list(y.shape)[1:]) if unbatched else y
    return _record(out, (x, w, b), backward, "ConvolutionBackward")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    op = "conv_transpose2d"
    x = as_tensor(input, op, "input")
    w = as_tensor(weight, op, "weight")
    b = optional_tensor(bias, op, "bias")
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair of ints, but got '{padding}'")
    opt = _options(stride, padding, dilation, groups, op)
    oph, opw = pair(output_padding, op, "output_padding")
    xc, unbatched = _batched(x, op)
    wc = w._c
    y = _core.conv_transpose2d_forward(xc, wc, None if b is None else b._c, opt, oph, opw)
    x_shape, w_shape = list(xc.shape), list(wc.shape)

    def backward(g, needs):
        g4 = g.reshape(list(y.shape))
        dx = dw = db = None
        if needs[0]:
            dx = _core.conv_transpose2d_backward_input(g4, wc, x_shape, opt, oph, opw)
            if unbatched:
                dx = dx.reshape(x_shape[1:])
        if needs[1]:
            dw = _core.conv_transpose2d_backward_weight(g4, xc, w_shape, opt, oph, opw)
        if needs[2]:
            db = _core.conv2d_backward_bias(g4)
        return dx, dw, db

    out = y.reshape(list(y.shape)[1:]) if unbatched else y
    return _record(out, (x, w, b), backward, "ConvolutionBackward")


def _shape_of(value, op: str, arg: str, dims) -> list:
    """A Tensor's or array's shape, or a shape given as a sequence of ints."""
    if isinstance(value, (Tensor, np.ndarray)):
        shape = list(value.shape)
    elif isinstance(value, (tuple, list)):
        shape = [check_int(v, op, arg) for v in value]
    else:
        raise TypeError(f"{op}: {arg} must be a Tensor, a numpy array or a shape (a sequence of "
                        f"ints), but got {type(value).__name__}")
    if len(shape) not in dims:
        raise ValueError(f"{op}: {arg} must be {' or '.join(f'{d}-D' for d in dims)}, but got "
                         f"{len(shape)}-D with shape {tuple(shape)}")
    return shape


def explain_conv(input, weight=None, bias=None, stride=1, padding=0, dilation=1, groups=1) -> str:
    """Which kernel path conv2d takes for these arguments, and why: '<algorithm>: <reasons>'.

    The arguments are conv2d's; input and weight may also be shapes ((N, C, H, W) or (C, H, W),
    and (K, C/groups, R, S)), and an nn.Conv2d may stand in for weight and the options:
    ``explain_conv(input, conv_layer)``. The choice follows fixed rules from the shapes, the
    current thread count (``cnncore.set_num_threads``), the SIMD path (``CNNCORE_ISA``) and
    ``CNNCORE_CONV_ALGO``, all of which the answer names; the backward passes' paths are part of
    the reasons. bias does not change the path."""
    op = "explain_conv"
    from ..nn.conv import Conv2d  # nn imports this module
    if isinstance(weight, Conv2d):
        layer = weight
        weight, stride, padding = layer.weight, layer.stride, layer.padding
        dilation, groups = layer.dilation, layer.groups
    x_shape = _shape_of(input, op, "input", (3, 4))
    if len(x_shape) == 3:  # one unbatched image, as conv2d takes it
        x_shape = [1, *x_shape]
    if weight is None:
        raise TypeError(f"{op}: weight is required (a Tensor, a numpy array, a shape or an "
                        f"nn.Conv2d)")
    w_shape = _shape_of(weight, op, "weight", (4,))
    if bias is not None and not isinstance(bias, (Tensor, np.ndarray, tuple, list)):
        raise TypeError(f"{op}: bias must be None, a Tensor, a numpy array or a shape, but got "
                        f"{type(bias).__name__}")
    opt = _options(stride, padding, dilation, groups, op)
    params = _core.conv2d_params(x_shape, w_shape, opt, op)
    on_cuda = any(isinstance(v, Tensor) and v.is_cuda for v in (input, weight))
    if on_cuda:
        return ("implicit-gemm (cuda): per group one tiled GEMM with the im2col matrix never "
                "formed: forward M = K/groups, N = N*OH*OW, depth = C/groups*R*S; "
                "backward-input and backward-weight the same way")
    threads = _core.get_num_threads()
    setting = f"{threads} thread{'s' if threads != 1 else ''}"
    if _core.deterministic_algorithms():
        setting += ", deterministic"
    why = _core.conv2d_algorithm(params)  # ends "(isa <name>)"
    return f"{why[:-1]}, {setting})" if why.endswith(")") else f"{why} ({setting})"
