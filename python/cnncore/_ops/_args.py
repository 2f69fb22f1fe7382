"""Argument checks shared by the op wrappers: types here (TypeError), values in C++ (ValueError)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..tensor import Tensor, _to_array
from .. import _core


def as_tensor(value, op: str, arg: str) -> Tensor:
    """A Tensor as is; a numpy array converted (float64 -> float32, ints -> int64); else TypeError."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor._wrap(_core.from_numpy(
            np.require(_to_array(value, op=op, arg=arg), requirements="C")))
    raise TypeError(f"{op}: {arg} must be a Tensor, but got {type(value).__name__}")


def optional_tensor(value, op: str, arg: str) -> Tensor | None:
    return None if value is None else as_tensor(value, op, arg)


def check_int(value, op: str, arg: str) -> int:
    if type(value) is int:  # the common case, without the abstract-class checks below
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {arg} must be an int, but got {value!r} ({type(value).__name__})")
    return int(value)


def check_float(value, op: str, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {arg} must be a number, but got {value!r} ({type(value).__name__})")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{op}: {arg} must be a number, but got nan")
    return v


def pair(value, op: str, arg: str) -> tuple[int, int]:
    """An int or a sequence of two ints -> (int, int)."""
    if type(value) is int:
        return value, value
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{op}: {arg} must be an int or a pair of ints, but got {value!r}")
        return check_int(value[0], op, arg), check_int(value[1], op, arg)
    v = check_int(value, op, arg)
    return v, v


_UNCACHED = object()


def _key(value):
    """value as a dictionary key that keeps its types apart (True == 1 and (1, 1) == [1, 1] in
    Python, yet a stride of True must still fail its check), or _UNCACHED."""
    t = type(value)
    if t is int or t is str or value is None:
        return value
    if t is bool:
        return (bool, value)
    if t is tuple:
        for v in value:  # plain ints, strings and None (the usual arguments): keys as they are
            tv = type(v)
            if not (tv is int or tv is str or v is None):
                break
        else:
            return (tuple, value)
        parts = tuple([_key(v) for v in value])
        for p in parts:
            if p is _UNCACHED:
                return _UNCACHED
        return (tuple, parts)
    return _UNCACHED


class OptionsCache:
    """Built option objects by their argument values, so that a layer's every call reuses the
    one its first call checked and built (ints, strings, bools, None and tuples of them; any
    other value builds afresh). The objects are never modified after they are built."""

    def __init__(self, build, limit: int = 1024):
        self._build, self._limit, self._built = build, limit, {}

    def __call__(self, *args):
        key = _key(args)
        if key is _UNCACHED:
            return self._build(*args)
        o = self._built.get(key)
        if o is None:
            o = self._build(*args)
            if len(self._built) >= self._limit:
                self._built.clear()
            self._built[key] = o
        return o


def check_choice(value, choices, op: str, arg: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{op}: {arg} must be a string, one of {list(choices)}, but got "
                        f"{type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{op}: {arg} must be one of {list(choices)}, but got '{value}'")
    return value


def host_numpy(c) -> np.ndarray:
    """A _core tensor's values as a numpy array, copied to the host first when it lives on a GPU
    (for the few backward formulas written with numpy; the result goes back with on_device)."""
    return (c if c.device == "cpu" else c.to("cpu")).numpy()


def on_device(arr, device: str):
    """A contiguous _core tensor of arr on `device` ('cpu' or 'cuda:N')."""
    c = _core.from_numpy(np.require(arr, requirements="C"))  # keeps 0-d shapes
    return c if device == "cpu" else c.to(device)
