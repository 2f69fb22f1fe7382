"""Freed large host blocks are reused (no fresh pages per training step), bounded, and never
leak stale contents into APIs that promise zeros."""

import subprocess
import sys

import numpy as np

from cnncore import _core
from helpers import child_env

BIG = (1, 3, 1024, 1024)  # 12 MiB: above the 4 MiB threshold


def test_freed_block_is_reused_for_the_same_size():
    _core.empty_host_cache()
    a = _core.empty(list(BIG), "float32", "cpu")
    p = a.data_ptr()
    del a
    assert _core.host_cache_bytes() >= 12 << 20
    b = _core.empty(list(BIG), "float32", "cpu")
    assert b.data_ptr() == p
    assert _core.host_cache_bytes() == 0


def test_zeros_from_a_reused_block_are_zeros():
    _core.empty_host_cache()
    a = _core.full(list(BIG), 7.0)
    del a
    z = _core.zeros(list(BIG), "float32", "cpu")
    assert not np.asarray(z).any()


def test_small_blocks_are_not_cached_and_empty_cache_frees():
    _core.empty_host_cache()
    a = _core.empty([1024], "float32", "cpu")
    del a
    assert _core.host_cache_bytes() == 0
    t = _core.empty(list(BIG), "float32", "cpu")
    del t
    held = _core.host_cache_bytes()
    assert held > 0
    assert _core.empty_host_cache() == held
    assert _core.host_cache_bytes() == 0


def test_limit_zero_turns_reuse_off():
    code = ("from cnncore import _core\n"
            "a = _core.empty([1, 3, 1024, 1024], 'float32', 'cpu'); del a\n"
            "print(_core.host_cache_bytes())\n")
    env = child_env()
    env["CNNCORE_HOST_CACHE_MB"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "0"
    env["CNNCORE_HOST_CACHE_MB"] = "8"  # below one 12 MiB block: not kept either
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "0"
