"""cnncore.explain_conv: which kernel path conv2d takes and why, from tensors, arrays, shapes or an
nn.Conv2d; it follows the thread count, the ISA and CNNCORE_CONV_ALGO, and bad arguments get
TypeError / ValueError naming them."""

import numpy as np
import pytest

import cnncore
from cnncore import _core, nn


@pytest.fixture
def threads():
    before = cnncore.get_num_threads()
    yield cnncore.set_num_threads
    cnncore.set_num_threads(before)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# (input shape, weight shape, options, the algorithm the rules pick)
CASES = [
    ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), "winograd"),
    ((8, 256, 56, 56), (64, 256, 1, 1), {}, "gemm-1x1"),
    ((8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1, groups=144), "depthwise-direct"),
    ((64, 1, 32, 32), (6, 1, 5, 5), {}, "direct"),
    ((2, 12, 9, 7), (8, 12, 3, 2), dict(stride=(2, 1), dilation=(1, 2)), "im2col+gemm"),
]


@pytest.mark.parametrize("x_shape,w_shape,kw,algo", CASES, ids=[c[-1] for c in CASES])
def test_names_the_rule_chosen_path(x_shape, w_shape, kw, algo, monkeypatch):
    monkeypatch.delenv("CNNCORE_CONV_ALGO", raising=False)
    text = cnncore.explain_conv(x_shape, w_shape, **kw)
    assert text.split(":")[0] == algo, text
    # the same rules the C++ dispatch runs, with the setting appended
    sh, sw = _pair(kw.get("stride", 1))
    ph, pw = _pair(kw.get("padding", 0))
    dh, dw = _pair(kw.get("dilation", 1))
    opt = _core.Conv2dOptions(sh, sw, _core.Padding2d.symmetric(ph, pw), dh, dw,
                              kw.get("groups", 1))
    core = _core.conv2d_algorithm(_core.conv2d_params(list(x_shape), list(w_shape), opt))
    assert text.startswith(core[:-1]), (text, core)
    assert f"isa {_core.active_isa()}" in text
    assert f"{cnncore.get_num_threads()} thread" in text


def test_tensors_arrays_shapes_and_layers_agree():
    x = np.random.rand(2, 3, 32, 32).astype(np.float32)
    layer = nn.Conv2d(3, 16, 5, stride=1, padding=2)
    by_layer = cnncore.explain_conv(cnncore.tensor(x), layer)
    by_shapes = cnncore.explain_conv(x.shape, tuple(layer.weight.shape), padding=2)
    by_arrays = cnncore.explain_conv(x, layer.weight.detach().numpy(), layer.bias,
                                    padding=(2, 2))
    by_list = cnncore.explain_conv(list(x.shape), [16, 3, 5, 5], None, 1, 2, 1, 1)
    assert by_layer == by_shapes == by_arrays == by_list
    # unbatched (C, H, W) is one image, as conv2d takes it
    assert cnncore.explain_conv((3, 32, 32), (16, 3, 5, 5), padding=2) == \
        cnncore.explain_conv((1, 3, 32, 32), (16, 3, 5, 5), padding=2)


def test_follows_the_thread_count(threads):
    # ResNet's 3x3/2 128 -> 256: the direct kernel needs two images per thread
    args = ((2, 128, 28, 28), (256, 128, 3, 3))
    threads(1)
    one = cnncore.explain_conv(*args, stride=2, padding=1)
    threads(2)
    two = cnncore.explain_conv(*args, stride=2, padding=1)
    assert one.startswith("direct:") and "1 thread)" in one, one
    assert two.startswith("im2col+gemm:") and "2 threads)" in two, two


def test_follows_the_forced_algorithm(monkeypatch):
    args = ((8, 64, 56, 56), (64, 64, 3, 3))
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "im2col+gemm")
    assert cnncore.explain_conv(*args, padding=1).startswith("im2col+gemm:")
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "direct")
    assert cnncore.explain_conv(*args, padding=1).startswith("direct:")


def test_names_deterministic_mode():
    cnncore.use_deterministic_algorithms(True)
    try:
        assert "deterministic" in cnncore.explain_conv((2, 8, 9, 9), (4, 8, 3, 3))
    finally:
        cnncore.use_deterministic_algorithms(False)
    assert "deterministic" not in cnncore.explain_conv((2, 8, 9, 9), (4, 8, 3, 3))


def test_padding_forms_match_conv2d():
    # 'same' on an even kernel pads asymmetrically (1 before, 2 after), exactly as conv2d does
    assert cnncore.explain_conv((1, 4, 10, 10), (4, 4, 4, 4), padding="same") == \
        cnncore.explain_conv((1, 4, 10, 10), (4, 4, 4, 4), padding=((1, 2), (1, 2)))
    assert cnncore.explain_conv((1, 4, 10, 10), (4, 4, 3, 3), padding="valid") == \
        cnncore.explain_conv((1, 4, 10, 10), (4, 4, 3, 3), padding=0)


@pytest.mark.parametrize("call,err,words", [
    (lambda: cnncore.explain_conv("x", (1, 1, 1, 1)), TypeError, "input must be a Tensor"),
    (lambda: cnncore.explain_conv((1, 2, 3, 3)), TypeError, "weight is required"),
    (lambda: cnncore.explain_conv((1, 2, 3, 3), 5), TypeError, "weight must be a Tensor"),
    (lambda: cnncore.explain_conv((1, 2, 3, 3), (1, 2, 3)), ValueError, "weight must be 4-D"),
    (lambda: cnncore.explain_conv((3, 3), (1, 2, 1, 1)), ValueError, "input must be 3-D or 4-D"),
    (lambda: cnncore.explain_conv((1, 2.5, 3, 3), (1, 2, 1, 1)), TypeError, "input must be an int"),
    (lambda: cnncore.explain_conv((1, 2, 3, 3), (1, 2, 5, 5)), ValueError, "larger than the padded"),
    (lambda: cnncore.explain_conv((1, 8, 9, 9), (4, 3, 3, 3)), ValueError, "channels"),
    (lambda: cnncore.explain_conv((1, 2, 3, 3), (1, 2, 1, 1), stride=0), ValueError, "stride"),
    (lambda: cnncore.explain_conv((1, 2, 3, 3), (1, 2, 1, 1), padding="full"), ValueError,
     "padding"),
    (lambda: cnncore.explain_conv((1, 2, 3, 3), (1, 2, 1, 1), bias="b"), TypeError, "bias"),
])
def test_bad_arguments_raise_clear_errors(call, err, words):
    with pytest.raises(err, match=words):
        call()
