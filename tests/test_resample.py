"""interpolate and pad: fast vs the reference twins, vs torch forward and backward, gradients,
bad inputs."""

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

ref = _core.reference
NEAREST, BILINEAR = _core.InterpMode.nearest, _core.InterpMode.bilinear


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _core_t(a):
    return _core.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


# (input shape, out_h, out_w, scale_h, scale_w): up, down, odd ratios, identity, scale-given.
INTERP_CASES = [
    ((2, 3, 7, 9), 14, 18, 0.0, 0.0),
    ((1, 2, 7, 9), 10, 13, 1.5, 1.5),
    ((1, 2, 13, 11), 6, 5, 0.5, 0.5),
    ((2, 1, 5, 6), 5, 6, 0.0, 0.0),
    ((1, 3, 4, 17), 9, 3, 0.0, 0.0),
    ((1, 1, 1, 5), 3, 11, 0.0, 0.0),
    ((1, 2, 6, 6), 1, 1, 0.0, 0.0),
]


@pytest.mark.parametrize("case", INTERP_CASES, ids=str)
@pytest.mark.parametrize("mode,ac", [(NEAREST, False), (BILINEAR, False), (BILINEAR, True)])
def test_interpolate_matches_reference(isa, case, mode, ac):
    shape, oh, ow, sh, sw = case
    x = _core_t(_rand(shape, 1))
    y = _core.interpolate_forward(x, oh, ow, mode, ac, sh, sw)
    check_close(y, ref.interpolate_forward(x, oh, ow, mode, ac, sh, sw), 1e-5, 1e-6,
                what=f"forward {case} {mode} {ac}")
    dy = _core_t(_rand(y.shape, 2))
    check_close(_core.interpolate_backward(dy, list(shape), mode, ac, sh, sw),
                ref.interpolate_backward(dy, list(shape), mode, ac, sh, sw), 1e-5, 1e-5,
                what=f"backward {case} {mode} {ac}")


PAD_CASES = [
    ((2, 3, 5, 7), (1, 2, 3, 1)),
    ((2, 3, 5, 7), (0, 0, 2, 0)),
    ((1, 2, 6, 9), (-1, 2, 1, -2)),
    ((1, 2, 6, 9), (4, 4, 5, 5)),
    ((3, 8), (2, 3)),
    ((2, 3, 10), (-3, 1)),
    ((4, 6, 5), (1, 1, 1, 1)),
]


@pytest.mark.parametrize("case", PAD_CASES, ids=str)
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_matches_reference(case, mode):
    shape, pads = case
    m = getattr(_core.PadMode, mode)
    x = _core_t(_rand(shape, 3))
    y = _core.pad_forward(x, list(pads), m, 1.5)
    check_close(y, ref.pad_forward(x, list(pads), m, 1.5), 0, 0, what=f"forward {case} {mode}")
    dy = _core_t(_rand(y.shape, 4))
    check_close(_core.pad_backward(dy, list(shape), list(pads), m),
                ref.pad_backward(dy, list(shape), list(pads), m), 1e-6, 1e-6,
                what=f"backward {case} {mode}")


# ---- against torch ----------------------------------------------------------------------------
def _torch():
    return pytest.importorskip("torch", reason="torch is only needed for the parity tests")


def _both(fn_ours, fn_torch, a, seed=11):
    torch = _torch()
    x = cnncore.tensor(a, requires_grad=True)
    y = fn_ours(x)
    tx = torch.tensor(a, requires_grad=True)
    ty = fn_torch(tx)
    g = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(np.float32)
    y.backward(cnncore.tensor(g))
    ty.backward(torch.tensor(g))
    return y, x.grad, ty, tx.grad


INTERP_KW = [
    dict(scale_factor=2),
    dict(scale_factor=1.5),
    dict(scale_factor=0.5),
    dict(scale_factor=(1.7, 0.6)),
    dict(scale_factor=1.5, recompute_scale_factor=True),
    dict(scale_factor=2.3, recompute_scale_factor=False),
    dict(size=(11, 4)),
    dict(size=5),
    dict(size=(7, 9)),
]


