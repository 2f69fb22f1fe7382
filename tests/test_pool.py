"""Pooling: fast kernels vs the reference twins on every ISA, vs torch, gradients, bad inputs."""

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

ref = _core.reference


def _opts(k, s=None, p=0, d=1, ceil=False, cip=True, div=0):
    o = _core.Pool2dOptions()
    pr = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    o.kernel_h, o.kernel_w = pr(k)
    o.stride_h, o.stride_w = pr(s if s is not None else k)
    o.pad_h, o.pad_w = pr(p)
    o.dilation_h, o.dilation_w = pr(d)
    o.ceil_mode, o.count_include_pad, o.divisor_override = ceil, cip, div
    return o


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _core_t(a):
    return _core.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


# (input shape, kernel, stride, padding, dilation, ceil_mode): ragged sizes, every vector path
# (stride 1, stride 2, dilation) and the scalar ones (stride 3, border windows, ceil_mode tails).
MAX_CASES = [
    ((2, 3, 13, 17), 3, 1, 1, 1, False),
    ((1, 5, 16, 15), 2, 2, 0, 1, False),
    ((2, 3, 11, 19), 3, 2, 1, 1, True),
    ((1, 2, 9, 23), (3, 2), (2, 1), (1, 0), (2, 1), False),
    ((3, 1, 7, 40), 3, 3, 1, 1, True),
    ((1, 4, 5, 5), 2, 2, 1, 1, True),
    ((2, 2, 33, 37), 5, 1, 2, 2, False),
    ((1, 1, 6, 6), 3, 2, 1, 1, True),
    ((2, 3, 8, 70), (2, 3), (1, 2), (0, 1), 1, False),
    ((1, 2, 4, 67), (1, 4), (1, 2), (0, 2), (1, 3), True),
    ((3, 10, 12), 2, None, 0, 1, False),
    ((1, 2, 3, 1), (1, 5), 1, (0, 2), 1, False),  # every column a border (wrote past the end once)
    ((1, 2, 3, 2), (3, 5), (1, 2), (1, 2), 1, True),
    # interiors narrower than one vector (masked partial chunks): ResNet's pool on 32x32 inputs,
    # LeNet-sized maps, stride 1 with dilation
    ((2, 4, 16, 16), 3, 2, 1, 1, False),
    ((2, 6, 28, 28), 2, 2, 0, 1, False),
    ((1, 3, 9, 13), 2, 1, 0, 2, False),
    ((1, 2, 7, 29), 3, 2, 0, 1, True),
]


@pytest.mark.parametrize("case", MAX_CASES, ids=str)
def test_max_pool2d_matches_reference(isa, case):
    shape, k, s, p, d, ceil = case
    o = _opts(k, s, p, d, ceil)
    x = _core_t(_rand(shape, 1))
    y, idx = _core.max_pool2d_forward(x, o)
    ry, ridx = ref.max_pool2d_forward(x, o)
    what = f"{isa} {case}"
    check_close(y, ry, 0, 0, what=f"forward {what}")
    np.testing.assert_array_equal(idx.numpy(), ridx.numpy(), err_msg=f"indices {what}")
    dy = _core_t(_rand(y.shape, 2))
    check_close(_core.max_pool2d_backward(dy, idx, list(shape)),
                ref.max_pool2d_backward(dy, ridx, list(shape)), 1e-6, 1e-6, what=f"backward {what}")


def test_max_pool2d_ties_and_nan_match_reference(isa):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (2, 3, 12, 37)).astype(np.float32)  # many ties
    x[0, 0, 1, 5] = np.nan
    x[1, 2, 7, 20:23] = np.nan
    x[0, 1, :, 30] = -np.inf
    for o in (_opts(3, 1, 1), _opts(2, 2), _opts(3, 2, 1, ceil=True), _opts(3, 1, 0, 2)):
        y, idx = _core.max_pool2d_forward(_core_t(x), o)
        ry, ridx = ref.max_pool2d_forward(_core_t(x), o)
        check_close(y, ry, 0, 0, what=isa)
        np.testing.assert_array_equal(idx.numpy(), ridx.numpy())


