"""conv2d: fast paths vs the reference twin on every ISA, vs PyTorch, gradients, bad inputs."""

import itertools

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

# (N, C, H, W, K, kernel (R, S), stride, padding, dilation, groups, what)
SHAPES = [
    (2, 3, 9, 11, 5, (3, 3), 1, 1, 1, 1, "3x3 pad 1"),
    (1, 4, 13, 7, 6, (3, 5), (2, 3), (2, 1), 1, 1, "rect kernel, stride 2x3, batch 1"),
    (3, 5, 10, 10, 4, (2, 2), 3, 0, 1, 1, "stride > kernel"),
    (2, 4, 9, 9, 6, (3, 3), 1, (2, 3), 2, 2, "dilation, padding > k/2, groups 2"),
    (2, 8, 7, 12, 8, (1, 1), 1, 0, 1, 1, "1x1"),
    (2, 6, 7, 9, 12, (1, 1), (2, 1), 0, 1, 3, "1x1 strided, groups 3"),
    (1, 6, 5, 5, 4, (1, 1), 1, 1, 1, 1, "1x1 padded"),
    (2, 7, 13, 17, 7, (3, 3), 1, 1, 1, 7, "depthwise"),
    (3, 5, 12, 11, 10, (3, 3), 2, 1, 1, 5, "depthwise multiplier 2, stride 2"),
    (1, 3, 19, 23, 3, (5, 3), (3, 2), (2, 0), (2, 1), 3, "depthwise dilated stride 3x2"),
    (1, 16, 6, 37, 16, (3, 3), 1, 1, 1, 16, "depthwise wide rows"),
    (2, 4, 6, 7, 4, (3, 3), 1, (3, 2), 1, 4, "depthwise padding > kernel"),
    (2, 4, 9, 8, 8, (2, 3), 1, (0, 3), (2, 1), 4, "depthwise x2 dilated, padding > kernel"),
    (1, 3, 5, 40, 3, (1, 5), 2, (0, 4), 1, 3, "depthwise stride 2 wide, padding > kernel"),
    (5, 3, 8, 8, 4, (3, 3), 1, 0, 1, 1, "batch > threads"),
    (1, 64, 61, 59, 3, (3, 3), 1, 1, 1, 1, "columns in two row tiles"),
    (2, 3, 11, 13, 8, (7, 7), 2, 3, 1, 1, "stem-like 7x7/2"),
    (2, 6, 8, 8, 6, (3, 3), 1, "same", 1, 6, "depthwise same"),
    (2, 3, 10, 9, 4, (4, 2), 2, "same", 1, 1, "same, even kernel, stride 2"),
    (1, 3, 7, 8, 2, (3, 3), 3, "same", 2, 1, "same, dilation 2, stride 3"),
    (2, 3, 10, 9, 4, (3, 2), 1, "valid", 1, 1, "valid"),
    (2, 4, 8, 9, 4, (3, 3), (1, 2), ((0, 3), (2, 1)), 1, 2, "asymmetric padding"),
    # 1x1 GEMMs ragged against every micro-tile (MR 4/6/14 rows, NR 8/16/32 columns): forward M =
    # 29, N = 99, K = 37; backward input M = 37; backward weight M = 29, N = 37, K = 99. Then M = 64
    # and N = 196 (four 14-row tiles and an 8-row one, six 32-column tiles and one vector of 4),
    # all of this thread's A packed once, and one image, so the GEMM splits over the threads.
    (2, 37, 9, 11, 29, (1, 1), 1, 0, 1, 1, "1x1 ragged channels"),
    (1, 71, 14, 14, 64, (1, 1), 1, 0, 1, 1, "1x1 64 out, 14x14"),
    (1, 64, 7, 9, 71, (1, 1), 1, 0, 1, 1, "1x1 71 out, 7x9"),
]
IDS = [s[-1] for s in SHAPES]


def _opts(stride, padding, dilation, groups):
    return cnncore._ops.conv._options(stride, padding, dilation, groups, "conv2d")


