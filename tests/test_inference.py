"""Inference fusion: conv2d_forward's epilogue (residual add and clamp in the same call) against
the separate ops on every ISA, and cnncore.optimize_for_inference (BatchNorm folded into the
convs, add / ReLU merged, the graph run in C++) against the model's own eval-mode forward."""

import math

import numpy as np
import pytest

import cnncore
from cnncore import _core, models, nn
from cnncore import functional as F

# (N, C, H, K, kernel, stride, padding, groups): the 1x1 GEMM, Winograd, direct, depthwise,
# im2col (per image and the batch's columns at once) and grouped paths, ragged sizes.
EPILOGUE_SHAPES = [
    (2, 16, 9, 24, 1, 1, 0, 1),
    (1, 32, 12, 32, 3, 1, 1, 1),
    (3, 3, 17, 8, 5, 2, 2, 1),
    (2, 12, 10, 12, 3, 1, 1, 12),
    (2, 6, 11, 10, 3, 2, 0, 2),
    (1, 5, 7, 7, 2, 1, 1, 1),
    (1, 64, 6, 20, 3, 1, 1, 1),  # three depth blocks of the GEMM, ragged micro-tiles
    (1, 8, 1, 5, 1, 1, 0, 1),  # one output pixel: the GEMM's vector path
    (1, 4, 2, 1, 1, 1, 0, 1),  # one output channel
    (3, 4, 2, 1, 1, 1, 0, 1),  # small maps: the batch's columns in one GEMM, then a pass
    (8, 64, 4, 64, 3, 1, 1, 1),
    (2, 8, 11, 16, 3, 2, 1, 8),  # depthwise, stride 2, channel multiplier 2
    (1, 32, 16, 48, 3, 1, 1, 1),
    (2, 24, 13, 20, 3, 1, 1, 1),  # Winograd with partial rows and channel vectors
    (1, 3, 40, 16, 7, 2, 3, 1),  # a stem: direct, the rows of one image split over threads
    (4, 64, 28, 96, 3, 2, 1, 1),  # direct, strided, output channels as the lanes (AVX-512)
]
# The algorithms EPILOGUE_SHAPES reach on every ISA (test_epilogue_shapes_cover_the_paths).
EPILOGUE_PATHS = {"gemm-1x1", "im2col+gemm", "direct", "depthwise-direct", "winograd"}


