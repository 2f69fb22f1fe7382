"""Property-based fuzzing of the public ops and layers (hypothesis).

Every case draws shapes, strides, paddings, dilations, groups, dtypes, memory layouts
(contiguous, strided slices, negative strides, Fortran order), zero-size arrays and NaN/Inf
values, then calls cnncore and asserts one of two outcomes:
  - a result equal to the oracle's (the reference twins in _core.reference for conv and pool,
    torch elsewhere), shape first, or
  - a ValueError/TypeError whose message names the op;
never a crash, a hang or a wrong shape. Where torch rejects a case, cnncore must reject it too.

The default run is a short profile (a few examples per op); `pytest -m slow` runs the long one
(FUZZ_LONG_EXAMPLES per test, over 10,000 in total).
"""

from __future__ import annotations

import contextlib
import warnings

import cnncore
import cnncore.functional as F
import numpy as np
import pytest
from cnncore import _core, nn
from helpers import check_close, to_numpy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

SHORT = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))
FUZZ_LONG_EXAMPLES = 600  # x 17 long tests = 10,200 examples
LONG = settings(max_examples=FUZZ_LONG_EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

ACCEPTED_ERRORS = (ValueError, TypeError)


# ---- inputs -------------------------------------------------------------------------------------
@st.composite
def arrays(draw, shape, special=True, low=-3.0, high=3.0):
    """A float32 array of `shape` in one of several layouts, sometimes with NaN/Inf."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layout = draw(st.sampled_from(["c", "slice", "reversed", "fortran"]))
    if layout == "slice" and len(shape):
        big = rng.uniform(low, high, size=(*shape[:-1], shape[-1] * 2)).astype(np.float32)
        a = big[..., ::2]
    elif layout == "reversed" and len(shape):
        a = rng.uniform(low, high, size=shape).astype(np.float32)[..., ::-1]
    elif layout == "fortran":
        a = np.asfortranarray(rng.uniform(low, high, size=shape).astype(np.float32))
    else:
        a = rng.uniform(low, high, size=shape).astype(np.float32)
    if special and a.size and draw(st.integers(0, 4)) == 0:
        flat_idx = rng.integers(0, a.size, size=max(1, a.size // 7))
        values = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), size=flat_idx.size)
        for i, v in zip(flat_idx, values):
            a[np.unravel_index(i, a.shape)] = v
    return a


@contextlib.contextmanager
def forced_isa(data):
    """Runs the block on a drawn SIMD path (each available one gets its turn)."""
    isa = data.draw(st.sampled_from(_core.available_isas()), "isa")
    previous = _core.active_isa()
    _core.set_isa(isa)
    try:
        yield isa
    finally:
        _core.set_isa(previous)


def as_cn(a: np.ndarray, requires_grad=False) -> cnncore.Tensor:
    """The array's own memory and strides, shared (not copied) where cnncore allows it."""
    t = cnncore.from_numpy(a)
    return t.requires_grad_(True) if requires_grad else t


def as_torch(a: np.ndarray, requires_grad=False):
    return torch.tensor(np.array(a, order="C", copy=True), requires_grad=requires_grad)


def expect(ours, theirs, rtol=1e-4, atol=1e-4, what=""):
    """ours and theirs are thunks. theirs raising means ours must raise ValueError/TypeError;
    otherwise ours matches or raises ValueError/TypeError naming the problem."""
    try:
        with warnings.catch_warnings():  # torch's performance hints are not results
            warnings.simplefilter("ignore")
            want = theirs()
    except NotImplementedError:  # torch leaves it undefined; cnncore may define it
        try:
            ours()
        except ACCEPTED_ERRORS as e:
            assert str(e), f"{what}: the error has no message"
        return None, None
    except (RuntimeError, ValueError, TypeError, IndexError):
        with pytest.raises(ACCEPTED_ERRORS) as info:
            ours()
        assert str(info.value), f"{what}: the error has no message"
        return None, None
    try:
        got = ours()
    except ACCEPTED_ERRORS as e:
        assert str(e), f"{what}: the error has no message"
        return None, None
    if isinstance(want, (tuple, list)):
        for i, (g, w) in enumerate(zip(got, want)):
            check_close(g, w, rtol, atol, f"{what} output {i}")
    else:
        check_close(got, want, rtol, atol, what)
    return got, want


def backward_matches(y, ty, cn_inputs, th_inputs, rtol=1e-3, atol=1e-3, what=""):
    """Backpropagates the same ramp through both results and compares the inputs' gradients
    (None inputs, e.g. an absent bias, are skipped)."""
    if y is None or y.numel() == 0:
        return
    seed = np.linspace(-1, 1, ty.numel(), dtype=np.float32).reshape(ty.shape)
    y.backward(cnncore.tensor(seed))
    ty.backward(torch.from_numpy(seed))
    pairs = [(c, t) for c, t in zip(cn_inputs, th_inputs) if c is not None]
    grads_match([c for c, _ in pairs], [t for _, t in pairs], rtol, atol, what)


def grads_match(cn_inputs, th_inputs, rtol=1e-3, atol=1e-3, what=""):
    """atol is relative to the gradient's scale (at least 1): gradients are sums, and where a
    sum of large terms cancels (a bias gradient of the ramp's middle channel: terms of +-1348
    that add up to 0) float32 leaves an error of that scale on either side."""
    for i, (c, t) in enumerate(zip(cn_inputs, th_inputs)):
        if t.grad is None:
            continue
        assert c.grad is not None, f"{what}: input {i} got no gradient"
        g = t.grad.detach().numpy()
        scale = max(1.0, float(np.abs(g[np.isfinite(g)]).max(initial=0.0)))
        check_close(c.grad, t.grad, rtol, atol * scale, f"{what}: gradient of input {i}")


# ---- conv ---------------------------------------------------------------------------------------
conv_cases = st.fixed_dictionaries({
    "n": st.integers(0, 3), "g": st.integers(1, 3), "cpg": st.integers(1, 3),
    "kpg": st.integers(1, 3), "h": st.integers(1, 12), "w": st.integers(1, 12),
    "r": st.integers(1, 5), "s": st.integers(1, 5), "stride": st.tuples(st.integers(1, 4),
                                                                           st.integers(1, 4)),
    "padding": st.one_of(st.tuples(st.integers(0, 4), st.integers(0, 4)),
                         st.sampled_from(["same", "valid"])),
    "dilation": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "bias": st.booleans(), "unbatched": st.booleans(), "wrong_groups": st.integers(0, 6),
})


def _conv_case(data, c, transpose=False):
    g = c["g"]
    cin, cout = c["cpg"] * g, c["kpg"] * g
    groups = g + 1 if c["wrong_groups"] == 0 else g  # sometimes inconsistent on purpose
    shape = (cin, c["h"], c["w"]) if c["unbatched"] else (c["n"], cin, c["h"], c["w"])
    x = data.draw(arrays(shape, special=False), "x")
    wshape = (cin, c["kpg"], c["r"], c["s"]) if transpose else (cout, c["cpg"], c["r"], c["s"])
    w = data.draw(arrays(wshape, special=False), "w")
    b = data.draw(arrays((cout,), special=False), "b") if c["bias"] else None
    return x, w, b, groups


def check_conv2d(data):
    c = data.draw(conv_cases, "case")
    x, w, b, groups = _conv_case(data, c)
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=groups)
    if isinstance(c["padding"], str) and c["padding"] == "same" and c["stride"] != (1, 1):
        kw_t = None  # torch refuses 'same' with stride > 1; cnncore defines it (TF's rule)
    else:
        kw_t = kw
    cx, cw = as_cn(x, True), as_cn(w, True)
    cb = as_cn(b, True) if b is not None else None

    def ours():
        return F.conv2d(cx, cw, cb, **kw)

    if kw_t is None:
        try:
            y = ours()
        except ACCEPTED_ERRORS as e:
            assert "conv2d" in str(e)
            return
        # Against the reference twin (same options, its own loops).
        xr = np.ascontiguousarray(x if x.ndim == 4 else x[None])
        ref = _core.reference.conv2d_forward(
            _core.from_numpy(xr), _core.from_numpy(np.ascontiguousarray(w)),
            None if b is None else _core.from_numpy(np.ascontiguousarray(b)),
            _core.Conv2dOptions(*c["stride"], _core.Padding2d.same(), *c["dilation"], groups))
        check_close(y, ref.numpy().reshape(y.shape), 1e-4, 1e-4, f"conv2d same {c}")
        return
    tx, tw = as_torch(x, True), as_torch(w, True)
    tb = as_torch(b, True) if b is not None else None
    y, ty = expect(ours, lambda: torch.nn.functional.conv2d(tx, tw, tb, **kw_t), 1e-4, 1e-4,
                   f"conv2d {c}")
    backward_matches(y, ty, [cx, cw, cb], [tx, tw, tb], what=f"conv2d {c}")