AVG_CASES = [
    ((2, 3, 13, 17), 3, 1, 1, False, True, 0),
    ((2, 3, 13, 17), 3, 1, 1, False, False, 0),
    ((1, 5, 16, 15), 2, 2, 0, False, True, 0),
    ((2, 3, 11, 19), 3, 2, 1, True, True, 0),
    ((2, 3, 11, 19), 3, 2, 1, True, False, 0),
    ((1, 2, 9, 23), (3, 2), (2, 1), (1, 0), False, True, 5),
    ((3, 1, 7, 40), 3, 3, 1, True, False, -3),
    ((1, 1, 6, 6), 3, 2, 1, True, True, 0),
    ((2, 3, 8, 70), (2, 5), (1, 2), (0, 2), True, False, 0),
    ((3, 10, 12), 4, 1, 2, False, True, 0),
    ((2, 6, 28, 28), 2, 2, 0, False, True, 0),   # LeNet: 14 outputs per row, one masked chunk
    ((2, 16, 10, 10), 2, 2, 0, False, True, 0),
    ((1, 3, 9, 13), 3, 1, 1, False, False, 0),
    ((1, 2, 7, 29), 3, 2, 0, True, True, 0),
    # non-overlapping 2-wide windows (the widened-row backward): a row and a column past the
    # windows, divisor_override, 3x2 windows, ceil_mode's partial window (the general path)
    ((1, 3, 9, 13), 2, 2, 0, False, True, 3),
    ((2, 4, 9, 36), (3, 2), (3, 2), 0, False, True, 0),
    ((1, 3, 9, 13), 2, 2, 0, True, True, 0),
    # windows tiling whole rows: the planes run as one tall plane split by rows over the
    # threads, here mid-plane (561 planes of 5 output rows, 2 threads), and the general path's
    # overlapping columns
    ((33, 17, 10, 10), 2, 2, 0, False, True, 0),
    ((3, 5, 8, 11), (2, 3), (2, 1), 0, False, True, 0),
]


@pytest.mark.parametrize("case", AVG_CASES, ids=str)
def test_avg_pool2d_matches_reference(isa, case):
    shape, k, s, p, ceil, cip, div = case
    o = _opts(k, s, p, 1, ceil, cip, div)
    x = _core_t(_rand(shape, 4))
    y = _core.avg_pool2d_forward(x, o)
    what = f"{isa} {case}"
    check_close(y, ref.avg_pool2d_forward(x, o), 1e-5, 1e-6, what=f"forward {what}")
    dy = _core_t(_rand(y.shape, 5))
    check_close(_core.avg_pool2d_backward(dy, list(shape), o),
                ref.avg_pool2d_backward(dy, list(shape), o), 1e-5, 1e-6, what=f"backward {what}")


ADAPTIVE_CASES = [
    ((2, 3, 13, 17), (5, 7)),
    ((1, 2, 7, 7), (3, 3)),
    ((1, 1, 10, 9), (4, 4)),
    ((2, 2, 5, 6), (5, 6)),
    ((1, 1, 3, 4), (7, 9)),
    ((4, 9, 11), (1, 1)),
]


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=str)
def test_adaptive_matches_reference(isa, case):
    shape, (oh, ow) = case
    x = _core_t(_rand(shape, 6))
    y = _core.adaptive_avg_pool2d_forward(x, oh, ow)
    check_close(y, ref.adaptive_avg_pool2d_forward(x, oh, ow), 1e-5, 1e-6, what=f"avg {case}")
    dy = _core_t(_rand(y.shape, 7))
    check_close(_core.adaptive_avg_pool2d_backward(dy, list(shape)),
                ref.adaptive_avg_pool2d_backward(dy, list(shape)), 1e-5, 1e-6,
                what=f"avg bwd {case}")
    y, idx = _core.adaptive_max_pool2d_forward(x, oh, ow)
    ry, ridx = ref.adaptive_max_pool2d_forward(x, oh, ow)
    check_close(y, ry, 0, 0, what=f"max {case}")
    np.testing.assert_array_equal(idx.numpy(), ridx.numpy())
    check_close(_core.adaptive_max_pool2d_backward(dy, idx, list(shape)),
                ref.adaptive_max_pool2d_backward(dy, ridx, list(shape)), 1e-6, 1e-6)