def _data(shape, seed):
    n, c, h, w, k, (r, s), stride, padding, dilation, groups, _ = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    return x, wt, b


def _rel(a, e, what, tol=2e-5):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    scale = max(np.abs(e).max(), 1e-6)
    err = np.abs(a - e).max() / scale
    assert err < tol, f"{what}: max error {err:.2e} relative to the output's scale"


def _matches_reference(X, Wc, B, opt, dy, x_shape, w_shape, what):
    """Forward, backward input and backward weight of the fast path against the reference, the
    two gradients both one at a time and from conv2d_backward_input_weight (depthwise: one
    fused pass, its own kernel)."""
    _rel(_core.conv2d_forward(X, Wc, B, opt).numpy(),
         _core.reference.conv2d_forward(X, Wc, B, opt).numpy(), f"forward {what}")
    ref_dx = _core.reference.conv2d_backward_input(dy, Wc, list(x_shape), opt).numpy()
    ref_dw = _core.reference.conv2d_backward_weight(dy, X, list(w_shape), opt).numpy()
    _rel(_core.conv2d_backward_input(dy, Wc, list(x_shape), opt).numpy(), ref_dx,
         f"backward input {what}")
    _rel(_core.conv2d_backward_weight(dy, X, list(w_shape), opt).numpy(), ref_dw,
         f"backward weight {what}")
    dx, dw = _core.conv2d_backward_input_weight(dy, X, Wc, opt)
    _rel(dx.numpy(), ref_dx, f"backward input (with weight) {what}")
    _rel(dw.numpy(), ref_dw, f"backward weight (with input) {what}")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_fast_matches_reference(shape, isa):
    x, w, b = _data(shape, 1)
    *_, stride, padding, dilation, groups, what = shape
    opt = _opts(stride, padding, dilation, groups)
    X, Wc, B = _core.from_numpy(x), _core.from_numpy(w), _core.from_numpy(b)
    y = _core.conv2d_forward(X, Wc, B, opt)
    dy = _core.from_numpy(np.random.default_rng(2).standard_normal(y.shape).astype(np.float32))
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, what)
    _rel(_core.conv2d_backward_bias(dy).numpy(), _core.reference.conv2d_backward_bias(dy).numpy(),
         f"backward bias {what}")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_conv2d_backward_all_masks_match_reference(shape, isa):
    """conv2d_backward gives what the separate backward ops give, for every output mask, and
    None where a gradient is not asked for (the bias summed inside the direct weight gradient)."""
    x, w, b = _data(shape, 5)
    *_, stride, padding, dilation, groups, what = shape
    opt = _opts(stride, padding, dilation, groups)
    X, Wc = _core.from_numpy(x), _core.from_numpy(w)
    y = _core.conv2d_forward(X, Wc, None, opt)
    dy = _core.from_numpy(np.random.default_rng(6).standard_normal(y.shape).astype(np.float32))
    ref = (_core.reference.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy(),
           _core.reference.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy(),
           _core.reference.conv2d_backward_bias(dy).numpy())
    for mask in itertools.product((False, True), repeat=3):
        got = _core.conv2d_backward(dy, X, Wc, opt, mask)
        assert len(got) == 3
        for want, g, r, name in zip(mask, got, ref, ("input", "weight", "bias")):
            if not want:
                assert g is None, f"{name} {what} {mask}"
                continue
            _rel(g.numpy(), r, f"conv2d_backward {name} {what} {mask} ({isa})")


def test_conv2d_backward_checks_its_arguments():
    x = _core.from_numpy(np.zeros((2, 3, 8, 8), np.float32))
    w = _core.from_numpy(np.zeros((4, 3, 3, 3), np.float32))
    opt = _opts(1, 0, 1, 1)
    dy = _core.from_numpy(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="conv2d_backward: grad_output"):
        _core.conv2d_backward(dy, x, w, opt, (True, True, True))
    with pytest.raises(TypeError):
        _core.conv2d_backward(dy, x, w, opt, (True, True))


