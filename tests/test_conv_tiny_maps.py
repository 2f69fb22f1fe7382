"""Small feature maps (ResNet's last stages on 32x32 inputs): the batch's columns gathered into
one GEMM per group, and kernel taps that read only padding cropped away. Each against the
reference twin on every ISA (never skipped) and PyTorch, forward and backward."""

import numpy as np
import pytest

from cnncore import _core
from test_conv import _matches_reference
from test_conv_small import _matches_torch, _passes

# (N, C, H, W, K, kernel (R, S), stride, padding, dilation, groups, what)
BATCHED = [
    (5, 24, 2, 2, 20, (3, 3), 1, 1, 1, 1, "3x3 on 2x2, batched"),
    (3, 18, 4, 3, 10, (3, 3), 2, 1, 1, 1, "3x3/2 on 4x3 -> 2x2, batched"),
    (4, 24, 8, 8, 6, (3, 3), 2, 1, 1, 2, "3x3/2 groups 2 -> 4x4, batched"),
    (3, 16, 3, 3, 9, (1, 1), 1, 0, 1, 1, "1x1 on 3x3, batched"),
    (2, 10, 9, 7, 8, (2, 3), 1, 0, 1, 1, "2x3 valid -> 8x5, batched up to 64 pixels"),
]
CROPPED = [
    (4, 16, 1, 1, 12, (3, 3), 1, 1, 1, 1, "3x3 on 1x1: only the centre tap"),
    (3, 20, 2, 2, 8, (3, 3), 2, 1, 1, 1, "3x3/2 on 2x2: the lower right 2x2 taps"),
    (2, 6, 1, 3, 5, (3, 3), 1, 1, 1, 1, "3x3 on 1x3: the middle row"),
    (1, 8, 1, 1, 4, (5, 5), 1, 2, 1, 1, "5x5 on 1x1, batch 1"),
    (3, 8, 2, 2, 6, (3, 3), 1, 2, 2, 2, "dilated 3x3 groups 2 on 2x2"),
]
# Output tiles of at most 64 pixels through im2col's gather table (the table on the heap past
# 4096 entries: 9x9 taps x 64 pixels; planes of 4096 floats or more gathered with a test per
# entry instead of from a copy next to a zero), with asymmetric padding, strides, dilation,
# groups.
GATHERED = [
    (1, 12, 9, 9, 5, (3, 3), 2, ((1, 0), (2, 1)), 1, 1, "3x3/2 asymmetric padding, one image"),
    (1, 10, 8, 8, 6, (9, 9), 1, 4, 1, 1, "9x9 on 8x8: a 5184-entry table"),
    (3, 20, 11, 10, 8, (3, 3), 2, 2, 2, 2, "dilated 3x3/2 groups 2 -> 6x5"),
    (2, 9, 5, 7, 7, (2, 3), (1, 2), (0, 1), 1, 1, "2x3 stride (1, 2) -> 4x4"),
    (1, 9, 66, 64, 4, (3, 3), 9, 0, 1, 1, "3x3/9 on 66x64: a plane too big to copy"),
]
IDS_G = [s[-1] for s in GATHERED]
IDS_B = [s[-1] for s in BATCHED]
IDS_C = [s[-1] for s in CROPPED]


@pytest.mark.parametrize("shape", BATCHED, ids=IDS_B)
def test_batched_columns_match_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 81)
    name = _core.conv2d_algorithm(p)
    assert "gathered into one GEMM" in name, name
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, f"{shape[-1]} ({isa})")


@pytest.mark.parametrize("shape", BATCHED, ids=IDS_B)
def test_batched_columns_equal_per_image_path(shape, monkeypatch):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 82)
    fast = [_core.conv2d_forward(X, Wc, B, opt).numpy(),
            _core.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy(),
            _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()]
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "im2col-per-image")
    assert "per image and group" in _core.conv2d_algorithm(p)
    slow = [_core.conv2d_forward(X, Wc, B, opt).numpy(),
            _core.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy(),
            _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()]
    for a, e in zip(fast, slow):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", GATHERED, ids=IDS_G)
def test_gathered_columns_match_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 85)
    assert _core.conv2d_algorithm(p).startswith("im2col+gemm:"), _core.conv2d_algorithm(p)
    assert p.output_shape()[2] * p.output_shape()[3] <= 64
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, f"{shape[-1]} ({isa})")


@pytest.mark.parametrize("shape", CROPPED, ids=IDS_C)
def test_cropped_taps_match_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 91)
    name = _core.conv2d_algorithm(p)
    assert "cropped to" in name, name
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, f"{shape[-1]} ({isa})")
    # the dropped taps' weight gradient is exactly zero, as the reference's
    dw = _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()
    ref = _core.reference.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()
    assert np.array_equal(dw == 0, ref == 0)


# torch.nn.functional.conv2d takes no asymmetric padding: GATHERED[0] is left out
@pytest.mark.parametrize("shape", BATCHED[:3] + CROPPED + GATHERED[1:],
                         ids=IDS_B[:3] + IDS_C + IDS_G[1:])
def test_tiny_maps_match_torch(shape):
    _matches_torch(shape, 101)


def test_forced_algorithm_is_not_cropped(monkeypatch):
    x, w, b, opt, X, Wc, B, p, dy = _passes(CROPPED[0], 92)
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "winograd")
    assert _core.conv2d_algorithm(p).startswith("winograd:")
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, "forced winograd on 1x1")


def test_winograd_not_chosen_below_one_tile():
    opt = _core.Conv2dOptions()
    opt.padding = _core.Padding2d.symmetric(1, 1)
    p = _core.conv2d_params([32, 256, 2, 2], [256, 256, 3, 3], opt)
    assert not _core.conv2d_algorithm(p).startswith("winograd")
    p = _core.conv2d_params([32, 256, 4, 4], [256, 256, 3, 3], opt)
    assert _core.conv2d_algorithm(p).startswith("winograd")
