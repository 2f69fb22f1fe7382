"""conv_transpose2d: fast path vs the reference twin on every ISA, vs PyTorch, gradients, errors."""

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

# (N, C_in, H, W, C_out, kernel, stride, padding, output_padding, dilation, groups, what)
SHAPES = [
    (2, 3, 5, 6, 4, (3, 3), 1, 0, 0, 1, 1, "3x3"),
    (1, 4, 4, 5, 6, (3, 3), 2, 1, 1, 1, 1, "stride 2, output_padding 1, batch 1"),
    (2, 3, 3, 4, 2, (2, 2), 3, 0, (2, 1), 1, 1, "stride > kernel"),
    (2, 4, 5, 5, 6, (3, 2), (2, 1), (2, 1), (1, 0), (1, 2), 2, "groups 2, dilation"),
    (2, 6, 4, 7, 6, (3, 3), 2, 1, 1, 1, 6, "depthwise"),
    (2, 5, 4, 4, 10, (3, 3), 1, 1, 0, 1, 5, "depthwise multiplier 2"),
    (2, 8, 5, 3, 4, (1, 1), 1, 0, 0, 1, 1, "1x1"),
    (2, 4, 5, 6, 6, (3, 3), 1, (1, 0), (2, 1), (3, 2), 2, "output_padding >= stride"),
    (3, 3, 7, 5, 5, (4, 4), 2, 3, 0, 1, 1, "padding > kernel/2"),
    # output_padding below the dilation at stride 1: output rows no input pixel reaches (a 1x1
    # kernel once left them unwritten)
    (1, 1, 1, 1, 1, (1, 1), 1, 0, (1, 0), (2, 1), 1, "1x1, dilation 2, output_padding 1"),
    (3, 8, 5, 3, 4, (1, 1), 1, 0, (1, 2), (2, 3), 1, "1x1 dilated, output_padding (1, 2)"),
]
IDS = [s[-1] for s in SHAPES]


def _opts(stride, padding, dilation, groups):
    return cnncore._ops.conv._options(stride, padding, dilation, groups, "conv_transpose2d")


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def _data(shape, seed):
    n, c, h, w, k, (r, s), stride, padding, op, dilation, groups, _ = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c, k // groups, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    return x, wt, b


def _rel(a, e, what, tol=2e-5):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    err = np.abs(a - e).max() / max(np.abs(e).max(), 1e-6)
    assert err < tol, f"{what}: max error {err:.2e} relative to the output's scale"


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_fast_matches_reference(shape, isa):
    x, w, b = _data(shape, 1)
    *_, stride, padding, op, dilation, groups, what = shape
    opt = _opts(stride, padding, dilation, groups)
    oph, opw = _pair(op)
    X, Wc, B = _core.from_numpy(x), _core.from_numpy(w), _core.from_numpy(b)
    ref = _core.reference
    y = _core.conv_transpose2d_forward(X, Wc, B, opt, oph, opw)
    _rel(y.numpy(), ref.conv_transpose2d_forward(X, Wc, B, opt, oph, opw).numpy(),
         f"forward {what}")
    dy = _core.from_numpy(np.random.default_rng(2).standard_normal(y.shape).astype(np.float32))
    _rel(_core.conv_transpose2d_backward_input(dy, Wc, list(x.shape), opt, oph, opw).numpy(),
         ref.conv_transpose2d_backward_input(dy, Wc, list(x.shape), opt, oph, opw).numpy(),
         f"backward input {what}")
    _rel(_core.conv_transpose2d_backward_weight(dy, X, list(w.shape), opt, oph, opw).numpy(),
         ref.conv_transpose2d_backward_weight(dy, X, list(w.shape), opt, oph, opw).numpy(),
         f"backward weight {what}")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_matches_torch(shape):
    torch = pytest.importorskip("torch", reason="torch is only needed for the comparison tests")
    x, w, b = _data(shape, 3)
    *_, stride, padding, op, dilation, groups, what = shape
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding, op, groups, dilation)
    X, Wt, B = (cnncore.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv_transpose2d(X, Wt, B, stride, padding, op, groups, dilation)
    check_close(y, ty, rtol=1e-4, atol=1e-4, what=f"forward {what}")
    g = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.tensor(g))
    y.backward(cnncore.tensor(g))
    check_close(X.grad, tx.grad, rtol=1e-4, atol=1e-3, what=f"grad input {what}")
    check_close(Wt.grad, tw.grad, rtol=1e-4, atol=1e-3, what=f"grad weight {what}")
    check_close(B.grad, tb.grad, rtol=1e-4, atol=1e-3, what=f"grad bias {what}")


