"""local_response_norm, batch_norm and dropout: fast kernels vs the reference twins on every ISA,
vs PyTorch, finite differences, dropout statistics and determinism, bad inputs."""

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck


def _rand(shape, seed=0, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(np.float32)


# ---- local response norm ------------------------------------------------------------------------
LRN_CASES = [((2, 7, 5, 3), 5, 1e-2, 0.75, 2.0), ((1, 13, 9), 3, 0.5, 0.75, 1.0),
             ((3, 5, 70), 2, 0.3, 0.5, 1.0), ((2, 4, 3, 3), 8, 1.0, 0.6, 1.5),
             ((1, 3, 1, 1), 1, 0.2, 1.0, 1.0), ((2, 96, 3, 5), 5, 1e-4, 0.75, 2.0)]


@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES)
def test_lrn_matches_reference(isa, shape, size, alpha, beta, k):
    x = _core.from_numpy(_rand(shape, seed=1, scale=2.0))
    dy = _core.from_numpy(_rand(shape, seed=2))
    args = (size, alpha, beta, k)
    what = f"lrn {shape} size={size} beta={beta} [{isa}]"
    check_close(_core.local_response_norm_forward(x, *args),
                _core.reference.local_response_norm_forward(x, *args), rtol=1e-5, atol=1e-6,
                what=what)
    check_close(_core.local_response_norm_backward(dy, x, *args),
                _core.reference.local_response_norm_backward(dy, x, *args), rtol=1e-4, atol=1e-6,
                what=what + " backward")


@pytest.mark.parametrize("alpha", [1e-4, 0.5])
def test_lrn_against_torch_alexnet(alpha):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    x = _rand((2, 16, 6, 7), seed=3, scale=3.0)
    g = _rand(x.shape, seed=4)
    a = cnncore.tensor(x, requires_grad=True)
    y = F.local_response_norm(a, 5, alpha=alpha, beta=0.75, k=2.0)
    y.backward(cnncore.tensor(g))
    ta = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.local_response_norm(ta, 5, alpha=alpha, beta=0.75, k=2.0)
    ty.backward(torch.tensor(g))
    check_close(y, ty, rtol=1e-5, atol=1e-6, what="lrn forward")
    check_close(a.grad, ta.grad, rtol=1e-4, atol=1e-6, what="lrn backward")
    check_close(cnncore.nn.LocalResponseNorm(5, alpha, 0.75, 2.0)(cnncore.tensor(x)), ty,
                rtol=1e-5, atol=1e-6, what="nn.LocalResponseNorm")


def test_lrn_gradcheck():
    gradcheck(lambda t: F.local_response_norm(t, 3, alpha=0.5, beta=0.75, k=1.0),
              [_rand((2, 5, 2, 2), seed=5)], eps=1e-2, rtol=2e-2, atol=2e-3)


# ---- batch norm ---------------------------------------------------------------------------------
BN_SHAPES = [(5, 3), (33, 130), (4, 7, 3, 5), (2, 5, 9), (1, 4, 2, 2), (3, 16, 1, 1)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_reference(isa, shape, training, affine):
    C = shape[1]
    x = _rand(shape, seed=6, scale=2.0, shift=0.5)
    w = _rand((C,), seed=7) if affine else None
    b = _rand((C,), seed=8) if affine else None
    rm0, rv0 = _rand((C,), seed=9), np.abs(_rand((C,), seed=10)) + 0.5
    outs = []
    for mod in (_core, _core.reference):
        rm, rv = rm0.copy(), rv0.copy()
        y, sm, si = mod.batch_norm_forward(
            _core.from_numpy(x), _core.from_numpy(rm), _core.from_numpy(rv),
            None if w is None else _core.from_numpy(w), None if b is None else _core.from_numpy(b),
            training, 0.1, 1e-5)
        outs.append((y.numpy().copy(), sm.numpy().copy(), si.numpy().copy(), rm, rv))
    what = f"batch_norm {shape} training={training} affine={affine} [{isa}]"
    for got, exp, name in zip(outs[0], outs[1], ["y", "mean", "invstd", "running_mean",
                                                 "running_var"]):
        check_close(got, exp, rtol=1e-5, atol=1e-6, what=f"{what} {name}")
    dy = _core.from_numpy(_rand(shape, seed=11))
    sm, si = _core.from_numpy(outs[1][1]), _core.from_numpy(outs[1][2])
    wc = None if w is None else _core.from_numpy(w)
    got = _core.batch_norm_backward(dy, _core.from_numpy(x), wc, sm, si, training)
    exp = _core.reference.batch_norm_backward(dy, _core.from_numpy(x), wc, sm, si, training)
    for g_, e_, name in zip(got, exp, ["dx", "dweight", "dbias"]):
        check_close(g_, e_, rtol=1e-4, atol=1e-5, what=f"{what} {name}")


@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4, 6)])
@pytest.mark.parametrize("training,affine,track", [(True, True, True), (False, True, True),
                                                   (True, False, True), (True, True, False),
                                                   (False, False, True)])
