"""The stride-1 weight gradient as one GEMM per kernel tap over a padded copy of the input (no
im2col): against the reference twin on every ISA and thread count, against the im2col path it
replaces (CNNCORE_CONV_ALGO=backward-weight-im2col), against PyTorch, and which shapes take it."""

import numpy as np
import pytest

import cnncore
from cnncore import _core

from test_conv import _data, _opts, _rel

# (N, C, H, W, K, kernel, stride, padding, dilation, groups, what): every shape here takes the
# per-tap path (>= 32 channels in and out per group, >= 512 padded pixels per image).
TAP_SHAPES = [
    (2, 32, 20, 26, 32, (3, 3), 1, 1, 1, 1, "3x3, ragged map"),
    (3, 64, 17, 33, 48, (3, 3), 1, 1, 1, 1, "batch 3, K != C"),
    (2, 64, 16, 30, 64, (3, 3), 1, 1, 1, 2, "groups 2"),
    (1, 40, 19, 27, 36, (5, 3), 1, (2, 1), 1, 1, "5x3, batch 1"),
    (2, 32, 24, 24, 32, (2, 2), 1, "same", 1, 1, "even kernel, same padding (asymmetric)"),
    (5, 32, 12, 46, 40, (3, 3), 1, (1, 2), (1, 2), 1, "dilated columns, batch 5"),
    (2, 33, 24, 25, 35, (3, 3), 1, 0, 1, 1, "no padding, odd channels"),
]
IDS = [s[-1] for s in TAP_SHAPES]


def _case(shape, seed):
    x, w, _ = _data(shape, seed)
    *_, stride, padding, dilation, groups, _ = shape
    opt = _opts(stride, padding, dilation, groups)
    p = _core.conv2d_params(list(x.shape), list(w.shape), opt)
    dy = np.random.default_rng(seed + 1).standard_normal(tuple(p.output_shape())).astype(
        np.float32)
    return x, w, opt, p, _core.from_numpy(x), _core.from_numpy(dy)


def _dw(X, dy, w, opt):
    return _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", TAP_SHAPES, ids=IDS)
def test_tap_gemm_weight_grad_matches_reference(shape, isa, threads):
    x, w, opt, p, X, dy = _case(shape, 3)
    assert "one GEMM per kernel tap" in _core.conv2d_algorithm(p), _core.conv2d_algorithm(p)
    old = cnncore.get_num_threads()
    cnncore.set_num_threads(threads)
    try:
        got = _dw(X, dy, w, opt)
    finally:
        cnncore.set_num_threads(old)
    ref = _core.reference.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()
    _rel(got, ref, f"{shape[-1]} ({isa}, {threads} threads)")


@pytest.mark.parametrize("shape", TAP_SHAPES[:3], ids=IDS[:3])
def test_tap_gemm_weight_grad_matches_the_im2col_path(shape, monkeypatch):
    x, w, opt, p, X, dy = _case(shape, 5)
    tap = _dw(X, dy, w, opt)
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "backward-weight-im2col")
    assert "one GEMM per kernel tap" not in _core.conv2d_algorithm(p)
    _rel(tap, _dw(X, dy, w, opt), shape[-1])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own note
@pytest.mark.parametrize("shape", TAP_SHAPES, ids=IDS)
def test_tap_gemm_weight_grad_matches_torch(shape):
    torch = pytest.importorskip("torch", reason="torch comparisons need torch")
    x, w, opt, p, X, dy = _case(shape, 7)
    *_, stride, padding, dilation, groups, _ = shape
    tx = torch.tensor(x)
    tw = torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(tx, tw, stride=stride, padding=padding, dilation=dilation,
                               groups=groups).backward(torch.tensor(dy.numpy()))
    _rel(_dw(X, dy, w, opt), tw.grad.numpy(), shape[-1])


def test_which_shapes_take_the_tap_gemm_weight_grad(monkeypatch):
    def takes(x_shape, w_shape, stride=1, padding=1, groups=1):
        p = _core.conv2d_params(list(x_shape), list(w_shape), _opts(stride, padding, 1, groups))
        return "one GEMM per kernel tap" in _core.conv2d_algorithm(p)

    assert takes((8, 64, 56, 56), (64, 64, 3, 3))  # ResNet's first stage
    assert takes((8, 128, 28, 28), (128, 128, 3, 3))
    assert not takes((8, 256, 14, 14), (256, 256, 3, 3))  # 224 padded pixels: im2col
    assert not takes((8, 128, 28, 28), (256, 128, 3, 3), stride=2)  # strided
    assert not takes((8, 16, 56, 56), (64, 16, 3, 3))  # few input channels
    assert not takes((8, 64, 56, 56), (64, 64, 1, 1), padding=0)  # 1x1: the GEMM path
    assert not takes((2, 64, 30, 6), (64, 64, 3, 3))  # a third of the products on padding
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "backward-weight-im2col")
    assert not takes((8, 64, 56, 56), (64, 64, 3, 3))
    cnncore.use_deterministic_algorithms(True)
    try:
        monkeypatch.delenv("CNNCORE_CONV_ALGO")
        assert not takes((8, 64, 56, 56), (64, 64, 3, 3))  # fixed-slot im2col path
    finally:
        cnncore.use_deterministic_algorithms(False)