def test_non_contiguous_and_blocked_inputs():
    a = _rand((2, 16, 9, 11), 8)
    x = _core_t(a)
    o = _opts(3, 2, 1)
    expect, _ = _core.max_pool2d_forward(x, o)
    perm = _core_t(np.ascontiguousarray(a.transpose(0, 2, 3, 1))).permute([0, 3, 1, 2])
    assert not perm.is_contiguous()
    check_close(_core.max_pool2d_forward(perm, o)[0], expect, 0, 0, what="permuted")
    check_close(_core.max_pool2d_forward(x.to_blocked(8), o)[0], expect, 0, 0, what="blocked")
    check_close(_core.avg_pool2d_forward(x.to_blocked(8), o), _core.avg_pool2d_forward(x, o),
                0, 0, what="blocked avg")


# ---- against torch ----------------------------------------------------------------------------
def _torch():
    return pytest.importorskip("torch", reason="torch is only needed for the parity tests")


def _both(fn_ours, fn_torch, a, seed=11):
    """Forward and input gradient of ours and torch's for the same input and output gradient."""
    torch = _torch()
    x = cnncore.tensor(a, requires_grad=True)
    y = fn_ours(x)
    tx = torch.tensor(a, requires_grad=True)
    ty = fn_torch(tx)
    g = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(np.float32)
    y.backward(cnncore.tensor(g))
    ty.backward(torch.tensor(g))
    return y, x.grad, ty, tx.grad


TORCH_MAX = [
    ((2, 3, 13, 17), dict(kernel_size=3, stride=1, padding=1)),
    ((2, 3, 11, 19), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 10, 10), dict(kernel_size=4, stride=3, ceil_mode=True)),
    ((2, 2, 12, 13), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), dilation=(2, 1))),
    ((1, 3, 15, 40), dict(kernel_size=2)),
    ((3, 9, 8), dict(kernel_size=3, stride=2, padding=1)),
]


@pytest.mark.parametrize("shape,kw", TORCH_MAX, ids=str)
def test_max_pool2d_vs_torch(shape, kw):
    torch = _torch()
    a = _rand(shape, 12)
    y, gx, ty, tgx = _both(lambda x: F.max_pool2d(x, **kw),
                           lambda x: torch.nn.functional.max_pool2d(x, **kw), a)
    check_close(y, ty, 0, 0, what=f"forward {kw}")
    check_close(gx, tgx, 1e-6, 1e-6, what=f"grad {kw}")
    _, idx = F.max_pool2d(cnncore.tensor(a), return_indices=True, **kw)
    _, tidx = torch.nn.functional.max_pool2d(torch.tensor(a), return_indices=True, **kw)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert idx.dtype == np.int64


def test_max_pool2d_ties_and_nan_vs_torch():
    torch = _torch()
    rng = np.random.default_rng(13)
    a = rng.integers(0, 3, (2, 2, 9, 21)).astype(np.float32)
    a[0, 1, 4, 4] = np.nan
    a[1, 0, 2, 10:12] = np.nan
    for kw in (dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2),
               dict(kernel_size=3, stride=2, ceil_mode=True)):
        y, idx = F.max_pool2d(cnncore.tensor(a), return_indices=True, **kw)
        ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(a), return_indices=True, **kw)
        check_close(y, ty, 0, 0, what=f"{kw}")
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy(), err_msg=f"{kw}")
        assert np.isnan(y.numpy()).any()


TORCH_AVG = [
    ((2, 3, 13, 17), dict(kernel_size=3, stride=1, padding=1)),
    ((2, 3, 13, 17), dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ((2, 3, 11, 19), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 3, 11, 19), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                          count_include_pad=False)),
    ((1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 10, 10), dict(kernel_size=4, stride=3, ceil_mode=True, divisor_override=7)),
    ((1, 2, 9, 12), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), divisor_override=2)),
    ((3, 9, 8), dict(kernel_size=2)),
]