def test_batch_norm_against_torch(shape, training, affine, track):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    C = shape[1]
    x = _rand(shape, seed=12, scale=3.0, shift=-1.0)
    g = _rand(shape, seed=13)
    w, b = _rand((C,), seed=14), _rand((C,), seed=15)
    rm, rv = _rand((C,), seed=16), np.abs(_rand((C,), seed=17)) + 0.3
    ours_rm, ours_rv = cnncore.tensor(rm), cnncore.tensor(rv)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    a = cnncore.tensor(x, requires_grad=True)
    wa = cnncore.tensor(w, requires_grad=True) if affine else None
    ba = cnncore.tensor(b, requires_grad=True) if affine else None
    y = F.batch_norm(a, ours_rm if track else None, ours_rv if track else None, wa, ba,
                     training=training, momentum=0.2, eps=1e-3)
    y.backward(cnncore.tensor(g))
    ta = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True) if affine else None
    tb = torch.tensor(b, requires_grad=True) if affine else None
    ty = torch.nn.functional.batch_norm(ta, t_rm if track else None, t_rv if track else None, tw,
                                        tb, training=training, momentum=0.2, eps=1e-3)
    ty.backward(torch.tensor(g))
    what = f"batch_norm {shape} training={training} affine={affine} track={track}"
    check_close(y, ty, rtol=1e-5, atol=1e-5, what=what)
    check_close(a.grad, ta.grad, rtol=1e-4, atol=1e-5, what=what + " dx")
    if affine:
        check_close(wa.grad, tw.grad, rtol=1e-4, atol=1e-5, what=what + " dweight")
        check_close(ba.grad, tb.grad, rtol=1e-4, atol=1e-5, what=what + " dbias")
    check_close(ours_rm, t_rm, rtol=1e-6, atol=1e-6, what=what + " running_mean")
    check_close(ours_rv, t_rv, rtol=1e-6, atol=1e-6, what=what + " running_var")


def test_batch_norm_module_matches_torch_over_steps():
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    ours, theirs = cnncore.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    for step in range(3):
        x = _rand((4, 3, 5, 5), seed=20 + step, scale=2.0, shift=step)
        check_close(ours(cnncore.tensor(x)), theirs(torch.tensor(x)), rtol=1e-5, atol=1e-5,
                    what=f"train step {step}")
    check_close(ours.running_mean, theirs.running_mean, rtol=1e-6, atol=1e-6, what="running_mean")
    check_close(ours.running_var, theirs.running_var, rtol=1e-6, atol=1e-6, what="running_var")
    ours.eval(), theirs.eval()
    x = _rand((2, 3, 4, 4), seed=30)
    check_close(ours(cnncore.tensor(x)), theirs(torch.tensor(x)), rtol=1e-5, atol=1e-5, what="eval")


def test_batch_norm_gradcheck():
    x, w, b = _rand((3, 2, 2, 2), seed=31, scale=2.0), _rand((2,), seed=32), _rand((2,), seed=33)
    gradcheck(lambda t, ww, bb: F.batch_norm(t, None, None, ww, bb, training=True), [x, w, b],
              eps=1e-2, rtol=3e-2, atol=3e-3)
    rm, rv = cnncore.tensor(_rand((2,), seed=34)), cnncore.tensor(np.array([0.5, 2.0], np.float32))
    gradcheck(lambda t, ww, bb: F.batch_norm(t, rm, rv, ww, bb, training=False), [x, w, b])


