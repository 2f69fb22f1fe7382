"""The small-layer kernels: depthwise stride 2 without a phase split (even and odd columns picked
in registers) and the direct kernels for few input channels, against the reference twin on every
ISA path, against PyTorch, and the new weight gradients by finite differences."""

import contextlib

import numpy as np
import pytest

import cnncore
from cnncore import _core

from test_conv import _data, _matches_reference, _opts, _rel

# (N, C, H, W, K, kernel, stride, padding, dilation, groups, what): column stride 2, rows
# shorter than a vector and longer than four (one to four vectors in flight, ragged last),
# odd sizes, padding > kernel / 2, dilation, a 5x5 kernel (the weight gradient's tap-by-tap
# loop), row stride 1 and 3, batch 1, channel multiplier 2.
DW_S2_SHAPES = [
    (2, 5, 9, 11, 5, (3, 3), 2, 1, 1, 5, "short rows"),
    (1, 3, 7, 151, 3, (3, 3), 2, 1, 1, 3, "five vectors per row, ragged"),
    (3, 4, 12, 67, 8, (3, 3), 2, 1, 1, 4, "multiplier 2, batch 3"),
    (1, 2, 13, 40, 2, (5, 5), 2, 2, 1, 2, "5x5"),
    (2, 3, 17, 33, 3, (3, 3), (1, 2), (2, 3), (2, 2), 3, "dilated, padding > k/2, row stride 1"),
    (1, 4, 20, 35, 4, (3, 3), (3, 2), 0, 1, 4, "no padding, row stride 3"),
    (1, 6, 4, 4, 6, (3, 3), 2, 1, 1, 6, "tiny plane"),
]
DW_S2_IDS = [s[-1] for s in DW_S2_SHAPES]


@contextlib.contextmanager
def _num_threads(n):
    """cnncore's thread count set to n inside the block, restored after it."""
    before = cnncore.get_num_threads()
    cnncore.set_num_threads(n)
    try:
        yield
    finally:
        cnncore.set_num_threads(before)


def _passes(shape, seed):
    x, w, b = _data(shape, seed)
    *_, stride, padding, dilation, groups, _ = shape
    opt = _opts(stride, padding, dilation, groups)
    X, Wc, B = _core.from_numpy(x), _core.from_numpy(w), _core.from_numpy(b)
    p = _core.conv2d_params(list(x.shape), list(w.shape), opt)
    dy = _core.from_numpy(np.random.default_rng(seed + 1).standard_normal(
        tuple(p.output_shape())).astype(np.float32))
    return x, w, b, opt, X, Wc, B, p, dy


@pytest.mark.parametrize("shape", DW_S2_SHAPES, ids=DW_S2_IDS)
def test_depthwise_stride2_matches_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 31)
    assert _core.conv2d_algorithm(p).startswith("depthwise-direct")
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, f"{shape[-1]} ({isa})")



# Stride-1 depthwise rows of every vector count the forward's row blocks take (1-4 vectors in
# flight, whole or ragged last, and more than four), multiplier 2 (accumulating planes), 5x5.
DW_S1_ROWS = [
    (1, 3, 5, 16, 3, (3, 3), 1, 1, 1, 3, "one whole vector"),
    (2, 2, 6, 56, 2, (3, 3), 1, 1, 1, 2, "MobileNet's 56: three vectors and a half"),
    (1, 2, 4, 64, 4, (3, 3), 1, 1, 1, 2, "four whole vectors, multiplier 2"),
    (1, 3, 5, 65, 3, (3, 3), 1, 1, 1, 3, "four vectors and one lane"),
    (1, 2, 7, 131, 2, (5, 5), 1, 2, 1, 2, "5x5, more than eight vectors"),
    (2, 4, 3, 33, 8, (3, 3), 1, (1, 0), 1, 4, "multiplier 2, ragged, no column padding"),
]


@pytest.mark.parametrize("shape", DW_S1_ROWS, ids=[s[-1] for s in DW_S1_ROWS])
def test_depthwise_stride1_rows_match_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 37)
    assert _core.conv2d_algorithm(p).startswith("depthwise-direct")
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, f"{shape[-1]} ({isa})")

