"""Tensor arithmetic, reductions and shape ops: C++ kernels vs numpy (float64) and vs the reference
twins on every ISA path, autograd vs PyTorch and finite differences, operators, bad input."""

import warnings

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck

ref = _core.reference

BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt",
          "ge"]
NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
             "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal,
             "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
             "ge": np.greater_equal}
UNARY = {"neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs,
         "square": np.square, "reciprocal": np.reciprocal, "sign": np.sign}

# (a, b) shape pairs: same shape with vector tails, scalar, row, channel, ragged, 0-d, empty.
SHAPE_PAIRS = [
    ((), ()), ((5,), ()), ((), (7,)), ((13,), (13,)), ((1003,), (1003,)), ((37,), (1,)),
    ((3, 1), (1, 4)), ((2, 3, 5), (5,)), ((2, 3, 17, 19), (1, 3, 1, 1)), ((4, 1, 6), (5, 1)),
    ((2, 0, 3), (3,)), ((3, 9, 11), (3, 1, 11)), ((1, 7), (6, 1)), ((2, 3, 4), (2, 3, 4)),
]


def rng(seed=0):
    return np.random.default_rng(seed)


def inputs_for(op, sa, sb, seed=0):
    r = rng(seed)
    a = r.uniform(-2, 2, sa).astype(np.float32)
    b = r.uniform(-2, 2, sb).astype(np.float32)
    if op == "pow":
        a = np.abs(a) + 0.1
    if op == "div":
        b = np.where(np.abs(b) < 0.2, 0.7, b).astype(np.float32)
    if op in ("eq", "ne", "le", "ge", "maximum", "minimum") and a.size and b.size:
        a.reshape(-1)[::3] = 0.5  # ties
        b.reshape(-1)[::2] = 0.5
    return a, b


def c(arr):
    return _core.from_numpy(np.array(arr, dtype=np.float32, order="C"))  # keeps 0-d as 0-d


# ---- broadcasting --------------------------------------------------------------------------------
@pytest.mark.parametrize("sa,sb", SHAPE_PAIRS)
def test_broadcast_shapes_matches_numpy(sa, sb):
    expected = np.broadcast_shapes(sa, sb)
    assert tuple(_core.broadcast_shapes(list(sa), list(sb))) == expected
    assert tuple(ref.broadcast_shapes(list(sa), list(sb))) == expected


@pytest.mark.parametrize("sa,sb", [((2, 3), (4,)), ((2, 1, 3), (4, 2)), ((0,), (2,))])
def test_broadcast_clash_names_op_and_shapes(sa, sb):
    a, b = cnncore.zeros(*sa), cnncore.zeros(*sb)
    with pytest.raises(ValueError, match=r"add: shapes .* cannot be broadcast"):
        a + b
    with pytest.raises(ValueError, match="mul: shapes"):
        F.mul(a, b)


def test_broadcast_message_exact():
    with pytest.raises(ValueError, match=r"^add: shapes \(2, 3\) and \(4,\) cannot be broadcast$"):
        cnncore.zeros(2, 3) + cnncore.zeros(4)


# ---- elementwise forward vs numpy and reference, every ISA ---------------------------------------
@pytest.mark.parametrize("op", BINARY)
def test_binary_vs_numpy_and_reference(isa, op):
    for i, (sa, sb) in enumerate(SHAPE_PAIRS):
        a, b = inputs_for(op, sa, sb, seed=i)
        expected = NP_BINARY[op](a.astype(np.float64), b.astype(np.float64))
        got = _core.binary(op, c(a), c(b))
        tol = dict(rtol=1e-5, atol=1e-6) if op != "pow" else dict(rtol=1e-5, atol=1e-5)
        check_close(got, expected, what=f"{op} {sa} {sb} vs numpy", **tol)
        check_close(got, ref.binary(op, c(a), c(b)), rtol=1e-6, atol=0,
                    what=f"{op} {sa} {sb} vs reference")


@pytest.mark.parametrize("op", ["add", "mul", "maximum", "gt"])
def test_binary_strided_views(isa, op):
    r = rng(3)
    a = r.standard_normal((9, 14)).astype(np.float32).T  # (14, 9), column-major
    b = r.standard_normal((14, 1, 5)).astype(np.float32)[:, :, ::2]  # (14, 1, 3), stride 2
    big = r.standard_normal((14, 9)).astype(np.float32)
    got = _core.binary(op, _core.from_numpy(a), c(big))
    check_close(got, NP_BINARY[op](a, big).astype(np.float32), what=f"{op} transposed")
    other = r.standard_normal((14, 4, 3)).astype(np.float32)
    got = _core.binary(op, _core.from_numpy(b), c(other))
    check_close(got, NP_BINARY[op](b, other).astype(np.float32), what=f"{op} stride-2 rows")
    long_rows = r.standard_normal((300, 7)).astype(np.float32).T  # rows of 300, stride 7
    for x, y in [(long_rows, long_rows[0]), (long_rows[:1], long_rows), (long_rows, long_rows)]:
        got = _core.binary(op, _core.from_numpy(x), _core.from_numpy(y))
        check_close(got, NP_BINARY[op](x, y).astype(np.float32), what=f"{op} long strided rows")
        check_close(got, ref.binary(op, _core.from_numpy(x), _core.from_numpy(y)),
                    what=f"{op} long strided rows vs reference")
    x = cnncore.from_numpy(a).expand(3, 14, 9)  # stride-0 view
    check_close(_core.binary(op, x._c, c(big)), NP_BINARY[op](np.broadcast_to(a, (3, 14, 9)), big),
                what=f"{op} expanded view")


