"""Convolution and transposed convolution (torch.nn.functional names and arguments)."""

from __future__ import annotations

from .. import _core
from ..tensor import Tensor, _record
from ._args import OptionsCache, as_tensor, check_int, optional_tensor, pair

__all__ = ["conv2d", "conv_transpose2d"]


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
    x_shape, w_shape = list(xc.shape), list(wc.shape)

    def backward(g, needs):
        g4 = g.reshape(list(y.shape))
        dx = dw = db = None
        if needs[0] and needs[1]:
            dx, dw = _core.conv2d_backward_input_weight(g4, xc, wc, opt)
        elif needs[0]:
            dx = _core.conv2d_backward_input(g4, wc, x_shape, opt)
        elif needs[1]:
            dw = _core.conv2d_backward_weight(g4, xc, w_shape, opt)
        if dx is not None and unbatched:
            dx = dx.reshape(x_shape[1:])
        if needs[2]:
            db = _core.conv2d_backward_bias(g4)
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