def _matches_torch(shape, seed):
    torch = pytest.importorskip("torch")
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, seed)
    *_, stride, padding, dilation, groups, what = shape
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding,
                                    dilation=dilation, groups=groups)
    ty.backward(torch.tensor(dy.numpy()))
    _rel(_core.conv2d_forward(X, Wc, B, opt).numpy(), ty.detach().numpy(), f"forward {what}")
    _rel(_core.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy(), tx.grad.numpy(),
         f"backward input {what}")
    _rel(_core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy(), tw.grad.numpy(),
         f"backward weight {what}")
    _rel(_core.conv2d_backward_bias(dy).numpy(), tb.grad.numpy(), f"backward bias {what}")


@pytest.mark.parametrize("shape", DW_S2_SHAPES[:4], ids=DW_S2_IDS[:4])
def test_depthwise_stride2_matches_torch(shape):
    _matches_torch(shape, 41)


@pytest.mark.parametrize("shape", [DW_S2_SHAPES[0], DW_S2_SHAPES[3]], ids=DW_S2_IDS[0:4:3])
def test_depthwise_stride2_gradients_by_finite_differences(shape):
    """sum(conv(x, w) * dy): its derivative in a few weights and inputs, by central differences
    in float64 on the reference forward, against the fast backward passes."""
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 51)
    dyn = dy.numpy().astype(np.float64)

    def loss(xv, wv):
        y = _core.reference.conv2d_forward(_core.from_numpy(xv.astype(np.float32)),
                                           _core.from_numpy(wv.astype(np.float32)), None, opt)
        return float((y.numpy().astype(np.float64) * dyn).sum())

    gw = _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()
    gx = _core.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy()
    rng = np.random.default_rng(52)
    eps = 1e-2
    for arr, grad in ((w, gw), (x, gx)):
        for _ in range(4):
            idx = tuple(rng.integers(0, n) for n in arr.shape)
            hi, lo = arr.astype(np.float64), arr.astype(np.float64)
            hi[idx] += eps
            lo[idx] -= eps
            fd = (loss(hi, w) - loss(lo, w)) / (2 * eps) if arr is x else \
                (loss(x, hi) - loss(x, lo)) / (2 * eps)
            assert abs(fd - grad[idx]) <= 2e-2 * max(1.0, abs(fd)), (idx, fd, grad[idx])


def test_depthwise_stride2_ignores_non_finite_pixels_past_short_rows(isa):
    """The last input column of an odd width with no right padding is read by no output: an Inf
    there must not leak into the weight gradient through the masked lanes."""
    x = np.zeros((1, 2, 6, 21), np.float32)
    x[:, :, :, 20] = np.inf
    opt = _opts(2, 0, 1, 2)
    p = _core.conv2d_params(list(x.shape), [2, 1, 3, 2], opt)
    assert tuple(p.output_shape()) == (1, 2, 2, 10)
    dy = np.ones((1, 2, 2, 10), np.float32)
    dw = _core.conv2d_backward_weight(_core.from_numpy(dy), _core.from_numpy(x), [2, 1, 3, 2],
                                      opt).numpy()
    assert np.isfinite(dw).all() and (dw == 0).all()


def test_depthwise_stride2_one_buffer_serves_many_planes():
    """Planes of one chunk reuse one buffer whose zero margins are written once: a large plane
    followed by many channels must still see zeros in the padding (checked via the output)."""
    x = np.full((2, 40, 9, 9), 1e3, np.float32)
    x[1] = 1.0
    w = np.ones((40, 1, 3, 3), np.float32)
    y = cnncore.functional.conv2d(cnncore.tensor(x), cnncore.tensor(w), None, stride=2,
                                  padding=1, groups=40).numpy()
    # corner output of image 1 sees 4 real pixels of value 1 and 5 padding zeros
    assert np.allclose(y[1, :, 0, 0], 4.0)
    assert np.allclose(y[0, :, 0, 0], 4e3)


