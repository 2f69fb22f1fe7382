"""Shared test helpers: comparing results and checking gradients by finite differences."""

from __future__ import annotations

import os

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


# ---- the byte fuzzer for file loaders ------------------------------------------------------------
LOAD_ERRORS = (ValueError, TypeError, FileNotFoundError, EOFError)


def byte_mutations(raw: bytes, rng: np.random.Generator, count: int):
    """Truncations at random points (0 and len-1 included), random byte flips, and overwrites
    of the first bytes (headers) with extreme values."""
    yield raw[:0]
    yield raw[:-1]
    for _ in range(count):
        kind = rng.integers(0, 3)
        b = bytearray(raw)
        if kind == 0:
            yield bytes(b[:rng.integers(0, len(b))])
            continue
        if kind == 1:
            for i in rng.integers(0, len(b), size=rng.integers(1, 8)):
                b[i] ^= 1 << int(rng.integers(0, 8))
        else:
            i = int(rng.integers(0, min(len(b), 64)))
            b[i:i + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff" * 2])
        yield bytes(b)


def fuzz_file(path, raw: bytes, load, count: int, seed: int, errors=LOAD_ERRORS) -> int:
    """Writes each mutation of `raw` to `path` and calls load(): it either loads (a flip in the
    data) or raises one of `errors` with a message; anything else (a crash, KeyError, ...) fails
    the test. Returns the number of mutations tried."""
    rng = np.random.default_rng(seed)
    tried = 0
    for mutated in byte_mutations(raw, rng, count):
        path.write_bytes(mutated)
        try:
            load()
        except errors as e:
            assert str(e), "an error without a message"
        tried += 1
    return tried


def child_env(**extra) -> dict:
    """The environment for a Python subprocess that must import the same cnncore as this
    process: the installed package in CI, python/ of the checkout in a developer build."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(cnncore.__file__)))
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)
