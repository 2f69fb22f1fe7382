"""Conv2d and ConvTranspose2d."""

from __future__ import annotations

import math

from .. import functional as F
from ..tensor import empty
from . import init
from .module import Module, Parameter


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_pair(name: str, arg: str, v, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints >= minimum, as torch accepts for kernel_size/stride/dilation."""
    p = _pair(v)
    if len(p) != 2 or not all(_is_int(x) and x >= minimum for x in p):
        what = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name}: {arg} must be a {what} int or a pair of them, but got {v!r}")
    return p


def _padding(name: str, padding):
    """'valid', 'same', an int, a pair, or ((top, bottom), (left, right)); all >= 0."""
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"{name}: padding must be 'valid', 'same', an int, a pair or "
                             f"((top, bottom), (left, right)), but got '{padding}'")
        return padding
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and \
            all(isinstance(q, (tuple, list)) for q in padding):
        flat = [x for q in padding for x in q]
        if len(flat) != 4 or not all(_is_int(x) and x >= 0 for x in flat):
            raise ValueError(f"{name}: asymmetric padding must be ((top, bottom), (left, right)) "
                             f"with non-negative ints, but got {padding!r}")
        return tuple(tuple(q) for q in padding)
    return _int_pair(name, "padding", padding, 0)


class _ConvNd(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                 bias, padding_mode, transposed, output_padding=0):
        super().__init__()
        name = type(self).__name__
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels),
                       ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, but got {v!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups "
                             f"({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode must be 'zeros' (others are not supported "
                             f"yet), but got '{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _int_pair(name, "kernel_size", kernel_size, 1)
        self.stride = _int_pair(name, "stride", stride, 1)
        self.padding = _padding(name, padding)
        self.dilation = _int_pair(name, "dilation", dilation, 1)
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = transposed
        self.output_padding = _int_pair(name, "output_padding", output_padding, 0)
        if transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(*shape))
        self.bias = Parameter(empty(out_channels)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's default: kaiming_uniform_(a=sqrt(5)) and a fan-in bound for the bias.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else \
                f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.transposed and self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution. padding: int, pair, 'valid', 'same' (also for stride > 1, TensorFlow's
    rule) or ((top, bottom), (left, right))."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, transposed=False)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, transposed=True, output_padding=output_padding)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)

    def _output_padding_for(self, input, output_size):
        size = list(output_size)[-2:]
        pad = self.padding if not isinstance(self.padding, str) else (0, 0)
        result = []
        for d in range(2):
            n = input.shape[-2 + d]
            smallest = ((n - 1) * self.stride[d] - 2 * pad[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            extra = size[d] - smallest
            if not 0 <= extra < max(self.stride[d], self.dilation[d]):
                raise ValueError(f"ConvTranspose2d: requested output size {tuple(size)} is not "
                                 f"reachable from input size {tuple(input.shape[-2:])} (valid "
                                 f"sizes along dim {d}: {smallest} to "
                                 f"{smallest + max(self.stride[d], self.dilation[d]) - 1})")
            result.append(extra)
        return tuple(result)
