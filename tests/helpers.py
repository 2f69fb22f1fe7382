"""Shared test helpers: comparing results and checking gradients by finite differences."""

from __future__ import annotations

import numpy as np

import cnncore
from cnncore import _core


def to_numpy(x) -> np.ndarray:
    """Tensor, _core.Tensor, torch tensor or array-like -> numpy (no copy where possible)."""
    if isinstance(x, cnncore.Tensor):
        return x.detach().numpy()
    if isinstance(x, _core.Tensor):
        return x.numpy()
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6, what: str = "") -> None:
    """Asserts shape equality first, then values; the message names `what`."""
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                               err_msg=what, equal_nan=True)


def gradcheck(fn, arrays, eps: float = 1e-2, rtol: float = 1e-2, atol: float = 1e-3,
              seed: int = 0) -> None:
    """Checks autograd against central finite differences.

    fn takes cnncore Tensors (one per array, all float) and returns a Tensor. The scalar checked
    is sum(fn(*x) * R) for a fixed random R, accumulated in float64; every input element is
    perturbed by +-eps. Keep shapes tiny: this costs two forward passes per element.
    """
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    inputs = [cnncore.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(cnncore.tensor(proj))

    def scalar(xs):
        with cnncore.no_grad():
            y = fn(*[cnncore.tensor(x) for x in xs])
        return float(np.sum(to_numpy(y).astype(np.float64) * proj.astype(np.float64)))

    for i, a in enumerate(arrays):
        analytic = inputs[i].grad
        assert analytic is not None, f"input {i}: no gradient reached it"
        analytic = to_numpy(analytic).astype(np.float64)
        numeric = np.zeros(a.shape, dtype=np.float64)
        flat = numeric.reshape(-1)
        for j in range(a.size):
            xs_plus = [x.copy() for x in arrays]
            xs_minus = [x.copy() for x in arrays]
            xs_plus[i].reshape(-1)[j] += eps
            xs_minus[i].reshape(-1)[j] -= eps
            flat[j] = (scalar(xs_plus) - scalar(xs_minus)) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} (shape {a.shape})")