def test_binary_nan_propagation(isa):
    a = np.array([np.nan, 1.0, 2.0, np.nan] * 5, dtype=np.float32)
    b = np.array([1.0, np.nan, 1.0, np.nan] * 5, dtype=np.float32)
    for op in ("maximum", "minimum"):
        check_close(_core.binary(op, c(a), c(b)), NP_BINARY[op](a, b), what=op)
        check_close(ref.binary(op, c(a), c(b)), NP_BINARY[op](a, b), what=op + " ref")


@pytest.mark.parametrize("op", BINARY)
def test_binary_scalar_both_sides(isa, op):
    r = rng(1)
    a = r.uniform(0.2, 2, (3, 37)).astype(np.float32)
    for s in (2.0, 0.5, -1.5):
        if op == "pow" and s < 0:
            continue
        for first in (False, True):
            x, y = (np.float32(s), a) if first else (a, np.float32(s))
            expected = NP_BINARY[op](np.float64(x), np.asarray(y, np.float64)) if first else \
                NP_BINARY[op](np.asarray(x, np.float64), np.float64(y))
            got = _core.binary_scalar(op, c(a), s, first)
            check_close(got, expected, rtol=2e-6, atol=1e-6, what=f"{op} {s} first={first}")
            check_close(got, ref.binary_scalar(op, c(a), s, first), rtol=1e-6, atol=0,
                        what=f"{op} {s} vs reference")


@pytest.mark.parametrize("op", list(UNARY))
def test_unary_vs_numpy_and_reference(isa, op):
    r = rng(2)
    for shape in [(), (1,), (7,), (1003,), (3, 5, 17)]:
        a = r.uniform(-3, 3, shape).astype(np.float32)
        if op in ("log", "sqrt"):
            a = np.abs(a) + 0.05
        if op == "reciprocal":
            a = np.where(np.abs(a) < 0.1, 0.5, a).astype(np.float32)
        if op == "sign" and a.size:
            a.reshape(-1)[0] = 0.0
        got = _core.unary(op, c(a))
        check_close(got, UNARY[op](a.astype(np.float64)), rtol=2e-6, atol=1e-6,
                    what=f"{op} {shape}")
        check_close(got, ref.unary(op, c(a)), rtol=2e-6, atol=0, what=f"{op} vs reference")


def test_exp_log_sqrt_edges_match_reference(isa):
    r = rng(17)
    x = np.concatenate([r.uniform(-100, 100, 4001), np.linspace(-88.5, 89.5, 517),
                        [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-30, 88.7, 88.72, -87.3,
                         -103.0, -104.0]]).astype(np.float32)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        got = _core.unary("exp", c(x)).numpy()
        check_close(got, ref.unary("exp", c(x)), rtol=3e-7, atol=1e-38, what="exp vs reference")
        check_close(got, np.exp(x.astype(np.float64)).astype(np.float32), rtol=5e-7, atol=1e-38,
                    what="exp vs numpy")
        y = np.concatenate([np.abs(x), np.exp(r.uniform(-80, 80, 3001)), [1.0, 0.70710677,
                            0.7071068, 1e-38, 1e-45, 3.4e38, 0.5, 2.0, -1.0]]).astype(np.float32)
        got = _core.unary("log", c(y)).numpy()
        check_close(got, ref.unary("log", c(y)), rtol=3e-7, atol=2e-7, what="log vs reference")
        check_close(got, np.log(y.astype(np.float64)), rtol=3e-7, atol=2e-7, what="log vs numpy")
        got = _core.unary("sqrt", c(x)).numpy()
        check_close(got, ref.unary("sqrt", c(x)), rtol=0, atol=0, what="sqrt vs reference")


def test_add_inplace_accumulates(isa):
    r = rng(4)
    for sa, sb in [((1003,), (1003,)), ((4, 5, 6), (5, 1)), ((3, 7), ()), ((2, 3), (2, 3))]:
        a, b = r.standard_normal(sa).astype(np.float32), r.standard_normal(sb).astype(np.float32)
        x, xr = c(a.copy()), c(a.copy())
        _core.add_(x, c(b), 0.5)
        ref.add_(xr, c(b), 0.5)
        check_close(x, a + 0.5 * b, rtol=1e-6, atol=1e-6, what=f"add_ {sa} {sb}")
        check_close(x, xr, rtol=1e-6, atol=1e-7, what="add_ vs reference")
        y = c(a.copy())
        _core.add_(y, c(b))
        check_close(y, (a + b).astype(np.float32), rtol=0, atol=0, what="add_ alpha=1 exact")
    with pytest.raises(ValueError, match="add_: other shape"):
        _core.add_(c(np.zeros((2, 3))), c(np.zeros((3, 3))))
    with pytest.raises(ValueError, match="add_: self must be contiguous"):
        _core.add_(_core.from_numpy(np.zeros((3, 2), np.float32).T), c(np.zeros((2, 3))))


# ---- reductions ----------------------------------------------------------------------------------
RED_CASES = [
    ((7,), None), ((7,), (0,)), ((3, 5), (0,)), ((3, 5), (1,)), ((2, 3, 4, 5), (0, 2, 3)),
    ((2, 3, 4, 5), (2, 3)), ((2, 3, 4, 5), (1,)), ((2, 3, 4, 5), (0, 2)), ((4, 1, 6), (1,)),
    ((9, 700), (0,)), ((3, 1200), (1,)), ((5, 0, 3), (1,)), ((5, 0, 3), (0,)), ((), None),
    ((), (0,)), ((2, 3, 4), (-1, 0)), ((1030, 3), (0,)),
]