def check_conv_transpose2d(data):
    c = data.draw(conv_cases, "case")
    x, w, b, groups = _conv_case(data, c, transpose=True)
    if isinstance(c["padding"], str):
        padding = (0, 0)
    else:
        padding = c["padding"]
    op = data.draw(st.tuples(st.integers(0, 3), st.integers(0, 3)), "output_padding")
    kw = dict(stride=c["stride"], padding=padding, output_padding=op, groups=groups,
              dilation=c["dilation"])
    cx, cw = as_cn(x, True), as_cn(w, True)
    cb = as_cn(b, True) if b is not None else None
    tx, tw = as_torch(x, True), as_torch(w, True)
    tb = as_torch(b, True) if b is not None else None
    y, ty = expect(lambda: F.conv_transpose2d(cx, cw, cb, **kw),
                   lambda: torch.nn.functional.conv_transpose2d(tx, tw, tb, **kw), 1e-4, 1e-4,
                   f"conv_transpose2d {c} {op}")
    backward_matches(y, ty, [cx, cw, cb], [tx, tw, tb], what=f"conv_transpose2d {c}")


# ---- pooling ------------------------------------------------------------------------------------
pool_cases = st.fixed_dictionaries({
    "n": st.integers(0, 2), "c": st.integers(0, 3), "h": st.integers(0, 11),
    "w": st.integers(0, 11), "k": st.tuples(st.integers(0, 5), st.integers(1, 5)),
    "stride": st.one_of(st.none(), st.tuples(st.integers(-1, 4), st.integers(1, 4))),
    "padding": st.tuples(st.integers(-1, 3), st.integers(0, 3)),
    "dilation": st.tuples(st.integers(1, 3), st.integers(0, 3)),
    "ceil_mode": st.booleans(), "count_include_pad": st.booleans(),
    "unbatched": st.booleans(),
})