# Output channels as the lanes (16 or so of them, short rows): tiles of rows x columns with
# every column count up to the limit, ragged last tiles in both directions, a second channel
# block with few lanes, stride, dilation, batch 1.
CHANNEL_TILE_SHAPES = [
    (3, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1, "lenet2"),
    (1, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1, "lenet2 batch 1"),
    (2, 5, 16, 13, 16, (3, 3), 1, 1, 1, 1, "13 columns, ragged rows"),
    (1, 3, 21, 21, 32, (5, 5), 2, 2, 1, 1, "stride 2, two channel blocks"),
    (2, 2, 9, 30, 16, (3, 3), 1, (0, 1), (1, 2), 1, "28 columns, dilated"),
    (2, 3, 8, 7, 15, (3, 3), 1, 0, 1, 1, "15 channels, 5 columns"),
    (1, 2, 6, 3, 17, (2, 2), 1, 0, 1, 1, "17 channels, 2 columns"),
    (2, 4, 10, 12, 16, (3, 3), (2, 1), 1, 1, 2, "groups 2, row stride 2"),
    (2, 3, 15, 12, 16, (3, 3), (2, 1), 1, (2, 1), 1, "row stride and dilation 2"),
    (40, 2, 24, 13, 16, (4, 4), 1, 0, 1, 1, "40 images: weight gradient in batches of 19"),
    # pixels as lanes, 3 channels x 7 (AVX-512) or 3 (AVX2) vectors where that pads less
    (2, 2, 11, 10, 6, (3, 3), 1, 0, 1, 1, "6 channels, 9 rows of 8"),
    (3, 2, 18, 18, 6, (5, 5), 1, 0, 1, 1, "6 channels, 14 rows of 14"),
]
CHANNEL_TILE_IDS = [s[-1] for s in CHANNEL_TILE_SHAPES]


@pytest.mark.parametrize("shape", CHANNEL_TILE_SHAPES, ids=CHANNEL_TILE_IDS)
def test_direct_channel_tiles_match_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 61)
    assert _core.conv2d_algorithm(p).startswith("direct")
    what = f"{shape[-1]} ({isa})"
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, what)
    _rel(_core.conv2d_forward(X, Wc, None, opt).numpy(),
         _core.reference.conv2d_forward(X, Wc, None, opt).numpy(), f"forward no bias {what}")


@pytest.mark.parametrize("shape", CHANNEL_TILE_SHAPES[:4], ids=CHANNEL_TILE_IDS[:4])
def test_direct_channel_tiles_match_torch(shape):
    _matches_torch(shape, 71)


# Output channels as the lanes, several vectors of them (AVX-512: 48 x 8 pixels, 64 x 6, 32 x 12),
# where pixel vectors would leave many lanes empty: every block shape, rows that end mid-tile,
# a channel count that leaves a ragged last block (100 = 48 + 48 + 4), stride 4 (phase-split
# columns), dilation, groups, batch 1 and a batch that splits over the threads. On AVX2 and
# baseline the same shapes take the older layouts and must still match.
MULTI_LANE_SHAPES = [
    (2, 3, 31, 35, 96, (11, 11), 4, 2, 1, 1, "alexnet-like 96 channels, 7 and 8 columns"),
    (1, 3, 23, 57, 96, (5, 5), 1, 0, 1, 1, "96 channels, 53 columns"),
    (2, 2, 11, 21, 64, (3, 3), 1, 1, 1, 1, "64 channels, 21 columns"),
    (1, 3, 9, 23, 32, (3, 3), 2, 0, 1, 1, "32 channels, 11 columns"),
    (3, 3, 15, 15, 100, (3, 5), (1, 2), (1, 2), (2, 1), 1, "100 channels: ragged last block"),
    (2, 6, 12, 50, 192, (3, 3), 1, 1, 1, 2, "groups 2, 96 per group"),
    (5, 1, 9, 61, 48, (2, 2), (1, 3), 0, 1, 1, "48 channels, 5 images"),
    # many input channels, strided (ResNet's 3x3/2): direct at >= 2 images per thread
    (8, 16, 15, 17, 64, (3, 3), 2, 1, 1, 1, "16 input channels 3x3/2, 9 columns"),
    (8, 12, 16, 27, 32, (3, 3), 2, 1, 1, 1, "12 input channels 3x3/2, 14 columns"),
    (8, 24, 12, 27, 64, (3, 3), 2, 1, 1, 2, "groups 2 of 12 input channels, stride 2"),
]
MULTI_LANE_IDS = [s[-1] for s in MULTI_LANE_SHAPES]


@pytest.mark.parametrize("shape", MULTI_LANE_SHAPES, ids=MULTI_LANE_IDS)
def test_direct_multi_lane_blocks_match_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 91)
    text = _core.conv2d_algorithm(p)
    few_channels = shape[1] // shape[9] <= 8
    multi = isa == "avx512" and (few_channels or shape[0] >= 2 * cnncore.get_num_threads())
    assert text.startswith("direct" if few_channels or multi else "im2col+gemm"), text
    if multi:
        assert "channel vectors x row pixels" in text, text
    what = f"{shape[-1]} ({isa})"
    _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape, what)
    _rel(_core.conv2d_forward(X, Wc, None, opt).numpy(),
         _core.reference.conv2d_forward(X, Wc, None, opt).numpy(), f"forward no bias {what}")