@pytest.mark.parametrize("shape,dims", RED_CASES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean_vs_numpy_and_reference(isa, shape, dims, keepdim):
    a = rng(5).standard_normal(shape).astype(np.float32)
    axis = None if dims is None else tuple(d % max(a.ndim, 1) for d in dims)
    if a.ndim == 0:
        axis = None
    dl = [] if dims is None else list(dims)
    exp_sum = np.sum(a.astype(np.float64), axis=axis, keepdims=keepdim)
    got = _core.sum(c(a), dl, keepdim)
    check_close(got, exp_sum, rtol=1e-5, atol=1e-5, what=f"sum {shape} {dims}")
    check_close(got, ref.sum(c(a), dl, keepdim), rtol=1e-5, atol=1e-5, what="sum vs reference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on the mean of nothing (nan, as ours)
        exp_mean = np.mean(a.astype(np.float64), axis=axis, keepdims=keepdim)
    got = _core.mean(c(a), dl, keepdim)
    check_close(got, exp_mean, rtol=1e-5, atol=1e-6, what=f"mean {shape} {dims}")
    check_close(got, ref.mean(c(a), dl, keepdim), rtol=1e-5, atol=1e-6, what="mean vs reference")


def test_long_sum_is_accurate(isa):
    n = 3_000_003
    a = np.full(n, 0.1, dtype=np.float32)
    exact = float(np.float32(0.1)) * n
    assert abs(_core.sum(c(a), [], False).numpy() - exact) / exact < 1e-6
    assert abs(_core.mean(c(a.reshape(3, -1)), [1], False).numpy()[0] - np.float32(0.1)) < 1e-7
    col = np.full((200_001, 3), 0.1, dtype=np.float32)
    assert np.allclose(_core.sum(c(col), [0], False).numpy(), float(np.float32(0.1)) * 200_001,
                       rtol=1e-6)


def test_sum_strided_input(isa):
    a = rng(6).standard_normal((6, 8, 5)).astype(np.float32).transpose(2, 0, 1)
    check_close(_core.sum(_core.from_numpy(a), [1], False), a.astype(np.float64).sum(1),
                rtol=1e-5, atol=1e-5, what="sum of a permuted view")


@pytest.mark.parametrize("g_shape,shape", [((2, 3, 4), (3, 1)), ((2, 3, 4), (4,)), ((5,), ()),
                                           ((3, 4), (3, 4)), ((2, 1, 4), (1, 1)),
                                           ((2, 3, 17, 19), (1, 3, 1, 1))])
def test_sum_to_shape(isa, g_shape, shape):
    g = rng(7).standard_normal(g_shape).astype(np.float32)
    lead = len(g_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g_shape[i + lead] != 1)
    expected = g.astype(np.float64).sum(axis=axes, keepdims=True).reshape(shape)
    got = _core.sum_to_shape(c(g), list(shape))
    check_close(got, expected, rtol=1e-5, atol=1e-5, what=f"sum_to_shape {g_shape}->{shape}")
    check_close(got, ref.sum_to_shape(c(g), list(shape)), rtol=1e-5, atol=1e-6, what="vs ref")


def test_sum_to_shape_rejects_non_broadcast():
    with pytest.raises(ValueError, match="sum_to_shape: gradient of shape"):
        _core.sum_to_shape(c(np.zeros((2, 3))), [4])


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4, 5), 1),
                                       ((2, 300, 7), -1), ((2, 3, 600), 1), ((), 0)])
def test_max_argmax_vs_numpy_and_reference(isa, shape, dim):
    a = rng(8).integers(-5, 5, shape).astype(np.float32)  # many ties: first index must win
    for keepdim in (False, True):
        v, i = _core.max_dim(c(a), dim, keepdim)
        rv, ri = ref.max_dim(c(a), dim, keepdim)
        ax = dim if a.ndim else None
        check_close(v, np.max(a, axis=ax, keepdims=keepdim and a.ndim > 0), what="max values")
        assert np.array_equal(i.numpy(), np.argmax(a, axis=ax, keepdims=keepdim and a.ndim > 0)
                              if a.ndim else np.int64(0))
        assert i.dtype == "int64" and np.array_equal(i.numpy(), ri.numpy())
        check_close(v, rv, what="vs reference")
        assert np.array_equal(_core.argmax(c(a), dim, keepdim).numpy(), i.numpy())


def test_max_long_rows_ties_and_nans(isa):
    r = rng(18)
    a = r.integers(-3, 4, (5, 203)).astype(np.float32)  # ties spread over every lane
    a[1, [150, 7, 90]] = np.nan
    a[2, 202] = np.nan
    a[3, :] = 1.0
    for x, dim in [(a, 1), (np.ascontiguousarray(a.T), 0)]:
        v, i = _core.max_dim(c(x), dim, False)
        rv, ri = ref.max_dim(c(x), dim, False)
        assert np.array_equal(i.numpy(), ri.numpy()) and i.numpy().tolist() == \
            np.argmax(x, axis=dim).tolist()
        check_close(v, rv, rtol=0, atol=0, what="max values vs reference")
    assert i.numpy()[1] == 7 and i.numpy()[2] == 202 and i.numpy()[3] == 0


def test_max_nan_wins():
    a = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, np.nan]], dtype=np.float32)
    v, i = _core.max_dim(c(a), 1, False)
    assert np.isnan(v.numpy()).all() and i.numpy().tolist() == [1, 2]


