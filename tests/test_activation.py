"""Activations and (log-)softmax: fast kernels vs the reference on every ISA, vs PyTorch, gradients
by finite differences, numerical stability and bad inputs."""

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

RAGGED = [(1,), (7,), (3, 5), (2, 13, 5, 3), (4, 17), (1, 33, 9), (257,), (3, 1025)]

# name -> (forward args beyond x, backward uses "input" or "output")
ELEMENTWISE = {
    "relu": ((), "output"),
    "leaky_relu": ((0.07,), "input"),
    "hardtanh": ((-0.5, 1.25), "input"),
    "sigmoid": ((), "output"),
    "tanh": ((), "output"),
}


def _rand(shape, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("shape", RAGGED)
def test_elementwise_matches_reference(isa, name, shape):
    extra, saved = ELEMENTWISE[name]
    x = _core.from_numpy(_rand(shape, seed=len(shape)))
    dy = _core.from_numpy(_rand(shape, seed=7))
    fwd, ref_fwd = getattr(_core, name + "_forward"), getattr(_core.reference, name + "_forward")
    y, y_ref = fwd(x, *extra), ref_fwd(x, *extra)
    check_close(y, y_ref, rtol=2e-6, atol=5e-7, what=f"{name} forward {shape} [{isa}]")
    s = x if saved == "input" else y_ref
    dx = getattr(_core, name + "_backward")(dy, s, *extra)
    dx_ref = getattr(_core.reference, name + "_backward")(dy, s, *extra)
    check_close(dx, dx_ref, rtol=1e-5, atol=1e-6, what=f"{name} backward {shape} [{isa}]")


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 13, 5, 3), 1),
                                       ((2, 3, 300), 1), ((4, 1000), -1), ((2, 9, 17), 2),
                                       ((1, 1), 0), ((5, 3, 1), -1)])
def test_softmax_matches_reference(isa, shape, dim, log):
    name = "log_softmax" if log else "softmax"
    x = _core.from_numpy(_rand(shape, seed=3))
    dy = _core.from_numpy(_rand(shape, seed=4, scale=1.0))
    y = getattr(_core, name + "_forward")(x, dim)
    y_ref = getattr(_core.reference, name + "_forward")(x, dim)
    check_close(y, y_ref, rtol=1e-5, atol=1e-6, what=f"{name} {shape} dim={dim} [{isa}]")
    dx = getattr(_core, name + "_backward")(dy, y_ref, dim)
    dx_ref = getattr(_core.reference, name + "_backward")(dy, y_ref, dim)
    check_close(dx, dx_ref, rtol=1e-5, atol=1e-6, what=f"{name} backward {shape} [{isa}]")


def test_softmax_same_result_for_any_thread_count():
    x = _core.from_numpy(_rand((8, 64, 300), seed=5))
    prev = cnncore.get_num_threads()
    try:
        cnncore.set_num_threads(1)
        a = _core.softmax_forward(x, 1).numpy().copy()
        cnncore.set_num_threads(2)
        b = _core.softmax_forward(x, 1).numpy().copy()
    finally:
        cnncore.set_num_threads(prev)
    assert np.array_equal(a, b)


def test_softmax_is_stable_for_large_inputs():
    x = cnncore.tensor([[1000.0, 1000.0, -1000.0], [-1e30, 0.0, 88.0]])
    y = F.softmax(x, dim=1).numpy()
    assert np.all(np.isfinite(y))
    check_close(y[0], [0.5, 0.5, 0.0], atol=1e-7, what="softmax of large equal logits")
    ly = F.log_softmax(x, dim=1).numpy()
    check_close(ly[0], [-np.log(2), -np.log(2), -2000.0 - np.log(2)], rtol=1e-6, what="log_softmax")
    # The strided path (softmax over a non-last dim) too.
    x3 = np.stack([np.array([[1000.0, 1000.0, -1000.0]] * 5).T] * 2).astype(np.float32)  # (2, 3, 5)
    check_close(F.log_softmax(cnncore.tensor(x3), dim=1).numpy()[:, :2],
                np.full((2, 2, 5), -np.log(2)), rtol=1e-6, what="log_softmax over dim 1 of 3-D")
    check_close(F.softmax(cnncore.tensor(x3), dim=1).numpy()[:, 2], np.zeros((2, 5)), atol=1e-30,
                what="softmax over dim 1 of 3-D")
    check_close(F.sigmoid(cnncore.tensor([-200.0, 200.0])), [0.0, 1.0], atol=1e-30, what="sigmoid")
    check_close(F.tanh(cnncore.tensor([-50.0, 1e-6, 50.0])), [-1.0, 1e-6, 1.0], rtol=1e-5,
                what="tanh keeps precision near 0")


