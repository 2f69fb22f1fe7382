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
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{op}: {arg} must be an int or a pair of ints, but got {value!r}")
        return check_int(value[0], op, arg), check_int(value[1], op, arg)
    v = check_int(value, op, arg)
    return v, v


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