def test_max_of_empty_dim_raises():
    with pytest.raises(ValueError, match="max: cannot reduce over dim 1 of size 0"):
        _core.max_dim(c(np.zeros((3, 0))), 1, False)
    with pytest.raises(ValueError, match="max"):
        cnncore.zeros(0).max()


# ---- cat / stack / contiguous --------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_cat_stack_vs_numpy(dim):
    r = rng(9)
    arrs = [r.standard_normal((2, k, 3)).astype(np.float32) for k in (1, 4, 0, 3)] if dim in (1,) \
        else [r.standard_normal((2, 4, 3)).astype(np.float32) for _ in range(3)]
    got = _core.cat([c(x) for x in arrs], dim)
    check_close(got, np.concatenate(arrs, axis=dim), what="cat")
    check_close(ref.cat([c(x) for x in arrs], dim), np.concatenate(arrs, axis=dim), what="ref cat")
    if dim != 1:
        check_close(_core.stack([c(x) for x in arrs], dim), np.stack(arrs, axis=dim), what="stack")
        check_close(ref.stack([c(x) for x in arrs], dim), np.stack(arrs, axis=dim), what="rstack")
    ints = [np.arange(6, dtype=np.int64).reshape(2, 3), np.arange(3, dtype=np.int64).reshape(1, 3)]
    assert np.array_equal(_core.cat([_core.from_numpy(x) for x in ints], 0).numpy(),
                          np.concatenate(ints))


def test_cat_of_views_and_legacy_empty():
    a = rng(10).standard_normal((4, 6)).astype(np.float32)
    t = _core.from_numpy(a.T)  # non-contiguous
    check_close(_core.cat([t, t], 1), np.concatenate([a.T, a.T], 1), what="cat views")
    empty = c(np.zeros((0,)))
    check_close(_core.cat([empty, c(a), empty], 0), a, what="legacy empty skipped")
    check_close(_core.contiguous(t), a.T, what="contiguous")
    check_close(ref.contiguous(t), a.T, what="ref contiguous")


def test_cat_stack_errors():
    with pytest.raises(ValueError, match="cat: sizes of tensors must match except in dimension 0"):
        F.cat([cnncore.zeros(2, 3), cnncore.zeros(2, 4)])
    with pytest.raises(ValueError, match="cat: tensors must have the same number of dimensions"):
        F.cat([cnncore.zeros(2, 3), cnncore.zeros(3, 1, 1)])
    with pytest.raises(ValueError, match="cat: expected a non-empty list"):
        F.cat([])
    with pytest.raises(TypeError, match="cat: tensors must be a list"):
        F.cat(cnncore.zeros(2))
    with pytest.raises(ValueError, match="zero-dimensional"):
        F.cat([cnncore.tensor(1.0), cnncore.tensor(2.0)])
    with pytest.raises(ValueError, match=r"stack: expects each tensor to be equal size, but got "
                                         r"\(2, 3\) at entry 0 and \(2, 4\) at entry 1"):
        F.stack([cnncore.zeros(2, 3), cnncore.zeros(2, 4)])
    with pytest.raises(IndexError, match="cat: dim must be in"):
        F.cat([cnncore.zeros(2, 3)], dim=2)
    with pytest.raises(TypeError, match="cat: dim must be an int"):
        F.cat([cnncore.zeros(2, 3)], dim=1.0)


# ---- autograd vs torch ---------------------------------------------------------------------------
def _torch():
    return pytest.importorskip("torch", reason="torch is only needed for the comparison tests")


def compare_with_torch(fn_ours, fn_torch, arrays, rtol=1e-5, atol=1e-5, what=""):
    torch = _torch()
    ours = [cnncore.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    yo, yt = fn_ours(*ours), fn_torch(*theirs)
    check_close(yo, yt, rtol=rtol, atol=atol, what=f"{what} forward")
    g = rng(11).standard_normal(tuple(yt.shape)).astype(np.float32)
    yo.backward(cnncore.tensor(g))
    yt.backward(torch.tensor(g))
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if t.grad is None:
            assert o.grad is None or np.all(o.grad.numpy() == 0), f"{what}: input {i} grad"
            continue
        check_close(o.grad, t.grad, rtol=rtol, atol=atol, what=f"{what} backward input {i}")


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)),
                                   ((), (2, 3)), ((2, 3, 5, 5), (1, 3, 1, 1))])
def test_binary_backward_vs_torch(op, sa, sb):
    torch = _torch()
    a, b = inputs_for(op, sa, sb, seed=12)
    if op == "pow":
        b = np.abs(b) + 0.2  # keep a**b smooth
    tf = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
          "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum}[op]
    compare_with_torch(getattr(F, op), tf, [a, b], what=f"{op} {sa} {sb}")


