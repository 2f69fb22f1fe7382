"""cnncore.cuda: the optional CUDA backend's runtime, named as torch.cuda.

A build made with ``-DCNNCORE_CUDA=ON`` carries the backend; it needs an NVIDIA driver and GPU at
run time. Without either, ``is_available()`` is False, ``device_count()`` is 0 and asking for a
``cuda`` tensor raises a RuntimeError that says which is missing (``unavailable_reason()``).
"""

from __future__ import annotations

import numbers

from . import _core

__all__ = ["is_available", "is_compiled", "device_count", "current_device", "synchronize",
           "empty_cache", "memory_allocated", "max_memory_allocated", "memory_reserved",
           "reset_peak_memory_stats", "unavailable_reason"]


def is_compiled() -> bool:
    """Whether this build has the CUDA backend (torch.backends.cuda.is_built)."""
    return _core.cuda_compiled()


def is_available() -> bool:
    """A CUDA device can be used now: the backend is compiled in and the driver sees a GPU."""
    return _core.cuda_device_count() > 0


def device_count() -> int:
    return _core.cuda_device_count()


def unavailable_reason() -> str:
    """Why is_available() is False ('' when it is True): not compiled, or the driver's message."""
    return _core.cuda_unavailable_reason()


def _index(device, op: str) -> int:
    if device is None:
        return _core.cuda_current_device() if is_available() else 0
    if isinstance(device, numbers.Integral) and not isinstance(device, bool):
        if device < 0:
            raise ValueError(f"{op}: device index must be non-negative, but got {device}")
        return int(device)
    from .tensor import _device_name
    name = _device_name(device, op)
    if name == "cpu":
        raise ValueError(f"{op}: expected a CUDA device, but got 'cpu'")
    return int(name.split(":")[1])


def _require(op: str) -> None:
    if not is_available():
        raise RuntimeError(f"{op}: {unavailable_reason()}")


def current_device() -> int:
    _require("current_device")
    return _core.cuda_current_device()


def synchronize(device=None) -> None:
    """Waits for every kernel queued on the device (the current one by default)."""
    _require("synchronize")
    _core.cuda_synchronize(_index(device, "synchronize"))


def empty_cache() -> None:
    """Returns the caching allocator's free blocks to the driver (live tensors keep theirs)."""
    _core.cuda_empty_cache()


def memory_allocated(device=None) -> int:
    """Bytes held by live tensors on the device (in the allocator's size classes)."""
    return _core.cuda_memory_allocated(_index(device, "memory_allocated"))


def max_memory_allocated(device=None) -> int:
    """The peak of memory_allocated() since start or reset_peak_memory_stats()."""
    return _core.cuda_max_memory_allocated(_index(device, "max_memory_allocated"))


def memory_reserved(device=None) -> int:
    """Bytes the allocator holds from the driver: live tensors plus its cache."""
    return _core.cuda_memory_reserved(_index(device, "memory_reserved"))


def reset_peak_memory_stats(device=None) -> None:
    _core.cuda_reset_peak_memory_stats(_index(device, "reset_peak_memory_stats"))