@pytest.mark.parametrize("shape", MULTI_LANE_SHAPES[:5], ids=MULTI_LANE_IDS[:5])
def test_direct_multi_lane_blocks_match_torch(shape):
    _matches_torch(shape, 93)


# The direct weight gradient with pixels as the lanes in blocks of output channels x taps: on
# AVX-512 6 x 4 where that pads less than 4 x 5 (5, 6 and 9 channels: ragged channel blocks, the
# ragged last tap block of 25 taps, 18, 27 and 50 taps), 4 x 5 otherwise (7 channels, 9 taps);
# several images per call, and one (1000 pixels) per call.
WEIGHT_ROWS_SHAPES = [
    (9, 1, 32, 32, 6, (5, 5), 1, 0, 1, 1, "LeNet1: 6 channels, 25 taps"),
    (5, 2, 12, 17, 5, (5, 5), 1, 2, 1, 1, "5 channels, 50 taps"),
    (3, 2, 9, 11, 6, (3, 3), 1, 1, 1, 1, "6 channels, 18 taps"),
    (4, 1, 13, 10, 7, (3, 3), 1, 0, 1, 1, "7 channels, 9 taps: 4 x 5 blocks"),
    (3, 3, 10, 100, 9, (3, 3), 1, 1, 1, 1, "9 channels, 100-pixel rows"),
]


@pytest.mark.parametrize("shape", WEIGHT_ROWS_SHAPES, ids=[s[-1] for s in WEIGHT_ROWS_SHAPES])
def test_direct_weight_gradient_blocks_match_reference(shape, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 77)
    text = _core.conv2d_algorithm(p)
    assert "backward-weight direct" in text, text
    ref = _core.reference.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()
    _rel(_core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy(), ref,
         f"backward weight {shape[-1]} ({isa})")


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", CHANNEL_TILE_SHAPES[:3] + WEIGHT_ROWS_SHAPES[:3],
                         ids=[s[-1] for s in CHANNEL_TILE_SHAPES[:3] + WEIGHT_ROWS_SHAPES[:3]])
def test_bias_gradient_summed_in_the_direct_weight_pass(shape, threads, isa):
    """conv2d_backward's bias gradient comes from the direct weight gradient's pass over dy
    (per-thread partial sums, both lane layouts): it matches the reference bias gradient."""
    with _num_threads(threads):
        x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 79)
        assert "backward-weight direct" in _core.conv2d_algorithm(p)
        ref_db = _core.reference.conv2d_backward_bias(dy).numpy()
        ref_dw = _core.reference.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()
        for mask in ((False, True, True), (True, True, True)):
            dx, dw, db = _core.conv2d_backward(dy, X, Wc, opt, mask)
            what = f"{shape[-1]} {mask} ({isa}, {threads} threads)"
            _rel(db.numpy(), ref_db, f"bias {what}")
            _rel(dw.numpy(), ref_dw, f"weight {what}")


# The direct backward-input in blocks of one row across images, skipping the kernel rows that
# read only dy's padding: every register block of output channels (dx channels 1, 2, 3, 6 and 8:
# blocks of 1, 2, 3 and 6 and a ragged 6 + 2), image counts that leave the last block or the
# last chunk short, rows of one and two vectors, dilation, padding that crops (pad > 0: fewer
# padding rows), groups, and rows with no valid kernel row at all (dilation 3 on a short dy).
ROWS_SHAPES = [
    (32, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1, "LeNet2"),
    (13, 6, 9, 12, 5, (5, 5), 1, 0, 1, 1, "13 images, 6 channels"),
    (29, 1, 10, 11, 3, (5, 5), 1, 0, 1, 1, "1 channel"),
    (19, 2, 8, 21, 4, (3, 3), 1, 0, 1, 1, "2 channels, two vectors per row"),
    (15, 3, 11, 9, 7, (5, 3), 1, (1, 0), 1, 1, "3 channels, row padding 1"),
    (11, 8, 12, 10, 6, (3, 3), 1, 0, 2, 1, "8 channels dilated"),
    (10, 8, 9, 7, 8, (3, 3), 1, 0, 3, 2, "groups 2 of 4, dilation 3, rows with no tap"),
]
ROWS_IDS = [s[-1] for s in ROWS_SHAPES]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", ROWS_SHAPES, ids=ROWS_IDS)
def test_direct_backward_input_by_rows_matches_reference(shape, threads, isa, monkeypatch):
    # most of these shapes take images as the lanes now; this keeps the rows
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "direct-image-rows")
    with _num_threads(threads):
        x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 71)
        text = _core.conv2d_algorithm(p)
        assert text.startswith("direct"), text
        by_rows = "rows across images" in text
        # every shape takes it on 1 thread with AVX-512; more threads need more images per
        # block, and narrower vectors make some of these rows take channels as lanes instead
        assert by_rows or threads > 1 or isa != "avx512", text
        _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape,
                           f"{shape[-1]} ({isa}, {threads} threads, by rows: {by_rows})")


