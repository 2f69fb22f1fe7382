"""Determinism: a fixed seed and thread count give bit-identical training; with
use_deterministic_algorithms(True) the thread count does not matter either."""

from __future__ import annotations

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import nn, optim
from cnncore.data import DataLoader, TensorDataset


def _train(threads: int, seed: int = 0):
    previous = cnncore.get_num_threads()
    cnncore.set_num_threads(threads)
    try:
        cnncore.manual_seed(seed)
        model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                              nn.Dropout(0.2), nn.Conv2d(6, 8, 3, stride=2), nn.ReLU(),
                              nn.Flatten(), nn.Linear(8 * 3 * 3, 10))
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((48, 1, 8, 8)).astype(np.float32)
        y = rng.integers(0, 10, 48).astype(np.int64)
        loader = DataLoader(TensorDataset(cnncore.tensor(x), cnncore.tensor(y)), batch_size=16,
                            shuffle=True)
        for _ in range(2):
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
        return {k: v.numpy().copy() for k, v in model.state_dict().items()}
    finally:
        cnncore.set_num_threads(previous)


def _same(a, b) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in a)


def test_fixed_seed_and_threads_is_bit_exact():
    assert _same(_train(2), _train(2))
    assert _same(_train(1), _train(1))


def test_deterministic_mode_is_bit_exact_across_thread_counts():
    assert not cnncore.are_deterministic_algorithms_enabled()
    cnncore.use_deterministic_algorithms(True)
    try:
        assert cnncore.are_deterministic_algorithms_enabled()
        assert _same(_train(1), _train(2))
        assert _same(_train(2), _train(3))
    finally:
        cnncore.use_deterministic_algorithms(False)
    assert not cnncore.are_deterministic_algorithms_enabled()


def test_conv_weight_gradient_deterministic_across_threads():
    """The one kernel whose sum order otherwise follows the thread count (batch split)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 5, 9, 9)).astype(np.float32)
    w = rng.standard_normal((7, 5, 3, 3)).astype(np.float32)

    def grad(threads):
        previous = cnncore.get_num_threads()
        cnncore.set_num_threads(threads)
        try:
            wt = cnncore.tensor(w, requires_grad=True)
            y = F.conv2d(cnncore.tensor(x), wt, padding=1)
            (y * y).sum().backward()
            return wt.grad.numpy().copy()
        finally:
            cnncore.set_num_threads(previous)

    cnncore.use_deterministic_algorithms(True)
    try:
        g1, g2, g4 = grad(1), grad(2), grad(4)
    finally:
        cnncore.use_deterministic_algorithms(False)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(g1, g4)
    np.testing.assert_allclose(grad(2), g1, rtol=1e-4, atol=1e-3)  # same value, other order


def test_bad_arguments():
    with pytest.raises(TypeError, match="use_deterministic_algorithms: mode must be a bool"):
        cnncore.use_deterministic_algorithms(1)
    with pytest.raises(TypeError, match="warn_only"):
        cnncore.use_deterministic_algorithms(True, warn_only="yes")
    assert not cnncore.are_deterministic_algorithms_enabled()
    assert not cnncore.is_deterministic_algorithms_warn_only_enabled()