@pytest.mark.parametrize("algo", ["im2col+gemm", "direct", "gemm-1x1"])
@pytest.mark.parametrize("shape", SHAPES[:9] + SHAPES[13:14], ids=IDS[:9] + IDS[13:14])
def test_forced_algorithm_matches_reference(shape, algo, monkeypatch):
    """CNNCORE_CONV_ALGO forces each path on shapes the default rule sends elsewhere."""
    monkeypatch.setenv("CNNCORE_CONV_ALGO", algo)
    x, w, b = _data(shape, 14)
    *_, stride, padding, dilation, groups, what = shape
    opt = _opts(stride, padding, dilation, groups)
    p = _core.conv2d_params(list(x.shape), list(w.shape), opt)
    chosen = _core.conv2d_algorithm(p).split(":")[0]
    if algo != "gemm-1x1" or (w.shape[2:] == (1, 1) and p.pad_t + p.pad_l + p.pad_b + p.pad_r == 0
                              and stride == 1):
        assert chosen in (algo, "depthwise-direct" if algo == "direct" else algo)
    X, Wc, B = _core.from_numpy(x), _core.from_numpy(w), _core.from_numpy(b)
    y = _core.conv2d_forward(X, Wc, B, opt)
    dy = _core.from_numpy(np.random.default_rng(15).standard_normal(y.shape).astype(np.float32))
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, what)


# Shapes for the register-blocked direct kernel (few input channels) and the depthwise gather:
# every output-channel block size (1, 2, 3, 6 and ragged tails), rows shorter and longer than a
# vector, stride > kernel, padding > kernel/2, dilation, groups, batch 1, a batch the weight
# gradient takes several images at a time with a remainder, planes past the direct backward
# passes' limits (im2col fallback), and a depthwise layer with more than 256 taps per row.
DIRECT_SHAPES = [
    (25, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1, "lenet2-like, 25 images"),
    (3, 1, 12, 13, 6, (5, 5), 1, 0, 1, 1, "lenet1-like"),
    (2, 2, 7, 9, 20, (3, 5), 1, (1, 0), 1, 1, "short rows: channels as lanes, ragged block"),
    (1, 2, 9, 37, 1, (3, 3), 1, 1, 1, 1, "one output channel, wide rows"),
    (2, 3, 8, 9, 2, (3, 2), 1, (2, 1), 1, 1, "two output channels, padding > k/2"),
    (2, 4, 11, 10, 5, (3, 3), 2, 1, 1, 1, "three + two output channels, stride 2"),
    (1, 3, 23, 21, 7, (11, 11), 4, 2, 1, 1, "alexnet-like 11x11/4"),
    (2, 3, 19, 18, 9, (7, 7), 2, 3, 1, 1, "stem-like 7x7/2"),
    (2, 3, 10, 10, 4, (2, 2), 3, 0, 1, 1, "stride > kernel"),
    (1, 4, 12, 11, 6, (3, 3), (1, 2), (2, 2), (2, 1), 2, "dilation, groups 2"),
    (2, 3, 40, 36, 8, (3, 3), 1, 1, 1, 1, "over 1024 pixels: im2col weight gradient"),
    (1, 1, 18, 17, 40, (3, 3), 1, 1, 1, 1, "40 dy planes over the direct backward-input limit"),
    (1, 2, 9, 9, 64, (5, 5), 2, 2, 1, 2, "depthwise x32, stride 2: > 256 taps per row"),
    (1, 3, 13, 12, 9, (3, 3), 2, 0, 1, 3, "depthwise x3, stride 2, batch 1"),
]
DIRECT_IDS = [s[-1] for s in DIRECT_SHAPES]