@pytest.mark.parametrize("ndim,expected", [(1, 0), (2, 1), (3, 0), (4, 1)])
def test_softmax_implicit_dim_follows_torch(ndim, expected):
    x = _rand((2, 3, 4, 5)[:ndim], seed=1)
    got = F.softmax(cnncore.tensor(x)).numpy()
    e = np.exp(x - x.max(axis=expected, keepdims=True))
    check_close(got, e / e.sum(axis=expected, keepdims=True), rtol=1e-5, atol=1e-7,
                what=f"implicit dim for {ndim}-D")


TORCH_CASES = [
    ("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("hardtanh", {"min_val": -2.0, "max_val": 0.5}), ("sigmoid", {}), ("tanh", {}),
    ("softmax", {"dim": 1}), ("log_softmax", {"dim": 1}), ("softmax", {"dim": -1}),
    ("log_softmax", {"dim": 0}),
]


@pytest.mark.parametrize("name,kwargs", TORCH_CASES)
def test_against_torch(name, kwargs):
    torch = pytest.importorskip("torch", reason="PyTorch comparison")
    x = _rand((3, 11, 4, 5), seed=11)
    x[0, 0, 0, :3] = [0.0, 6.0, -2.0]  # boundary points of relu6/hardtanh
    g = _rand(x.shape, seed=12, scale=1.0)
    ours = cnncore.tensor(x, requires_grad=True)
    y = getattr(F, name)(ours, **kwargs)
    y.backward(cnncore.tensor(g))
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, **kwargs)
    ty.backward(torch.tensor(g))
    check_close(y, ty, rtol=1e-5, atol=1e-6, what=f"{name} forward")
    check_close(ours.grad, tx.grad, rtol=1e-5, atol=1e-6, what=f"{name} backward")


@pytest.mark.parametrize("name,kwargs", [
    ("leaky_relu", {"negative_slope": 0.3}), ("hardtanh", {"min_val": -0.8, "max_val": 0.9}),
    ("sigmoid", {}), ("tanh", {}), ("softmax", {"dim": 1}), ("log_softmax", {"dim": 0}),
    ("log_softmax", {"dim": 2}),
])
def test_gradcheck(name, kwargs):
    x = _rand((2, 3, 4), seed=21, scale=1.5)
    x[np.abs(x) < 0.05] = 0.3  # keep finite differences off the kinks
    for bound in (-0.8, 0.9):
        x[np.abs(x - bound) < 0.05] = 0.3
    gradcheck(lambda t: getattr(F, name)(t, **kwargs), [x], eps=1e-2, rtol=2e-2, atol=2e-3)


def test_relu6_clamps_and_inplace_writes_input():
    x = cnncore.tensor([-1.0, 3.0, 7.0])
    check_close(F.relu6(x), [0.0, 3.0, 6.0], what="relu6")
    y = F.relu(x, inplace=True)
    assert y is x and x.numpy().tolist() == [0.0, 3.0, 7.0]
    z = F.leaky_relu(cnncore.tensor([-2.0, 2.0]), 0.5)
    assert z.numpy().tolist() == [-1.0, 2.0]


def test_empty_input_gives_empty_output():
    x = cnncore.tensor(np.zeros((0, 4), dtype=np.float32))
    assert F.sigmoid(x).shape == (0, 4)
    assert F.softmax(x, dim=1).shape == (0, 4)


def test_bad_inputs():
    x = cnncore.tensor(_rand((2, 3)))
    with pytest.raises(ValueError, match=r"softmax: dim must be in \[-2, 1\].*got 2"):
        F.softmax(x, dim=2)
    with pytest.raises(ValueError, match="log_softmax: dim"):
        F.log_softmax(x, dim=-3)
    with pytest.raises(TypeError, match="softmax: dim must be an int"):
        F.softmax(x, dim=1.0)
    with pytest.raises(TypeError, match="sigmoid: input must be float32, but got int64"):
        F.sigmoid(cnncore.tensor([1, 2]))
    with pytest.raises(TypeError, match="tanh: input must be a Tensor, but got list"):
        F.tanh([1.0, 2.0])
    with pytest.raises(ValueError, match="hardtanh: min_val must be <= max_val"):
        F.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match="leaky_relu: negative_slope must be a number, but got "
                                         "nan"):
        F.leaky_relu(x, float("nan"))
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a number"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(ValueError, match="relu_backward: grad_output shape"):
        _core.relu_backward(_core.zeros([2, 2], "float32"), _core.zeros([2, 3], "float32"))


def test_blocked_and_strided_inputs_give_the_nchw_result():
    x = _rand((2, 11, 5, 3), seed=50)
    xc = _core.from_numpy(x)
    blocked = xc.to_blocked(8)
    strided = _core.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).permute([0, 3, 1, 2])
    for inp in (blocked, strided):
        for name in ("relu", "sigmoid", "tanh"):
            fwd = getattr(_core, name + "_forward")
            check_close(fwd(inp), fwd(xc), rtol=0, atol=0, what=f"{name} layout")
        check_close(_core.softmax_forward(inp, 1), _core.softmax_forward(xc, 1), rtol=0, atol=0,
                    what="softmax layout")