@pytest.mark.parametrize("expr", [
    lambda x, m: x + 2, lambda x, m: 2 + x, lambda x, m: x - 1.5, lambda x, m: 1.5 - x,
    lambda x, m: x * 3, lambda x, m: 3 * x, lambda x, m: x / 4, lambda x, m: 4 / (m.abs(x) + 1),
    lambda x, m: (m.abs(x) + 0.5) ** 2, lambda x, m: (m.abs(x) + 0.5) ** 0.5,
    lambda x, m: 2 ** x, lambda x, m: -x, lambda x, m: m.exp(x), lambda x, m: m.log(m.abs(x) + 1),
    lambda x, m: m.sqrt(m.abs(x) + 1), lambda x, m: m.abs(x), lambda x, m: m.clamp(x, -0.5, 0.7),
    lambda x, m: m.clamp(x, min=0.1), lambda x, m: m.clamp(x, max=0.1),
    lambda x, m: (x ** 3).sum(), lambda x, m: x.mean(), lambda x, m: x.sum(1, keepdim=True),
    lambda x, m: x.mean((0, 2)), lambda x, m: x.max(), lambda x, m: x.max(1)[0],
    lambda x, m: x.max(dim=2, keepdim=True).values, lambda x, m: x.min(1)[0],
    lambda x, m: x.reshape(6, -1), lambda x, m: x.view(-1), lambda x, m: x.flatten(1),
    lambda x, m: x.permute(2, 0, 1), lambda x, m: x.transpose(0, 2),
    lambda x, m: x.unsqueeze(1).squeeze(1), lambda x, m: x[:, :1].expand(2, 3, 5),
    lambda x, m: x[1], lambda x, m: x[:, 1:, ::2], lambda x, m: x[..., None, 2],
    lambda x, m: x[[0, 1, 1], [2, 0, 2]], lambda x, m: x[x > 0.3],
    lambda x, m: m.cat([x, x * 2], 1), lambda x, m: m.stack([x, x + 1], -1),
    lambda x, m: x.permute(1, 0, 2).reshape(3, 10).t(), lambda x, m: x.reshape(6, 5).T,
    lambda x, m: m.cat(x.split(2, dim=2)[::-1], 2), lambda x, m: x.chunk(2, 1)[1] * 3,
    lambda x, m: m.cat(m.split(x, [1, 3, 1], 2)[::2], 2), lambda x, m: x.narrow(2, 1, 3),
    lambda x, m: m.where(x > 0, x, x * 0.1), lambda x, m: m.where(x < 0.2, 1.0, x ** 2),
    lambda x, m: x.var(), lambda x, m: x.var(1), lambda x, m: x.std((0, 2), keepdim=True),
    lambda x, m: x.var(2, unbiased=False), lambda x, m: m.var(x, 0, correction=0),
    lambda x, m: x.sort(2)[0], lambda x, m: x.sort(0, descending=True).values,
    lambda x, m: x.topk(2, 2)[0], lambda x, m: x.topk(2, 1, largest=False).values,
])
def test_expressions_backward_vs_torch(expr):
    torch = _torch()
    a = rng(13).standard_normal((2, 3, 5)).astype(np.float32)
    compare_with_torch(lambda x: expr(x, F), lambda x: expr(x, torch), [a],
                       what="expression")


def test_few_outputs_split_reductions(isa):
    a = rng(19).standard_normal((150_001, 3)).astype(np.float32)
    for x, dims in [(a, [0]), (a.reshape(-1), [0]), (a[:150_000].reshape(-1, 3, 5), [0, 2]),
                    (a[:150_000].reshape(3, -1, 10), [1, 2]), (a.T.copy(), [1])]:
        exp = x.astype(np.float64).sum(axis=tuple(dims))
        check_close(_core.sum(c(x), dims, False), exp, rtol=1e-5, atol=1e-4, what=f"{x.shape}")
        check_close(_core.mean(c(x), dims, True), x.astype(np.float64).mean(
            axis=tuple(dims), keepdims=True), rtol=1e-5, atol=1e-6, what=f"mean {x.shape}")


def test_results_do_not_depend_on_thread_count():
    a = rng(15).standard_normal((3, 100_003)).astype(np.float32)
    before = cnncore.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            cnncore.set_num_threads(n)
            outs.append([_core.sum(c(a), [], False).numpy(), _core.sum(c(a), [1], False).numpy(),
                         _core.sum(c(a), [0], False).numpy(),
                         _core.sum(c(a.reshape(-1, 3)), [0], False).numpy(),
                         _core.mean(c(a.reshape(-1)[:300006].reshape(-1, 3, 7)), [0, 2],
                                    False).numpy(),
                         _core.sum(c(a.reshape(-1)[:300000].reshape(3, 1000, 1, 100)), [1, 3],
                                   True).numpy()])
        for x, y in zip(*outs):
            assert np.array_equal(x, y)
    finally:
        cnncore.set_num_threads(before)


def test_blocked_inputs_are_accepted(isa):
    a = rng(16).standard_normal((2, 11, 3, 4)).astype(np.float32)
    blk = c(a).to_blocked(8)
    check_close(_core.binary("mul", blk, c(a)), a * a, what="binary of a blocked tensor")
    check_close(_core.sum(blk, [0, 2, 3], False), a.astype(np.float64).sum((0, 2, 3)),
                rtol=1e-5, atol=1e-5, what="sum of a blocked tensor")
    check_close(_core.cat([blk, c(a)], 1), np.concatenate([a, a], 1), what="cat blocked")
    check_close(_core.unary("abs", blk), np.abs(a), what="unary blocked")


def test_gradcheck_compositions():
    r = rng(14)
    a = r.uniform(0.5, 1.5, (2, 3)).astype(np.float32)
    b = r.uniform(0.5, 1.5, (3,)).astype(np.float32)
    gradcheck(lambda x, y: (x * y + x / y - y ** 2).sum(0), [a, b])
    gradcheck(lambda x, y: F.maximum(x, y * 1.1) * F.exp(x).mean(1, keepdim=True), [a, b])
    gradcheck(lambda x, y: F.cat([x, y.unsqueeze(0)], 0).permute(1, 0)[1:] ** 2, [a, b])
    gradcheck(lambda x, y: F.log(x).reshape(3, 2).sum(1) + F.sqrt(y), [a, b])