def test_batch_norm_bad_inputs():
    x = cnncore.tensor(_rand((4, 3)))
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel"):
        F.batch_norm(cnncore.tensor(_rand((1, 3))), None, None, training=True)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"batch_norm: weight must be 1-D with one value per "
                                         r"channel \(3\), but got shape \(4,\)"):
        F.batch_norm(x, None, None, weight=cnncore.ones(4), training=True)
    with pytest.raises(ValueError, match=r"batch_norm: input must be \(N, C\) or \(N, C, \*\)"):
        F.batch_norm(cnncore.tensor(_rand((4,))), None, None, training=True)
    with pytest.raises(TypeError, match="batch_norm: input must be float32, but got int64"):
        F.batch_norm(cnncore.tensor(np.ones((4, 3), np.int64)), None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm: eps must be a number, but got nan"):
        F.batch_norm(x, None, None, training=True, eps=float("nan"))


def test_lrn_bad_inputs():
    with pytest.raises(ValueError, match=r"local_response_norm: input must be 3-D or higher"):
        F.local_response_norm(cnncore.tensor(_rand((4, 3))), 2)
    with pytest.raises(ValueError, match="local_response_norm: size must be >= 1, but got 0"):
        F.local_response_norm(cnncore.tensor(_rand((1, 4, 3))), 0)
    with pytest.raises(TypeError, match="local_response_norm: size must be an int"):
        F.local_response_norm(cnncore.tensor(_rand((1, 4, 3))), 2.5)


# ---- dropout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    cnncore.manual_seed(123)
    x = cnncore.ones(200, 500)
    y = F.dropout(x, p).numpy()
    kept = y != 0
    assert abs(1 - kept.mean() - p) < 0.01, f"dropped {1 - kept.mean():.4f}, expected {p}"
    check_close(y[kept], np.full(kept.sum(), 1 / (1 - p), np.float32), rtol=1e-6, what="scale")
    assert abs(y.mean() - 1.0) < 0.03, f"mean {y.mean():.4f} not preserved"


def test_dropout_mask_independent_of_threads_and_matches_reference():
    x = _core.from_numpy(_rand((8, 300, 50), seed=40))
    prev = cnncore.get_num_threads()
    masks = []
    try:
        for n in (1, 2):
            cnncore.set_num_threads(n)
            cnncore.manual_seed(7)
            masks.append(_core.dropout_forward(x, 0.3, False)[1].numpy().copy())
    finally:
        cnncore.set_num_threads(prev)
    assert np.array_equal(masks[0], masks[1])
    cnncore.manual_seed(7)
    y_ref, m_ref = _core.reference.dropout_forward(x, 0.3, False)
    assert np.array_equal(masks[0], m_ref.numpy())
    cnncore.manual_seed(7)
    check_close(_core.dropout_forward(x, 0.3, False)[0], y_ref, rtol=0, atol=0, what="dropout y")
    cnncore.manual_seed(8)
    assert not np.array_equal(_core.dropout_forward(x, 0.3, False)[1].numpy(), masks[0])


def test_dropout_backward_uses_the_mask():
    cnncore.manual_seed(3)
    x = cnncore.tensor(_rand((4, 6, 5), seed=41), requires_grad=True)
    y = F.dropout(x, 0.4)
    g = _rand((4, 6, 5), seed=42)
    y.backward(cnncore.tensor(g))
    ratio = np.divide(y.detach().numpy(), x.detach().numpy())
    check_close(x.grad, g * ratio, rtol=1e-5, atol=1e-6, what="dropout grad")


def test_dropout2d_drops_whole_channels():
    cnncore.manual_seed(5)
    x = cnncore.tensor(_rand((16, 32, 3, 4), seed=43, shift=5.0), requires_grad=True)
    y = F.dropout2d(x, 0.5)
    planes = y.detach().numpy().reshape(16 * 32, -1)
    zero = np.all(planes == 0, axis=1)
    assert np.all(zero | np.all(planes != 0, axis=1)), "a channel was only partly dropped"
    assert 0.4 < zero.mean() < 0.6
    y.backward(cnncore.ones(16, 32, 3, 4))
    g = x.grad.numpy().reshape(16 * 32, -1)
    assert np.all(g[zero] == 0) and np.allclose(g[~zero], 2.0)
    cnncore.manual_seed(5)
    y3 = F.dropout2d(cnncore.tensor(_rand((4, 8, 10), seed=44, shift=5.0)), 0.5).numpy()
    assert np.all(np.all(y3 == 0, axis=2) | np.all(y3 != 0, axis=2)), "3-D is (N, C, L)"


def test_dropout_edge_cases():
    x = cnncore.tensor(_rand((3, 4), seed=45))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    cnncore.manual_seed(1)
    z = cnncore.tensor(np.ones((4, 4), np.float32))
    assert F.dropout(z, 0.5, inplace=True) is z and set(np.unique(z.numpy())) <= {0.0, 2.0}
    m = cnncore.nn.Dropout(0.5)
    m.eval()
    assert np.array_equal(m(x).numpy(), x.numpy())


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_bad_p(p):
    x = cnncore.tensor(_rand((3, 4)))
    with pytest.raises(ValueError, match=f"dropout: dropout probability p has to be between 0 and "
                                         f"1, but got {p}"):
        F.dropout(x, p)
    with pytest.raises(ValueError, match="dropout2d: dropout probability"):
        F.dropout2d(cnncore.tensor(_rand((1, 3, 4))), p, training=False)
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\]"):
        _core.dropout_forward(x._c, p, False)
    with pytest.raises(ValueError, match="dropout: p must be a number, but got nan"):
        F.dropout(x, float("nan"))


def test_blocked_and_strided_inputs_give_the_nchw_result():
    x = _rand((2, 11, 5, 3), seed=50)
    xc = _core.from_numpy(x)
    blocked = xc.to_blocked(8)
    strided = _core.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).permute([0, 3, 1, 2])
    for inp in (blocked, strided):
        check_close(_core.local_response_norm_forward(inp, 3, 0.1, 0.75, 1.0),
                    _core.local_response_norm_forward(xc, 3, 0.1, 0.75, 1.0), rtol=0, atol=0,
                    what="lrn layout")
        check_close(_core.batch_norm_forward(inp, None, None, None, None, True, 0.1, 1e-5)[0],
                    _core.batch_norm_forward(xc, None, None, None, None, True, 0.1, 1e-5)[0],
                    rtol=0, atol=0, what="batch_norm layout")
