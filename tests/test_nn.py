"""cnncore.nn: Module mechanics, state_dict keys and init as torch.nn, and every layer's forward and
backward against torch.nn with the same weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnncore
import cnncore.nn as nn
from helpers import check_close, to_numpy

# (name, cnncore constructor, torch constructor, input shape or None for no forward check)
LAYERS = [
    ("Conv2d", lambda m: m.Conv2d(3, 5, 3, stride=2, padding=1), (2, 3, 9, 8)),
    ("Conv2d_nobias_groups", lambda m: m.Conv2d(4, 6, (3, 2), groups=2, bias=False, dilation=2),
     (1, 4, 9, 7)),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(4, 3, 3, stride=2, padding=1,
                                                    output_padding=1), (2, 4, 5, 6)),
    ("Linear", lambda m: m.Linear(7, 4), (3, 7)),
    ("Linear_nobias", lambda m: m.Linear(7, 4, bias=False), (3, 7)),
    ("BatchNorm2d", lambda m: m.BatchNorm2d(3), (4, 3, 5, 5)),
    ("BatchNorm2d_noaffine", lambda m: m.BatchNorm2d(3, affine=False), (4, 3, 5, 5)),
    ("BatchNorm1d", lambda m: m.BatchNorm1d(6), (5, 6)),
    ("LocalResponseNorm", lambda m: m.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
     (2, 7, 4, 4)),
    ("MaxPool2d", lambda m: m.MaxPool2d(3, stride=2, ceil_mode=True), (2, 3, 9, 8)),
    ("AvgPool2d", lambda m: m.AvgPool2d(2), (2, 3, 8, 8)),
    ("AdaptiveAvgPool2d", lambda m: m.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    ("AdaptiveMaxPool2d", lambda m: m.AdaptiveMaxPool2d(2), (2, 3, 7, 5)),
    ("ReLU", lambda m: m.ReLU(), (3, 4)),
    ("ReLU6", lambda m: m.ReLU6(), (3, 4)),
    ("LeakyReLU", lambda m: m.LeakyReLU(0.2), (3, 4)),
    ("Sigmoid", lambda m: m.Sigmoid(), (3, 4)),
    ("Tanh", lambda m: m.Tanh(), (3, 4)),
    ("Softmax", lambda m: m.Softmax(dim=1), (3, 4)),
    ("LogSoftmax", lambda m: m.LogSoftmax(dim=1), (3, 4)),
    ("Flatten", lambda m: m.Flatten(), (2, 3, 4, 5)),
    ("Identity", lambda m: m.Identity(), (2, 3)),
    ("Upsample_nearest", lambda m: m.Upsample(scale_factor=2, mode="nearest"), (1, 2, 3, 4)),
    ("Upsample_bilinear", lambda m: m.Upsample(size=(5, 7), mode="bilinear",
                                               align_corners=False), (1, 2, 3, 4)),
    ("ZeroPad2d", lambda m: m.ZeroPad2d((1, 2, 0, 3)), (1, 2, 3, 4)),
    ("Dropout_eval", lambda m: m.Dropout(0.3), (3, 4)),
    ("Sequential", lambda m: m.Sequential(m.Conv2d(3, 4, 3), m.BatchNorm2d(4), m.ReLU(),
                                          m.MaxPool2d(2), m.Flatten(), m.Linear(4 * 3 * 3, 5)),
     (2, 3, 8, 8)),
]
IDS = [name for name, _, _ in LAYERS]


def _torch():
    return pytest.importorskip("torch", reason="torch is the oracle for layer semantics")


def _sync(cn_module, torch_module):
    """Copies torch's initial weights into cnncore (both directions of load_state_dict are tested
    separately)."""
    cn_module.load_state_dict({k: v.detach().numpy() for k, v in torch_module.state_dict().items()})


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=IDS)
def test_state_dict_keys_and_shapes_match_torch(name, make, shape):
    torch = _torch()
    ours, theirs = make(nn), make(torch.nn)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in theirs_sd:
        assert tuple(ours_sd[key].shape) == tuple(theirs_sd[key].shape), key
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=IDS)
def test_forward_backward_match_torch(name, make, shape):
    torch = _torch()
    ours, theirs = make(nn), make(torch.nn)
    if name == "Dropout_eval":
        ours.eval()
        theirs.eval()
    _sync(ours, theirs)
    x = np.random.default_rng(len(name)).standard_normal(shape).astype(np.float32)
    xc = cnncore.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yc, yt = ours(xc), theirs(xt)
    check_close(yc, yt, rtol=1e-4, atol=1e-5, what=f"{name} forward")
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(np.float32)
    yc.backward(cnncore.tensor(g))
    yt.backward(torch.tensor(g))
    check_close(xc.grad, xt.grad, rtol=1e-4, atol=1e-4, what=f"{name} input grad")
    tp = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        check_close(p.grad, tp[pname].grad, rtol=1e-4, atol=1e-4, what=f"{name} {pname}.grad")
    for bname, b in theirs.named_buffers():  # running stats after one training step
        check_close(dict(ours.named_buffers())[bname], b, rtol=1e-5, atol=1e-6,
                    what=f"{name} buffer {bname}")


def test_weights_move_both_ways_with_torch():
    torch = _torch()
    ours = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(2, 3))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                 torch.nn.Linear(2, 3))
    theirs.load_state_dict({k: torch.from_numpy(np.array(to_numpy(v)))
                            for k, v in ours.state_dict().items()})
    for k, v in theirs.state_dict().items():
        check_close(ours.state_dict()[k], v, what=k)
    _sync(ours, torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                    torch.nn.Linear(2, 3)))


def test_load_state_dict_errors_leave_model_intact():
    m = nn.Linear(3, 2)
    before = to_numpy(m.weight).copy()
    bad = {"weight": np.zeros((2, 4), np.float32), "bias": np.zeros(2, np.float32)}
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        m.load_state_dict(bad)
    np.testing.assert_array_equal(to_numpy(m.weight), before)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        m.load_state_dict({"weight": np.zeros((2, 3), np.float32)})
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "extra"'):
        m.load_state_dict({"weight": np.zeros((2, 3), np.float32),
                           "bias": np.zeros(2, np.float32), "extra": np.zeros(1, np.float32)})
    np.testing.assert_array_equal(to_numpy(m.weight), before)
    result = m.load_state_dict({"weight": np.ones((2, 3), np.float32)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == []
    np.testing.assert_array_equal(to_numpy(m.weight), np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="expected a mapping"):
        m.load_state_dict([1, 2])


def test_module_tree_train_eval_zero_grad():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
            self.extra = nn.ModuleList([nn.ReLU()])

    net = Net()
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "features", "features.0", "features.1", "features.2", "heads",
                     "heads.a", "heads.b", "extra", "extra.0"]
    assert len(list(net.children())) == 3
    assert [n for n, _ in net.named_parameters()] == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias"]
    assert sum(p.numel() for p in net.parameters()) == (18 + 2) + 4 + 3 + 9
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    for p in net.parameters():
        p.grad = cnncore.ones(*p.shape)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.get_submodule("heads.b") is net.heads["b"]
    assert "features" in repr(net) and "Linear(in_features=2, out_features=3" in repr(net)


def test_forward_hooks_see_inputs_and_outputs_and_can_be_removed():
    m = nn.Identity()
    seen = []
    handle = m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp, out)))
    x = cnncore.ones(2)
    assert m(x) is x
    assert seen[0][0] is m and seen[0][1] == (x,) and seen[0][2] is x
    handle.remove()
    m(x)
    assert len(seen) == 1
    m.register_forward_hook(lambda mod, inp, out: "replaced")
    assert m(x) == "replaced"


def test_default_init_bounds_match_torch_formulas():
    cnncore.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    fan_in = 16 * 9
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives 1/sqrt(fan_in)
    w = to_numpy(conv.weight)
    assert np.abs(w).max() <= bound + 1e-7
    assert np.abs(w).max() > 0.9 * bound  # actually spread over the range
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
    assert np.abs(to_numpy(conv.bias)).max() <= bound + 1e-7
    lin = nn.Linear(100, 50)
    assert np.abs(to_numpy(lin.weight)).max() <= 0.1 + 1e-7
    bn = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(to_numpy(bn.weight), np.ones(4, np.float32))
    np.testing.assert_array_equal(to_numpy(bn.running_var), np.ones(4, np.float32))
    t = cnncore.empty(200, 300)
    nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(to_numpy(t).std() - math.sqrt(2 / 200)) < 0.01
    nn.init.xavier_uniform_(t)
    assert np.abs(to_numpy(t)).max() <= math.sqrt(6 / 500) + 1e-7
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


def test_seeded_init_is_reproducible():
    cnncore.manual_seed(7)
    a = to_numpy(nn.Conv2d(3, 4, 3).weight).copy()
    cnncore.manual_seed(7)
    b = to_numpy(nn.Conv2d(3, 4, 3).weight)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("ctor,match", [
    (lambda: nn.Conv2d(3, 4, 0), "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "groups"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), "padding"),
    (lambda: nn.Linear(-1, 3), "in_features"),
    (lambda: nn.BatchNorm2d(0), "num_features"),
    (lambda: nn.Dropout(1.5), "p"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), "reduction"),
])
def test_bad_constructor_arguments(ctor, match):
    with pytest.raises(ValueError, match=match):
        ctor()


def test_embedding_and_siamese_losses_match_torch():
    torch = _torch()
    rng = np.random.default_rng(3)
    emb, temb = nn.Embedding(11, 4, padding_idx=2), torch.nn.Embedding(11, 4, padding_idx=2)
    _sync(emb, temb)
    idx = rng.integers(0, 11, (3, 5))
    idx[0, 0] = 2
    y, yt = emb(cnncore.tensor(idx)), temb(torch.tensor(idx))
    check_close(y, yt, what="embedding forward")
    g = rng.standard_normal((3, 5, 4)).astype(np.float32)
    y.backward(cnncore.tensor(g))
    yt.backward(torch.tensor(g))
    check_close(emb.weight.grad, temb.weight.grad, atol=1e-6, what="embedding grad")
    with pytest.raises(IndexError, match="out of range"):
        emb(cnncore.tensor(np.array([11])))
    with pytest.raises(TypeError, match="int64"):
        emb(cnncore.tensor(np.zeros(2, np.float32)))

    a, p, n = (rng.standard_normal((6, 5)).astype(np.float32) for _ in range(3))
    for kwargs in ({}, {"margin": 0.5, "p": 1, "swap": True}, {"reduction": "none"}):
        ours = [cnncore.tensor(v, requires_grad=True) for v in (a, p, n)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (a, p, n)]
        lc = nn.TripletMarginLoss(**kwargs)(*ours)
        lt = torch.nn.TripletMarginLoss(**kwargs)(*theirs)
        check_close(lc, lt, rtol=1e-5, atol=1e-6, what=f"triplet {kwargs}")
        lc.sum().backward()
        lt.sum().backward()
        for o, t in zip(ours, theirs):
            check_close(o.grad, t.grad, rtol=1e-4, atol=1e-6, what=f"triplet grad {kwargs}")
    target = np.array([1, -1, 1, -1, -1, 1])
    for margin in (0.0, 0.3):
        ours = [cnncore.tensor(v, requires_grad=True) for v in (a, p)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (a, p)]
        lc = nn.CosineEmbeddingLoss(margin=margin)(*ours, cnncore.tensor(target))
        lt = torch.nn.CosineEmbeddingLoss(margin=margin)(*theirs, torch.tensor(target))
        check_close(lc, lt, rtol=1e-5, atol=1e-6, what="cosine embedding")
        lc.backward()
        lt.backward()
        for o, t in zip(ours, theirs):
            check_close(o.grad, t.grad, rtol=1e-4, atol=1e-6, what="cosine embedding grad")