def test_gradient_accumulates_through_reuse():
    x = cnncore.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x + x.sum() + x[0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [2 + 3 + 3, 4 + 3, 6 + 3]  # 2x + 3 (sum) + 3 e0 (x[0])
    (x * 2).sum().backward()
    assert x.grad.numpy().tolist() == [10, 9, 11]


def test_accumulate_uses_core_add():
    assert hasattr(_core, "add")
    a, b = c(np.ones(5)), c(np.full(5, 2.0))
    assert _core.add(a, b).numpy().tolist() == [3.0] * 5


# ---- operators with scalars, numpy, int64 -------------------------------------------------------
def test_operators_with_scalars_and_numpy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = cnncore.tensor(a)
    n = np.array([1.0, 2.0, 4.0])  # float64 is converted
    for got, exp in [(t + 1, a + 1), (1 + t, 1 + a), (t - n, a - n), (n - t, n - a),
                     (t * n, a * n), (n * t, n * a), (t / 2, a / 2), (2 / (t + 1), 2 / (a + 1)),
                     (t ** 2, a ** 2), (2 ** t, 2.0 ** a), (-t, -a), (abs(-t), a),
                     (np.float32(3) * t, 3 * a), (t * np.float64(0.5), a * 0.5),
                     (t + [1.0, 2.0, 3.0], a + [1, 2, 3]), (t + True, a + 1)]:
        assert isinstance(got, cnncore.Tensor)
        check_close(got, exp.astype(np.float32), what="operator")
        assert got.dtype == cnncore.float32
    assert t.add(t, alpha=2).numpy().tolist() == (a * 3).tolist()
    assert F.sub(t, t, alpha=0.5).numpy().tolist() == (a * 0.5).tolist()


def test_comparisons_give_masks():
    a = np.array([[0.5, -1.0, 2.0], [3.0, 0.5, -2.0]], dtype=np.float32)
    t = cnncore.tensor(a)
    m = t > 0.4
    assert m.dtype == cnncore.float32 and m.numpy().tolist() == [[1, 0, 1], [1, 1, 0]]
    assert t[m].numpy().tolist() == a[a > 0.4].tolist()
    assert (t == 0.5).sum().item() == 2 and (t != 0.5).sum().item() == 4
    assert (t >= 0.5).float().mean().item() == pytest.approx(4 / 6)
    assert (t <= 0.5).numpy().tolist() == (a <= 0.5).astype(np.float32).tolist()
    assert t.lt(0).numpy().tolist() == (a < 0).astype(np.float32).tolist()
    assert (~m).numpy().tolist() == (a <= 0.4).astype(np.float32).tolist()
    assert ((t > 0) & (t < 1)).sum().item() == 2
    assert (t == None) is False and (t != "x") is True  # noqa: E711
    assert {t: 1}[t] == 1 and t in {t}  # hashed by identity
    labels = cnncore.tensor([1, 2, 0])
    pred = cnncore.tensor([[0.1, 0.9, 0.0], [0.0, 0.2, 0.8], [0.3, 0.2, 0.1]]).argmax(1)
    assert pred.dtype == cnncore.int64
    assert (pred == labels).sum().item() == 3
    assert (pred == labels).float().mean().item() == 1.0


def test_int64_arithmetic_stays_int():
    i = cnncore.tensor([1, 2, 3])
    assert (i + 1).dtype == cnncore.int64 and (i + 1).numpy().tolist() == [2, 3, 4]
    assert (i * i).dtype == cnncore.int64
    assert (i / 2).dtype == cnncore.float32 and (i / 2).numpy().tolist() == [0.5, 1.0, 1.5]
    assert (i + 0.5).dtype == cnncore.float32
    assert (-i).dtype == cnncore.int64 and abs(-i).numpy().tolist() == [1, 2, 3]
    assert F.exp(cnncore.tensor([0, 1])).dtype == cnncore.float32
    assert i.clamp(2, 2).dtype == cnncore.int64 and i.clamp(max=2).numpy().tolist() == [1, 2, 2]
    f = cnncore.ones(3) * i
    assert f.dtype == cnncore.float32 and f.numpy().tolist() == [1, 2, 3]
    assert i.sum().item() == 6 and i.max().item() == 3 and i.argmax().item() == 2
    assert i.sum().shape == () and i.max().shape == () and i.argmax().shape == ()
    assert i.min().shape == () and (i == 2).shape == (3,)
    assert cnncore.tensor(5).max(0)[0].shape == ()
    assert F.where(i > 1, i, 0).shape == (3,)
    assert (i // 2).numpy().tolist() == [0, 1, 1] and (i % 2).numpy().tolist() == [1, 0, 1]
    assert (7 // i).dtype == cnncore.int64 and (cnncore.tensor([-3.5]) % 2).item() == 0.5
    assert f"{cnncore.tensor(0.123456):.3f}" == "0.123" and f"{i}" == str(i)
    assert F.where(cnncore.tensor(1.0) > 0, 1.0, 2.0).shape == ()
    assert F.div(cnncore.tensor([7, -7]), 2, rounding_mode="floor").numpy().tolist() == [3, -4]
    assert F.div(cnncore.tensor([7.0, -7.0]), 2, rounding_mode="trunc").numpy().tolist() == [3, -3]


def test_max_forms_and_namedtuple():
    a = np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]], dtype=np.float32)
    t = cnncore.tensor(a)
    r = t.max(1)
    assert r.values.numpy().tolist() == [5.0, 7.0] and r.indices.numpy().tolist() == [1, 0]
    v, i = F.max(t, dim=0, keepdim=True)
    assert v.shape == (1, 3) and i.numpy().tolist() == [[1, 0, 1]]
    assert t.max().item() == 7.0 and t.min().item() == 0.0
    assert F.max(t, cnncore.full((3,), 6.0)).numpy().tolist() == [[6, 6, 6], [7, 6, 7]]
    assert t.argmax().item() == 3 and t.argmax(1, keepdim=True).shape == (2, 1)
    assert t.argmin(1).numpy().tolist() == [0, 1]
    # a full max spreads the gradient over ties, as torch does
    x = cnncore.tensor(a, requires_grad=True)
    x.max().backward()
    assert x.grad.numpy().tolist() == [[0, 0, 0], [0.5, 0, 0.5]]