@pytest.mark.parametrize("shape", DIRECT_SHAPES, ids=DIRECT_IDS)
def test_direct_matches_reference(shape, isa, monkeypatch):
    """The default algorithm (direct / depthwise-direct for these shapes) and, forced, the
    direct kernel for every pass, against the reference twin on every ISA path."""
    x, w, b = _data(shape, 21)
    *_, stride, padding, dilation, groups, what = shape
    opt = _opts(stride, padding, dilation, groups)
    X, Wc, B = _core.from_numpy(x), _core.from_numpy(w), _core.from_numpy(b)
    p = _core.conv2d_params(list(x.shape), list(w.shape), opt)
    assert _core.conv2d_algorithm(p).split(":")[0] in ("direct", "depthwise-direct")
    dy = _core.from_numpy(np.random.default_rng(22).standard_normal(
        tuple(p.output_shape())).astype(np.float32))
    ref = [_core.reference.conv2d_forward(X, Wc, B, opt).numpy(),
           _core.reference.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy(),
           _core.reference.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()]
    for forced in (None, "direct"):
        if forced:
            monkeypatch.setenv("CNNCORE_CONV_ALGO", forced)
        got = [_core.conv2d_forward(X, Wc, B, opt).numpy(),
               _core.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy(),
               _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()]
        for name, a, e in zip(("forward", "backward input", "backward weight"), got, ref):
            _rel(a, e, f"{name} {what} ({forced or 'default'}, {isa})")


def test_direct_ignores_non_finite_pixels_past_short_rows():
    """The direct weight gradient masks the lanes past a short row: an Inf elsewhere in the
    input must not turn a gradient that does not read it into NaN."""
    x = np.zeros((1, 1, 6, 20), np.float32)
    x[0, 0, :, 19] = np.inf  # read only by output column 17 (3 wide kernel, no padding)
    dy = np.ones((1, 2, 4, 18), np.float32)
    dy[:, :, :, 17] = 0.0
    opt = _opts(1, 0, 1, 1)
    dw = _core.conv2d_backward_weight(_core.from_numpy(dy), _core.from_numpy(x), [2, 1, 3, 3],
                                      opt).numpy()
    assert np.isfinite(dw[:, :, :, :2]).all()


def test_blocked_and_strided_inputs():
    """Any memory format is accepted: NCHWc blocked and permuted views give the NCHW result."""
    x, w, b = _data((2, 5, 7, 6, 4, (3, 3), 1, 1, 1, 1, ""), 13)
    opt = _opts(1, 1, 1, 1)
    X, Wc, B = _core.from_numpy(x), _core.from_numpy(w), _core.from_numpy(b)
    expected = _core.conv2d_forward(X, Wc, B, opt).numpy()
    check_close(_core.conv2d_forward(X.to_blocked(8), Wc, B, opt), expected, what="blocked input")
    nhwc = _core.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).permute([0, 3, 1, 2])
    check_close(_core.conv2d_forward(nhwc, Wc, B, opt), expected, what="channels-last view")


@pytest.mark.parametrize("groups,c,k,algo",
                         [(1, 12, 6, None), (4, 4, 4, None), (1, 3, 5, "direct")],
                         ids=["gemm", "depthwise", "direct"])
def test_thread_counts_agree(groups, c, k, algo, monkeypatch):
    """Whole images per thread (4 on 2 or 4 threads), the GEMM splitting each image (4 on 3) and
    one thread give the same numbers, forward and backward."""
    if algo:
        monkeypatch.setenv("CNNCORE_CONV_ALGO", algo)
    x, w, _ = _data((4, c, 9, 10, k, (3, 3), 1, 1, 1, groups, ""), 3)
    opt = _opts(1, 1, 1, groups)
    X, Wc = _core.from_numpy(x), _core.from_numpy(w)
    dy = np.random.default_rng(4).standard_normal((4, k, 9, 10)).astype(np.float32)
    dy = _core.from_numpy(dy)
    prev = cnncore.get_num_threads()
    outs = []
    try:
        for t in (1, 2, 3, 4):
            cnncore.set_num_threads(t)
            p = _core.conv2d_params(list(x.shape), list(w.shape), opt)
            if c == 12:
                expect = "threads over the batch" if t in (2, 4) else "threads inside the GEMM"
                assert expect in _core.conv2d_algorithm(p) or t == 1
            outs.append([_core.conv2d_forward(X, Wc, None, opt).numpy().copy(),
                         _core.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy().copy(),
                         _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy().copy()])
    finally:
        cnncore.set_num_threads(prev)
    for t, o in zip((2, 3, 4), outs[1:]):
        for name, a, e in zip(("forward", "backward input", "backward weight"), o, outs[0]):
            check_close(a, e, rtol=1e-5, atol=1e-4, what=f"{name}, {t} threads vs 1")