def _pool_input(data, c, special):
    shape = (c["c"], c["h"], c["w"]) if c["unbatched"] else (c["n"], c["c"], c["h"], c["w"])
    return data.draw(arrays(shape, special=special), "x")


def check_max_pool2d(data):
    c = data.draw(pool_cases, "case")
    x = _pool_input(data, c, special=True)
    kw = dict(kernel_size=c["k"], stride=c["stride"], padding=c["padding"],
              dilation=c["dilation"], ceil_mode=c["ceil_mode"])
    cx, tx = as_cn(x, True), as_torch(x, True)
    y, ty = expect(lambda: F.max_pool2d(cx, **kw), lambda: torch.nn.functional.max_pool2d(tx, **kw),
                   0, 0, f"max_pool2d {c}")
    # Which of several equal (or NaN/Inf) entries gets the gradient is not specified.
    if np.isfinite(x).all() and len(np.unique(x)) == x.size:
        backward_matches(y, ty, [cx], [tx], 1e-5, 1e-5, f"max_pool2d {c}")


def check_avg_pool2d(data):
    c = data.draw(pool_cases, "case")
    x = _pool_input(data, c, special=True)
    div = data.draw(st.one_of(st.none(), st.integers(-2, 5)), "divisor_override")
    kw = dict(kernel_size=c["k"], stride=c["stride"], padding=c["padding"],
              ceil_mode=c["ceil_mode"], count_include_pad=c["count_include_pad"],
              divisor_override=div)
    cx, tx = as_cn(x, True), as_torch(x, True)
    y, ty = expect(lambda: F.avg_pool2d(cx, **kw), lambda: torch.nn.functional.avg_pool2d(tx, **kw),
                   1e-5, 1e-5, f"avg_pool2d {c} div={div}")
    backward_matches(y, ty, [cx], [tx], 1e-5, 1e-5, f"avg_pool2d {c}")