def test_keyword_order_matches_torch():
    """output_padding comes before groups, dilation last, as in torch."""
    x, w, b = _data(SHAPES[3], 5)
    a = F.conv_transpose2d(cnncore.tensor(x), cnncore.tensor(w), cnncore.tensor(b), (2, 1),
                           (2, 1), (1, 0), 2, (1, 2))
    k = F.conv_transpose2d(input=cnncore.tensor(x), weight=cnncore.tensor(w),
                           bias=cnncore.tensor(b), stride=(2, 1), padding=(2, 1),
                           output_padding=(1, 0), groups=2, dilation=(1, 2))
    check_close(a, k, what="positional vs keyword")


def test_gradcheck():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 3, 3))
    w = rng.standard_normal((2, 3, 3, 2))
    b = rng.standard_normal(3)
    gradcheck(lambda a, c, d: F.conv_transpose2d(a, c, d, stride=2, padding=1, output_padding=1),
              [x, w, b], eps=1e-2, rtol=2e-2, atol=2e-3)


def test_unbatched_and_inverse_shape():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = F.conv_transpose2d(cnncore.tensor(x), cnncore.tensor(w), stride=2, padding=1,
                           output_padding=1)
    assert y.shape == (2, 10, 12)
    # transposed conv is the adjoint of conv: <conv(z), x> == <z, conv_t(x)>
    z = rng.standard_normal((1, 2, 10, 12)).astype(np.float32)
    cz = F.conv2d(cnncore.tensor(z), cnncore.tensor(w), stride=2, padding=1).numpy()
    lhs = float(np.sum(cz.astype(np.float64) * x[None]))
    rhs = float(np.sum(y.numpy().astype(np.float64) * z[0]))
    assert abs(lhs - rhs) < 1e-3 * max(abs(lhs), 1.0)


def test_nn_layer_output_size():
    layer = cnncore.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    y = layer(cnncore.randn(1, 4, 5, 5), output_size=(10, 10))
    assert y.shape == (1, 2, 10, 10)


def _x(*shape):
    return cnncore.tensor(np.ones(shape, np.float32))


@pytest.mark.parametrize("args,kw,exc,fragment", [
    ((_x(1, 3, 5, 5), _x(4, 2, 3, 3)), {}, ValueError, "input has 3 channels but weight expects 4"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3)), dict(groups=2), ValueError, "divisible by groups (2)"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3)), dict(stride=2, output_padding=2), ValueError,
     "output_padding must be >= 0 and smaller than either stride or dilation (2)"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3)), dict(output_padding=-1), ValueError, "output_padding"),
    ((_x(1, 3, 2, 2), _x(3, 2, 3, 3)), dict(padding=3), ValueError, "output size must be positive"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3)), dict(padding="same"), ValueError,
     "padding must be an int or a pair"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3)), dict(stride=0), ValueError, "stride must be >= 1"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3)), dict(padding=-1), ValueError, "padding must be >= 0"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3)), dict(output_padding=0.5), TypeError,
     "output_padding must be an int"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3, 3), _x(3)), {}, ValueError, "bias must have shape (2,)"),
    ((_x(3, 5), _x(3, 2, 3, 3)), {}, ValueError, "input must be 3-D (C, H, W) or 4-D"),
    ((_x(1, 3, 5, 5), _x(3, 2, 3)), {}, ValueError, "weight must be 4-D"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input(args, kw, exc, fragment):
    with pytest.raises(exc) as info:
        F.conv_transpose2d(*args, **kw)
    assert fragment in str(info.value)
    assert "conv_transpose2d" in str(info.value)