@pytest.mark.parametrize("shape,kw", TORCH_AVG, ids=str)
def test_avg_pool2d_vs_torch(shape, kw):
    torch = _torch()
    a = _rand(shape, 14)
    y, gx, ty, tgx = _both(lambda x: F.avg_pool2d(x, **kw),
                           lambda x: torch.nn.functional.avg_pool2d(x, **kw), a)
    check_close(y, ty, 1e-5, 1e-6, what=f"forward {kw}")
    check_close(gx, tgx, 1e-5, 1e-6, what=f"grad {kw}")


@pytest.mark.parametrize("shape,out", [((2, 3, 13, 17), (5, 7)), ((1, 2, 10, 9), 4),
                                       ((1, 1, 3, 4), (7, 9)), ((2, 6, 7), (None, 3)),
                                       ((1, 2, 8, 8), 1)], ids=str)
def test_adaptive_vs_torch(shape, out):
    torch = _torch()
    a = _rand(shape, 15)
    y, gx, ty, tgx = _both(lambda x: F.adaptive_avg_pool2d(x, out),
                           lambda x: torch.nn.functional.adaptive_avg_pool2d(x, out), a)
    check_close(y, ty, 1e-5, 1e-6, what=f"avg forward {out}")
    check_close(gx, tgx, 1e-5, 1e-6, what=f"avg grad {out}")
    y, gx, ty, tgx = _both(lambda x: F.adaptive_max_pool2d(x, out),
                           lambda x: torch.nn.functional.adaptive_max_pool2d(x, out), a)
    check_close(y, ty, 0, 0, what=f"max forward {out}")
    check_close(gx, tgx, 1e-6, 1e-6, what=f"max grad {out}")
    _, idx = F.adaptive_max_pool2d(cnncore.tensor(a), out, return_indices=True)
    _, tidx = torch.nn.functional.adaptive_max_pool2d(torch.tensor(a), out, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_layers_call_functional():
    torch = _torch()
    a = _rand((2, 3, 9, 10), 16)
    for ours, theirs in ((cnncore.nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                          torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
                         (cnncore.nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
                         (cnncore.nn.AdaptiveAvgPool2d((3, 4)), torch.nn.AdaptiveAvgPool2d((3, 4))),
                         (cnncore.nn.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2))):
        check_close(ours(cnncore.tensor(a)), theirs(torch.tensor(a)), 1e-5, 1e-6,
                    what=type(ours).__name__)


# ---- gradients by finite differences ----------------------------------------------------------
def _distinct(shape, seed):
    """Values 0.1 apart in random order: no ties within eps for max pooling."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) * 0.1 - 1).astype(np.float32)


def test_gradcheck_max_pool2d():
    gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [_distinct((1, 2, 5, 6), 0)])


def test_gradcheck_avg_pool2d():
    gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
              [_rand((1, 2, 5, 6), 1)])


def test_gradcheck_adaptive():
    gradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [_rand((1, 2, 5, 7), 2)])
    gradcheck(lambda x: F.adaptive_max_pool2d(x, (2, 3)), [_distinct((1, 2, 5, 7), 3)])


# ---- bad inputs -------------------------------------------------------------------------------
X = np.zeros((1, 2, 6, 6), np.float32)


@pytest.mark.parametrize("call,exc,fragment", [
    (lambda: F.max_pool2d(X, 0), ValueError, "kernel_size must be greater than zero"),
    (lambda: F.max_pool2d(X, 2, stride=0), ValueError, "stride must be greater than zero"),
    (lambda: F.max_pool2d(X, 2, padding=2), ValueError, "pad should be at most half"),
    (lambda: F.max_pool2d(X, 3, padding=-1), ValueError, "padding must be non-negative"),
    (lambda: F.max_pool2d(X, 3, dilation=0), ValueError, "dilation must be greater than zero"),
    (lambda: F.max_pool2d(X, 7), ValueError, "output size is too small"),
    (lambda: F.max_pool2d(X, 3, dilation=3), ValueError, "output size is too small"),
    (lambda: F.max_pool2d(X[0, 0], 2), ValueError, "3-D (C, H, W) or 4-D"),
    (lambda: F.max_pool2d(X, "2"), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(X, 2.5), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(X, (2, 2, 2)), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(np.zeros((1, 2, 6, 6), np.int32), 2), TypeError, "max_pool2d"),
    (lambda: F.max_pool2d([[1.0]], 2), TypeError, "input must be a Tensor"),
    (lambda: F.max_pool2d(np.zeros((0, 2, 6, 6), np.float32), 2), ValueError, "empty"),
    (lambda: F.max_pool2d(X, 2, ceil_mode="yes"), TypeError, "ceil_mode must be a bool"),
    (lambda: F.max_pool2d(X, 2, return_indices=None), TypeError, "return_indices"),
    (lambda: F.avg_pool2d(X, 2, count_include_pad=2), TypeError, "count_include_pad"),
    (lambda: F.avg_pool2d(X, 3, divisor_override=0), ValueError, "divisor_override"),
    (lambda: F.avg_pool2d(X, 3, divisor_override=1.5), TypeError, "divisor_override"),
    (lambda: F.avg_pool2d(X, 2, padding=3), ValueError, "avg_pool2d: pad should be at most half"),
    (lambda: F.avg_pool2d(X, 9), ValueError, "avg_pool2d: output size is too small"),
    (lambda: F.adaptive_avg_pool2d(X, 0), ValueError, "output_size must be at least"),
    (lambda: F.adaptive_max_pool2d(X, (1, 2, 3)), ValueError, "output_size"),
    (lambda: F.adaptive_max_pool2d(X, "a"), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((2, 6, 6, 1, 1), np.float32), 2), ValueError, "5-D"),
])
def test_bad_inputs(call, exc, fragment):
    with pytest.raises(exc, match=None) as info:
        call()
    assert fragment in str(info.value), str(info.value)


def test_backward_rejects_bad_indices_and_shapes():
    dy = _core_t(np.ones((1, 1, 2, 2), np.float32))
    bad = _core.from_numpy(np.array([[[[0, 1], [2, 99]]]], dtype=np.int64))
    with pytest.raises(ValueError, match="indices must lie in"):
        _core.max_pool2d_backward(dy, bad, [1, 1, 4, 4])
    with pytest.raises(ValueError, match="indices must have the shape"):
        _core.max_pool2d_backward(dy, _core.from_numpy(np.zeros((1, 1, 2, 3), np.int64)),
                                  [1, 1, 4, 4])
    with pytest.raises(TypeError, match="indices"):
        _core.max_pool2d_backward(dy, dy, [1, 1, 4, 4])
    with pytest.raises(ValueError, match="grad_output must have shape"):
        _core.avg_pool2d_backward(dy, [1, 1, 6, 6], _opts(2))
    with pytest.raises(ValueError, match="input_shape"):
        _core.adaptive_avg_pool2d_backward(dy, [4, 4])


def test_unbatched_autograd_shape():
    x = cnncore.tensor(_rand((3, 7, 8), 20), requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert y.shape == (3, 3, 4)
    y.backward(cnncore.tensor(np.ones(y.shape, np.float32)))
    assert x.grad.shape == (3, 7, 8)
    assert float(x.grad.numpy().sum()) == pytest.approx(36.0)


def test_max_pool2d_window_without_elements():
    """A dilated window can miss the input entirely: the value is -inf and the index -1 (torch
    returns an index outside the plane there), and backward skips it."""
    a = _rand((1, 2, 1, 9), 21)
    x = cnncore.tensor(a, requires_grad=True)
    y, idx = F.max_pool2d(x, (2, 4), (3, 2), (1, 2), (2, 2), ceil_mode=True, return_indices=True)
    assert np.all(np.isneginf(y.detach().numpy()))
    assert np.all(idx.numpy() == -1)
    y.backward(cnncore.tensor(np.ones(y.shape, np.float32)))
    assert np.all(x.grad.numpy() == 0)
    ry, ridx = ref.max_pool2d_forward(_core_t(a), _opts((2, 4), (3, 2), (1, 2), (2, 2), True))
    np.testing.assert_array_equal(ridx.numpy(), idx.numpy())
