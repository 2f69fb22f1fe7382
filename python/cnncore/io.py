"""Saving and loading weights (safetensors, never pickle) and moving them from PyTorch.

`save(model_or_state_dict, path)` writes a .safetensors file atomically; `load(path)` reads one
back as a state dict of cnncore Tensors. `from_torch_state_dict(sd)` turns a PyTorch state dict
(torch tensors) into numpy arrays any `Module.load_state_dict` accepts; `load_torch(path)` reads a
`.pth` (with torch, `weights_only=True`) or a PyTorch-written `.safetensors` (without torch).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import OrderedDict, namedtuple

import numpy as np

from .tensor import Tensor, from_numpy

__all__ = ["save", "load", "from_torch_state_dict", "load_torch", "TorchLoadReport",
           "atomic_write"]

_ORDER_KEY = "cnncore.order"


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Yields a file object for a temporary file next to `path`; on success it is flushed,
    fsynced and renamed over `path`, so a crash never leaves a half-written file behind."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _safetensors_numpy():
    try:
        import safetensors.numpy as st
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("cnncore.save/load need the 'safetensors' package: "
                          "pip install 'cnncore[train]' (or pip install safetensors)") from e
    return st


def _to_array(value, key: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().numpy()
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    raise TypeError(f"save: value for '{key}' must be a Tensor or numpy array, but got "
                    f"{type(value).__name__}")


def save(obj, path, metadata: dict | None = None) -> None:
    """Writes a Module's state_dict (or a mapping name -> Tensor/array) to a .safetensors file,
    atomically. metadata: optional str -> str pairs stored in the header."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not hasattr(obj, "items"):
        raise TypeError(f"save: expected a Module or a state dict, but got {type(obj).__name__}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"save: state dict keys must be str, but got {type(key).__name__}")
        arrays[key] = np.require(_to_array(value, key), requirements="C")
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in metadata.items()):
        raise TypeError("save: metadata must map str to str")
    # safetensors lays tensors out by dtype and name; the state_dict order travels in the header.
    meta = dict(metadata or {})
    meta[_ORDER_KEY] = json.dumps(list(arrays))
    data = _safetensors_numpy().save(arrays, metadata=meta)
    with atomic_write(path) as f:
        f.write(data)


def load(path) -> "OrderedDict[str, Tensor]":
    """Reads a .safetensors file into an ordered dict of cnncore Tensors (file order)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    st = _safetensors_numpy()
    with open(path, "rb") as f:
        raw = f.read()
    try:
        arrays = st.load(raw)
    except Exception as e:
        raise ValueError(f"load: {path} is not a valid safetensors file ({e})") from None
    out = OrderedDict()
    for key in _key_order(raw, arrays):
        a = arrays[key]
        if a.dtype == np.float64 or a.dtype == np.float16:
            a = a.astype(np.float32)
        elif a.dtype.kind in "iub" and a.dtype != np.int64:
            a = a.astype(np.int64)
        out[key] = from_numpy(np.require(a, requirements=["C", "W"]))
    return out


def _key_order(raw: bytes, arrays: dict) -> list[str]:
    """The state_dict order cnncore.save recorded; else (files from other writers) by name."""
    n = int.from_bytes(raw[:8], "little")
    meta = json.loads(raw[8:8 + n]).get("__metadata__") or {}
    try:
        order = json.loads(meta[_ORDER_KEY])
    except (KeyError, TypeError, ValueError):
        return sorted(arrays)
    if sorted(order) != sorted(arrays):
        return sorted(arrays)
    return order


def from_torch_state_dict(state_dict) -> "OrderedDict[str, np.ndarray]":
    """A PyTorch state dict (torch tensors, any device/dtype) -> name -> numpy array, in order,
    ready for `Module.load_state_dict`."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"from_torch_state_dict: expected a mapping, but got "
                        f"{type(state_dict).__name__}")
    out = OrderedDict()
    for key, value in state_dict.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu()
            if hasattr(value, "is_floating_point") and value.is_floating_point():
                value = value.float()
            value = value.numpy()
        out[key] = np.asarray(value)
    return out


class TorchLoadReport(namedtuple("TorchLoadReport",
                                 ["missing_keys", "unexpected_keys", "mismatched_keys"])):
    """What load_torch(path, model) could not map: the model's keys the file lacks, the file's
    keys the model lacks, and keys whose shapes differ ((key, file shape, model shape))."""

    def __str__(self):
        if not any(self):
            return "all keys matched"
        parts = []
        if self.missing_keys:
            parts.append(f"missing in the file ({len(self.missing_keys)}): "
                         + ", ".join(self.missing_keys))
        if self.unexpected_keys:
            parts.append(f"unexpected in the file ({len(self.unexpected_keys)}): "
                         + ", ".join(self.unexpected_keys))
        if self.mismatched_keys:
            parts.append(f"shape mismatch ({len(self.mismatched_keys)}): " + ", ".join(
                f"{k} {tuple(a)} in the file vs {tuple(b)} in the model"
                for k, a, b in self.mismatched_keys))
        return "; ".join(parts)


def load_torch(path, model=None, strict: bool = True):
    """Weights saved by PyTorch: a .safetensors file (read without torch) or a .pth/.pt file
    (needs torch; loaded with weights_only=True, so no code in the file runs).

    Without model: the state dict (name -> numpy array). With model (e.g. a zoo model): the
    weights are copied in by key and a TorchLoadReport of missing, unexpected and
    shape-mismatched keys comes back; a ``module.`` prefix (DistributedDataParallel
    checkpoints) is dropped when the model's keys lack it. strict=True raises a RuntimeError
    with that report, before writing anything, unless every key maps; strict=False loads what
    matches (e.g. a backbone under a new classifier head)."""
    sd = _read_torch(path)
    if model is None:
        return sd
    own = model.state_dict()
    if sd and all(k.startswith("module.") for k in sd) and \
            not any(k.startswith("module.") for k in own):
        sd = OrderedDict((k[len("module."):], v) for k, v in sd.items())
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in sd.items()
                  if k in own and tuple(v.shape) != tuple(own[k].shape)]
    bad = {k for k, _, _ in mismatched}
    report = TorchLoadReport([k for k in own if k not in sd],
                             [k for k in sd if k not in own], mismatched)
    if strict and any(report):
        raise RuntimeError(f"load_torch: {os.fspath(path)} does not fit "
                           f"{type(model).__name__}: {report}")
    model.load_state_dict(OrderedDict((k, v) for k, v in sd.items() if k in own and k not in bad),
                          strict=False)
    return report


def _read_torch(path) -> "OrderedDict[str, np.ndarray]":
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_torch: no such file: {path}")
    if path.endswith(".safetensors"):
        return OrderedDict((k, v.numpy()) for k, v in load(path).items())
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"load_torch: reading {path} needs torch (pip install torch); save it "
                          f"as .safetensors to load it without torch") from e
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if hasattr(sd, "state_dict") and not hasattr(sd, "items"):
        sd = sd.state_dict()
    return from_torch_state_dict(sd)
