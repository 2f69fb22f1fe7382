"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d (torch's signatures).

Inputs are (N, C, H, W) or unbatched (C, H, W). Shape rules and value checks live in C++
(``pool2d_params``); this module turns torch-style arguments into a ``_core.Pool2dOptions``.
"""

from __future__ import annotations

import numbers

from .. import _core
from ..tensor import Tensor, _record
from ._args import OptionsCache, as_tensor, check_int, pair

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]


def _flag(value, op, arg) -> bool:
    """A bool (or 0/1); anything else is a TypeError rather than a silent truthiness test."""
    if isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{op}: {arg} must be a bool, but got {value!r} ({type(value).__name__})")


def _build_options(op, kernel_size, stride, padding, dilation=1, ceil_mode=False,
                   count_include_pad=True, divisor_override=None):
    o = _core.Pool2dOptions()
    o.kernel_h, o.kernel_w = pair(kernel_size, op, "kernel_size")
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        o.stride_h, o.stride_w = o.kernel_h, o.kernel_w
    else:
        o.stride_h, o.stride_w = pair(stride, op, "stride")
        # 0 means "kernel size" to the C++ options; from a caller it is an error.
        if o.stride_h <= 0 or o.stride_w <= 0:
            raise ValueError(f"{op}: stride must be greater than zero, but got {stride!r}")
    o.pad_h, o.pad_w = pair(padding, op, "padding")
    o.dilation_h, o.dilation_w = pair(dilation, op, "dilation")
    o.ceil_mode = _flag(ceil_mode, op, "ceil_mode")
    o.count_include_pad = _flag(count_include_pad, op, "count_include_pad")
    if divisor_override is not None:
        d = check_int(divisor_override, op, "divisor_override")
        if d == 0:
            raise ValueError(f"{op}: divisor_override must be a non-zero int, but got 0")
        o.divisor_override = d
    return o


_options = OptionsCache(_build_options)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    x = as_tensor(input, "max_pool2d", "input")
    opt = _options("max_pool2d", kernel_size, stride, padding, dilation, ceil_mode)
    y, idx = _core.max_pool2d_forward(x._c, opt)
    shape = list(x.shape)
    out = _record(y, (x,), lambda g, needs: (_core.max_pool2d_backward(g, idx, shape),),
                  "MaxPool2DWithIndicesBackward")
    if _flag(return_indices, "max_pool2d", "return_indices"):
        return out, Tensor._wrap(idx)
    return out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    x = as_tensor(input, "avg_pool2d", "input")
    opt = _options("avg_pool2d", kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                   divisor_override)
    y = _core.avg_pool2d_forward(x._c, opt)
    shape = list(x.shape)
    return _record(y, (x,), lambda g, needs: (_core.avg_pool2d_backward(g, shape, opt),),
                   "AvgPool2DBackward")


def _output_size(output_size, x, op):
    """int, or a pair whose None entries keep that input dim."""
    shape = x.shape
    keep = (shape[-2], shape[-1]) if len(shape) >= 2 else (1, 1)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{op}: output_size must be an int or a pair, but got {output_size!r}")
        return tuple(keep[i] if v is None else check_int(v, op, "output_size")
                     for i, v in enumerate(output_size))
    if output_size is None:
        return keep
    v = check_int(output_size, op, "output_size")
    return v, v


def adaptive_avg_pool2d(input, output_size):
    x = as_tensor(input, "adaptive_avg_pool2d", "input")
    oh, ow = _output_size(output_size, x, "adaptive_avg_pool2d")
    y = _core.adaptive_avg_pool2d_forward(x._c, oh, ow)
    shape = list(x.shape)
    return _record(y, (x,), lambda g, needs: (_core.adaptive_avg_pool2d_backward(g, shape),),
                   "AdaptiveAvgPool2DBackward")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    x = as_tensor(input, "adaptive_max_pool2d", "input")
    oh, ow = _output_size(output_size, x, "adaptive_max_pool2d")
    y, idx = _core.adaptive_max_pool2d_forward(x._c, oh, ow)
    shape = list(x.shape)
    out = _record(y, (x,),
                  lambda g, needs: (_core.adaptive_max_pool2d_backward(g, idx, shape),),
                  "AdaptiveMaxPool2DBackward")
    return (out, Tensor._wrap(idx)) if _flag(return_indices, "adaptive_max_pool2d",
                                             "return_indices") else out