def test_algorithm_choice():
    def algo(x_shape, w_shape, groups=1, stride=1, padding=0):
        p = _core.conv2d_params(x_shape, w_shape, _opts(stride, padding, 1, groups))
        return _core.conv2d_algorithm(p).split(":")[0]

    assert algo([1, 8, 5, 5], [8, 1, 3, 3], groups=8) == "depthwise-direct"
    assert algo([1, 8, 5, 5], [16, 1, 3, 3], groups=8) == "depthwise-direct"
    assert algo([1, 8, 5, 5], [4, 8, 1, 1]) == "gemm-1x1"
    assert algo([1, 8, 5, 5], [4, 8, 1, 1], stride=2) == "im2col+gemm"
    assert algo([1, 9, 5, 5], [4, 9, 3, 3]) == "im2col+gemm"
    assert algo([1, 32, 5, 5], [8, 16, 3, 3], groups=2) == "im2col+gemm"
    # few input channels per group (LeNet, RGB first layers): the register-blocked direct kernel
    assert algo([1, 8, 5, 5], [4, 8, 3, 3]) == "direct"
    assert algo([1, 8, 5, 5], [8, 2, 3, 3], groups=4) == "direct"
    assert algo([1, 3, 9, 9], [16, 3, 3, 3]) == "direct"
    assert algo([1, 3, 9, 9], [16, 3, 1, 1]) == "gemm-1x1"
    assert algo([1, 3, 9, 9], [16, 3, 1, 1], stride=2) == "im2col+gemm"
    assert algo([1, 16, 9, 9], [16, 8, 3, 3], groups=2) == "direct"


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,passes", [
    ([64, 1, 32, 32], [6, 1, 5, 5], 1, 0, ("direct", "direct")),
    ([64, 6, 14, 14], [16, 6, 5, 5], 1, 0,
     ("direct (images as lanes, only taps inside dy)", "direct")),
    ([8, 3, 224, 224], [64, 3, 3, 3], 1, 1, ("im2col+gemm", "im2col+gemm")),
    ([8, 3, 224, 224], [64, 3, 7, 7], 2, 3, ("im2col+gemm", "im2col+gemm")),
    ([2, 3, 20, 20], [8, 3, 3, 3], 2, 1, ("im2col+gemm", "direct")),
], ids=["lenet1", "lenet2", "vgg1", "stem", "strided-small"])
def test_direct_backward_passes_are_explained(x_shape, w_shape, stride, padding, passes):
    """conv2d_algorithm says which path each backward pass of the direct algorithm takes."""
    p = _core.conv2d_params(x_shape, w_shape, _opts(stride, padding, 1, 1))
    text = _core.conv2d_algorithm(p)
    assert text.startswith("direct:")
    assert f"backward-input {passes[0]}," in text and f"backward-weight {passes[1]} " in text


def test_params_same_padding_tensorflow_rule():
    # in 10, k 4, stride 2: out 5, total pad (5-1)*2 + 4 - 10 = 2 -> (1, 1)
    # in 9, k 2, stride 2: out 5, total (5-1)*2 + 2 - 9 = 1 -> (0, 1): the odd pixel after
    p = _core.conv2d_params([2, 3, 10, 9], [4, 3, 4, 2], _opts(2, "same", 1, 1))
    assert (p.OH, p.OW) == (5, 5)
    assert (p.pad_t, p.pad_b, p.pad_l, p.pad_r) == (1, 1, 0, 1)
    assert list(p.output_shape()) == [2, 4, 5, 5]
    # stride 1, even kernel: PyTorch's rule, extra at the bottom/right
    p = _core.conv2d_params([1, 1, 6, 6], [1, 1, 4, 4], _opts(1, "same", 1, 1))
    assert (p.pad_t, p.pad_b, p.OH) == (1, 2, 6)
    assert _core.conv_output_size(10, 3, 2, 2, 1) == 5
    assert p.flops() == 2 * 6 * 6 * 16