def check_pool_vs_reference(data):
    """The fast pool kernels against their reference twins under every available ISA."""
    c = data.draw(pool_cases, "case")
    assume(c["n"] and c["c"] and c["h"] and c["w"])
    x = np.ascontiguousarray(_pool_input(data, {**c, "unbatched": False}, special=True))
    o = _core.Pool2dOptions()
    o.kernel_h, o.kernel_w = max(c["k"][0], 1), c["k"][1]
    s = c["stride"] or (0, 0)
    o.stride_h, o.stride_w = max(s[0], 0), s[1]
    o.pad_h, o.pad_w = max(c["padding"][0], 0), c["padding"][1]
    o.ceil_mode = c["ceil_mode"]
    with forced_isa(data) as isa:
        for fast, ref in ((_core.avg_pool2d_forward, _core.reference.avg_pool2d_forward),
                          (lambda t, o: _core.max_pool2d_forward(t, o)[0],
                           lambda t, o: _core.reference.max_pool2d_forward(t, o)[0])):
            try:
                want = ref(_core.from_numpy(x), o)
            except ACCEPTED_ERRORS:
                with pytest.raises(ACCEPTED_ERRORS):
                    fast(_core.from_numpy(x), o)
                continue
            check_close(fast(_core.from_numpy(x), o), want, 1e-5, 1e-5, f"pool {isa} {c}")


def check_adaptive_pool2d(data):
    shape = data.draw(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 9),
                                st.integers(0, 9)), "shape")
    out = data.draw(st.one_of(st.integers(-1, 7), st.tuples(st.one_of(st.none(),
                                                                       st.integers(0, 7)),
                                                             st.integers(0, 7))), "output_size")
    x = data.draw(arrays(shape), "x")
    which = data.draw(st.sampled_from(["adaptive_avg_pool2d", "adaptive_max_pool2d"]), "op")
    cx, tx = as_cn(x), as_torch(x)
    expect(lambda: getattr(F, which)(cx, out),
           lambda: getattr(torch.nn.functional, which)(tx, out), 1e-5, 1e-5,
           f"{which} {shape} {out}")


# ---- elementwise, softmax, linear ----------------------------------------------------------------
ELEMENTWISE = [
    ("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("sigmoid", {}), ("tanh", {}),
]


def check_activation(data):
    shape = data.draw(st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple), "shape")
    x = data.draw(arrays(shape, low=-20, high=20), "x")
    name, kw = data.draw(st.sampled_from(ELEMENTWISE), "op")
    cx, tx = as_cn(x, True), as_torch(x, True)
    with forced_isa(data) as isa:
        y, ty = expect(lambda: getattr(F, name)(cx, **kw),
                       lambda: getattr(torch.nn.functional, name)(tx, **kw), 1e-5, 1e-6,
                       f"{name} {isa}")
        if y is not None and y.numel() and np.isfinite(x).all():
            y.sum().backward()
            ty.sum().backward()
            grads_match([cx], [tx], 1e-5, 1e-6, name)