def test_sort_topk_indices_match_torch():
    torch = _torch()
    a = rng(20).integers(-3, 3, (4, 9)).astype(np.float32)
    for fo, ft in [(lambda x: x.sort(1), lambda x: x.sort(dim=1, stable=True)),
                   (lambda x: x.sort(0, descending=True),
                    lambda x: x.sort(dim=0, descending=True, stable=True))]:
        vo, io = fo(cnncore.tensor(a))
        vt, it = ft(torch.tensor(a))
        check_close(vo, vt, what="sort values")
        assert io.numpy().tolist() == it.numpy().tolist()
    b = rng(21).standard_normal((5, 7)).astype(np.float32)  # no ties: topk order is defined
    vo, io = cnncore.tensor(b).topk(3, dim=1)
    vt, it = torch.tensor(b).topk(3, dim=1)
    check_close(vo, vt, what="topk values")
    assert io.numpy().tolist() == it.numpy().tolist()
    top5 = (cnncore.tensor(b).topk(5, 1).indices == cnncore.tensor([[0]] * 5)).sum().item()
    assert top5 == (torch.tensor(b).topk(5, 1).indices == 0).sum().item()
    assert cnncore.tensor(b).argsort(1).numpy().tolist() == np.argsort(b, 1).tolist()
    with pytest.raises(ValueError, match=r"topk: k must be in \[0, 7\]"):
        cnncore.tensor(b).topk(8)


def test_shape_ops_forms():
    t = cnncore.arange(24).float().reshape(2, 3, 4)
    assert t.reshape((4, 6)).shape == (4, 6) and t.reshape([-1]).shape == (24,)
    assert F.reshape(t, (3, -1)).shape == (3, 8)
    assert t.view(4, -1).shape == (4, 6) and t.view((6, 4)).shape == (6, 4)
    assert t.flatten().shape == (24,) and F.flatten(t, 0, 1).shape == (6, 4)
    assert cnncore.tensor(3.0).flatten().shape == (1,)
    assert t.permute(2, 0, 1).shape == (4, 2, 3) and t.permute((1, 0, 2)).shape == (3, 2, 4)
    assert t.transpose(0, -1).shape == (4, 3, 2)
    assert t.unsqueeze(0).shape == (1, 2, 3, 4) and t.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert cnncore.zeros(1, 3, 1).squeeze().shape == (3,)
    assert cnncore.zeros(1, 3, 1).squeeze(0).shape == (3, 1)
    assert cnncore.zeros(1, 3, 1).squeeze((0, 2)).shape == (3,)
    assert cnncore.zeros(3, 1).expand(2, 3, -1).shape == (2, 3, 1)
    assert cnncore.zeros(3, 1).expand(3, 4).shape == (3, 4)
    assert t.permute(2, 0, 1).contiguous().is_contiguous()
    assert t[0, 1].numpy().tolist() == [4, 5, 6, 7]
    assert t[-1, ..., 0].numpy().tolist() == [12, 16, 20]
    assert t[:, None].shape == (2, 1, 3, 4)
    assert t[cnncore.tensor([1, 0])].shape == (2, 3, 4)
    x = cnncore.zeros(2, 3)
    x[0, 1] = 5.0
    x[x == 0] = 1.0
    assert x.numpy().tolist() == [[1, 5, 1], [1, 1, 1]]
    x[1].fill_(0.0)  # basic indexing gives views, as in torch
    x[:, 2].fill_(7.0)
    x[0][0] = 3.0
    assert x.numpy().tolist() == [[3, 5, 7], [0, 0, 7]]
    assert x[1, 2].shape == () and x[1, 2].item() == 7.0
    y = x[[0, 1]]  # advanced indexing copies
    y.zero_()
    assert x.numpy()[0, 0] == 3.0
    assert list(iter(cnncore.tensor([1.0, 2.0])))[1].item() == 2.0


def test_inplace_methods():
    x = cnncore.ones(2, 3)
    x.add_(cnncore.ones(3), alpha=2).mul_(2).sub_(1).div_(5).clamp_(max=1.0)
    assert np.allclose(x.numpy(), 1.0)
    p = cnncore.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        p.add_(1.0)
    with cnncore.no_grad():
        p.add_(cnncore.ones(2))
    assert p.numpy().tolist() if not p.requires_grad else p.detach().numpy().tolist() == [2, 2]


def test_method_delegates_to_functional():
    t = cnncore.tensor([-1.0, 2.0])
    assert t.relu().numpy().tolist() == [0.0, 2.0]


