"""Resampling and padding: interpolate (nearest, bilinear, linear) and pad (torch's signatures)."""

from __future__ import annotations

import math

from .. import _core
from ..tensor import _record
from ._args import as_tensor, check_choice, check_float, check_int
from .pool import _flag

__all__ = ["interpolate", "pad"]

_MODES = ("nearest", "linear", "bilinear")


def _spatial_list(value, n, op, arg, check):
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{op}: {arg} must have {n} entries for {n}-D spatial input, but got "
                             f"{value!r}")
        return [check(v, op, arg) for v in value]
    return [check(value, op, arg)] * n


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    op = "interpolate"
    x = as_tensor(input, op, "input")
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported (only for downsampling "
                         "with bilinear/bicubic in torch); pass antialias=False")
    check_choice(mode, _MODES, op, "mode")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError("interpolate: align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear, but mode is 'nearest'")
        align = False
    else:
        align = _flag(align_corners, op, "align_corners") if align_corners is not None else False
    if x.ndim not in (3, 4):
        raise ValueError(f"interpolate: input must be 3-D (N, C, L) or 4-D (N, C, H, W), but got "
                         f"{x.ndim}-D with shape {tuple(x.shape)}")
    if mode == "bilinear" and x.ndim != 4:
        raise ValueError(f"interpolate: mode 'bilinear' needs 4-D input, but got shape "
                         f"{tuple(x.shape)}")
    if mode == "linear" and x.ndim != 3:
        raise ValueError(f"interpolate: mode 'linear' needs 3-D input, but got shape "
                         f"{tuple(x.shape)}")
    nsp = x.ndim - 2
    in_sizes = list(x.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    scales = [0.0] * nsp
    if size is not None:
        out_sizes = _spatial_list(size, nsp, op, "size", check_int)
    else:
        factors = _spatial_list(scale_factor, nsp, op, "scale_factor", check_float)
        for f in factors:
            if not math.isfinite(f) or f <= 0:
                raise ValueError(f"interpolate: scale_factor must be positive and finite, but got "
                                 f"{scale_factor!r}")
        out_sizes = [math.floor(float(n) * f) for n, f in zip(in_sizes, factors)]
        if recompute_scale_factor is None or not _flag(recompute_scale_factor, op,
                                                       "recompute_scale_factor"):
            scales = factors
    for s in out_sizes:
        if s < 1 or s >= 2**31:
            raise ValueError(f"interpolate: output size must be at least 1 and below 2^31, but "
                             f"got {out_sizes} for input shape {tuple(x.shape)}")
    core_mode = _core.InterpMode.nearest if mode == "nearest" else _core.InterpMode.bilinear
    xc = x._c
    if nsp == 1:  # (N, C, L) runs as (N, C, 1, L); a size-1 height maps onto itself
        n, c, length = x.shape
        xc = xc.reshape([n, c, 1, length])
        oh, ow, sh, sw = 1, out_sizes[0], 0.0, scales[0]
        shape4 = [n, c, 1, length]
    else:
        oh, ow = out_sizes
        sh, sw = scales
        shape4 = list(x.shape)
    y = _core.interpolate_forward(xc, oh, ow, core_mode, align, sh, sw)
    if nsp == 1:
        y = y.reshape([shape4[0], shape4[1], ow])

    def backward(g, needs):
        if nsp == 1:
            g = g.reshape([shape4[0], shape4[1], 1, ow])
        dx = _core.interpolate_backward(g, shape4, core_mode, align, sh, sw)
        if nsp == 1:
            dx = dx.reshape(list(x.shape))
        return (dx,)

    name = "UpsampleNearestBackward" if mode == "nearest" else "UpsampleLinearBackward"
    return _record(y, (x,), backward, name)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    op = "pad"
    x = as_tensor(input, op, "input")
    check_choice(mode, _PAD_MODES, op, "mode")
    if mode == "circular":
        raise ValueError("pad: mode 'circular' is not supported yet; use 'constant', 'reflect' or "
                         "'replicate'")
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad: pad must be a tuple of ints, but got {type(pad).__name__}")
    pads = [check_int(p, op, "pad") for p in pad]
    if len(pads) not in (2, 4):
        raise ValueError(f"pad: pad must have 2 (left, right) or 4 (left, right, top, bottom) "
                         f"entries, but got {len(pads)}: {tuple(pad)!r}")
    if mode != "constant" and value is not None and value != 0:
        raise ValueError(f"pad: mode '{mode}' doesn't take a value argument, but got {value!r}")
    fill = 0.0 if value is None else check_float(value, op, "value")
    core_mode = getattr(_core.PadMode, mode)
    y = _core.pad_forward(x._c, pads, core_mode, fill)
    shape = list(x.shape)
    return _record(y, (x,), lambda g, needs: (_core.pad_backward(g, shape, pads, core_mode),),
                   "PadBackward")