def check_softmax(data):
    shape = data.draw(st.lists(st.integers(0, 6), min_size=1, max_size=4).map(tuple), "shape")
    x = data.draw(arrays(shape, low=-50, high=50), "x")
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)), "dim")
    name = data.draw(st.sampled_from(["softmax", "log_softmax"]), "op")
    cx, tx = as_cn(x), as_torch(x)
    with forced_isa(data) as isa:
        expect(lambda: getattr(F, name)(cx, dim=dim),
               lambda: getattr(torch.nn.functional, name)(tx, dim=dim), 1e-4, 1e-5,
               f"{name} {shape} dim={dim} {isa}")


def check_linear_matmul(data):
    batch = data.draw(st.lists(st.integers(0, 3), max_size=2).map(tuple), "batch")
    m, k, n = (data.draw(st.integers(0, 9), f) for f in "mkn")
    k2 = k if data.draw(st.integers(0, 5)) else k + 1
    a = data.draw(arrays((*batch, m, k)), "a")
    which = data.draw(st.sampled_from(["linear", "matmul"]), "op")
    if which == "linear":
        w = data.draw(arrays((n, k2)), "w")
        b = data.draw(st.one_of(st.none(), arrays((n,))), "b")
        expect(lambda: F.linear(as_cn(a), as_cn(w), None if b is None else as_cn(b)),
               lambda: torch.nn.functional.linear(as_torch(a), as_torch(w),
                                                  None if b is None else as_torch(b)),
               1e-4, 1e-4, f"linear {a.shape} {w.shape}")
    else:
        bm = data.draw(arrays((k2, n)), "b")
        expect(lambda: cnncore.matmul(as_cn(a), as_cn(bm)),
               lambda: torch.matmul(as_torch(a), as_torch(bm)), 1e-4, 1e-4,
               f"matmul {a.shape} {bm.shape}")


# ---- losses, norm, resampling --------------------------------------------------------------------
def check_losses(data):
    n = data.draw(st.integers(0, 5), "n")
    c = data.draw(st.integers(1, 5), "c")
    reduction = data.draw(st.sampled_from(["mean", "sum", "none", "bogus"]), "reduction")
    which = data.draw(st.sampled_from(["mse_loss", "l1_loss", "smooth_l1_loss", "cross_entropy",
                                       "nll_loss", "binary_cross_entropy_with_logits",
                                       "binary_cross_entropy"]), "op")
    x = data.draw(arrays((n, c), special=which != "binary_cross_entropy"), "x")
    if which in ("cross_entropy", "nll_loss"):
        bad = data.draw(st.integers(0, 6)) == 0
        t = np.random.default_rng(n * 7 + c).integers(0, c + (3 if bad else 0), size=n)
        ct, tt = cnncore.tensor(t.astype(np.int64)), torch.from_numpy(t.astype(np.int64))
    elif which == "binary_cross_entropy":
        x = 1 / (1 + np.exp(-x))
        t = data.draw(arrays((n, c), special=False, low=0, high=1), "t")
        ct, tt = as_cn(t), as_torch(t)
    else:  # targets in their domain (probabilities or values); NaN/Inf go in the input
        t = data.draw(arrays((n, c), special=False, low=0, high=1), "t")
        ct, tt = as_cn(t), as_torch(t)
    cx, tx = as_cn(x), as_torch(x)
    expect(lambda: getattr(F, which)(cx, ct, reduction=reduction),
           lambda: getattr(torch.nn.functional, which)(tx, tt, reduction=reduction),
           1e-4, 1e-4, f"{which} ({n},{c}) {reduction}")


def check_batch_norm(data):
    shape = data.draw(st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(0, 4),
                                st.integers(0, 4)), "shape")
    x = data.draw(arrays(shape), "x")
    c = shape[1]
    training = data.draw(st.booleans(), "training")
    nc = c if data.draw(st.integers(0, 5)) else c + 1
    rm = np.zeros(nc, np.float32)
    rv = np.ones(nc, np.float32)
    wt, bs = (data.draw(arrays((nc,), special=False), f) for f in ("weight", "bias"))
    crm, crv = rm.copy(), rv.copy()
    expect(lambda: F.batch_norm(as_cn(x), cnncore.from_numpy(crm), cnncore.from_numpy(crv),
                                as_cn(wt), as_cn(bs), training=training),
           lambda: torch.nn.functional.batch_norm(as_torch(x), torch.from_numpy(rm),
                                                  torch.from_numpy(rv), as_torch(wt),
                                                  as_torch(bs), training=training),
           1e-3, 1e-4, f"batch_norm {shape} training={training}")
    if np.isfinite(x).all():
        check_close(crm, rm, 1e-4, 1e-5, "running_mean")