@pytest.mark.parametrize("shape", ROWS_SHAPES[:3], ids=ROWS_IDS[:3])
def test_direct_backward_input_by_rows_matches_torch(shape, monkeypatch):
    monkeypatch.setenv("CNNCORE_CONV_ALGO", "direct-image-rows")
    _matches_torch(shape, 73)


# Backward-input with images as the lanes: every output-channel block width the kernel takes
# (1-8 channels per block, groups), ragged image blocks (17, 28, 40 images), row padding,
# dilation, even kernels, rows of 5-14 pixels (whole tiles and single-column tails).
LANES_SHAPES = [
    (32, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1, "LeNet2: 6 channels"),
    (17, 1, 9, 11, 4, (5, 5), 1, 0, 1, 1, "1 channel, 17 images"),
    (28, 2, 8, 6, 5, (3, 3), 1, 0, 1, 1, "2 channels, 28 images"),
    (16, 3, 10, 7, 6, (5, 3), 1, (1, 0), 1, 1, "3 channels, row padding 1"),
    (24, 4, 9, 9, 4, (3, 3), 1, 0, 2, 1, "4 channels dilated"),
    (16, 5, 7, 12, 8, (4, 4), 1, 0, 1, 1, "5 channels, even kernel"),
    (18, 7, 6, 6, 3, (3, 3), 1, 0, 1, 1, "7 channels"),
    (16, 8, 8, 10, 4, (3, 3), 1, 0, 1, 1, "8 channels"),
    (40, 8, 6, 5, 6, (3, 3), 1, 0, 1, 2, "groups 2 of 4, 40 images"),
    (16, 6, 9, 8, 12, (5, 5), 1, (3, 1), 1, 3, "groups 3, padding 3 and 1"),
]
LANES_IDS = [s[-1] for s in LANES_SHAPES]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", LANES_SHAPES, ids=LANES_IDS)
def test_direct_backward_input_by_lanes_matches_reference(shape, threads, isa):
    with _num_threads(threads):
        x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 91)
        text = _core.conv2d_algorithm(p)
        by_lanes = "images as lanes" in text
        # every shape takes it but one (the 17 images on 1 thread with AVX-512 keep rows); the
        # 4-lane baseline path, whose transposes cost more, takes it for half of them
        assert by_lanes or isa == "baseline" or (threads == 1 and shape[0] == 17), text
        _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape,
                           f"{shape[-1]} ({isa}, {threads} threads, by lanes: {by_lanes})")


@pytest.mark.parametrize("shape", LANES_SHAPES[:4], ids=LANES_IDS[:4])
def test_direct_backward_input_by_lanes_matches_torch(shape):
    _matches_torch(shape, 93)


@pytest.mark.parametrize("variant, shapes, marker, base", [
    ("depthwise-phase-split", DW_S2_SHAPES, "even/odd columns", None),
    ("direct-pixel-lanes", CHANNEL_TILE_SHAPES, "channels as lanes", None),
    ("direct-forward-pixel-lanes", MULTI_LANE_SHAPES, "channel vectors x row pixels", None),
    # rows across images against single-image rows, images as lanes set aside
    ("direct-rows", ROWS_SHAPES, "rows across images", "direct-image-rows"),
    ("direct-image-rows", LANES_SHAPES, "images as lanes", None),
    ("direct-rows", LANES_SHAPES, "images as lanes", None),
])
def test_older_variants_stay_forcible_and_correct(variant, shapes, marker, base, isa,
                                                  monkeypatch):
    """CNNCORE_CONV_ALGO names the older variant of a pass: conv2d_algorithm stops naming the
    new one, and the older one still matches the reference (base: the setting the new one is
    named under, when a newer variant still would take these shapes)."""
    named = 0
    for shape in shapes:
        x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 81)
        if base is None:
            monkeypatch.delenv("CNNCORE_CONV_ALGO", raising=False)
        else:
            monkeypatch.setenv("CNNCORE_CONV_ALGO", base)
        named += marker in _core.conv2d_algorithm(p)
        monkeypatch.setenv("CNNCORE_CONV_ALGO", variant)
        assert marker not in _core.conv2d_algorithm(p)
        _matches_reference(X, Wc, B, opt, dy, x.shape, w.shape,
                           f"{shape[-1]} ({variant}, {isa})")
    # the shape lists exercise the new variant by default (the multi-vector one: AVX-512 only)
    assert named >= 4 or (variant == "direct-forward-pixel-lanes" and isa != "avx512")