@pytest.mark.parametrize("kw", INTERP_KW, ids=str)
@pytest.mark.parametrize("mode,ac", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_vs_torch(kw, mode, ac):
    torch = _torch()
    a = _rand((2, 3, 7, 9), 5)
    y, gx, ty, tgx = _both(
        lambda x: F.interpolate(x, mode=mode, align_corners=ac, **kw),
        lambda x: torch.nn.functional.interpolate(x, mode=mode, align_corners=ac, **kw), a)
    check_close(y, ty, 1e-5, 1e-5, what=f"forward {kw} {mode} {ac}")
    check_close(gx, tgx, 1e-5, 1e-5, what=f"grad {kw} {mode} {ac}")


@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=0.7), dict(size=13)],
                         ids=str)
@pytest.mark.parametrize("mode,ac", [("nearest", None), ("linear", False), ("linear", True)])
def test_interpolate_3d_vs_torch(kw, mode, ac):
    torch = _torch()
    a = _rand((2, 3, 10), 6)
    y, gx, ty, tgx = _both(
        lambda x: F.interpolate(x, mode=mode, align_corners=ac, **kw),
        lambda x: torch.nn.functional.interpolate(x, mode=mode, align_corners=ac, **kw), a)
    check_close(y, ty, 1e-5, 1e-5, what=f"forward {kw} {mode}")
    check_close(gx, tgx, 1e-5, 1e-5, what=f"grad {kw} {mode}")


def test_upsample_layer_vs_torch():
    torch = _torch()
    a = _rand((1, 2, 5, 6), 7)
    ours = cnncore.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    theirs = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    check_close(ours(cnncore.tensor(a)), theirs(torch.tensor(a)), 1e-5, 1e-6)


@pytest.mark.parametrize("shape,pads", [((2, 3, 5, 7), (1, 2, 3, 1)),
                                        ((1, 2, 6, 9), (-1, 2, 1, -2)),
                                        ((1, 2, 6, 9), (4, 4, 5, 5)), ((2, 3, 10), (3, 2)),
                                        ((3, 5, 6), (1, 0, 2, 4)), ((2, 7), (-2, 6))], ids=str)
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_vs_torch(shape, pads, mode):
    torch = _torch()
    value = 0.25 if mode == "constant" else None
    a = _rand(shape, 8)
    y, gx, ty, tgx = _both(lambda x: F.pad(x, pads, mode, value),
                           lambda x: torch.nn.functional.pad(x, pads, mode, value), a)
    check_close(y, ty, 0, 0, what=f"forward {pads} {mode}")
    check_close(gx, tgx, 1e-6, 1e-6, what=f"grad {pads} {mode}")


def test_zero_pad_layer():
    a = _rand((1, 1, 3, 3), 9)
    y = cnncore.nn.ZeroPad2d((1, 0, 2, 1))(cnncore.tensor(a)).numpy()
    assert y.shape == (1, 1, 6, 4)
    np.testing.assert_array_equal(y[0, 0, 2:5, 1:], a[0, 0])
    assert y[0, 0, :2].sum() == 0 and y[0, 0, :, 0].sum() == 0


# ---- gradients by finite differences ----------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(scale_factor=1.5, mode="bilinear", align_corners=False),
                                dict(size=(3, 7), mode="bilinear", align_corners=True),
                                dict(scale_factor=0.6, mode="nearest")], ids=str)
