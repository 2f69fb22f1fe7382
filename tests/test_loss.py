"""Losses: nll/cross_entropy/mse against the reference twins, PyTorch, finite differences, and
bad inputs."""

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

RED = {"none": _core.Reduction.none, "mean": _core.Reduction.mean, "sum": _core.Reduction.sum}


def _case(shape, seed, ignore=-100, with_ignored=True):
    """logits (N, C, *), int64 targets with a few ignored, float32 class weights."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32) * 2
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    t = rng.integers(0, C, size=tshape).astype(np.int64)
    if with_ignored and t.size > 2:
        t.reshape(-1)[::3] = ignore
    w = rng.uniform(0.2, 2.0, C).astype(np.float32)
    return x, t, w


SHAPES = [(5,), (1, 3), (4, 7), (3, 5, 2), (2, 4, 3, 5), (7, 10, 1, 1), (2, 1000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_class_losses_match_reference(shape, reduction, weighted, smoothing):
    x, t, w = _case(shape, seed=len(shape) + shape[0], ignore=-1)
    logp = _core.reference.log_softmax_forward(_core.from_numpy(x), 0 if len(shape) == 1 else 1)
    tc = _core.from_numpy(t)
    wc = _core.from_numpy(w) if weighted else None
    red = RED[reduction]
    loss, tw = _core.cross_entropy_logp_forward(logp, tc, wc, red, -1, smoothing)
    loss_r, tw_r = _core.reference.cross_entropy_logp_forward(logp, tc, wc, red, -1, smoothing)
    what = f"{shape} {reduction} w={weighted} ls={smoothing}"
    check_close(loss, loss_r, rtol=1e-5, atol=1e-6, what="loss " + what)
    check_close(tw, tw_r, rtol=1e-6, what="total_weight " + what)
    g = _core.from_numpy(np.random.default_rng(1).standard_normal(loss.shape).astype(np.float32))
    d = _core.cross_entropy_logp_backward(g, logp, tc, wc, red, -1, smoothing, tw)
    d_r = _core.reference.cross_entropy_logp_backward(g, logp, tc, wc, red, -1, smoothing, tw_r)
    check_close(d, d_r, rtol=1e-5, atol=1e-7, what="dlogp " + what)
    if smoothing == 0.0:
        n, ntw = _core.nll_loss_forward(logp, tc, wc, red, -1)
        check_close(n, loss_r, rtol=1e-5, atol=1e-6, what="nll " + what)
        check_close(_core.nll_loss_backward(g, logp, tc, wc, red, -1, ntw), d_r, rtol=1e-5,
                    atol=1e-7, what="nll backward " + what)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_probability_targets_match_reference(reduction):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    q = rng.uniform(size=x.shape).astype(np.float32)
    q /= q.sum(axis=1, keepdims=True)
    w = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    logp = _core.log_softmax_forward(_core.from_numpy(x), 1)
    args = (logp, _core.from_numpy(q), _core.from_numpy(w), RED[reduction], -100, 0.1)
    loss, tw = _core.cross_entropy_logp_forward(*args)
    loss_r, tw_r = _core.reference.cross_entropy_logp_forward(*args)
    check_close(loss, loss_r, rtol=1e-5, atol=1e-6, what="soft-target loss")
    assert tw.numpy() == 12.0
    g = _core.full(list(loss.shape), 0.5)
    check_close(_core.cross_entropy_logp_backward(g, logp, *args[1:], tw),
                _core.reference.cross_entropy_logp_backward(g, logp, *args[1:], tw_r),
                rtol=1e-5, atol=1e-7, what="soft-target dlogp")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(4, 7), (3, 5, 4, 2), (6,)])
def test_cross_entropy_against_torch(isa, reduction, shape):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    x, t, w = _case(shape, seed=9)
    for weighted, smoothing, ignore in [(False, 0.0, -100), (True, 0.0, -100), (True, 0.3, -100),
                                        (False, 0.1, 2)]:
        tt = t.copy()
        if ignore != -100 and tt.ndim:
            tt[tt == -100] = ignore
        xs = cnncore.tensor(x, requires_grad=True)
        kw = dict(weight=cnncore.tensor(w) if weighted else None, ignore_index=ignore,
                  reduction=reduction, label_smoothing=smoothing)
        loss = F.cross_entropy(xs, cnncore.tensor(tt), **kw)
        tx = torch.tensor(x, requires_grad=True)
        tkw = dict(kw, weight=torch.tensor(w) if weighted else None)
        tl = torch.nn.functional.cross_entropy(tx, torch.tensor(tt), **tkw)
        what = f"cross_entropy {shape} {reduction} w={weighted} ls={smoothing} ii={ignore}"
        check_close(loss, tl, rtol=1e-5, atol=1e-6, what=what)
        g = np.random.default_rng(2).standard_normal(tl.shape).astype(np.float32)
        loss.backward(cnncore.tensor(g))
        tl.backward(torch.tensor(g))
        check_close(xs.grad, tx.grad, rtol=1e-4, atol=1e-6, what=what + " grad")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_probability_targets_against_torch(reduction):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    q = rng.dirichlet(np.ones(5), size=(4, 3)).transpose(0, 2, 1).astype(np.float32)
    w = rng.uniform(0.5, 2.0, 5).astype(np.float32)
    xs, qs = cnncore.tensor(x, requires_grad=True), cnncore.tensor(q, requires_grad=True)
    loss = F.cross_entropy(xs, qs, weight=cnncore.tensor(w), reduction=reduction,
                           label_smoothing=0.2)
    tx, tq = torch.tensor(x, requires_grad=True), torch.tensor(q, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, tq, weight=torch.tensor(w),
                                           reduction=reduction, label_smoothing=0.2)
    check_close(loss, tl, rtol=1e-5, atol=1e-6, what="soft cross_entropy")
    g = rng.standard_normal(tl.shape).astype(np.float32)
    loss.backward(cnncore.tensor(g))
    tl.backward(torch.tensor(g))
    check_close(xs.grad, tx.grad, rtol=1e-4, atol=1e-6, what="soft cross_entropy grad")
    check_close(qs.grad, tq.grad, rtol=1e-4, atol=1e-6, what="soft cross_entropy target grad")
    args = (_core.from_numpy(np.ascontiguousarray(g)), _core.log_softmax_forward(xs._c, 1), qs._c,
            _core.from_numpy(w), RED[reduction], 0.2, _core.full([], 12.0))
    check_close(_core.cross_entropy_logp_backward_target(*args),
                _core.reference.cross_entropy_logp_backward_target(*args), rtol=1e-5, atol=1e-7,
                what="target grad vs reference")


def test_nll_loss_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    x, t, w = _case((6, 4, 3), seed=5)
    lp = np.log(np.random.default_rng(0).dirichlet(np.ones(4), size=(6, 3))).transpose(0, 2, 1)
    lp = np.ascontiguousarray(lp, dtype=np.float32)
    for reduction in ["none", "mean", "sum"]:
        xs = cnncore.tensor(lp, requires_grad=True)
        loss = F.nll_loss(xs, cnncore.tensor(t), cnncore.tensor(w), reduction=reduction)
        tx = torch.tensor(lp, requires_grad=True)
        tl = torch.nn.functional.nll_loss(tx, torch.tensor(t), torch.tensor(w), reduction=reduction)
        check_close(loss, tl, rtol=1e-5, atol=1e-6, what=f"nll_loss {reduction}")
        loss.backward(cnncore.tensor(np.ones(tl.shape, np.float32)))
        tl.backward(torch.ones(tl.shape))
        check_close(xs.grad, tx.grad, rtol=1e-5, atol=1e-7, what=f"nll_loss grad {reduction}")


@pytest.mark.parametrize("name,kwargs", [
    ("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}),
])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_regression_losses_against_torch(name, kwargs, reduction):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 17)).astype(np.float32)
    y = rng.standard_normal((2, 3, 17)).astype(np.float32)
    a, b = cnncore.tensor(x, requires_grad=True), cnncore.tensor(y, requires_grad=True)
    loss = getattr(F, name)(a, b, reduction=reduction, **kwargs)
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    tl = getattr(torch.nn.functional, name)(ta, tb, reduction=reduction, **kwargs)
    check_close(loss, tl, rtol=1e-5, atol=1e-6, what=f"{name} {reduction}")
    g = rng.standard_normal(tl.shape).astype(np.float32)
    loss.backward(cnncore.tensor(g))
    tl.backward(torch.tensor(g))
    check_close(a.grad, ta.grad, rtol=1e-5, atol=1e-7, what=f"{name} input grad")
    check_close(b.grad, tb.grad, rtol=1e-5, atol=1e-7, what=f"{name} target grad")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mse_matches_reference(reduction):
    rng = np.random.default_rng(8)
    x = _core.from_numpy(rng.standard_normal((3, 40001)).astype(np.float32))
    t = _core.from_numpy(rng.standard_normal((3, 40001)).astype(np.float32))
    red = RED[reduction]
    loss = _core.mse_loss_forward(x, t, red)
    check_close(loss, _core.reference.mse_loss_forward(x, t, red), rtol=1e-6, what="mse")
    g = _core.full(list(loss.shape), 1.5)
    check_close(_core.mse_loss_backward(g, x, t, red),
                _core.reference.mse_loss_backward(g, x, t, red), rtol=1e-6, atol=1e-9,
                what="mse backward")


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_cross_entropy_against_torch(reduction):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((4, 6)).astype(np.float32) * 3
    p = (1 / (1 + np.exp(-logits))).astype(np.float32)
    p[0, :2] = [0.0, 1.0]  # torch clamps the logs at -100
    t = rng.uniform(size=(4, 6)).astype(np.float32)
    w = rng.uniform(0.5, 2, (6,)).astype(np.float32)
    pw = rng.uniform(0.5, 3, (6,)).astype(np.float32)
    a, at = cnncore.tensor(p, requires_grad=True), cnncore.tensor(t, requires_grad=True)
    loss = F.binary_cross_entropy(a, at, cnncore.tensor(w), reduction=reduction)
    ta, tt = torch.tensor(p, requires_grad=True), torch.tensor(t, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy(ta, tt, torch.tensor(w), reduction=reduction)
    check_close(loss, tl, rtol=1e-5, atol=1e-5, what="bce")
    loss.backward(cnncore.tensor(np.ones(tl.shape, np.float32)))
    tl.backward(torch.ones(tl.shape))
    check_close(a.grad, ta.grad, rtol=1e-4, atol=1e-5, what="bce grad")
    check_close(at.grad, tt.grad, rtol=1e-4, atol=1e-5, what="bce target grad")

    b, bt = cnncore.tensor(logits, requires_grad=True), cnncore.tensor(t, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(b, bt, cnncore.tensor(w), reduction=reduction,
                                              pos_weight=cnncore.tensor(pw))
    tb, tbt = torch.tensor(logits, requires_grad=True), torch.tensor(t, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy_with_logits(
        tb, tbt, torch.tensor(w), reduction=reduction, pos_weight=torch.tensor(pw))
    check_close(loss, tl, rtol=1e-5, atol=1e-6, what="bce_with_logits")
    loss.backward(cnncore.tensor(np.ones(tl.shape, np.float32)))
    tl.backward(torch.ones(tl.shape))
    check_close(b.grad, tb.grad, rtol=1e-5, atol=1e-6, what="bce_with_logits grad")
    check_close(bt.grad, tbt.grad, rtol=1e-5, atol=1e-6, what="bce_with_logits target grad")


def test_gradcheck_cross_entropy_and_mse():
    x, t, w = _case((3, 4, 2), seed=12)
    gradcheck(lambda a: F.cross_entropy(a, cnncore.tensor(t), cnncore.tensor(w),
                                        label_smoothing=0.2), [x])
    gradcheck(lambda a: F.cross_entropy(a, cnncore.tensor(t), reduction="none"), [x])
    rng = np.random.default_rng(0)
    gradcheck(lambda a, b: F.mse_loss(a, b), [rng.standard_normal((3, 5)),
                                              rng.standard_normal((3, 5))])
    gradcheck(lambda a, b: F.smooth_l1_loss(a, b, reduction="sum", beta=0.7),
              [rng.standard_normal((2, 5)), rng.standard_normal((2, 5)) + 3])


def test_all_ignored_mean_is_nan_like_torch():
    x = cnncore.tensor(np.zeros((2, 3), np.float32))
    loss = F.cross_entropy(x, cnncore.tensor(np.array([-100, -100])))
    assert np.isnan(loss.item())
    assert F.cross_entropy(x, cnncore.tensor(np.array([-100, -100])), reduction="sum").item() == 0.0


def test_legacy_size_average_and_reduce():
    x, t, _ = _case((4, 3), seed=1, with_ignored=False)
    xs, ts = cnncore.tensor(x), cnncore.tensor(t)
    s = F.cross_entropy(xs, ts, reduction="sum").item()
    check_close(F.cross_entropy(xs, ts, size_average=False).item(), s, what="size_average=False")
    assert F.cross_entropy(xs, ts, reduce=False).shape == (4,)


def test_bad_inputs():
    x = cnncore.tensor(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"cross_entropy: target value 7 .*out of range.*< 5"):
        F.cross_entropy(x, cnncore.tensor(np.array([1, 7])))
    with pytest.raises(ValueError, match=r"nll_loss: target value -3"):
        F.nll_loss(x, cnncore.tensor(np.array([-3, 0])))
    with pytest.raises(TypeError, match="nll_loss: target must be int64 class indices, but got "
                                        "float32"):
        F.nll_loss(x, cnncore.tensor(np.array([1.0, 2.0])))
    with pytest.raises(TypeError, match="cross_entropy: target must be int64 class indices"):
        F.cross_entropy(x, cnncore.tensor(np.array([1.0, 2.0])))
    with pytest.raises(ValueError, match=r"cross_entropy: target must have shape \(2,\)"):
        F.cross_entropy(x, cnncore.tensor(np.array([1, 2, 3])))
    with pytest.raises(ValueError, match=r"weight must be 1-D with one value per class \(5\)"):
        F.cross_entropy(x, cnncore.tensor(np.array([1, 2])), weight=cnncore.ones(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, cnncore.tensor(np.array([1, 2])), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], but got 1.5"):
        F.cross_entropy(x, cnncore.tensor(np.array([1, 2])), label_smoothing=1.5)
    with pytest.raises(ValueError, match="mse_loss: target shape"):
        F.mse_loss(x, cnncore.zeros(5, 2))
    with pytest.raises(TypeError, match="mse_loss: target must be float32, but got int64"):
        F.mse_loss(x, cnncore.tensor(np.zeros((2, 5), np.int64)))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities"):
        F.binary_cross_entropy(cnncore.tensor(np.full((2, 5), 1.5, np.float32)), x)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be >= 0"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(TypeError, match="cross_entropy: input must be a Tensor"):
        F.cross_entropy("x", cnncore.tensor(np.array([1])))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_weighted_regression_losses_against_torch(name, reduction):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 7)).astype(np.float32)
    y = rng.standard_normal((3, 7)).astype(np.float32)
    w = rng.uniform(0.1, 2.0, (3, 7)).astype(np.float32)
    a = cnncore.tensor(x, requires_grad=True)
    loss = getattr(F, name)(a, cnncore.tensor(y), reduction=reduction, weight=cnncore.tensor(w))
    ta = torch.tensor(x, requires_grad=True)
    tl = getattr(torch.nn.functional, name)(ta, torch.tensor(y), reduction=reduction,
                                            weight=torch.tensor(w))
    check_close(loss, tl, rtol=1e-5, atol=1e-6, what=f"weighted {name} {reduction}")
    loss.backward(cnncore.tensor(np.ones(tl.shape, np.float32)))
    tl.backward(torch.ones(tl.shape))
    check_close(a.grad, ta.grad, rtol=1e-5, atol=1e-7, what=f"weighted {name} grad")
    if name == "mse_loss":
        red = RED[reduction]
        args = (_core.from_numpy(x), _core.from_numpy(y), red, _core.from_numpy(w))
        check_close(_core.mse_loss_forward(*args), _core.reference.mse_loss_forward(*args),
                    rtol=1e-6, what="weighted mse vs reference")
    with pytest.raises(ValueError, match=f"{name}: weight must have the input's shape"):
        getattr(F, name)(a, cnncore.tensor(y), weight=cnncore.ones(7))
