"""Tensor basics, creation, conversion, the autograd engine and the runtime (threads, ISA, RNG)."""

import numpy as np
import pytest

import cnncore
import cnncore.functional as F
from cnncore import _core
from helpers import check_close, gradcheck


def test_tensor_from_lists_and_arrays():
    t = cnncore.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.shape == (2, 2) and t.ndim == 2 and t.dtype == cnncore.float32
    assert t.numpy().tolist() == [[1, 2], [3, 4]]
    assert cnncore.tensor([1, 2, 3]).dtype == cnncore.int64
    t64 = cnncore.tensor(np.arange(6, dtype=np.float64).reshape(2, 3))
    assert t64.dtype == cnncore.float32 and t64.numpy()[1, 2] == 5.0
    assert cnncore.tensor(3.5).shape == () and cnncore.tensor(3.5).item() == 3.5


def test_tensor_copies_but_from_numpy_shares():
    a = np.zeros((2, 3), dtype=np.float32)
    copied, shared = cnncore.tensor(a), cnncore.from_numpy(a)
    a[0, 0] = 7.0
    assert copied.numpy()[0, 0] == 0.0
    assert shared.numpy()[0, 0] == 7.0


def test_from_numpy_non_contiguous_and_numpy_zero_copy():
    a = np.arange(12, dtype=np.float32).reshape(3, 4).T  # strides (4, 16) bytes
    t = cnncore.from_numpy(a)
    assert not t.is_contiguous()
    check_close(t.contiguous(), a, what="transposed view")
    c = cnncore.zeros(4, 5)
    v = c.numpy()
    v[1, 2] = 3.0
    assert c.numpy()[1, 2] == 3.0  # numpy() is a view


@pytest.mark.parametrize("bad", ["abc", [["a", 1]], {"a": 1}, object(), np.array([1 + 2j])])
def test_tensor_rejects_non_numbers(bad):
    with pytest.raises(TypeError, match="tensor"):
        cnncore.tensor(bad)


