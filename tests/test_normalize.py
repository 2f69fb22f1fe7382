"""F.normalize against PyTorch (forward and backward, every p branch, zero vectors) and finite
differences."""

import numpy as np
import pytest

import cnncore
import cnncore.nn.functional as F
from helpers import check_close, gradcheck

CASES = [(2.0, 1, (4, 5, 3)), (1.0, 0, (3, 7)), (3.0, -1, (2, 3, 5)), (float("inf"), 1, (4, 6)),
         (2.0, 0, (7,)), (0.5, 1, (3, 4))]


@pytest.mark.parametrize("p,dim,shape", CASES)
def test_normalize_matches_torch(p, dim, shape):
    torch = pytest.importorskip("torch", reason="compares with PyTorch")
    rng = np.random.default_rng(len(shape) + int(dim))
    a = rng.standard_normal(shape).astype(np.float32)
    if p >= 1 and a.ndim > 1:
        np.moveaxis(a, dim, -1)[(0,) * (a.ndim - 1)] = 0.0   # one all-zero vector along dim
    w = rng.standard_normal(shape).astype(np.float32)
    x = cnncore.tensor(a, requires_grad=True)
    (F.normalize(x, p, dim) * cnncore.tensor(w)).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    ref = torch.nn.functional.normalize(t, p, dim)
    (ref * torch.tensor(w)).sum().backward()
    check_close(F.normalize(cnncore.tensor(a), p=p, dim=dim), ref.detach(), rtol=1e-5,
                atol=1e-6, what="forward")
    check_close(x.grad, t.grad, rtol=1e-4, atol=1e-5, what="grad")


def test_normalize_default_is_unit_l2_rows_and_zero_stays_zero():
    a = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    x = cnncore.tensor(a, requires_grad=True)
    y = F.normalize(x)
    np.testing.assert_allclose(y.detach().numpy(), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(F.normalize(cnncore.tensor(a), eps=10.0).numpy(), a / 10.0)


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, 0), (3.0, 1)])
def test_normalize_finite_differences(p, dim):
    a = np.random.default_rng(5).uniform(0.3, 1.0, (3, 4)) * np.sign(
        np.random.default_rng(6).standard_normal((3, 4)))
    gradcheck(lambda v: F.normalize(v, p=p, dim=dim), [a.astype(np.float32)], eps=1e-3)


def test_normalize_bad_input():
    x = cnncore.randn(3, 4)
    with pytest.raises(ValueError, match="normalize: p"):
        F.normalize(x, p=0.0)
    with pytest.raises(ValueError, match="normalize: eps"):
        F.normalize(x, eps=0.0)
    with pytest.raises(TypeError, match="normalize: dim"):
        F.normalize(x, dim=1.5)
    with pytest.raises(IndexError, match="dim"):
        F.normalize(x, dim=2)
