"""SGEMM, linear and matmul: against the reference twins (never skipped), PyTorch, and finite
differences; every ISA path; 1 and 2 threads; bad shapes."""

from __future__ import annotations

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

SIZES = [1, 7, 13, 31, 33, 65, 127, 257]


def rand(rng, *shape):
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def core(arr):
    return _core.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


@pytest.fixture(params=[1, 2])
def threads(request):
    previous = _core.get_num_threads()
    _core.set_num_threads(request.param)
    yield request.param
    _core.set_num_threads(previous)


def gemm_tol(k):
    return dict(rtol=1e-4, atol=2e-5 * np.sqrt(k + 1))


# ---- raw GEMM vs the reference ----------------------------------------------------------------
def test_gemm_ragged_sizes(isa, threads):
    rng = np.random.default_rng(0)
    for i, m in enumerate(SIZES):
        for j, n in enumerate(SIZES):
            k = SIZES[(i + 2 * j) % len(SIZES)]
            a, b = rand(rng, m, k), rand(rng, k, n)
            got = _core.gemm(core(a), core(b))
            check_close(got, _core.reference.gemm(core(a), core(b)), **gemm_tol(k),
                        what=f"{isa} threads={threads} M={m} N={n} K={k}")


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("mnk", [(65, 33, 257), (7, 300, 13), (127, 1, 31), (1, 127, 65),
                                 (256, 49, 150)])  # the last one takes the C^T path
def test_gemm_transposes_alpha_beta(isa, trans_a, trans_b, mnk):
    m, n, k = mnk
    rng = np.random.default_rng(m * n + k)
    a = rand(rng, *((k, m) if trans_a else (m, k)))
    b = rand(rng, *((n, k) if trans_b else (k, n)))
    c = rand(rng, m, n)
    for alpha, beta in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)]:
        args = (core(a), core(b), trans_a, trans_b, alpha, beta, core(c))
        got = _core.gemm(*args)
        check_close(got, _core.reference.gemm(*args), **gemm_tol(k),
                    what=f"{isa} ta={trans_a} tb={trans_b} M={m} N={n} K={k} a={alpha} b={beta}")
        op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
        expect = alpha * (op_a.astype(np.float64) @ op_b) + beta * c
        check_close(got, expect, **gemm_tol(k), what="vs numpy float64")


def test_gemm_beyond_cache_blocks(isa, threads):
    """More columns than one NC block per thread and more rows than one MC block."""
    rng = np.random.default_rng(2)
    for m, n, k, ta in [(150, 3100, 70, False), (7, 6500, 20, True)]:
        a = rand(rng, *((k, m) if ta else (m, k)))
        b, c = rand(rng, k, n), rand(rng, m, n)
        args = (core(a), core(b), ta, False, 1.0, 0.5, core(c))
        check_close(_core.gemm(*args), _core.reference.gemm(*args), **gemm_tol(k),
                    what=f"{isa} threads={threads} M={m} N={n} K={k}")


def test_gemm_beta_zero_ignores_nan(isa):
    rng = np.random.default_rng(1)
    for m, n, k in [(13, 31, 33), (64, 70, 1), (1, 1, 1)]:
        a, b = rand(rng, m, k), rand(rng, k, n)
        c = np.full((m, n), np.nan, dtype=np.float32)
        got = _core.gemm(core(a), core(b), alpha=1.0, beta=0.0, c=core(c))
        assert np.isfinite(got.numpy()).all(), f"{isa} M={m} N={n} K={k}: NaN leaked from C"
        check_close(got, a.astype(np.float64) @ b, **gemm_tol(k))


def test_gemm_degenerate():
    c = np.full((3, 4), 2.0, dtype=np.float32)
    got = _core.gemm(core(np.zeros((3, 0))), core(np.zeros((0, 4))), beta=0.5, c=core(c))
    check_close(got, np.full((3, 4), 1.0), what="K == 0 scales C")
    got = _core.gemm(core(np.ones((3, 5))), core(np.ones((5, 4))), alpha=0.0, beta=0.0,
                     c=core(np.full((3, 4), np.nan)))
    check_close(got, np.zeros((3, 4)), what="alpha == 0, beta == 0 clears C")
    assert _core.gemm(core(np.zeros((0, 5))), core(np.ones((5, 4)))).shape == (0, 4)


def test_gemm_blocking_reports_path(isa):
    blk = _core.gemm_blocking()
    expected = {"baseline": (4, 8), "avx2": (6, 16), "avx512": (14, 32)}[isa]
    assert (blk.mr, blk.nr) == expected
    assert blk.mc % blk.mr == 0 and blk.nc % blk.nr == 0