def test_gradcheck_interpolate(kw):
    gradcheck(lambda x: F.interpolate(x, **kw), [_rand((1, 2, 4, 5), 10)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_gradcheck_pad(mode):
    gradcheck(lambda x: F.pad(x, (2, 1, -1, 2), mode), [_rand((1, 2, 4, 5), 11)])


# ---- bad inputs -------------------------------------------------------------------------------
X = np.zeros((1, 2, 6, 6), np.float32)


@pytest.mark.parametrize("call,exc,fragment", [
    (lambda: F.interpolate(X), ValueError, "either size or scale_factor"),
    (lambda: F.interpolate(X, size=3, scale_factor=2), ValueError, "only one of size"),
    (lambda: F.interpolate(X, scale_factor=2, mode="bicubic"), ValueError, "mode must be one of"),
    (lambda: F.interpolate(X, scale_factor=2, mode=3), TypeError, "mode"),
    (lambda: F.interpolate(X, scale_factor=2, align_corners=True), ValueError, "align_corners"),
    (lambda: F.interpolate(X, scale_factor=float("nan")), ValueError, "scale_factor"),
    (lambda: F.interpolate(X, scale_factor=2, mode="bilinear", align_corners="no"), TypeError,
     "align_corners must be a bool"),
    (lambda: F.interpolate(X, scale_factor=2, antialias=True), ValueError, "antialias"),
    (lambda: F.interpolate(X, scale_factor=float("inf")), ValueError, "scale_factor"),
    (lambda: F.interpolate(X, scale_factor=-1.0), ValueError, "scale_factor"),
    (lambda: F.interpolate(X, scale_factor=0.1), ValueError, "output size must be at least 1"),
    (lambda: F.interpolate(X, size=0), ValueError, "output size must be at least 1"),
    (lambda: F.interpolate(X, scale_factor=1e30), ValueError, "below 2^31"),
    (lambda: F.interpolate(X, size=(2, 2, 2)), ValueError, "size must have 2 entries"),
    (lambda: F.interpolate(X, size=2.5), TypeError, "size"),
    (lambda: F.interpolate(X, scale_factor="2"), TypeError, "scale_factor"),
    (lambda: F.interpolate(X[0], scale_factor=2, mode="bilinear"), ValueError, "needs 4-D"),
    (lambda: F.interpolate(X, scale_factor=2, mode="linear"), ValueError, "needs 3-D"),
    (lambda: F.interpolate(X[0, 0], scale_factor=2), ValueError, "3-D (N, C, L) or 4-D"),
    (lambda: F.interpolate(np.zeros((0, 2, 3, 3), np.float32), scale_factor=2), ValueError,
     "empty"),
    (lambda: F.interpolate(np.zeros((1, 2, 3, 3), np.int64), scale_factor=2), TypeError,
     "interpolate"),
    (lambda: F.pad(X, (1, 1, 1)), ValueError, "2 (left, right) or 4"),
    (lambda: F.pad(X, (1, 1, 1, 1, 1, 1)), ValueError, "2 (left, right) or 4"),
    (lambda: F.pad(X, 1), TypeError, "pad must be a tuple"),
    (lambda: F.pad(X, (1.5, 1)), TypeError, "pad"),
    (lambda: F.pad(X, (1, 1), mode="wrap"), ValueError, "mode must be one of"),
    (lambda: F.pad(X, (1, 1), mode="circular"), ValueError, "circular"),
    (lambda: F.pad(X, (6, 0), mode="reflect"), ValueError, "less than the corresponding input"),
    (lambda: F.pad(X, (1, 1), mode="reflect", value=2.0), ValueError, "value"),
    (lambda: F.pad(X, (-3, -3)), ValueError, "every size must stay >= 1"),
    (lambda: F.pad(X, (1, 1), value="a"), TypeError, "value"),
    (lambda: F.pad(np.zeros((1, 0, 3), np.float32), (1, 1)), ValueError, "empty"),
    (lambda: F.pad(np.zeros(4, np.float32), (1, 1, 1, 1)), ValueError, "at least 2 dims"),
])
def test_bad_inputs(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value), str(info.value)


def test_backward_rejects_bad_shapes():
    dy = _core_t(np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="grad_output must have the batch and channels"):
        _core.interpolate_backward(dy, [2, 1, 2, 2], NEAREST, False)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        _core.pad_backward(dy, [1, 1, 2, 2], [1, 1, 1, 0], _core.PadMode.constant)


def test_bilinear_same_size_copies_like_torch():
    """torch copies a dim straight through when its size is unchanged, even with
    align_corners=True, so a NaN stays in its own row."""
    torch = _torch()
    a = _rand((1, 1, 6, 5), 12)
    a[0, 0, 3, 2] = np.nan
    for ac in (False, True):
        kw = dict(size=(6, 9), mode="bilinear", align_corners=ac)
        check_close(F.interpolate(cnncore.tensor(a), **kw),
                    torch.nn.functional.interpolate(torch.tensor(a), **kw), 1e-5, 1e-6,
                    what=f"align_corners={ac}")