# ---- bad input -----------------------------------------------------------------------------------
def test_bad_inputs():
    t = cnncore.zeros(2, 3)
    with pytest.raises(TypeError, match="add: other must be a Tensor, a number or an array"):
        t + "x"
    with pytest.raises(TypeError, match="add: other must be a Tensor"):
        F.add(t, None)
    with pytest.raises(TypeError, match="at least one of input and other must be a Tensor"):
        F.add(1, 2)
    with pytest.raises(TypeError, match="exp: input must be a Tensor"):
        F.exp([1.0])
    with pytest.raises(TypeError, match="exp: input must be float32, but got int64"):
        _core.unary("exp", _core.from_numpy(np.zeros(2, np.int64)))
    with pytest.raises(TypeError, match="add: input must be float32, but got int64"):
        _core.binary("add", _core.from_numpy(np.zeros(2, np.int64)), c(np.zeros(2)))
    with pytest.raises(ValueError, match="binary: op must be one of"):
        _core.binary("plus", c(np.zeros(2)), c(np.zeros(2)))
    with pytest.raises(IndexError, match=r"sum: dim must be in \[-2, 1\], but got 2"):
        t.sum(2)
    with pytest.raises(ValueError, match=r"sum: dim must be in \[-2, 1\]"):
        t.sum(-3)  # DimError is both an IndexError and a ValueError
    with pytest.raises(TypeError, match="sum: dim must be an int"):
        t.sum(1.5)
    with pytest.raises(ValueError, match="more than once"):
        t.mean((1, -1))
    with pytest.raises(ValueError, match="more than once"):
        _core.sum(t._c, [0, 0], False)
    with pytest.raises(TypeError, match="mean: input must be float32"):
        cnncore.tensor([1, 2]).mean()
    with pytest.raises(ValueError, match=r"reshape: shape \(4, -1\) is invalid for input of "
                                         r"size 6"):
        t.reshape(4, -1)
    with pytest.raises(ValueError, match="view: the tensor is not contiguous"):
        t.t().view(6)
    with pytest.raises(TypeError, match="reshape: shape must be an int"):
        t.reshape(2.0, 3)
    with pytest.raises(ValueError, match="permute: dims must list 2 dimensions"):
        t.permute(0)
    with pytest.raises(ValueError, match="permute: dims must be a permutation"):
        t.permute(0, 0)
    with pytest.raises(ValueError, match="flatten: start_dim"):
        t.flatten(1, 0)
    with pytest.raises(ValueError, match="expand: cannot expand shape"):
        t.expand(4, 3)
    with pytest.raises(ValueError, match="expand: the number of sizes"):
        t.expand(3)
    with pytest.raises(IndexError, match="unsqueeze: dim must be in"):
        t.unsqueeze(3)
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        F.clamp(t)
    with pytest.raises(ValueError, match="clamp: min must be a number, but got nan"):
        F.clamp(t, min=float("nan"))
    with pytest.raises(ValueError, match="t: expects a tensor with <= 2 dimensions"):
        cnncore.zeros(2, 2, 2).t()
    with pytest.raises(IndexError, match="index"):
        t[5]
    with pytest.raises(IndexError, match="must be int64 or comparison masks"):
        t[cnncore.tensor([0.0])]
    with pytest.raises(ValueError, match="div: rounding_mode"):
        F.div(t, 2, rounding_mode="round")


# The basic-indexing path CUDA tensors take (a strided view, gradient through the same view),
# forced here on CPU tensors so it is checked on every machine, against numpy's indexing.
DEVICE_INDEX_KEYS = [0, -1, (1, 2), (slice(1, 4), 2), (Ellipsis, 3),
                     (None, 1, slice(None, None, 2)), (slice(None), None, slice(4, 0, None)),
                     (2, Ellipsis, slice(1, 6, 3)), (slice(3, 100),), (slice(0, 0),),
                     (-4, -5, -6), (Ellipsis,), (None,), (slice(None, None, 3), Ellipsis, None)]


@pytest.mark.parametrize("key", DEVICE_INDEX_KEYS, ids=str)
def test_device_basic_indexing_path_matches_numpy(key):
    from cnncore._ops import tensor_ops as T
    rng = np.random.default_rng(11)
    a = rng.standard_normal((4, 5, 6)).astype(np.float32)
    x = cnncore.tensor(a, requires_grad=True)
    y = T._device_getitem(x, key)
    np.testing.assert_array_equal(y.detach().numpy(), a[key])
    g = rng.standard_normal(a[key].shape).astype(np.float32)
    (y * cnncore.tensor(g)).sum().backward()
    expected = np.zeros_like(a)
    expected[key] = g
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_device_basic_indexing_path_is_a_view_and_checks_keys():
    from cnncore._ops import tensor_ops as T
    a = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
    x = cnncore.tensor(a.copy())
    T._device_getitem(x, (1, slice(None)))._c.fill_(7.0)
    assert (x.numpy()[1] == 7.0).all() and (x.numpy()[0] == a[0]).all()
    for key, exc, words in [((0, 0, 0, 0), IndexError, "too many indices"),
                            (5, IndexError, "out of bounds"),
                            ([0, 1], TypeError, "CUDA device takes integers"),
                            (True, TypeError, "CUDA device takes integers"),
                            (slice(None, None, -1), ValueError, "step must be greater than zero"),
                            ((Ellipsis, Ellipsis), IndexError, "single ellipsis")]:
        with pytest.raises(exc, match=words):
            T._device_getitem(cnncore.tensor(a), key)
    with pytest.raises(ValueError, match="reaches past the storage"):
        cnncore.tensor(a)._c.as_strided([4, 5, 7], [30, 6, 1], 0)
    with pytest.raises(ValueError, match=">= 0"):
        cnncore.tensor(a)._c.as_strided([2], [-1], 3)