# ---- Python API and autograd -------------------------------------------------------------------

def test_functional_forward_and_grads_match_reference():
    x, w, b = _data((2, 4, 7, 8, 6, (3, 3), 1, 1, 1, 2, ""), 4)
    X = cnncore.tensor(x, requires_grad=True)
    Wt = cnncore.tensor(w, requires_grad=True)
    B = cnncore.tensor(b, requires_grad=True)
    y = F.conv2d(X, Wt, B, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    opt = _opts((2, 1), (1, 2), (1, 2), 2)
    ref = _core.reference.conv2d_forward(_core.from_numpy(x), _core.from_numpy(w),
                                         _core.from_numpy(b), opt)
    check_close(y, ref.numpy(), rtol=1e-5, atol=1e-5, what="forward")
    g = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    y.backward(cnncore.tensor(g))
    G = _core.from_numpy(g)
    check_close(X.grad, _core.reference.conv2d_backward_input(G, _core.from_numpy(w), list(x.shape),
                                                              opt).numpy(),
                rtol=1e-4, atol=1e-4, what="grad input")
    check_close(Wt.grad, _core.reference.conv2d_backward_weight(G, _core.from_numpy(x),
                                                                list(w.shape), opt).numpy(),
                rtol=1e-4, atol=1e-4, what="grad weight")
    check_close(B.grad, g.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4, what="grad bias")


@pytest.mark.parametrize("kw", [
    dict(stride=1, padding=1),
    dict(stride=2, padding="same"),
    dict(stride=1, padding=((1, 0), (0, 2)), groups=2),
    dict(stride=1, padding=0, groups=4),
], ids=["pad1", "same-s2", "asym-g2", "depthwise"])
def test_gradcheck(kw):
    rng = np.random.default_rng(6)
    groups = kw.get("groups", 1)
    x = rng.standard_normal((1, 4, 5, 4))
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    b = rng.standard_normal(4)
    gradcheck(lambda a, c, d: F.conv2d(a, c, d, **kw), [x, w, b], eps=1e-2, rtol=2e-2, atol=2e-3)


def test_unbatched_input():
    x, w, b = _data((1, 3, 6, 7, 4, (3, 3), 1, 1, 1, 1, ""), 7)
    X = cnncore.tensor(x[0], requires_grad=True)
    y = F.conv2d(X, cnncore.tensor(w), cnncore.tensor(b), padding=1)
    assert y.shape == (4, 6, 7)
    check_close(y, F.conv2d(cnncore.tensor(x), cnncore.tensor(w), cnncore.tensor(b),
                            padding=1).numpy()[0], what="unbatched forward")
    y.backward(cnncore.tensor(np.ones(y.shape, np.float32)))
    assert X.grad.shape == (3, 6, 7)


def test_no_bias_no_grad_for_weight():
    x, w, _ = _data((2, 3, 6, 6, 4, (3, 3), 1, 0, 1, 1, ""), 8)
    X = cnncore.tensor(x, requires_grad=True)
    Wt = cnncore.tensor(w)
    y = F.conv2d(X, Wt)
    y.backward(cnncore.tensor(np.ones(y.shape, np.float32)))
    assert Wt.grad is None and X.grad.shape == x.shape


def test_nn_conv2d_layer_runs():
    layer = cnncore.nn.Conv2d(3, 8, 3, stride=2, padding="same")
    y = layer(cnncore.randn(2, 3, 9, 9))
    assert y.shape == (2, 8, 5, 5)


# ---- PyTorch -----------------------------------------------------------------------------------

TORCH_SHAPES = [s for s in SHAPES if not (isinstance(s[7], str) and s[7] == "same"
                                          and s[6] != 1)]
TORCH_SHAPES += DIRECT_SHAPES[:10]  # the direct kernel's own shapes


def _torch_padding(padding):
    """Our padding -> (F.pad amounts or None, torch conv padding)."""
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        (t, b), (l, r) = padding
        return (l, r, t, b), 0
    return None, padding


@pytest.mark.parametrize("shape", TORCH_SHAPES, ids=[s[-1] for s in TORCH_SHAPES])
def test_matches_torch(shape):
    torch = pytest.importorskip("torch", reason="torch is only needed for the comparison tests")
    x, w, b = _data(shape, 9)
    *_, stride, padding, dilation, groups, what = shape
    pre, tpad = _torch_padding(padding)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    xin = torch.nn.functional.pad(tx, pre) if pre else tx
    ty = torch.nn.functional.conv2d(xin, tw, tb, stride, tpad, dilation, groups)
    X, Wt, B = (cnncore.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(X, Wt, B, stride, padding, dilation, groups)
    check_close(y, ty, rtol=1e-4, atol=1e-4, what=f"forward {what}")
    g = np.random.default_rng(10).standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.tensor(g))
    y.backward(cnncore.tensor(g))
    check_close(X.grad, tx.grad, rtol=1e-4, atol=1e-3, what=f"grad input {what}")
    check_close(Wt.grad, tw.grad, rtol=1e-4, atol=1e-3, what=f"grad weight {what}")
    check_close(B.grad, tb.grad, rtol=1e-4, atol=1e-3, what=f"grad bias {what}")


@pytest.mark.parametrize("stride,k", [(2, 3), (2, 4), (3, 2)])
def test_same_stride2_matches_torch_on_padded_input(stride, k):
    """'same' for stride > 1 (TensorFlow's rule) == torch on an explicitly padded input."""
    torch = pytest.importorskip("torch", reason="torch is only needed for the comparison tests")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    w = rng.standard_normal((5, 3, k, k)).astype(np.float32)
    y = F.conv2d(cnncore.tensor(x), cnncore.tensor(w), stride=stride, padding="same")
    pads = []
    for n in (10, 11):  # F.pad order: last dim first
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads += [total // 2, total - total // 2]
    ty = torch.nn.functional.conv2d(torch.nn.functional.pad(torch.tensor(x), pads),
                                    torch.tensor(w), stride=stride)
    assert y.shape == (2, 5, -(-11 // stride), -(-10 // stride))
    check_close(y, ty, rtol=1e-4, atol=1e-4, what="same stride > 1")


# ---- bad input ---------------------------------------------------------------------------------

def _x(*shape):
    return cnncore.tensor(np.ones(shape, np.float32))


@pytest.mark.parametrize("args,kw,exc,fragment", [
    ((_x(1, 3, 5, 5), _x(2, 4, 3, 3)), {}, ValueError,
     "conv2d: input has 3 channels but weight expects 4 (groups=1)"),
    ((_x(1, 4, 5, 5), _x(2, 2, 3, 3)), dict(groups=3), ValueError, "input has 4 channels"),
    ((_x(1, 4, 5, 5), _x(3, 2, 3, 3)), dict(groups=2), ValueError, "divisible by groups (2)"),
    ((_x(1, 3, 2, 2), _x(2, 3, 3, 3)), {}, ValueError, "larger than the padded input 2x2"),
    ((_x(1, 3, 4, 4), _x(2, 3, 3, 3)), dict(dilation=2), ValueError, "(dilated)"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(stride=0), ValueError, "stride must be >= 1"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(dilation=(1, 0)), ValueError, "dilation must be >= 1"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(padding=-1), ValueError, "padding must be >= 0"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(groups=0), ValueError, "groups must be >= 1"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(padding="full"), ValueError, "'valid', 'same'"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(stride=1.5), TypeError, "stride must be an int"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(padding=float("nan")), TypeError, "padding"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(groups="1"), TypeError, "groups must be an int"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3)), dict(stride=(1, 2, 3)), ValueError, "pair of ints"),
    ((_x(5, 5), _x(2, 3, 3, 3)), {}, ValueError, "input must be 3-D (C, H, W) or 4-D"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3)), {}, ValueError, "weight must be 4-D"),
    ((_x(0, 3, 5, 5), _x(2, 3, 3, 3)), {}, ValueError, "input must not be empty"),
    ((_x(1, 3, 5, 5), _x(2, 3, 3, 3), _x(3)), {}, ValueError, "bias must have shape (2,)"),
    (("x", _x(2, 3, 3, 3)), {}, TypeError, "conv2d: input must be a Tensor"),
    ((_x(1, 3, 5, 5), [[1.0]]), {}, TypeError, "conv2d: weight must be a Tensor"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input(args, kw, exc, fragment):
    with pytest.raises(exc) as info:
        F.conv2d(*args, **kw)
    assert fragment in str(info.value)


def test_bad_dtype_and_views():
    x = cnncore.tensor(np.arange(75, dtype=np.int64).reshape(1, 3, 5, 5))
    with pytest.raises(TypeError, match="conv2d: input must be float32"):
        F.conv2d(x, _x(2, 3, 3, 3))
    # float64 and non-contiguous numpy arrays are accepted (converted)
    a = np.random.default_rng(12).standard_normal((1, 5, 3, 5)).transpose(0, 2, 1, 3)
    w = np.ones((2, 3, 3, 3))
    y = F.conv2d(a, w)
    ref = F.conv2d(cnncore.tensor(np.ascontiguousarray(a, np.float32)),
                   cnncore.tensor(w.astype(np.float32)))
    check_close(y, ref, what="non-contiguous float64 input")


def test_bad_backward_shapes():
    opt = _opts(1, 0, 1, 1)
    w = _core.from_numpy(np.ones((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(1, 2, 3, 3\)"):
        _core.conv2d_backward_input(_core.from_numpy(np.ones((1, 2, 4, 4), np.float32)), w,
                                    [1, 3, 5, 5], opt)
    with pytest.raises(ValueError, match="input_shape must have 4 sizes"):
        _core.conv2d_backward_input(_core.from_numpy(np.ones((1, 2, 3, 3), np.float32)), w,
                                    [3, 5, 5], opt)


def test_options_cache_reuses_plain_values_and_still_checks_the_rest():
    """conv2d and the pools build their options once per distinct plain argument values; a
    value equal to a cached one but of another type (True for 1, a list for a tuple) still goes
    through the checks."""
    from cnncore._ops import conv as conv_ops, pool as pool_ops
    x = cnncore.tensor(np.zeros((1, 2, 6, 6), np.float32))
    w = cnncore.tensor(np.zeros((2, 2, 3, 3), np.float32))
    F = cnncore.nn.functional
    F.conv2d(x, w, stride=1, padding=(1, 1))
    a = conv_ops._options(1, (1, 1), 1, 1, "conv2d")
    assert a is conv_ops._options(1, (1, 1), 1, 1, "conv2d")
    for bad in (dict(stride=True), dict(stride=(1, True)), dict(groups=True),
                dict(padding=(1, 1.0))):
        with pytest.raises(TypeError, match="conv2d: "):
            F.conv2d(x, w, **{**dict(stride=1, padding=(1, 1)), **bad})
    assert F.conv2d(x, w, stride=[1, 1], padding=[1, 1]).shape == (1, 2, 6, 6)
    F.avg_pool2d(x, 2)
    with pytest.raises(TypeError, match="avg_pool2d: kernel_size"):
        F.avg_pool2d(x, (2, True))
    with pytest.raises(TypeError, match="avg_pool2d: ceil_mode"):
        F.avg_pool2d(x, 2, ceil_mode=2)
    b = pool_ops._options("avg_pool2d", 2, None, 0, 1, False, True, None)
    assert b is pool_ops._options("avg_pool2d", 2, None, 0, 1, False, True, None)