def test_from_numpy_rejects_other_dtypes():
    with pytest.raises(TypeError, match="float32 or int64"):
        cnncore.from_numpy(np.zeros(3, dtype=np.float64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        cnncore.from_numpy([1, 2])


def test_creation_functions():
    assert cnncore.zeros(2, 3).numpy().sum() == 0
    assert cnncore.ones((2, 3)).numpy().sum() == 6
    assert cnncore.full((2,), 1.5).numpy().tolist() == [1.5, 1.5]
    assert cnncore.arange(5).numpy().tolist() == [0, 1, 2, 3, 4]
    assert cnncore.arange(0, 1, 0.25).dtype == cnncore.float32
    assert cnncore.randn(3, 4).shape == (3, 4)
    with pytest.raises(ValueError, match="non-negative"):
        cnncore.zeros(-1, 2)
    with pytest.raises(TypeError, match="sizes must be ints"):
        cnncore.zeros(2.5)
    with pytest.raises(ValueError, match="64-bit"):
        cnncore.empty(2**40, 2**40)
    with pytest.raises(ValueError, match="step must be nonzero"):
        cnncore.arange(0, 5, 0)
    with pytest.raises(ValueError, match="finite"):
        cnncore.arange(float("nan"))


def test_item_and_scalar_conversions():
    assert cnncore.tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError, match="one-element"):
        cnncore.zeros(2).item()
    assert float(cnncore.tensor(1.5)) == 1.5


def test_manual_seed_reproducible_and_independent_of_threads():
    threads = cnncore.get_num_threads()
    try:
        cnncore.manual_seed(123)
        a = cnncore.randn(10000).numpy().copy()
        cnncore.set_num_threads(1)
        cnncore.manual_seed(123)
        b = cnncore.randn(10000).numpy().copy()
    finally:
        cnncore.set_num_threads(threads)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
    u = cnncore.rand(10000).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.02


def test_rng_state_round_trip():
    cnncore.manual_seed(5)
    cnncore.randn(7)
    state = cnncore.get_rng_state()
    x = cnncore.randn(9).numpy().copy()
    cnncore.set_rng_state(state)
    np.testing.assert_array_equal(cnncore.randn(9).numpy(), x)


def test_threads_api():
    n = cnncore.get_num_threads()
    cnncore.set_num_threads(1)
    assert cnncore.get_num_threads() == 1
    cnncore.set_num_threads(n)
    with pytest.raises(ValueError, match=">= 1"):
        cnncore.set_num_threads(0)
    with pytest.raises(TypeError, match="int"):
        cnncore.set_num_threads("2")


def test_build_info_keys():
    info = cnncore.build_info()
    for key in ("version", "compiler", "isas_compiled", "isa", "cpu_isas", "openmp",
                "num_threads", "cuda", "notes"):
        assert key in info
    assert info["isa"] in info["isas_compiled"] and info["isa"] in info["cpu_isas"]
    assert "baseline" in info["isas_compiled"]
    assert info["version"] == cnncore.__version__


def test_set_isa_rejects_unavailable():
    with pytest.raises(ValueError, match="one of"):
        _core.set_isa("sse9")
    missing = [i for i in ("baseline", "avx2", "avx512") if i not in _core.available_isas()]
    for name in missing:
        with pytest.raises(ValueError, match="not available"):
            _core.set_isa(name)


def test_blocked_layout_round_trip():
    x = np.random.default_rng(0).standard_normal((2, 13, 5, 7)).astype(np.float32)
    t = _core.from_numpy(x)
    for block in (8, 16):
        b = t.to_blocked(block)
        assert b.block == block and b.shape == t.shape
        check_close(b.numpy(), x, rtol=0, atol=0, what=f"NCHW{block}c round trip")


# ---- autograd engine ------------------------------------------------------------------------------
def test_relu_matches_reference_on_every_isa(isa):
    x = np.random.default_rng(1).standard_normal(1000 + 13).astype(np.float32)
    check_close(F.relu(cnncore.tensor(x)), _core.reference.relu_forward(_core.from_numpy(x)),
                rtol=0, atol=0, what=f"relu on {isa}")


def test_backward_accumulates_and_frees_graph():
    x = cnncore.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    y = F.relu(x)
    y.backward(cnncore.ones(3))
    y2 = F.relu(x)
    y2.backward(cnncore.tensor([1.0, 2.0, 3.0]))
    assert x.grad.numpy().tolist() == [0.0, 3.0, 4.0]  # accumulated over two graphs
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(cnncore.ones(3))


def test_retain_graph_allows_second_backward():
    x = cnncore.tensor([1.0, -2.0], requires_grad=True)
    y = F.relu(F.relu(x))
    y.backward(cnncore.ones(2), retain_graph=True)
    y.backward(cnncore.ones(2))
    assert x.grad.numpy().tolist() == [2.0, 0.0]


def test_diamond_graph_sums_both_paths():
    x = cnncore.tensor([1.0, 2.0], requires_grad=True)
    a = F.relu(x)
    b = a.clone()
    c = a.clone()  # two consumers of a: the gradients of both reach x
    b.backward(cnncore.ones(2), retain_graph=True)
    c.backward(cnncore.ones(2))
    assert x.grad.numpy().tolist() == [2.0, 2.0]


def test_no_grad_records_nothing():
    x = cnncore.tensor([1.0], requires_grad=True)
    with cnncore.no_grad():
        y = F.relu(x)
    assert not y.requires_grad and y.grad_fn is None

    @cnncore.no_grad()
    def f(t):
        return F.relu(t)

    assert f(x).grad_fn is None
    assert cnncore.is_grad_enabled()


def test_backward_errors():
    x = cnncore.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.backward()
    y = F.relu(cnncore.tensor([1.0, 2.0], requires_grad=True))
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    with pytest.raises(ValueError, match="shape"):
        y.backward(cnncore.ones(3))
    with pytest.raises(TypeError, match="float32"):
        cnncore.tensor([1, 2]).requires_grad_()


def test_retain_grad_and_detach():
    x = cnncore.tensor([1.0, -1.0], requires_grad=True)
    h = F.relu(x)
    h.retain_grad()
    h.clone().backward(cnncore.tensor([5.0, 6.0]))
    assert h.grad.numpy().tolist() == [5.0, 6.0]
    d = h.detach()
    assert not d.requires_grad and d.grad_fn is None
    with pytest.raises(RuntimeError, match="detach"):
        h.numpy()


def test_gradcheck_relu():
    x = np.array([[0.5, -0.7, 1.3], [-0.2, 0.9, -1.1]])
    gradcheck(F.relu, [x])


def test_ops_reject_non_tensors():
    with pytest.raises(TypeError, match="relu: input must be a Tensor"):
        F.relu("x")
    with pytest.raises(TypeError, match="float32"):
        F.relu(cnncore.tensor([1, 2]))


def test_zero_only_touches_the_view():
    base = np.arange(10, dtype=np.float32)
    t = cnncore.from_numpy(base)
    t._c.narrow(0, 2, 3).zero_()
    np.testing.assert_array_equal(base, [0, 1, 0, 0, 0, 5, 6, 7, 8, 9])
    m = cnncore.from_numpy(np.arange(12, dtype=np.float32).reshape(3, 4))
    m._c.permute([1, 0]).narrow(0, 1, 1).zero_()  # column 1, a strided view
    np.testing.assert_array_equal(m.numpy()[:, 1], [0, 0, 0])
    assert m.numpy()[:, 0].tolist() == [0, 4, 8]