def check_local_response_norm(data):
    shape = data.draw(st.tuples(st.integers(0, 2), st.integers(0, 6), st.integers(1, 4),
                                st.integers(1, 4)), "shape")
    size = data.draw(st.integers(-1, 7), "size")
    x = data.draw(arrays(shape), "x")
    expect(lambda: F.local_response_norm(as_cn(x), size),
           lambda: torch.nn.functional.local_response_norm(as_torch(x), size), 1e-4, 1e-5,
           f"local_response_norm {shape} size={size}")


def check_interpolate_pad(data):
    shape = data.draw(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 6),
                                st.integers(0, 6)), "shape")
    # Inf through interpolation weights of 0 gives NaN at places that depend on the formula's
    # arrangement, not on correctness: finite inputs here.
    x = data.draw(arrays(shape, special=False), "x")
    if data.draw(st.booleans(), "interpolate"):
        mode = data.draw(st.sampled_from(["nearest", "bilinear"]), "mode")
        size = data.draw(st.one_of(st.integers(-1, 9),
                                   st.tuples(st.integers(0, 9), st.integers(1, 9))), "size")
        align = None if mode == "nearest" else data.draw(st.booleans(), "align_corners")
        expect(lambda: F.interpolate(as_cn(x), size=size, mode=mode, align_corners=align),
               lambda: torch.nn.functional.interpolate(as_torch(x), size=size, mode=mode,
                                                       align_corners=align),
               1e-4, 1e-5, f"interpolate {shape} {size} {mode}")
    else:
        p = data.draw(st.lists(st.integers(-2, 3), min_size=2, max_size=4, ).map(tuple), "pad")
        mode = data.draw(st.sampled_from(["constant", "reflect", "replicate"]), "mode")
        # torch crops before it pads, so (2, -2) on width 1 fails there; pad-then-crop in numpy
        # is the oracle for constant padding.
        oracle = (lambda: _pad_constant(x, p)) if mode == "constant" else (
            lambda: torch.nn.functional.pad(as_torch(x), p, mode=mode))
        expect(lambda: F.pad(as_cn(x), p, mode=mode), oracle, 0, 0, f"pad {shape} {p} {mode}")


def _pad_constant(x, p):
    """torch.nn.functional.pad's meaning for mode='constant': pairs from the last dim, negative
    entries crop. ValueError when a size would not be positive."""
    pairs = [(p[i], p[i + 1]) for i in range(0, len(p), 2)]
    widths = [(0, 0)] * (x.ndim - len(pairs)) + [(max(lo, 0), max(hi, 0))
                                                  for lo, hi in reversed(pairs)]
    y = np.pad(x, widths)
    crops = [(0, 0)] * (x.ndim - len(pairs)) + [(max(-lo, 0), max(-hi, 0))
                                                 for lo, hi in reversed(pairs)]
    if any(n - lo - hi <= 0 for n, (lo, hi) in zip(y.shape, crops)) and x.size:
        raise ValueError("pad: a size would not be positive")
    return y[tuple(slice(lo, n - hi) for n, (lo, hi) in zip(y.shape, crops))]