# The fused depthwise backward (dx and dw in one pass): thread ranges that split an image's
# channels and images alike (each thread sums its own dw), multiplier 2, stride 1, 2 and 3,
# dilation, batch 1.
DW_FUSED = [
    (3, 7, 23, 23, 7, (3, 3), 1, 1, 1, 7, "stride 1, batch 3, 7 channels"),
    (1, 5, 19, 30, 10, (3, 3), 2, 1, 1, 5, "stride 2, multiplier 2, batch 1"),
    (2, 4, 17, 21, 4, (5, 5), 1, 4, 2, 4, "5x5 dilated"),
    (2, 3, 16, 16, 6, (3, 3), 3, 2, 1, 3, "stride 3, multiplier 2"),
]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", DW_FUSED, ids=[s[-1] for s in DW_FUSED])
def test_depthwise_fused_backward_matches_separate_and_reference(shape, threads, isa):
    x, w, b, opt, X, Wc, B, p, dy = _passes(shape, 61)
    assert _core.conv2d_algorithm(p).startswith("depthwise-direct")
    with _num_threads(threads):
        dx, dw = _core.conv2d_backward_input_weight(dy, X, Wc, opt)
        dx1 = _core.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy()
        dw1 = _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy()
    # The input gradient runs the same kernels on the same planes: equal to the bit.
    np.testing.assert_array_equal(dx.numpy(), dx1)
    _rel(dw.numpy(), dw1, f"fused dw vs separate {shape[-1]}")
    _rel(dx.numpy(), _core.reference.conv2d_backward_input(dy, Wc, list(x.shape), opt).numpy(),
         f"fused dx {shape[-1]}")
    _rel(dw.numpy(), _core.reference.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy(),
         f"fused dw {shape[-1]}")


def test_depthwise_fused_backward_deterministic_mode_takes_separate_kernels():
    x, w, b, opt, X, Wc, B, p, dy = _passes(DW_FUSED[0], 63)
    cnncore.use_deterministic_algorithms(True)
    try:
        dws = []
        for threads in (1, 2):
            with _num_threads(threads):
                dws.append(_core.conv2d_backward_input_weight(dy, X, Wc, opt)[1].numpy())
    finally:
        cnncore.use_deterministic_algorithms(False)
    np.testing.assert_array_equal(dws[0], dws[1])
    np.testing.assert_array_equal(
        dws[0], _core.conv2d_backward_weight(dy, X, list(w.shape), opt).numpy())


def test_conv2d_backward_input_weight_rejects_bad_shapes():
    x, w, b, opt, X, Wc, B, p, dy = _passes(DW_FUSED[0], 65)
    wrong = _core.from_numpy(np.zeros((3, 7, 5, 5), np.float32))
    with pytest.raises(ValueError, match="conv2d_backward_input_weight: grad_output"):
        _core.conv2d_backward_input_weight(wrong, X, Wc, opt)
    with pytest.raises(ValueError, match="conv2d_backward_input_weight"):
        _core.conv2d_backward_input_weight(dy, _core.from_numpy(x[0]), Wc, opt)


def test_depthwise_autograd_takes_fused_backward_and_matches_torch():
    """nn.functional.conv2d's backward with both gradients wanted goes through the fused op."""
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    x, w, b, opt, X, Wc, B, p, dy = _passes(DW_FUSED[1], 67)
    *_, stride, padding, dilation, groups, _ = DW_FUSED[1]
    xs, ws = cnncore.tensor(x, requires_grad=True), cnncore.tensor(w, requires_grad=True)
    cnncore.nn.functional.conv2d(xs, ws, None, stride, padding, dilation, groups).backward(
        cnncore.tensor(dy.numpy()))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(tx, tw, None, stride, padding, dilation, groups).backward(
        torch.tensor(dy.numpy()))
    _rel(xs.grad.numpy(), tx.grad.numpy(), "autograd dx")
    _rel(ws.grad.numpy(), tw.grad.numpy(), "autograd dw")
