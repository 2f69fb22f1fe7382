"""cnncore.save/load (safetensors), atomic writes, and weights from PyTorch."""

from __future__ import annotations

import os

import numpy as np
import pytest

import cnncore
import cnncore.nn as nn
from cnncore import io
from helpers import to_numpy


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


def test_save_load_round_trip_keeps_order_dtype_and_values(tmp_path):
    m = _net()
    m[1].num_batches_tracked.numpy()[...] = 7
    path = tmp_path / "w.safetensors"
    cnncore.save(m, path)
    sd = cnncore.load(path)
    assert list(sd) == list(m.state_dict())
    assert sd["1.num_batches_tracked"].shape == () and sd["1.num_batches_tracked"].item() == 7
    assert sd["1.num_batches_tracked"].dtype == np.int64
    m2 = _net()
    m2.load_state_dict(sd)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(to_numpy(m2.state_dict()[k]), to_numpy(v), err_msg=k)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_save_is_atomic_when_writing_fails(tmp_path):
    path = tmp_path / "w.safetensors"
    cnncore.save({"a": cnncore.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="value for 'b'"):
        cnncore.save({"a": cnncore.zeros(3), "b": "not a tensor"}, path)
    assert path.read_bytes() == before
    with pytest.raises(ZeroDivisionError):
        with io.atomic_write(path) as f:
            f.write(b"partial")
            1 / 0
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        cnncore.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        cnncore.load(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cnncore.save({"a": cnncore.ones(1)}, tmp_path / "nodir" / "w.safetensors")
    with pytest.raises(TypeError, match="expected a Module or a state dict"):
        cnncore.save(42, tmp_path / "x.safetensors")


def test_weights_from_pytorch_pth_and_safetensors(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch writes the files read here")
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                 torch.nn.Flatten(), torch.nn.Linear(4, 2))
    ours = _net()
    ours.load_state_dict(io.from_torch_state_dict(theirs.state_dict()))
    np.testing.assert_array_equal(to_numpy(ours[0].weight), theirs[0].weight.detach().numpy())
    torch.save(theirs.state_dict(), tmp_path / "w.pth")
    ours2 = _net()
    ours2.load_state_dict(io.load_torch(tmp_path / "w.pth"))
    np.testing.assert_array_equal(to_numpy(ours2[3].weight), theirs[3].weight.detach().numpy())
    from safetensors.torch import save_file
    save_file(theirs.state_dict(), str(tmp_path / "w.safetensors"))
    ours3 = _net()
    ours3.load_state_dict(io.load_torch(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(to_numpy(ours3[1].running_var),
                                  theirs[1].running_var.numpy())