def check_dropout(data):
    shape = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=4).map(tuple), "shape")
    x = data.draw(arrays(shape), "x")
    p = data.draw(st.sampled_from([0.0, 0.3, 1.0, -0.1, 1.5]), "p")
    try:
        y = F.dropout(as_cn(x), p=p, training=True)
    except ACCEPTED_ERRORS as e:
        assert not 0 <= p <= 1 and "dropout" in str(e)
        return
    assert 0 <= p <= 1, f"dropout accepted p={p}"
    yv = to_numpy(y)
    assert yv.shape == x.shape
    if p == 1.0:  # x * 0, as torch: inf and NaN give NaN
        assert not yv[np.isfinite(x)].any()
    elif p == 0.0:
        np.testing.assert_array_equal(yv, x)
    else:
        kept = yv != 0
        np.testing.assert_allclose(yv[kept & np.isfinite(x)], (x / (1 - p))[kept & np.isfinite(x)],
                                   rtol=1e-6)


# ---- tensor ops ----------------------------------------------------------------------------------
REDUCTIONS = ["sum", "mean", "amax", "amin", "argmax", "argmin", "var", "std"]


def check_tensor_ops(data):
    shape = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=4).map(tuple), "shape")
    x = data.draw(arrays(shape, special=data.draw(st.booleans())), "x")
    y = data.draw(arrays(shape), "y")
    nd = len(shape)
    which = data.draw(st.sampled_from(["binary", "reduce", "permute", "cat", "reshape",
                                       "squeeze", "sort"]), "kind")
    cx, tx = as_cn(x), as_torch(x)
    if which == "binary":
        op = data.draw(st.sampled_from(["add", "sub", "mul", "div", "maximum", "minimum",
                                        "eq", "lt"]))
        expect(lambda: getattr(cnncore, op)(cx, as_cn(y)),
               lambda: getattr(torch, op)(tx, as_torch(y)), 1e-5, 1e-6, f"{op} {shape}")
    elif which == "reduce":
        dim = data.draw(st.integers(-nd - 1, nd), "dim")
        keep = data.draw(st.booleans(), "keepdim")
        op = data.draw(st.sampled_from(["sum", "mean", "argmax", "argmin"]), "op")
        expect(lambda: getattr(cnncore, op)(cx, dim=dim, keepdim=keep),
               lambda: getattr(torch, op)(tx, dim=dim, keepdim=keep), 1e-4, 1e-5,
               f"{op} {shape} dim={dim}")
    elif which == "permute":
        dims = data.draw(st.permutations(range(nd)), "dims")
        if data.draw(st.integers(0, 4)) == 0:
            dims = [*dims[:-1], nd]  # out of range on purpose
        expect(lambda: cnncore.permute(cx, dims), lambda: torch.permute(tx, dims), 0, 0,
               f"permute {shape} {dims}")
    elif which == "cat":
        dim = data.draw(st.integers(-nd - 1, nd), "dim")
        expect(lambda: cnncore.cat([cx, as_cn(y)], dim), lambda: torch.cat([tx, as_torch(y)], dim),
               0, 0, f"cat {shape} dim={dim}")
    elif which == "reshape":
        new = data.draw(st.lists(st.integers(-1, 6), min_size=0, max_size=4).map(tuple), "new")
        expect(lambda: cnncore.reshape(cx, new), lambda: torch.reshape(tx, new), 0, 0,
               f"reshape {shape} -> {new}")
    elif which == "squeeze":
        dim = data.draw(st.integers(-nd - 1, nd), "dim")
        expect(lambda: cnncore.unsqueeze(cx, dim), lambda: torch.unsqueeze(tx, dim), 0, 0,
               f"unsqueeze {shape} {dim}")
    else:
        dim = data.draw(st.integers(-nd, nd - 1), "dim")
        x2 = np.where(np.isnan(x), 0, x)  # torch and numpy order NaNs differently
        expect(lambda: cnncore.sort(as_cn(x2), dim=dim)[0],
               lambda: torch.sort(as_torch(x2), dim=dim)[0], 0, 0, f"sort {shape} {dim}")