def test_epilogue_shapes_cover_the_paths(isa):
    taken = set()
    for n, c, h, k, r, s, p, g in EPILOGUE_SHAPES:
        why = cnncore.explain_conv(cnncore.randn(n, c, h, h), cnncore.randn(k, c // g, r, r),
                                   stride=s, padding=p, groups=g)
        taken.add(why.split(":")[0])
    assert taken == EPILOGUE_PATHS, taken


def _options(stride, padding, groups):
    return _core.Conv2dOptions(stride, stride, _core.Padding2d.symmetric(padding, padding), 1,
                               1, groups)


@pytest.mark.parametrize("shape", EPILOGUE_SHAPES)
@pytest.mark.parametrize("bounds", [(0.0, math.inf), (0.0, 6.0), (-0.5, 0.25),
                                    (-math.inf, math.inf)])
def test_conv_epilogue_matches_separate_ops(isa, shape, bounds):
    n, c, h, k, r, s, p, g = shape
    rng = np.random.default_rng(hash((shape, bounds)) % 2**32)
    x = cnncore.tensor(rng.standard_normal((n, c, h, h)).astype(np.float32))
    w = cnncore.tensor(rng.standard_normal((k, c // g, r, r)).astype(np.float32))
    b = cnncore.tensor(rng.standard_normal(k).astype(np.float32))
    opt = _options(s, p, g)
    y = _core.conv2d_forward(x._c, w._c, b._c, opt)
    res = rng.standard_normal(y.shape).astype(np.float32)
    res.flat[::7] = np.nan  # NaN comes through the clamp, as in relu and hardtanh
    lo, hi = bounds
    fused = np.asarray(_core.conv2d_forward(x._c, w._c, b._c, opt,
                                            residual=cnncore.tensor(res)._c, min_value=lo,
                                            max_value=hi))
    expected = np.asarray(y) + res
    if lo == 0.0 and hi == math.inf:
        expected = F.relu(cnncore.tensor(expected)).numpy()
    elif not (math.isinf(lo) and math.isinf(hi)):
        expected = F.hardtanh(cnncore.tensor(expected), lo, hi).numpy()
    np.testing.assert_array_equal(fused, expected)
    assert np.isnan(fused.flat[::7]).all()
    # Without a residual: the clamp alone; against the reference loops too.
    clamped = np.asarray(_core.conv2d_forward(x._c, w._c, None, opt, min_value=lo, max_value=hi))
    ref = np.asarray(_core.reference.conv2d_forward(x._c, w._c, None, opt))
    np.testing.assert_allclose(clamped, np.minimum(hi, np.maximum(lo, ref)), rtol=1e-4,
                               atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_conv_epilogue_rejects_bad_arguments():
    x, w = cnncore.randn(2, 3, 8, 8), cnncore.randn(4, 3, 3, 3)
    opt = _options(1, 1, 1)
    with pytest.raises(ValueError, match=r"residual must have shape \(2, 4, 8, 8\)"):
        _core.conv2d_forward(x._c, w._c, None, opt, residual=cnncore.randn(2, 4, 8, 7)._c)
    with pytest.raises(TypeError, match="residual must be float32, but got int64"):
        _core.conv2d_forward(x._c, w._c, None, opt,
                             residual=cnncore.zeros(2, 4, 8, 8, dtype=cnncore.int64)._c)
    with pytest.raises(ValueError, match="min_value must be <= max_value"):
        _core.conv2d_forward(x._c, w._c, None, opt, min_value=1.0, max_value=0.0)
    with pytest.raises(ValueError, match="NaN"):
        _core.conv2d_forward(x._c, w._c, None, opt, min_value=math.nan)


def _randomize_batch_norms(model, seed):
    """Non-trivial running statistics and affine parameters, so folding them matters."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            if m.running_mean is not None:
                m.running_mean.numpy()[:] = rng.uniform(-0.5, 0.5, c)
                m.running_var.numpy()[:] = rng.uniform(0.3, 2.0, c)
            if m.weight is not None:
                m.weight.detach().numpy()[:] = rng.uniform(0.5, 1.5, c)
                m.bias.detach().numpy()[:] = rng.uniform(-0.3, 0.3, c)
    return model.eval()


def _check_same(model, fast, x, rtol=1e-5):
    with cnncore.no_grad():
        a = model(x)
        b = fast(x)
    a, b = (a,) if not isinstance(a, tuple) else a, (b,) if not isinstance(b, tuple) else b
    assert len(a) == len(b)
    for u, v in zip(a, b):
        u, v = u.numpy(), v.numpy()
        assert u.shape == v.shape
        np.testing.assert_allclose(v, u, rtol=rtol, atol=rtol * max(1.0, np.abs(u).max()))


@pytest.mark.parametrize("name,size", [("resnet18", 32), ("resnet50", 32),
                                       ("mobilenet_v2", 32), ("mobilenet_v1", 32)])
def test_optimize_for_inference_zoo(name, size):
    model = getattr(models, name)(num_classes=10)
    _randomize_batch_norms(model, 1)
    x = cnncore.randn(2, 3, size, size)
    fast = cnncore.optimize_for_inference(model, x)
    summary = fast.summary()
    assert "BatchNorm2d" not in summary.replace("Conv2d+BatchNorm2d", ""), summary
    merged = "Conv2d+BatchNorm2d+ReLU6" if name == "mobilenet_v2" else "Conv2d+BatchNorm2d+ReLU"
    assert merged in summary
    if name.startswith("resnet"):
        assert "+add+ReLU" in summary
    _check_same(model, fast, x)
    _check_same(model, fast, cnncore.randn(3, 3, size, size))  # another batch size
    # Each weight is held once: the merged convs' tensors (and their BatchNorms') left the
    # state, which keeps only what unmerged nodes read (the classifier), in state_dict order.
    kept = [k for k, _ in fast._engine.state_dict()]
    head = "fc" if name.startswith("resnet") else "classifier.1"
    assert kept == [f"{head}.weight", f"{head}.bias"], kept
    assert fast._engine.parameter_names() == kept


class Patterns(nn.Module):
    """Chains that may and may not merge."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.b2 = nn.BatchNorm2d(8)  # after a ReLU: must not fold into c2
        self.c3 = nn.Conv2d(8, 8, 1)
        self.b3 = nn.BatchNorm2d(8, track_running_stats=False)  # batch statistics: no folding
        self.c4 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.b4 = nn.BatchNorm2d(8, affine=False)
        self.c5 = nn.Conv2d(8, 8, 1)
        self.c6 = nn.Conv2d(8, 8, 1)
        self.c7 = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        a = F.relu(self.b1(self.c1(x)))               # conv+bn+relu
        b = self.b2(F.relu(self.c2(a)))                # conv+relu, bn on its own
        c = self.b3(self.c3(b))                        # conv alone, bn with batch statistics
        d = F.relu6(self.b4(self.c4(c)) + b)           # grouped conv+bn(affine=False)+add+relu6
        e = self.c5(d)
        f = e * 2 + e                                  # e read twice: nothing merges into c5
        bias = d.mean(dim=(2, 3), keepdim=True)
        g = F.relu(self.c6(f) + bias)                  # a broadcasting add: separate ops
        h = self.c7(g)
        return F.hardtanh(h, -0.5, 0.5) - h.sub(g, alpha=2), h  # h is an output too


def test_optimize_for_inference_patterns():
    model = _randomize_batch_norms(Patterns(), 2)
    x = cnncore.randn(2, 3, 9, 9)
    fast = cnncore.optimize_for_inference(model, x)
    lines = fast.summary().splitlines()
    ops = [ln.split(" = ")[1].split("[")[0].split("(")[0] for ln in lines]
    assert "Conv2d+BatchNorm2d+relu" in ops
    assert "Conv2d+relu" in ops and "BatchNorm2d" in ops
    assert "Conv2d+BatchNorm2d+add+relu6" in ops
    assert "Conv2d+add+relu" in ops  # merged, and runs the broadcasting add separately
    assert ops.count("BatchNorm2d") == 2, ops  # after a ReLU, and with batch statistics
    assert ops.count("Conv2d") == 3, ops  # c3, c5 (read twice), c7 (an output)
    _check_same(model, fast, x)
    _check_same(model, fast, cnncore.randn(1, 3, 6, 5))


def test_optimize_for_inference_is_a_frozen_snapshot():
    model = _randomize_batch_norms(
        nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU()), 3)
    x = cnncore.randn(2, 2, 6, 6)
    fast = cnncore.optimize_for_inference(model, x)
    with cnncore.no_grad():
        before = fast(x).numpy()
        model[0].weight.detach().numpy()[:] += 1.0
        np.testing.assert_array_equal(fast(x).numpy(), before)
    assert not fast.training
    assert fast.eval() is fast
    with pytest.raises(ValueError, match="inference only"):
        fast.train()
    with pytest.raises(ValueError, match="optimize_for_inference"):
        fast._engine.save("never-written.cnn")
    with pytest.raises(ValueError, match="save the original model"):
        fast.save("never-written.cnn", x)
    assert "Conv2d+BatchNorm2d+ReLU" in fast.summary()


def test_optimize_for_inference_errors():
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(TypeError, match="model must be a cnncore.nn.Module"):
        cnncore.optimize_for_inference(object(), cnncore.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match="example input"):
        cnncore.optimize_for_inference(model)
    with pytest.raises(TypeError, match=r"example_inputs\[0\] must be a cnncore.Tensor"):
        cnncore.optimize_for_inference(model, np.zeros((1, 1, 5, 5), np.float32))
    fast = cnncore.optimize_for_inference(model, cnncore.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match="takes 1 input"):
        fast(cnncore.randn(1, 1, 5, 5), cnncore.randn(1, 1, 5, 5))
    with pytest.raises(TypeError, match="must be a cnncore.Tensor"):
        fast(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(ValueError):  # the wrong channel count: the conv's own error
        fast(cnncore.randn(1, 3, 5, 5))
