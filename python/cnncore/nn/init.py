"""Weight initialisation, as torch.nn.init (in place, under no_grad, from cnncore's generator)."""

from __future__ import annotations

import contextlib
import math
import threading

from .. import _core
from ..tensor import Tensor, no_grad


def calculate_gain(nonlinearity: str, param=None) -> float:
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity '{nonlinearity}'")


def _calculate_fan_in_and_fan_out(tensor: Tensor):
    if tensor.ndim < 2:
        raise ValueError("init: fan in and fan out can not be computed for a tensor with fewer "
                         f"than 2 dimensions (shape {tensor.shape})")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', but got '{mode}'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


_skip = threading.local()


@contextlib.contextmanager
def skip_init():
    """Inside this block the init functions leave tensors as they are (uninitialised memory), so
    building a large model only to count its parameters or to load weights into it is fast."""
    prev = getattr(_skip, "on", False)
    _skip.on = True
    try:
        yield
    finally:
        _skip.on = prev


def _fill(tensor: Tensor, fn) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a Tensor, but got {type(tensor).__name__}")
    if getattr(_skip, "on", False):
        return tensor
    with no_grad():
        if tensor._c.is_contiguous():
            fn(tensor._c)
        else:
            tmp = _core.empty(list(tensor.shape))
            fn(tmp)
            tensor._c.copy_(tmp)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, lambda c: _core.uniform_(c, float(a), float(b)))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, lambda c: _core.normal_(c, float(mean), float(std)))


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, lambda c: c.fill_(float(val)))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """Normal(mean, std) restricted to [a, b] (absolute bounds, as torch): draws outside are
    redrawn, so the result is exactly the truncated distribution."""
    if not a < b:
        raise ValueError(f"trunc_normal_: a must be less than b, but got a={a}, b={b}")
    if std <= 0 or b < mean - 6 * std or a > mean + 6 * std:
        # Redrawing would (nearly) never land inside [a, b]: refuse rather than hang.
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] must overlap mean +- 6 std "
                         f"(mean={mean}, std={std})")

    def fill(c):
        _core.normal_(c, float(mean), float(std))
        values = c.numpy().reshape(-1)
        bad = (values < a) | (values > b)
        while bad.any():
            redraw = _core.empty([int(bad.sum())])
            _core.normal_(redraw, float(mean), float(std))
            values[bad] = redraw.numpy()
            bad = (values < a) | (values > b)

    return _fill(tensor, fill)