# ---- layers and extreme sizes --------------------------------------------------------------------
def check_layers(data):
    """Layer constructors validate their arguments, then run like the functional op."""
    kind = data.draw(st.sampled_from(["Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d",
                                      "MaxPool2d", "AvgPool2d"]), "layer")
    ints = st.integers(-1, 5)
    if kind in ("Conv2d", "ConvTranspose2d"):
        args = (data.draw(ints), data.draw(ints), data.draw(ints))
        kw = dict(stride=data.draw(ints), padding=data.draw(st.integers(-1, 3)),
                  groups=data.draw(st.integers(0, 3)))
    elif kind == "Linear":
        args, kw = (data.draw(ints), data.draw(ints)), {}
    elif kind == "BatchNorm2d":
        args, kw = (data.draw(ints),), {}
    else:
        args, kw = (data.draw(ints),), dict(stride=data.draw(st.one_of(st.none(), ints)))
    try:
        with warnings.catch_warnings():  # torch warns that initialising 0 elements is a no-op
            warnings.simplefilter("ignore")
            tmod = getattr(torch.nn, kind)(*args, **kw)
    except (RuntimeError, ValueError, TypeError, ZeroDivisionError):
        with pytest.raises(ACCEPTED_ERRORS):
            getattr(nn, kind)(*args, **kw)
        return
    try:
        cmod = getattr(nn, kind)(*args, **kw)
    except ACCEPTED_ERRORS as e:
        assert str(e)
        return
    state = {k: v.detach().numpy() for k, v in tmod.state_dict().items()}
    cmod.load_state_dict(state)
    shape = {"Linear": (2, max(args[0], 0))}.get(kind, (2, max(args[0], 1), 7, 6))
    x = data.draw(arrays(shape, special=False), "x")
    tmod.train(False)
    cmod.eval()
    with torch.no_grad():
        expect(lambda: cmod(as_cn(x)), lambda: tmod(as_torch(x)), 1e-4, 1e-4,
               f"{kind}{args} {kw}")


HUGE = [2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1]


def check_extreme_sizes(data):
    """Sizes whose products overflow 32 or 64 bits never wrap: ValueError, or MemoryError when
    the size is representable but more than the machine has."""
    which = data.draw(st.sampled_from(["empty", "conv_params", "pool", "reshape", "linear",
                                       "interpolate"]), "what")
    big = data.draw(st.sampled_from(HUGE), "big")
    small = data.draw(st.integers(1, 3), "small")
    errors = (ValueError, MemoryError, TypeError)
    with pytest.raises(errors) as info:
        if which == "empty":
            cnncore.empty(big, big // small + 1)
        elif which == "conv_params":
            _core.conv2d_params([small, big, big, big], [big, 1, 1, 1],
                                _core.Conv2dOptions(groups=big))
        elif which == "pool":
            o = _core.Pool2dOptions()
            o.kernel_h = o.kernel_w = small
            o.pad_h = big
            _core.max_pool2d_forward(_core.zeros([1, 1, 4, 4]), o)
        elif which == "reshape":
            cnncore.zeros(2, 3).reshape(big, -1)
        elif which == "linear":
            F.linear(cnncore.zeros(1, 2), cnncore.zeros(2, 2).expand(big, 2))
        else:
            F.interpolate(cnncore.zeros(1, 1, 2, 2), scale_factor=float(big))
    assert str(info.value)


CHECKS = [check_conv2d, check_conv_transpose2d, check_max_pool2d, check_avg_pool2d,
          check_pool_vs_reference, check_adaptive_pool2d, check_activation, check_softmax,
          check_linear_matmul, check_losses, check_batch_norm, check_local_response_norm,
          check_interpolate_pad, check_dropout, check_tensor_ops, check_layers,
          check_extreme_sizes]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__[6:] for c in CHECKS])
@SHORT
@given(data=st.data())
def test_fuzz_short(check, data):
    check(data)


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__[6:] for c in CHECKS])
@LONG
@given(data=st.data())
def test_fuzz_long(check, data):
    check(data)


def test_bad_alloc_is_memory_error():
    """More memory than any machine here has: MemoryError naming the op, never an abort."""
    with pytest.raises(MemoryError, match="empty"):
        cnncore.empty(2**40)