def test_gemm_threads_agree(isa):
    """A split across threads changes which thread computes each tile, never the result."""
    rng = np.random.default_rng(3)
    for m, n, k in [(64, 3136 // 4, 576 // 4), (512, 49, 600), (6, 1000, 100)]:
        a, b = rand(rng, m, k), rand(rng, k, n)
        prev = _core.get_num_threads()
        try:
            _core.set_num_threads(1)
            one = _core.gemm(core(a), core(b)).numpy().copy()
            _core.set_num_threads(2)
            two = _core.gemm(core(a), core(b)).numpy()
        finally:
            _core.set_num_threads(prev)
        np.testing.assert_array_equal(one, two, err_msg=f"{isa} M={m} N={n} K={k}")


def test_gemm_bad_shapes():
    a, b = core(np.ones((3, 4))), core(np.ones((5, 6)))
    with pytest.raises(ValueError, match=r"gemm: a shape \(3, 4\).*b shape \(5, 6\).*4 != 5"):
        _core.gemm(a, b)
    with pytest.raises(ValueError, match=r"gemm: c must have shape \(3, 6\)"):
        _core.gemm(a, core(np.ones((4, 6))), c=core(np.ones((2, 2))))
    with pytest.raises(ValueError, match="gemm: a must be 2-D"):
        _core.gemm(core(np.ones(3)), b)
    with pytest.raises(TypeError, match="gemm"):
        _core.gemm(_core.from_numpy(np.ones((3, 4), dtype=np.int64)), b)


# ---- linear -----------------------------------------------------------------------------------
LINEAR_SHAPES = [((5, 7), 3), ((1, 13), 31), ((2, 3, 33), 17), ((65,), 9), ((4, 0), 5), ((0, 6), 3)]


@pytest.mark.parametrize("xshape,out", LINEAR_SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_vs_reference(isa, xshape, out, with_bias):
    rng = np.random.default_rng(len(xshape) * 100 + out)
    x, w, b = rand(rng, *xshape), rand(rng, out, xshape[-1]), rand(rng, out)
    bias = core(b) if with_bias else None
    y = _core.linear_forward(core(x), core(w), bias)
    check_close(y, _core.reference.linear_forward(core(x), core(w), bias), rtol=1e-4, atol=1e-5,
                what=f"linear forward {xshape} -> {out}")
    g = rand(rng, *(xshape[:-1] + (out,)))
    check_close(_core.linear_backward_input(core(g), core(w)),
                _core.reference.linear_backward_input(core(g), core(w)), rtol=1e-4, atol=1e-5,
                what="linear backward input")
    check_close(_core.linear_backward_weight(core(g), core(x)),
                _core.reference.linear_backward_weight(core(g), core(x)), rtol=1e-4, atol=1e-5,
                what="linear backward weight")
    check_close(_core.linear_backward_bias(core(g)), _core.reference.linear_backward_bias(core(g)),
                rtol=1e-5, atol=1e-5, what="linear backward bias")


def test_linear_vs_torch():
    torch = pytest.importorskip("torch", reason="torch is only a test-time comparison")
    rng = np.random.default_rng(7)
    x, w, b = rand(rng, 3, 4, 37), rand(rng, 19, 37), rand(rng, 19)
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    cx, cw, cb = (cnncore.tensor(v, requires_grad=True) for v in (x, w, b))
    cy = F.linear(cx, cw, cb)
    check_close(cy, ty, rtol=1e-4, atol=1e-5, what="linear forward vs torch")
    g = rand(rng, *ty.shape)
    ty.backward(torch.tensor(g))
    cy.backward(cnncore.tensor(g))
    for c, t, name in [(cx, tx, "input"), (cw, tw, "weight"), (cb, tb, "bias")]:
        check_close(c.grad, t.grad, rtol=1e-4, atol=1e-4, what=f"linear grad {name} vs torch")


def test_linear_gradcheck():
    rng = np.random.default_rng(11)
    gradcheck(lambda x, w, b: F.linear(x, w, b),
              [rand(rng, 2, 3, 5), rand(rng, 4, 5), rand(rng, 4)])
    gradcheck(lambda x, w: F.linear(x, w), [rand(rng, 5), rand(rng, 3, 5)])


def test_linear_bad_inputs():
    x, w = np.ones((2, 5), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"linear: input shape \(2, 5\).*weight shape \(3, 4\)"):
        F.linear(x, w)
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(3,\)"):
        F.linear(np.ones((2, 4), np.float32), w, np.ones(4, np.float32))
    with pytest.raises(ValueError, match="linear: weight must be 2-D"):
        F.linear(x, np.ones(5, np.float32))
    with pytest.raises(TypeError, match="linear: input"):
        F.linear([[1.0]], w)
    with pytest.raises(TypeError, match="linear"):
        F.linear(np.ones((2, 4), np.int64), w)
    with pytest.raises(ValueError, match=r"linear_backward_weight: grad_output shape \(2, 3\)"):
        _core.linear_backward_weight(core(np.ones((2, 3))), core(np.ones((4, 5))))


# ---- matmul -----------------------------------------------------------------------------------
MATMUL_SHAPES = [
    ((7,), (7,)), ((5, 7), (7,)), ((7,), (7, 3)), ((13, 31), (31, 33)),
    ((2, 5, 7), (7, 3)), ((7,), (2, 7, 3)), ((2, 5, 7), (7,)), ((3, 1, 5, 7), (4, 7, 6)),
    ((2, 1, 65, 33), (1, 3, 33, 17)), ((6, 2, 3), (6, 3, 4)), ((1, 1), (1, 1)), ((0, 3), (3, 4)),
    ((2, 4, 0), (2, 0, 5)),
]


@pytest.mark.parametrize("ashape,bshape", MATMUL_SHAPES)
def test_matmul_vs_reference_and_numpy(isa, ashape, bshape):
    rng = np.random.default_rng(len(ashape) * 10 + len(bshape))
    a, b = rand(rng, *ashape), rand(rng, *bshape)
    y = _core.matmul(core(a), core(b))
    expect = np.matmul(a.astype(np.float64), b.astype(np.float64))
    check_close(y, expect, rtol=1e-4, atol=1e-5, what=f"matmul {ashape} @ {bshape} vs numpy")
    check_close(y, _core.reference.matmul(core(a), core(b)), rtol=1e-4, atol=1e-5,
                what=f"matmul {ashape} @ {bshape} vs reference")


def test_matmul_strided_views(isa):
    """Transposed and permuted views go in without copies; expanded (stride 0) ones get copied."""
    rng = np.random.default_rng(5)
    a, b = rand(rng, 3, 9, 5), rand(rng, 3, 7, 9)
    at = core(a).permute([0, 2, 1])  # (3, 5, 9), column-major last two dims
    bt = core(b).permute([0, 2, 1])  # (3, 9, 7)
    expect = np.matmul(a.transpose(0, 2, 1).astype(np.float64), b.transpose(0, 2, 1))
    check_close(_core.matmul(at, bt), expect, rtol=1e-4, atol=1e-5, what="transposed views")
    row = core(rand(rng, 1, 9))
    ex = row.expand([4, 9])  # stride 0 rows
    check_close(_core.matmul(ex, core(b[0].T)), np.matmul(np.repeat(row.numpy(), 4, 0), b[0].T),
                rtol=1e-4, atol=1e-5, what="expanded view")
    sl = core(rand(rng, 10, 12)).narrow(1, 2, 9)  # padded row stride
    check_close(_core.matmul(sl, core(a[0])), np.matmul(sl.numpy(), a[0]), rtol=1e-4, atol=1e-5,
                what="narrowed view")


@pytest.mark.parametrize("ashape,bshape", [s for s in MATMUL_SHAPES if 0 not in s[0] + s[1]])
def test_matmul_vs_torch(ashape, bshape):
    torch = pytest.importorskip("torch", reason="torch is only a test-time comparison")
    rng = np.random.default_rng(17)
    a, b = rand(rng, *ashape), rand(rng, *bshape)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ty = torch.matmul(ta, tb)
    ca, cb = cnncore.tensor(a, requires_grad=True), cnncore.tensor(b, requires_grad=True)
    cy = F.matmul(ca, cb)
    check_close(cy, ty, rtol=1e-4, atol=1e-5, what=f"matmul {ashape} @ {bshape} vs torch")
    g = rand(rng, *ty.shape)
    ty.backward(torch.tensor(g))
    cy.backward(cnncore.tensor(g))
    check_close(ca.grad, ta.grad, rtol=1e-4, atol=1e-4, what=f"grad input {ashape} @ {bshape}")
    check_close(cb.grad, tb.grad, rtol=1e-4, atol=1e-4, what=f"grad other {ashape} @ {bshape}")


@pytest.mark.parametrize("ashape,bshape", [((3, 4), (4, 2)), ((4,), (4,)), ((2, 3, 4), (4,)),
                                           ((3, 1, 2, 3), (2, 3, 2)), ((2, 3), (2, 3, 2))])
def test_matmul_gradcheck(ashape, bshape):
    rng = np.random.default_rng(23)
    gradcheck(lambda a, b: F.matmul(a, b), [rand(rng, *ashape), rand(rng, *bshape)])


def test_matmul_operator():
    rng = np.random.default_rng(29)
    a, b = rand(rng, 3, 4), rand(rng, 4, 5)
    check_close(cnncore.tensor(a) @ cnncore.tensor(b), a.astype(np.float64) @ b, rtol=1e-5,
                atol=1e-6, what="@ operator")


def test_matmul_bad_inputs():
    with pytest.raises(ValueError, match=r"matmul: input shape \(2, 3\) and other shape \(4, 5\)"):
        F.matmul(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"matmul: the batch dimensions.*\(2, 3, 4\).*\(5, 4, 3\)"):
        F.matmul(np.ones((2, 3, 4), np.float32), np.ones((5, 4, 3), np.float32))
    with pytest.raises(ValueError, match="matmul: input must be at least 1-D"):
        F.matmul(cnncore.tensor(1.0), np.ones(3, np.float32))
    with pytest.raises(TypeError, match="matmul: other"):
        F.matmul(np.ones((2, 3), np.float32), "x")
