"""The optional CUDA backend.

Runs everywhere: the device API of a build without CUDA, and of a CUDA build on a machine without
a GPU (is_available() False, clean RuntimeErrors saying which is missing, torch-like errors for bad
device strings). CI's CUDA step sets CNNCORE_EXPECT_CUDA_BUILD=1 to check it runs a CUDA build.

On a machine with an NVIDIA GPU: every CUDA op against the CPU path (itself compared with the
reference kernels elsewhere) on random ragged shapes, forward and backward; these skip with a
reason when cnncore.cuda.is_available() is False.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import cnncore
import cnncore.nn.functional as F
from cnncore import cuda, nn
from helpers import check_close

GPU = cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="no CUDA device: " + (cuda.unavailable_reason()
                                                                     or "?"))
no_gpu = pytest.mark.skipif(GPU, reason="a CUDA device is present")


# ---- everywhere ---------------------------------------------------------------------------------
def test_build_flag_matches_build_info():
    assert cuda.is_compiled() == cnncore.build_info()["cuda"]
    if os.environ.get("CNNCORE_EXPECT_CUDA_BUILD") == "1":
        assert cuda.is_compiled(), "CI's CUDA step must import the -DCNNCORE_CUDA=ON build"


@no_gpu
def test_no_device_reports_why():
    assert cuda.is_available() is False
    assert cuda.device_count() == 0
    reason = cuda.unavailable_reason()
    if cuda.is_compiled():
        assert reason.startswith("no CUDA device is available"), reason
    else:
        assert "built without CUDA" in reason and "CNNCORE_CUDA=ON" in reason
    assert cuda.memory_allocated() == 0 and cuda.max_memory_allocated() == 0
    cuda.empty_cache()  # nothing to free, no error


@no_gpu
@pytest.mark.parametrize("make", [
    lambda: cnncore.tensor([1.0, 2.0], device="cuda"),
    lambda: cnncore.tensor([1.0, 2.0]).to("cuda"),
    lambda: cnncore.tensor([1.0, 2.0]).to("cuda:0"),
    lambda: cnncore.tensor([1.0, 2.0]).to(device="cuda"),
    lambda: cnncore.tensor([1.0, 2.0]).cuda(),
    lambda: cnncore.zeros(2, 3, device="cuda"),
    lambda: cnncore.ones(2, device="cuda"),
    lambda: cnncore.empty(2, device="cuda:0"),
    lambda: cuda.synchronize(),
    lambda: cuda.current_device(),
], ids=["tensor", "to", "to-index", "to-kw", "cuda()", "zeros", "ones", "empty", "synchronize",
        "current_device"])
def test_asking_for_cuda_without_a_device_is_a_runtime_error(make):
    with pytest.raises(RuntimeError) as e:
        make()
    assert cuda.unavailable_reason() in str(e.value)


@no_gpu
def test_module_to_cuda_without_device_leaves_the_module_on_cpu():
    m = nn.Linear(3, 2)
    before = m.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="cannot use device 'cuda:0'"):
        m.to("cuda")
    assert m.weight.device == "cpu"
    np.testing.assert_array_equal(m.weight.detach().numpy(), before)
    assert m.to("cpu") is m and m.cpu() is m


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "cuda:", "CPU", "cuda:0:1", ""])
def test_bad_device_strings_are_value_errors(bad):
    t = cnncore.tensor([1.0])
    with pytest.raises(ValueError, match="expected a device 'cpu', 'cuda' or 'cuda:<index>'"):
        t.to(bad)
    with pytest.raises(ValueError, match="^tensor: expected a device"):
        cnncore.tensor([1.0], device=bad)
    with pytest.raises(ValueError):
        nn.Linear(2, 2).to(bad)


def test_device_argument_type_is_checked():
    with pytest.raises(TypeError, match="device must be a string"):
        cnncore.tensor([1.0]).to(device=[0])


def test_cpu_tensor_device_and_identity_moves():
    t = cnncore.tensor([[1.0, 2.0]])
    assert t.device == "cpu" and t.is_cuda is False
    assert t.to("cpu") is t and t.cpu() is t and t.to(device="cpu") is t
    assert cnncore.tensor([1.0], device="cpu").device == "cpu"
    assert cnncore.zeros(2, device="cpu").device == "cpu"
    assert t.to(cnncore.int64).dtype == cnncore.int64  # dtype moves still work


def test_missing_device_index_is_a_runtime_error():
    if cuda.device_count() > 7:
        pytest.skip("this machine has more than 7 GPUs")
    with pytest.raises(RuntimeError):
        cnncore.tensor([1.0]).to("cuda:7")


# ---- on a GPU -----------------------------------------------------------------------------------
RNG = np.random.default_rng(1234)


def _pair(shape, requires_grad=True):
    """The same random values as a CPU tensor and a CUDA tensor (both leaves)."""
    a = RNG.standard_normal(shape).astype(np.float32)
    return (cnncore.tensor(a, requires_grad=requires_grad),
            cnncore.tensor(a, device="cuda", requires_grad=requires_grad))


def _compare(fn, shapes, rtol=1e-4, atol=1e-4):
    """fn on CPU and on CUDA: outputs and every input gradient agree."""
    cpu, gpu = zip(*(_pair(s) for s in shapes))
    y_cpu, y_gpu = fn(*cpu), fn(*gpu)
    assert y_gpu.device == "cuda:0"
    check_close(y_gpu.cpu(), y_cpu, rtol=rtol, atol=atol, what="forward")
    g = RNG.standard_normal(y_cpu.shape).astype(np.float32)
    y_cpu.backward(cnncore.tensor(g))
    y_gpu.backward(cnncore.tensor(g, device="cuda"))
    for i, (a, b) in enumerate(zip(cpu, gpu)):
        assert b.grad.device == "cuda:0"
        check_close(b.grad.cpu(), a.grad, rtol=rtol, atol=atol, what=f"grad of input {i}")


@needs_gpu
def test_round_trip_copies_and_views():
    for shape in [(), (1,), (7, 3), (3, 1, 5, 33), (1 << 19, 3)]:  # the last one is staged
        a = RNG.standard_normal(shape).astype(np.float32)
        g = cnncore.tensor(a, device="cuda")
        assert g.device == "cuda:0" and g.shape == a.shape
        np.testing.assert_array_equal(g.cpu().numpy(), a)
    a = RNG.standard_normal((4, 5, 6)).astype(np.float32)
    g = cnncore.tensor(a, device="cuda")
    np.testing.assert_array_equal(g.permute(2, 0, 1).contiguous().cpu().numpy(),
                                  a.transpose(2, 0, 1))
    np.testing.assert_array_equal(g.transpose(0, 2).cpu().numpy(), a.transpose(2, 1, 0))
    assert cnncore.zeros(3, 4, device="cuda").cpu().numpy().sum() == 0
    np.testing.assert_array_equal(cnncore.ones(3, device="cuda").cpu().numpy(), np.ones(3))
    i = cnncore.tensor([1, 2, 3], device="cuda")
    assert i.dtype == cnncore.int64 and i.cpu().tolist() == [1, 2, 3]
    assert float(cnncore.tensor([2.5], device="cuda").item()) == 2.5
    assert "device='cuda:0'" in repr(cnncore.tensor([1.0], device="cuda"))


@needs_gpu
def test_numpy_on_cuda_is_a_type_error_like_torch():
    g = cnncore.tensor([1.0], device="cuda")
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy. Use "
                                        "Tensor.cpu()"):
        g.numpy()


@needs_gpu
@pytest.mark.parametrize("name,fn", [
    ("matmul", lambda g: cnncore.matmul(g.reshape(4, 4), g.reshape(4, 4))),
    ("smooth_l1_loss", lambda g: F.smooth_l1_loss(g, g)),
])
def test_op_without_cuda_kernel_names_the_op(name, fn):
    """An op either runs on CUDA or says which op lacks a kernel (RuntimeError, no crash)."""
    g = cnncore.randn(1, 1, 4, 4).to("cuda")
    try:
        y = fn(g)
    except RuntimeError as e:
        assert name in str(e) and "cuda:0" in str(e) and "no CUDA kernel" in str(e), str(e)
    else:
        assert y.device == "cuda:0"


@needs_gpu
def test_mixing_devices_names_the_op_and_both_devices():
    x = cnncore.randn(1, 2, 5, 5).to("cuda")
    w = cnncore.randn(3, 2, 3, 3)
    with pytest.raises(RuntimeError, match="conv2d: expected all tensors on the same device, but "
                                           "input is on cuda:0 and weight is on cpu"):
        F.conv2d(x, w)


@needs_gpu
def test_caching_allocator_counts_and_reuses():
    cuda.synchronize()
    base = cuda.memory_allocated()
    t = cnncore.zeros(1000, device="cuda")
    assert cuda.memory_allocated() >= base + 4000
    assert cuda.max_memory_allocated() >= cuda.memory_allocated()
    ptr = t._c.data_ptr()
    del t
    assert cuda.memory_allocated() == base
    assert cnncore.zeros(1000, device="cuda")._c.data_ptr() == ptr  # the cached block again
    cuda.empty_cache()
    assert cuda.memory_reserved() >= cuda.memory_allocated()


CONV_CASES = [
    # (N, C, H, W), (K, C/g, R, S), stride, padding, dilation, groups
    ((2, 3, 9, 7), (5, 3, 3, 3), 1, 1, 1, 1),
    ((1, 4, 11, 13), (6, 2, 3, 5), (2, 1), (1, 2), 1, 2),
    ((3, 5, 8, 8), (7, 5, 1, 1), 1, 0, 1, 1),
    ((2, 6, 10, 9), (6, 1, 3, 3), 2, 2, (2, 1), 6),  # depthwise, dilated, padding > kernel/2
    ((1, 2, 5, 5), (3, 2, 2, 2), 3, 0, 1, 1),  # stride > kernel
    ((2, 67, 6, 5), (65, 67, 3, 3), 1, 1, 1, 1),  # more than one 64-wide tile each way
]


@needs_gpu
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_matches_cpu(xs, ws, stride, padding, dilation, groups):
    _compare(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
             [xs, ws, (ws[0],)], rtol=1e-3, atol=1e-3)


@needs_gpu
@pytest.mark.parametrize("xs,out", [((5, 7), 3), ((2, 3, 70), 65), ((1, 1), 1), ((130, 33), 17)])
def test_linear_matches_cpu(xs, out):
    _compare(lambda x, w, b: F.linear(x, w, b), [xs, (out, xs[-1]), (out,)], rtol=1e-3,
             atol=1e-3)


@needs_gpu
@pytest.mark.parametrize("shape", [(7,), (3, 5, 2), (2, 3, 17, 19)])
def test_relu_matches_cpu(shape):
    _compare(F.relu, [shape])


@needs_gpu
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_same_shape_matches_cpu(op):
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / (b * b + 1.0)}[op]
    if op == "div":  # b * b + 1.0 needs scalar ops: compare the forward of a / b only
        a, b = _pair((4, 6), False), _pair((4, 6), False)
        check_close((a[1] / b[1]).cpu(), a[0] / b[0], rtol=1e-5, atol=1e-6)
        return
    _compare(fn, [(4, 6), (4, 6)])


@needs_gpu
def test_binary_broadcast_forward_matches_cpu():
    for sa, sb in [((3, 1, 5), (4, 1)), ((2, 3), (3,)), ((1,), (2, 2))]:
        a, b = _pair(sa, False), _pair(sb, False)
        for fn in (lambda u, v: u + v, lambda u, v: u * v, lambda u, v: u - v):
            check_close(fn(a[1], b[1]).cpu(), fn(a[0], b[0]), what=f"{sa} {sb}")


@needs_gpu
@pytest.mark.parametrize("shape,dim", [((5, 7), 1), ((2, 3, 4, 5), 1), ((6,), 0), ((3, 4, 2), -1)])
def test_log_softmax_matches_cpu(shape, dim):
    _compare(lambda x: F.log_softmax(x, dim), [shape])


@needs_gpu
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted,smoothing,spatial", [
    (False, 0.0, False), (True, 0.0, False), (True, 0.1, True), (False, 0.2, False)])
def test_cross_entropy_and_nll_match_cpu(reduction, weighted, smoothing, spatial):
    shape = (5, 7, 3, 2) if spatial else (6, 7)
    tshape = (shape[0],) + shape[2:]
    t = RNG.integers(0, 7, tshape)
    t.reshape(-1)[1] = -100  # one ignored element
    w = RNG.uniform(0.5, 2.0, 7).astype(np.float32) if weighted else None
    def loss(x, on):
        tt = cnncore.tensor(t, device=on)
        ww = None if w is None else cnncore.tensor(w, device=on)
        return F.cross_entropy(x, tt, ww, reduction=reduction, label_smoothing=smoothing)

    xc, xg = _pair(shape)
    lc, lg = loss(xc, "cpu"), loss(xg, "cuda")
    check_close(lg.cpu(), lc, rtol=1e-4, atol=1e-5, what="loss")
    g = RNG.standard_normal(lc.shape).astype(np.float32)
    lc.backward(cnncore.tensor(g))
    lg.backward(cnncore.tensor(g, device="cuda"))
    check_close(xg.grad.cpu(), xc.grad, rtol=1e-4, atol=1e-5, what="grad")
    if smoothing == 0.0:
        lp_c, lp_g = F.log_softmax(xc.detach(), 1), F.log_softmax(xg.detach(), 1)
        tt = cnncore.tensor(t)
        check_close(F.nll_loss(lp_g, tt.cuda(), reduction=reduction).cpu(),
                    F.nll_loss(lp_c, tt, reduction=reduction), rtol=1e-4, atol=1e-5, what="nll")


@needs_gpu
def test_cross_entropy_bad_target_is_a_value_error_on_cuda():
    x = cnncore.randn(2, 3).cuda()
    with pytest.raises(ValueError, match="out of range"):
        F.cross_entropy(x, cnncore.tensor([0, 3]).cuda())


@needs_gpu
@pytest.mark.parametrize("shape,affine,training", [((4, 3, 5, 6), True, True),
                                                   ((7, 5), False, True),
                                                   ((2, 4, 3, 3), True, False)])
def test_batch_norm_matches_cpu(shape, affine, training):
    C = shape[1]
    rm = RNG.standard_normal(C).astype(np.float32)
    rv = RNG.uniform(0.5, 2.0, C).astype(np.float32)
    stats = {dev: (cnncore.tensor(rm, device=dev), cnncore.tensor(rv, device=dev))
             for dev in ("cpu", "cuda")}

    def bn(x, w=None, b=None):
        m, v = stats[x.device.split(":")[0]]
        return F.batch_norm(x, m, v, w, b, training=training, momentum=0.3, eps=1e-4)

    if affine:
        _compare(bn, [shape, (C,), (C,)], rtol=1e-4, atol=1e-4)
    else:
        _compare(bn, [shape], rtol=1e-4, atol=1e-4)
    for cpu_t, gpu_t in zip(stats["cpu"], stats["cuda"]):  # running stats updated alike
        check_close(gpu_t.cpu(), cpu_t, rtol=1e-5, atol=1e-6, what="running stats")


@needs_gpu
def test_resnet_block_training_steps_match_cpu():
    """conv-bn-relu-conv-bn + identity, adaptive pool, linear, cross_entropy, SGD momentum."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn0 = nn.BatchNorm2d(8)
            self.c1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(8)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            x = F.relu(self.bn0(self.stem(x)))
            y = self.bn2(self.c2(F.relu(self.bn1(self.c1(x)))))
            return self.fc(self.pool(F.relu(x + y)).flatten(1))

    cnncore.manual_seed(1)
    net, gnet = Block(), Block()
    gnet.load_state_dict(net.state_dict())
    gnet.cuda()
    assert all(b.device == "cuda:0" for b in gnet.buffers())
    opts = [cnncore.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (net, gnet)]
    x = RNG.standard_normal((4, 3, 8, 8)).astype(np.float32)
    y = RNG.integers(0, 5, 4)
    for _ in range(2):
        for model, opt, dev in ((net, opts[0], "cpu"), (gnet, opts[1], "cuda")):
            opt.zero_grad()
            F.cross_entropy(model(cnncore.tensor(x, device=dev)),
                            cnncore.tensor(y, device=dev)).backward()
            opt.step()
    sd, gsd = net.state_dict(), gnet.state_dict()
    for k in sd:
        check_close(gsd[k].cpu(), sd[k], rtol=1e-3, atol=1e-4, what=k)


POOL_CASES = [
    # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 9, 8), 2, None, 0, 1, False),
    ((1, 2, 11, 7), 3, 2, 1, 1, True),
    ((3, 7, 7), (3, 2), (1, 2), (1, 0), 1, False),  # unbatched
    ((1, 1, 10, 10), 3, 1, 1, 2, False),  # dilated (max only)
]


@needs_gpu
@pytest.mark.parametrize("shape,k,s,p,d,ceil", POOL_CASES)
def test_max_pool2d_matches_cpu(shape, k, s, p, d, ceil):
    _compare(lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), [shape])


@needs_gpu
@pytest.mark.parametrize("shape,k,s,p,d,ceil", [c for c in POOL_CASES if c[4] == 1])
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool2d_matches_cpu(shape, k, s, p, d, ceil, include_pad):
    _compare(lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include_pad),
             [shape])


@needs_gpu
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 7), 1), ((1, 2, 10, 7), (3, 4)),
                                       ((4, 5, 6), (6, 2))])
def test_adaptive_avg_pool2d_matches_cpu(shape, out):
    _compare(lambda x: F.adaptive_avg_pool2d(x, out), [shape])


def _lenet_like():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 10))


@needs_gpu
@pytest.mark.parametrize("make_opt", [
    lambda ps: cnncore.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: cnncore.optim.SGD(ps, lr=0.05),
    lambda ps: cnncore.optim.Adam(ps, lr=1e-2, weight_decay=1e-3, amsgrad=True),
    lambda ps: cnncore.optim.AdamW(ps, lr=1e-2),
], ids=["sgd-nesterov", "sgd", "adam-amsgrad", "adamw"])
def test_training_steps_on_cuda_match_cpu(make_opt):
    """Three optimizer steps of a LeNet-shaped net (conv, relu, pools, linear, cross_entropy)
    on both devices, through the same Python code."""
    cnncore.manual_seed(0)
    net, gnet = _lenet_like(), _lenet_like()
    gnet.load_state_dict(net.state_dict())
    gnet.to("cuda")
    opt, gopt = make_opt(net.parameters()), make_opt(gnet.parameters())
    x = RNG.standard_normal((4, 1, 12, 12)).astype(np.float32)
    for step in range(3):
        y = RNG.integers(0, 10, 4)
        losses = []
        for model, o, dev in ((net, opt, "cpu"), (gnet, gopt, "cuda")):
            o.zero_grad()
            loss = F.cross_entropy(model(cnncore.tensor(x, device=dev)),
                                   cnncore.tensor(y, device=dev))
            loss.backward()
            o.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-4, abs=1e-5)
        for (name, p), pg in zip(net.named_parameters(), gnet.parameters()):
            assert pg.device == "cuda:0"
            check_close(pg.detach().cpu(), p.detach(), rtol=1e-3, atol=1e-4,
                        what=f"step {step}: {name}")


@needs_gpu
def test_conv_relu_linear_network_gradients_match_cpu():
    """A LeNet-shaped stack of the ops the backend has: conv, relu, flatten, linear."""
    cnncore.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Conv2d(6, 16, 5, stride=2),
                        nn.ReLU(), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))
    gnet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Conv2d(6, 16, 5, stride=2),
                         nn.ReLU(), nn.Flatten(), nn.Linear(16 * 5 * 5, 10))
    gnet.load_state_dict(net.state_dict())
    params = list(gnet.parameters())
    assert gnet.to("cuda") is gnet and list(gnet.parameters()) == params  # moved in place
    assert all(p.device == "cuda:0" for p in gnet.parameters())
    x = RNG.standard_normal((4, 1, 14, 14)).astype(np.float32)
    g = RNG.standard_normal((4, 10)).astype(np.float32)
    y = net(cnncore.tensor(x))
    yg = gnet(cnncore.tensor(x, device="cuda"))
    check_close(yg.cpu(), y, rtol=1e-3, atol=1e-3, what="logits")
    y.backward(cnncore.tensor(g))
    yg.backward(cnncore.tensor(g, device="cuda"))
    for (name, p), pg in zip(net.named_parameters(), gnet.parameters()):
        check_close(pg.grad.cpu(), p.grad, rtol=1e-3, atol=1e-3, what=name)
    gnet.cpu()
    assert all(p.device == "cpu" for p in gnet.parameters())


@needs_gpu
@pytest.mark.parametrize("name,shape,classes", [("lenet5", (4, 1, 32, 32), 10),
                                                ("resnet18", (2, 3, 32, 32), 7)])
def test_zoo_models_train_on_cuda_like_on_cpu(name, shape, classes):
    """Two SGD steps of the zoo's LeNet-5 and ResNet-18 through the same Python code."""
    make = getattr(cnncore.models, name)
    cnncore.manual_seed(3)
    net, gnet = make(num_classes=classes), make(num_classes=classes)
    gnet.load_state_dict(net.state_dict())
    gnet.to("cuda")
    opts = [cnncore.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in (net, gnet)]
    x = RNG.standard_normal(shape).astype(np.float32)
    y = RNG.integers(0, classes, shape[0])
    for _ in range(2):
        losses = []
        for model, opt, dev in ((net, opts[0], "cpu"), (gnet, opts[1], "cuda")):
            opt.zero_grad()
            loss = F.cross_entropy(model(cnncore.tensor(x, device=dev)),
                                   cnncore.tensor(y, device=dev))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-3, abs=1e-4)
    sd, gsd = net.state_dict(), gnet.state_dict()
    for k in sd:
        check_close(gsd[k].cpu(), sd[k], rtol=2e-3, atol=2e-4, what=k)


# ---- cuda-b: reductions, scalar and unary ops, add_, cat/stack, activations, losses, RMSprop ----
# DEV is the device under test. CNNCORE_CUDA_TEST_DEVICE=cpu runs these test bodies with the CPU
# in the GPU's place (CPU against CPU): a dry run of the tests themselves where no GPU is present.
DEV = os.environ.get("CNNCORE_CUDA_TEST_DEVICE", "cuda")
needs_dev = needs_gpu if DEV == "cuda" else (lambda f: f)


def _on(a, requires_grad=False, dev=None):
    return cnncore.tensor(a, device=dev or DEV, requires_grad=requires_grad)


def _cmp(fn, arrays, rtol=1e-4, atol=1e-5, grad=True):
    """fn(*tensors) on the CPU and on DEV from the same arrays: output and input gradients."""
    cpu = [cnncore.tensor(a, requires_grad=grad) for a in arrays]
    dev = [_on(a, requires_grad=grad) for a in arrays]
    y_cpu, y_dev = fn(*cpu), fn(*dev)
    assert y_dev.device.split(":")[0] == DEV
    check_close(y_dev.cpu(), y_cpu, rtol=rtol, atol=atol, what="forward")
    if not grad:
        return
    g = RNG.standard_normal(y_cpu.shape).astype(np.float32)
    y_cpu.backward(cnncore.tensor(g))
    y_dev.backward(_on(g))
    for i, (a, b) in enumerate(zip(cpu, dev)):
        assert b.grad.device == y_dev.device
        check_close(b.grad.cpu(), a.grad, rtol=rtol, atol=atol, what=f"grad of input {i}")


def _randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


SUM_CASES = [
    # shape, dims, keepdim, view applied to the input first (non-contiguous / broadcast)
    ((7, 5), None, False, None),
    ((7, 5), (1,), True, None),
    ((3, 4, 5, 6), (0, 2, 3), True, None),  # a per-channel sum: kept dim between reduced ones
    ((3, 4, 5, 6), (1, 3), False, None),
    ((6, 5, 4), (0,), False, "permute"),  # strided rows
    ((3, 1, 5), (0, 1), True, "expand"),  # stride-0 dims
    ((3, 70001), (1,), False, None),  # long contiguous rows: one block per output, in pieces
    ((300007,), None, False, None),  # x.sum() of many elements: pieces added in order
    ((50001, 3), (0,), False, None),  # tall columns, few outputs
    ((5003, 7), (1,), True, None),  # many short rows: one thread per output
    ((4100, 130), (1,), False, None),  # many long rows
    ((0, 4), (0,), False, None),  # empty reduction: 0 (sum) / nan (mean)
    ((), None, False, None),
]


def _view(t, how):
    if how == "permute":
        return t.permute(2, 0, 1)
    if how == "expand":
        return t.expand(3, 4, 5)
    return t


@needs_dev
@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("shape,dims,keepdim,how", SUM_CASES)
def test_sum_mean_match_cpu(op, shape, dims, keepdim, how):
    tol = 1e-4 if int(np.prod(shape)) < 10000 else 2e-4
    _cmp(lambda x: getattr(_view(x, how), op)(dims, keepdim), [_randn(*shape)], rtol=tol,
         atol=tol)


@needs_dev
def test_sum_is_deterministic_on_cuda():
    x = _on(_randn(1 << 20))
    a, b = x.sum().item(), x.sum().item()
    assert a == b
    check_close(x.sum().cpu(), x.cpu().sum(), rtol=1e-5, atol=1e-4)


BROADCAST_CASES = [((3, 1, 5), (4, 1)), ((2, 3), (3,)), ((1,), (2, 2)), ((4, 6), (4, 6)),
                   ((2, 3, 4, 5), (1, 3, 1, 1)), ((5, 1), (1, 7))]


@needs_dev
@pytest.mark.parametrize("sa,sb", BROADCAST_CASES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_broadcasting_binary_backward_matches_cpu(sa, sb, op):
    """The backward sums the gradient to each input's shape (sum_to_shape) on the device."""
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / (b * b + 0.5), "maximum": cnncore.maximum,
          "minimum": cnncore.minimum}[op]
    _cmp(fn, [_randn(*sa), _randn(*sb)])


@needs_dev
@pytest.mark.parametrize("shape,dim,keepdim", [((7, 5), 1, False), ((3, 4, 5), 1, True),
                                               ((3, 200, 2), 1, False), ((5, 300), -1, True),
                                               ((9,), 0, False), ((), 0, False),
                                               ((5000, 70), 1, False), ((70, 5000), 0, False)])
def test_max_dim_and_argmax_match_cpu(shape, dim, keepdim):
    a = _randn(*shape)
    if a.ndim and a.shape[dim] > 2:
        a.reshape(-1)[::7] = 0.25  # ties: the first index wins on both devices
    xc, xg = cnncore.tensor(a), _on(a)
    vc, ic = cnncore.max(xc, dim, keepdim)
    vg, ig = cnncore.max(xg, dim, keepdim)
    check_close(vg.cpu(), vc, rtol=0, atol=0, what="values")
    np.testing.assert_array_equal(ig.cpu().numpy(), ic.numpy())
    np.testing.assert_array_equal(cnncore.argmax(xg, dim, keepdim).cpu().numpy(),
                                  cnncore.argmax(xc, dim, keepdim).numpy())
    np.testing.assert_array_equal(cnncore.argmin(xg, dim).cpu().numpy(),
                                  cnncore.argmin(xc, dim).numpy())
    if a.ndim:
        np.testing.assert_array_equal(xg.permute(*reversed(range(a.ndim))).argmax(0).cpu()
                                      .numpy(), xc.permute(*reversed(range(a.ndim))).argmax(0)
                                      .numpy())


@needs_dev
def test_max_dim_nan_wins_like_cpu():
    a = _randn(4, 300)
    a[1, 17] = np.nan
    a[1, 200] = np.nan
    a[2, 5] = np.nan
    for dim in (0, 1):
        vc, ic = cnncore.max(cnncore.tensor(a), dim)
        vg, ig = cnncore.max(_on(a), dim)
        check_close(vg.cpu(), vc, rtol=0, atol=0)
        np.testing.assert_array_equal(ig.cpu().numpy(), ic.numpy())


@needs_dev
@pytest.mark.parametrize("op", ["neg", "exp", "log", "sqrt", "abs", "square"])
def test_unary_matches_cpu(op):
    a = _randn(5, 7, 3)
    if op in ("log", "sqrt"):
        a = np.abs(a) + 0.1
    fn = getattr(cnncore, op)
    _cmp(lambda x: fn(x.transpose(0, 2)), [a])  # a strided input
    _cmp(lambda x: fn(x), [a])


@needs_dev
def test_unary_sign_reciprocal_and_edge_values_match_cpu():
    a = np.array([0.0, -0.0, 1.5, -2.0, np.nan, np.inf, -np.inf, 1e-30], np.float32)
    for op in ("sign", "reciprocal", "abs", "neg", "exp", "sqrt", "log"):
        got = cnncore.Tensor._wrap(_core_unary(op, _on(a)._c)).cpu().numpy()
        want = cnncore.Tensor._wrap(_core_unary(op, cnncore.tensor(a)._c)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=op)
        if op == "sign":
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def _core_unary(op, c):
    from cnncore import _core
    return _core.unary(op, c)


SCALAR_FNS = {
    "x+s": lambda x: x + 1.5, "s+x": lambda x: 1.5 + x, "x-s": lambda x: x - 0.5,
    "s-x": lambda x: 0.5 - x, "x*s": lambda x: x * -3.0, "x/s": lambda x: x / 4.0,
    "s/x": lambda x: 2.0 / (x * x + 1.0), "x**2": lambda x: x ** 2,
    "x**3": lambda x: x ** 3, "|x|**0.5": lambda x: (x * x + 0.1) ** 0.5,
    "2**x": lambda x: 2.0 ** x, "clamp": lambda x: cnncore.clamp(x, -0.5, 0.7),
    "max(x,s)": lambda x: cnncore.maximum(x, 0.2), "min(s,x)": lambda x: cnncore.minimum(0.1, x),
}


@needs_dev
@pytest.mark.parametrize("name", list(SCALAR_FNS))
def test_scalar_ops_match_cpu(name):
    fn = SCALAR_FNS[name]
    _cmp(fn, [_randn(6, 5)])
    _cmp(lambda x: fn(x.t()), [_randn(6, 5)])  # strided


@needs_dev
@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_scalar_comparisons_match_cpu(op):
    a = np.round(_randn(4, 9)).astype(np.float32)
    fn = getattr(cnncore, op)
    for s_first in (False, True):
        c = fn(1.0, cnncore.tensor(a)) if s_first else fn(cnncore.tensor(a), 1.0)
        g = fn(1.0, _on(a)) if s_first else fn(_on(a), 1.0)
        np.testing.assert_array_equal(g.cpu().numpy(), c.numpy())


@needs_dev
@pytest.mark.parametrize("sb,alpha", [((3, 4), 1.0), ((3, 4), -0.5), ((4,), 2.0), ((3, 1), 1.0),
                                      ((), 3.0)])
def test_add_inplace_matches_cpu(sb, alpha):
    a, b = _randn(3, 4), _randn(*sb)
    xc, xg = cnncore.tensor(a), _on(a)
    xc.add_(cnncore.tensor(b), alpha=alpha)
    xg.add_(_on(b), alpha=alpha)
    check_close(xg.cpu(), xc, rtol=1e-6, atol=1e-6)
    bt = _randn(4, 3)
    xc.add_(cnncore.tensor(bt).t())  # strided other
    xg.add_(_on(bt).t())
    check_close(xg.cpu(), xc, rtol=1e-6, atol=1e-6)


@needs_dev
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack_match_cpu(dim):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    if dim == 0:
        shapes = [(1, 3, 4), (3, 3, 4), (2, 3, 4)]
    elif dim == 1:
        shapes = [(2, 1, 4), (2, 5, 4), (2, 0, 4)]
    arrays = [_randn(*s) for s in shapes]
    _cmp(lambda *ts: cnncore.cat(list(ts), dim), arrays)
    same = [_randn(2, 3, 4) for _ in range(3)]
    _cmp(lambda *ts: cnncore.stack(list(ts), dim), same)
    _cmp(lambda a, b: cnncore.cat([a.transpose(0, 2), b.transpose(0, 2)], dim),
         [_randn(4, 3, 2), _randn(4, 3, 2)])  # strided parts
    ints = [RNG.integers(-5, 5, s) for s in shapes]
    got = cnncore.cat([_on(i) for i in ints], dim)
    assert got.dtype == cnncore.int64
    np.testing.assert_array_equal(got.cpu().numpy(), np.concatenate(ints, dim))


@needs_gpu
def test_cat_mixing_devices_is_an_error():
    with pytest.raises(RuntimeError, match="cat: expected all tensors on the same device"):
        cnncore.cat([_on(_randn(2)), cnncore.tensor(_randn(2))])


ACTIVATIONS = {
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1), "leaky_relu-neg": lambda x: F.leaky_relu(x, -2.0),
    "hardtanh": lambda x: F.hardtanh(x, -0.5, 0.8), "relu6": lambda x: F.relu6(x * 4.0),
    "sigmoid": F.sigmoid, "tanh": F.tanh,
    "softmax-1": lambda x: F.softmax(x, 1 if x.ndim > 1 else 0), "softmax-last": lambda x: F.softmax(x, -1),
    "softmax-0": lambda x: F.softmax(x, 0),
}


@needs_dev
@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(7,), (5, 3, 4), (2, 37, 3, 5), (3, 1000)])
def test_activations_match_cpu(name, shape):
    fn = ACTIVATIONS[name]
    _cmp(fn, [_randn(*shape) * 3.0], rtol=1e-4, atol=1e-6)


@needs_dev
def test_activations_keep_nan_like_cpu():
    a = np.array([np.nan, -1.0, 2.0, 0.25], np.float32)
    for fn in (F.relu, F.relu6, F.sigmoid, F.tanh, lambda x: F.leaky_relu(x, 0.1),
               lambda x: F.hardtanh(x, -0.5, 0.5)):
        got, want = fn(_on(a)).cpu().numpy(), fn(cnncore.tensor(a)).numpy()
        assert np.isnan(got[0]) and np.isnan(want[0])
        np.testing.assert_allclose(got[1:], want[1:], rtol=1e-6)


@needs_dev
def test_softmax_extreme_logits_match_cpu():
    a = np.array([[1000.0, 0.0, -1000.0], [-1e30, -1e30, 0.0]], np.float32)
    for dim in (0, 1):
        check_close(F.softmax(_on(a), dim).cpu(), F.softmax(cnncore.tensor(a), dim),
                    rtol=1e-6, atol=1e-7)


LOSS_SHAPES = [(7,), (4, 5), (3, 2, 17, 5)]


@needs_dev
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("loss,weighted", [("mse", False), ("mse", True), ("l1", False),
                                           ("l1", True), ("smooth_l1-1", False),
                                           ("smooth_l1-0.3", False), ("smooth_l1-0", False)])
def test_regression_losses_match_cpu(reduction, shape, loss, weighted):
    w = RNG.uniform(0.2, 2.0, shape).astype(np.float32) if weighted else None

    def fn(x, t):
        if loss.startswith("smooth_l1"):
            return F.smooth_l1_loss(x, t, reduction=reduction, beta=float(loss.split("-")[1]))
        ww = None if w is None else _on(w, dev=x.device.split(":")[0])
        f = F.mse_loss if loss == "mse" else F.l1_loss
        return f(x, t, reduction=reduction, weight=ww)

    _cmp(fn, [_randn(*shape), _randn(*shape)])


@needs_dev
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_cpu(reduction, shape, weighted):
    p = RNG.uniform(0.02, 0.98, shape).astype(np.float32)
    p.reshape(-1)[0] = 0.0  # the clamped logs
    p.reshape(-1)[-1] = 1.0 if p.size > 2 else p.reshape(-1)[-1]
    t = RNG.uniform(0.0, 1.0, shape).astype(np.float32)
    w = RNG.uniform(0.2, 2.0, shape).astype(np.float32) if weighted else None
    cpu = [cnncore.tensor(p, requires_grad=True), cnncore.tensor(t, requires_grad=False)]
    dev = [_on(p, True), _on(t)]
    lc = F.binary_cross_entropy(*cpu, None if w is None else cnncore.tensor(w),
                                reduction=reduction)
    lg = F.binary_cross_entropy(*dev, None if w is None else _on(w), reduction=reduction)
    check_close(lg.cpu(), lc, rtol=1e-4, atol=1e-5, what="loss")
    g = _randn(*lc.shape)
    lc.backward(cnncore.tensor(g))
    lg.backward(_on(g))
    check_close(dev[0].grad.cpu(), cpu[0].grad, rtol=1e-4, atol=1e-4, what="grad input")
    # the target's gradient, away from 0 and 1 (it is infinite there)
    q = np.clip(p, 0.05, 0.95)
    _cmp(lambda x, y: F.binary_cross_entropy(x, y, reduction=reduction), [q, t])


@needs_dev
def test_binary_cross_entropy_out_of_range_is_a_value_error_on_cuda():
    x = _on(np.array([0.5, 1.5, -1.0], np.float32))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\], but element 1 is 1.5"):
        F.binary_cross_entropy(x, _on(np.zeros(3, np.float32)))


@needs_dev
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("weighted,pos_weighted", [(False, False), (True, False), (False, True),
                                                   (True, True)])
def test_bce_with_logits_matches_cpu(reduction, shape, weighted, pos_weighted):
    w = RNG.uniform(0.2, 2.0, shape).astype(np.float32) if weighted else None
    pw = RNG.uniform(0.5, 3.0, shape).astype(np.float32) if pos_weighted else None

    def fn(x, t):
        dev = x.device.split(":")[0]
        return F.binary_cross_entropy_with_logits(
            x, t, None if w is None else _on(w, dev=dev), reduction=reduction,
            pos_weight=None if pw is None else _on(pw, dev=dev))

    x = _randn(*shape) * 5.0
    x.reshape(-1)[0] = 40.0  # large logits stay finite
    _cmp(fn, [x, RNG.uniform(0.0, 1.0, shape).astype(np.float32)])


@needs_dev
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted,smoothing,shape", [(False, 0.0, (6, 7)), (True, 0.1, (6, 7)),
                                                      (True, 0.0, (5, 4, 3, 2)),
                                                      (False, 0.3, (9,))])
def test_cross_entropy_probability_targets_match_cpu(reduction, weighted, smoothing, shape):
    C = shape[0] if len(shape) == 1 else shape[1]
    w = RNG.uniform(0.5, 2.0, C).astype(np.float32) if weighted else None
    q = RNG.uniform(0.0, 1.0, shape).astype(np.float32)
    q /= q.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)

    def fn(x, t):
        dev = x.device.split(":")[0]
        return F.cross_entropy(x, t, None if w is None else _on(w, dev=dev), reduction=reduction,
                               label_smoothing=smoothing)

    _cmp(fn, [_randn(*shape), q])  # gradients of the logits and of the target


@needs_dev
def test_nll_loss_keeps_rejecting_probability_targets():
    x = _on(_randn(3, 4))
    with pytest.raises(TypeError, match="nll_loss: target must be int64 class indices"):
        F.nll_loss(x, _on(np.full((3, 4), 0.25, np.float32)))


@needs_dev
def test_rmsprop_step_options_match_cpu():
    from cnncore import _core
    for alpha, eps, wd, mom, centered, maximize in [
            (0.99, 1e-8, 0.0, 0.0, False, False), (0.9, 1e-6, 1e-2, 0.9, False, False),
            (0.7, 1e-3, 0.0, 0.5, True, False), (0.99, 1e-8, 5e-3, 0.0, True, True),
            (0.3, 1e-8, 0.0, 0.0, False, True)]:
        state = {}
        for dev in ("cpu", DEV):
            p = _on(np.linspace(-1, 1, 37).astype(np.float32), dev=dev)
            sq = _on(np.zeros(37, np.float32), dev=dev)
            buf = _on(np.zeros(37, np.float32), dev=dev) if mom > 0 else None
            ga = _on(np.zeros(37, np.float32), dev=dev) if centered else None
            for k in range(3):
                g = _on(np.sin(np.arange(37) * (k + 1)).astype(np.float32), dev=dev)
                _core.rmsprop_step(p._c, g._c, sq._c, None if buf is None else buf._c,
                                   None if ga is None else ga._c, lr=0.01, alpha=alpha, eps=eps,
                                   weight_decay=wd, momentum=mom, centered=centered,
                                   maximize=maximize)
            state[dev] = [t.cpu().numpy() for t in (p, sq, buf, ga) if t is not None]
        for a, b in zip(state["cpu"], state[DEV]):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


class _SmallNet(nn.Module):
    """Linear layers with sigmoid / tanh and a bias added by a broadcasting Python op."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 9)
        self.fc2 = nn.Linear(9, 4, bias=False)
        self.bias = nn.Parameter(cnncore.zeros(4))
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        h = F.tanh(self.fc1(x))
        z = self.fc2(h) + self.bias  # (N, 4) + (4,): sum_to_shape in the backward
        return F.sigmoid(z), self.head(F.leaky_relu(z, 0.05)).flatten()


@needs_dev
@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.9)])
def test_end_to_end_sigmoid_tanh_mse_bce_rmsprop_matches_cpu(centered, momentum):
    cnncore.manual_seed(5)
    net, gnet = _SmallNet(), _SmallNet()
    gnet.load_state_dict(net.state_dict())
    gnet.to(DEV)
    opts = [cnncore.optim.RMSprop(m.parameters(), lr=0.01, alpha=0.9, momentum=momentum,
                                  centered=centered, weight_decay=1e-3) for m in (net, gnet)]
    x = _randn(8, 6)
    target = RNG.uniform(0.0, 1.0, (8, 4)).astype(np.float32)
    reg = _randn(8)
    for step in range(4):
        losses = []
        for model, opt, dev in ((net, opts[0], "cpu"), (gnet, opts[1], DEV)):
            opt.zero_grad()
            prob, value = model(_on(x, dev=dev))
            loss = F.binary_cross_entropy(prob, _on(target, dev=dev)) + \
                0.5 * F.mse_loss(value, _on(reg, dev=dev)) + prob.mean() * 0.1
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-4, abs=1e-5)
        for (name, p), pg in zip(net.named_parameters(), gnet.parameters()):
            assert pg.device.split(":")[0] == DEV
            check_close(pg.detach().cpu(), p.detach(), rtol=1e-3, atol=1e-4,
                        what=f"step {step}: {name}")


# ---- backward formulas written with numpy (max/min, pow's exponent, broadcast loss weights):
# the values go through the host and the gradient comes back on the input's device ----
@needs_dev
@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (0, True), (-1, True)])
def test_max_min_backward_on_device_matches_cpu(op, dim, keepdim):
    x = np.round(_randn(4, 5, 3), 1)  # ties: the all-elements gradient is shared among them
    if dim is None:
        _cmp(lambda t: getattr(t, op)(), [x])
    else:
        _cmp(lambda t: getattr(t, op)(dim, keepdim).values, [x])


@needs_dev
def test_pow_exponent_gradient_on_device_matches_cpu():
    base = np.abs(_randn(3, 4)) + 0.5
    base[0, 1] = 0.0  # no exponent gradient where the base is 0
    _cmp(lambda b, e: b ** e, [base, _randn(3, 4)])


@needs_dev
def test_bce_broadcast_weight_on_device_matches_cpu():
    F = cnncore.nn.functional
    p = 1.0 / (1.0 + np.exp(-_randn(4, 3)))
    t = (RNG.random((4, 3)) > 0.5).astype(np.float32)
    w = np.abs(_randn(3)) + 0.1
    _cmp(lambda a: F.binary_cross_entropy(a, _on(t, dev=a.device), weight=_on(w, dev=a.device)),
         [p.astype(np.float32)])


@needs_dev
def test_narrow_backward_on_device_matches_cpu():
    _cmp(lambda t: t.narrow(1, 1, 3) * 2.0, [_randn(2, 5, 3)])
# ---- cuda-a: conv_transpose2d, interpolate, pad, local_response_norm, dropout,
# adaptive_max_pool2d ----
CONVT_CASES = [
    # x shape, (C_out / groups, k), stride, padding, output_padding, dilation, groups
    ((2, 3, 5, 7), (4, 3), 1, 0, 0, 1, 1),
    ((1, 4, 6, 5), (3, (3, 2)), 2, 1, 1, 1, 2),
    ((3, 2, 4, 9), (5, 4), (2, 3), (1, 2), (1, 0), 1, 1),
    ((2, 6, 5, 5), (1, 3), 1, 1, 0, 2, 6),  # depthwise, dilated
    ((1, 2, 7, 4), (3, 3), 1, 0, 1, 2, 1),  # output_padding >= stride (below the dilation)
    ((2, 4, 3, 6), (2, 2), 2, 0, 0, 1, 2),  # U-Net's 2x2 stride-2 upsampling, grouped
]


@needs_gpu
@pytest.mark.parametrize("xs,wk,stride,padding,out_pad,dilation,groups", CONVT_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d_matches_cpu(xs, wk, stride, padding, out_pad, dilation, groups, bias):
    cpg, k = wk
    kh, kw = k if isinstance(k, tuple) else (k, k)
    shapes = [xs, (xs[1], cpg, kh, kw)] + ([(cpg * groups,)] if bias else [])

    def fn(x, w, b=None):
        return F.conv_transpose2d(x, w, b, stride=stride, padding=padding,
                                  output_padding=out_pad, groups=groups, dilation=dilation)

    _compare(fn, shapes, rtol=1e-4, atol=1e-4)


@needs_gpu
def test_conv_transpose2d_unbatched_and_bad_bias_on_cuda():
    _compare(lambda x, w: F.conv_transpose2d(x, w, stride=2), [(3, 4, 5), (3, 2, 3, 3)])
    x = cnncore.randn(1, 3, 4, 4).to("cuda")
    w = cnncore.randn(3, 2, 3, 3).to("cuda")
    with pytest.raises(ValueError, match="conv_transpose2d: bias must have shape \\(2,\\)"):
        F.conv_transpose2d(x, w, cnncore.randn(3).to("cuda"))


INTERP_CASES = [
    # shape, kwargs
    ((2, 3, 5, 7), dict(size=(9, 4), mode="nearest")),
    ((1, 2, 4, 6), dict(scale_factor=2, mode="nearest")),
    ((1, 2, 7, 5), dict(scale_factor=(1.7, 0.6), mode="nearest")),
    ((2, 3, 5, 7), dict(size=(11, 3), mode="bilinear", align_corners=False)),
    ((2, 3, 5, 7), dict(size=(11, 3), mode="bilinear", align_corners=True)),
    ((1, 2, 6, 4), dict(scale_factor=2, mode="bilinear")),
    ((1, 1, 5, 9), dict(scale_factor=(2.5, 0.5), mode="bilinear")),
    ((1, 3, 6, 6), dict(size=(6, 13), mode="bilinear", align_corners=True)),  # one dim unchanged
    ((2, 3, 9), dict(size=17, mode="linear")),
    ((2, 3, 9), dict(scale_factor=0.4, mode="nearest")),
]


@needs_gpu
@pytest.mark.parametrize("shape,kw", INTERP_CASES)
def test_interpolate_matches_cpu(shape, kw):
    _compare(lambda x: F.interpolate(x, **kw), [shape], rtol=1e-5, atol=1e-5)


PAD_CASES = [
    ((2, 3, 5, 7), (1, 2, 3, 0)),
    ((2, 3, 5, 7), (0, 3)),
    ((4, 6), (2, 1, 1, 3)),
    ((3, 8), (-2, 1)),  # negative pads crop
    ((1, 2, 6, 5), (-1, 3, 2, -2)),
    ((7,), (3, 4)),
]


@needs_gpu
@pytest.mark.parametrize("shape,pads", PAD_CASES)
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_matches_cpu(shape, pads, mode):
    sizes = [shape[-1]] * 2 + ([shape[-2]] * 2 if len(pads) == 4 else [])
    if mode == "reflect" and any(p >= n for p, n in zip(pads, sizes)):
        pytest.skip("reflect needs each pad below its dim")
    value = 1.5 if mode == "constant" else None
    _compare(lambda x: F.pad(x, pads, mode=mode, value=value), [shape], rtol=1e-6, atol=1e-5)


@needs_gpu
def test_pad_reflect_too_large_is_a_value_error_on_cuda():
    x = cnncore.randn(1, 1, 3, 3).to("cuda")
    with pytest.raises(ValueError, match="reflect"):
        F.pad(x, (3, 0), mode="reflect")


@needs_gpu
@pytest.mark.parametrize("shape,size,alpha,beta,k", [
    ((2, 7, 5, 6), 5, 1e-2, 0.75, 2.0),  # AlexNet's form (a larger alpha so the norm matters)
    ((1, 3, 4, 4), 2, 0.5, 0.6, 1.0),    # even window
    ((2, 10, 13), 7, 1.0, 1.2, 0.5),     # 3-D, window wider than half the channels
    ((1, 4, 2, 3, 2), 9, 0.3, 0.75, 1.0),  # 5-D, window wider than C
])
def test_local_response_norm_matches_cpu(shape, size, alpha, beta, k):
    _compare(lambda x: F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k), [shape],
             rtol=1e-4, atol=1e-5)


def _dropout_pair(shape, p, channel_wise, seed):
    a = RNG.standard_normal(shape).astype(np.float32) + 3.0  # no zeros in x
    fn = F.dropout2d if channel_wise else F.dropout
    out = []
    for dev in ("cpu", "cuda"):
        x = cnncore.tensor(a, device=dev, requires_grad=True)
        cnncore.manual_seed(seed)
        y = fn(x, p=p, training=True)
        out.append((x, y, cnncore.get_rng_state()))
    return a, out


@needs_gpu
@pytest.mark.parametrize("shape,p,channel_wise", [
    ((64, 257), 0.3, False), ((3, 5, 7, 11), 0.5, False), ((8, 33, 4, 5), 0.25, True),
    ((4, 20, 9), 0.6, True), ((1000,), 0.9, False),
])
def test_dropout_mask_on_cuda_matches_cpu_and_is_exact(shape, p, channel_wise):
    a, ((x, y, st), (xg, yg, stg)) = _dropout_pair(shape, p, channel_wise, seed=11)
    assert st == stg, "both devices reserve the same draws from the stream"
    check_close(yg.cpu(), y, rtol=0, atol=0, what="same seed -> same mask as the CPU")
    keep = (yg.cpu().numpy() / a)
    scale = np.float32(1.0 / (1.0 - p))
    assert np.all((keep == 0) | (np.abs(keep - scale) <= 1e-6 * scale)), "mask is 0 or 1/(1-p)"
    if channel_wise:  # whole channels kept or dropped
        k = keep.reshape(shape[0], shape[1], -1)
        assert np.all(k == k[:, :, :1])
        kept = (k[:, :, 0] != 0).mean()
        draws = shape[0] * shape[1]
    else:
        kept = (keep != 0).mean()
        draws = keep.size
    tol = 5 * np.sqrt(p * (1 - p) / draws)  # 5 binomial standard deviations
    assert abs(kept - (1 - p)) <= tol, (kept, 1 - p, tol)
    g = RNG.standard_normal(shape).astype(np.float32)
    y.backward(cnncore.tensor(g))
    yg.backward(cnncore.tensor(g, device="cuda"))
    check_close(xg.grad.cpu(), g * keep, rtol=1e-6, atol=0, what="backward = dy * mask")
    check_close(xg.grad.cpu(), x.grad, rtol=0, atol=0, what="backward as on the CPU")


@needs_gpu
def test_dropout_on_cuda_seeds_and_edge_cases():
    x = cnncore.ones(4096, device="cuda")
    cnncore.manual_seed(5)
    m1 = F.dropout(x, 0.5).cpu().numpy()
    m2 = F.dropout(x, 0.5).cpu().numpy()
    cnncore.manual_seed(5)
    m3 = F.dropout(x, 0.5).cpu().numpy()
    np.testing.assert_array_equal(m1, m3)
    assert not np.array_equal(m1, m2), "the stream advances between draws"
    xg = cnncore.tensor(RNG.standard_normal((3, 4, 5)).astype(np.float32), device="cuda",
                        requires_grad=True)
    y0 = F.dropout(xg, 0.0)
    np.testing.assert_array_equal(y0.detach().cpu().numpy(), xg.detach().cpu().numpy())
    for fn in (F.dropout, F.dropout2d):
        y1 = fn(xg, 1.0)
        assert y1.device == "cuda:0"
        np.testing.assert_array_equal(y1.detach().cpu().numpy(), np.zeros((3, 4, 5), np.float32))
        y1.backward(cnncore.ones(3, 4, 5, device="cuda"))
        np.testing.assert_array_equal(xg.grad.cpu().numpy(), np.zeros((3, 4, 5), np.float32))
        xg.grad = None
    with pytest.raises(ValueError, match="dropout2d: input must be \\(N, C, \\*\\)"):
        F.dropout2d(cnncore.ones(3, 4, device="cuda"), 0.5)
    y = F.dropout(xg, 0.5, training=False)
    assert y is xg


@needs_gpu
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 7), 1), ((1, 2, 10, 7), (3, 4)),
                                       ((4, 5, 6), (6, 2)), ((2, 3, 5, 9), (7, 11))])
def test_adaptive_max_pool2d_matches_cpu(shape, out):
    _compare(lambda x: F.adaptive_max_pool2d(x, out), [shape])
    a = RNG.standard_normal(shape).astype(np.float32)
    _, i = F.adaptive_max_pool2d(cnncore.tensor(a), out, return_indices=True)
    _, ig = F.adaptive_max_pool2d(cnncore.tensor(a, device="cuda"), out, return_indices=True)
    np.testing.assert_array_equal(ig.cpu().numpy(), i.numpy())


@needs_gpu
def test_adaptive_max_pool2d_nan_and_bad_indices_on_cuda():
    a = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    a[0, 0, 1, 1] = np.nan
    y, i = F.adaptive_max_pool2d(cnncore.tensor(a), 2, return_indices=True)
    yg, ig = F.adaptive_max_pool2d(cnncore.tensor(a, device="cuda"), 2, return_indices=True)
    check_close(yg.cpu(), y, rtol=0, atol=0, what="NaN wins its window")
    np.testing.assert_array_equal(ig.cpu().numpy(), i.numpy())
    bad = cnncore.tensor(np.full((1, 1, 2, 2), 99, np.int64), device="cuda")
    with pytest.raises(ValueError, match="indices must lie in \\[0, 16\\)"):
        cnncore._core.adaptive_max_pool2d_backward(cnncore.ones(1, 1, 2, 2, device="cuda")._c,
                                                   bad._c, [1, 1, 4, 4])


class _AlexLike(nn.Module):
    """AlexNet's pattern at toy size: conv-relu-LRN-maxpool twice, adaptive max pool, dropout,
    linear."""

    def __init__(self, p):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
            nn.AdaptiveMaxPool2d((3, 3)))
        self.classifier = nn.Sequential(nn.Dropout(p), nn.Linear(12 * 9, 32),
                                        nn.ReLU(inplace=True), nn.Dropout(p), nn.Linear(32, 6))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _train_both(make, x, y, steps, lr=0.05, seed_each_step=None):
    cnncore.manual_seed(7)
    net, gnet = make(), make()
    gnet.load_state_dict(net.state_dict())
    gnet.to("cuda")
    opts = [cnncore.optim.SGD(m.parameters(), lr=lr, momentum=0.9) for m in (net, gnet)]
    for step in range(steps):
        losses = []
        for model, opt, dev in ((net, opts[0], "cpu"), (gnet, opts[1], "cuda")):
            if seed_each_step is not None:  # the same dropout masks on both devices
                cnncore.manual_seed(seed_each_step + step)
            opt.zero_grad()
            loss = F.cross_entropy(model(cnncore.tensor(x, device=dev)),
                                   cnncore.tensor(y, device=dev))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-3, abs=1e-4), f"step {step}"
    sd, gsd = net.state_dict(), gnet.state_dict()
    for k in sd:
        check_close(gsd[k].cpu(), sd[k], rtol=2e-3, atol=2e-4, what=k)


@needs_gpu
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_alexnet_like_with_lrn_and_dropout_trains_on_cuda_like_on_cpu(p):
    """p = 0.5 too: a seed gives the same dropout masks on both devices."""
    x = RNG.standard_normal((4, 3, 29, 27)).astype(np.float32)
    y = RNG.integers(0, 6, 4)
    _train_both(lambda: _AlexLike(p), x, y, steps=3, seed_each_step=100)


@needs_gpu
@pytest.mark.parametrize("bilinear", [False, True], ids=["conv_transpose", "bilinear"])
def test_small_unet_trains_on_cuda_like_on_cpu(bilinear):
    """The zoo's U-Net at toy size (conv_transpose2d or bilinear interpolate, pad for the odd
    sizes, cat of the skips, batch norm, max pool) for a few SGD steps: per-pixel
    cross_entropy."""
    x = RNG.standard_normal((2, 1, 13, 10)).astype(np.float32)  # odd sizes: the pad path
    y = RNG.integers(0, 3, (2, 13, 10))
    _train_both(lambda: cnncore.models.unet(1, 3, base_channels=4, depth=2, bilinear=bilinear),
                x, y, steps=3, lr=0.02)
# ---- TF32 switches (cnncore.backends) and the GEMM's tiles ---------------------------------------
# Everywhere: the flag API (defaults, round trips, validation). On a GPU: the 128 x 128 and 64 x 64
# tiles, float4 and scalar loads, TF32 against the fp32 CPU path.
@pytest.fixture
def tf32_flags():
    """Restores both switches (they are process-wide) after a test."""
    before = (cnncore.get_float32_matmul_precision(), cnncore.backends.cudnn.allow_tf32)
    yield cnncore.backends
    cnncore.set_float32_matmul_precision(before[0])
    cnncore.backends.cudnn.allow_tf32 = before[1]


def test_tf32_switches_default_off():
    assert cnncore.backends.cuda.matmul.allow_tf32 is False
    assert cnncore.backends.cudnn.allow_tf32 is False
    assert cnncore.backends.cuda.conv.allow_tf32 is False
    assert cnncore.get_float32_matmul_precision() == "highest"
    assert cnncore.backends.cuda.is_built() == cuda.is_compiled()
    assert cnncore.backends.cudnn.is_available() is False  # no cuDNN, ever


def test_matmul_precision_and_allow_tf32_are_one_switch(tf32_flags):
    b = tf32_flags
    b.cuda.matmul.allow_tf32 = True
    assert b.cuda.matmul.allow_tf32 is True and cnncore.get_float32_matmul_precision() == "high"
    assert b.cudnn.allow_tf32 is False  # the conv switch is separate, as in torch
    cnncore.set_float32_matmul_precision("medium")
    assert b.cuda.matmul.allow_tf32 is True and cnncore.get_float32_matmul_precision() == "medium"
    cnncore.set_float32_matmul_precision("highest")
    assert b.cuda.matmul.allow_tf32 is False
    cnncore.set_float32_matmul_precision("high")
    assert b.cuda.matmul.allow_tf32 is True
    b.cuda.matmul.allow_tf32 = False
    assert cnncore.get_float32_matmul_precision() == "highest"


def test_conv_allow_tf32_round_trips_under_both_names(tf32_flags):
    b = tf32_flags
    b.cudnn.allow_tf32 = True
    assert b.cudnn.allow_tf32 is True and b.cuda.conv.allow_tf32 is True
    assert b.cuda.matmul.allow_tf32 is False
    b.cuda.conv.allow_tf32 = False
    assert b.cudnn.allow_tf32 is False
    assert "allow_tf32=False" in repr(b.cudnn)


@pytest.mark.parametrize("bad", [1, 0, None, "True", 1.0, np.bool_(True)])
def test_allow_tf32_takes_only_a_bool(tf32_flags, bad):
    # torch refuses non-bools too (a RuntimeError "expects a bool"); here it is a TypeError.
    for obj, name in [(tf32_flags.cuda.matmul, "backends.cuda.matmul.allow_tf32"),
                      (tf32_flags.cudnn, "backends.cudnn.allow_tf32"),
                      (tf32_flags.cuda.conv, "backends.cuda.conv.allow_tf32")]:
        with pytest.raises(TypeError, match=f"{name} must be a bool, but got"):
            obj.allow_tf32 = bad
        assert obj.allow_tf32 is False


def test_float32_matmul_precision_is_validated(tf32_flags):
    for bad in ["HIGH", "low", "", "tf32"]:
        with pytest.raises(ValueError, match="precision must be one of 'highest', 'high', "
                                             "'medium', but got"):
            cnncore.set_float32_matmul_precision(bad)
    for bad in [None, 1, True]:
        with pytest.raises(TypeError, match="precision must be a str"):
            cnncore.set_float32_matmul_precision(bad)
    assert cnncore.get_float32_matmul_precision() == "highest"


def test_backend_switch_objects_refuse_unknown_attributes():
    with pytest.raises(AttributeError):
        cnncore.backends.cuda.matmul.allow_fp16 = True
    with pytest.raises(AttributeError):
        cnncore.backends.cudnn.benchmark = True
    with pytest.raises(AttributeError):
        cnncore.backends.cuda.matmul = None


def test_precision_maps_to_allow_tf32_like_torch(tf32_flags):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    before = torch.get_float32_matmul_precision()
    try:
        for p in ["high", "medium", "highest"]:
            torch.set_float32_matmul_precision(p)
            cnncore.set_float32_matmul_precision(p)
            assert cnncore.backends.cuda.matmul.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
            assert cnncore.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    finally:
        torch.set_float32_matmul_precision(before)


def test_tf32_supported_without_a_device_is_false():
    if not GPU:
        assert cnncore.backends.cuda.tf32_supported(0) is False
    assert cnncore.backends.cuda.tf32_supported(99) is False
    with pytest.raises(TypeError, match="device must be an int"):
        cnncore.backends.cuda.tf32_supported("0")


def _offset_pair(shape, offset):
    """A CUDA tensor that is a contiguous view starting `offset` floats into its storage (so its
    data is not 16-byte aligned for offset % 4 != 0), and the same values on the CPU."""
    n = int(np.prod(shape))
    a = RNG.standard_normal(n + offset).astype(np.float32)
    core = cnncore.tensor(a, device="cuda")._c.narrow(0, offset, n).view(list(shape))
    assert core.is_contiguous() and core.data_ptr() % 16 == (4 * offset) % 16
    return cnncore.tensor(a[offset:].reshape(shape)), cnncore.Tensor._wrap(core)


@needs_gpu
@pytest.mark.parametrize("rows,inp,out", [
    (1600, 132, 1700),   # 128 x 128 tiles (enough blocks), float4 loads (132 % 4 == 0)
    (1601, 131, 1699),   # 128 x 128 tiles, ragged everywhere, scalar loads
    (70, 9, 129),        # 64 x 64 tiles, K tail inside one tile
    (3, 1000, 2),        # long K, tiny M and N
    (5, 4096, 7),        # split-K in the forward (one 64 x 64 block, K = 4096)
    (4096, 5, 7),        # split-K in the weight gradient (K = rows)
])
def test_linear_tiles_match_cpu_fp32(rows, inp, out):
    _compare(lambda x, w, b: F.linear(x, w, b), [(rows, inp), (out, inp), (out,)], rtol=1e-4,
             atol=2e-4)


@needs_gpu
@pytest.mark.parametrize("offset", [1, 2, 4])
def test_linear_unaligned_operands_match_cpu(offset):
    x_cpu, x_gpu = _offset_pair((37, 64), offset)
    w_cpu, w_gpu = _offset_pair((48, 64), offset)
    check_close(F.linear(x_gpu, w_gpu).cpu(), F.linear(x_cpu, w_cpu), rtol=1e-4, atol=1e-4,
                what=f"offset {offset}")


BIG_CONV_CASES = [
    # 128 x 128 tiles in the forward and backward-input, float4 weight and grad_output loads
    ((16, 67, 40, 40), (130, 67, 3, 3), 1, 1, 1, 1),
    # the same with stride 2 (OH OW % 4 != 0: scalar grad_output loads) and groups
    ((4, 66, 33, 31), (132, 33, 3, 3), 2, 1, 1, 2),
    # split-K: the forward (K = 4608 over 32 pixels), with groups (blockIdx.z = split x group + g),
    # and the weight gradient (K = batch x pixels = 32768)
    ((2, 512, 4, 4), (64, 512, 3, 3), 1, 1, 1, 1),
    ((2, 1024, 3, 3), (32, 512, 3, 3), 1, 1, 1, 2),
    ((8, 4, 64, 64), (8, 4, 3, 3), 1, 1, 1, 1),
]


@needs_gpu
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", BIG_CONV_CASES)
def test_conv2d_big_tiles_match_cpu_fp32(xs, ws, stride, padding, dilation, groups):
    _compare(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
             [xs, ws, (ws[0],)], rtol=1e-3, atol=1e-3)


def _tf32_close(fn, shapes):
    """fn on the GPU with TF32 against the fp32 CPU path: the output and every input gradient
    within 1e-2 of its scale (TF32 keeps 10 mantissa bits: ~5e-4 relative per input); on a TF32
    GPU the forward must also differ from the fp32 GPU result (the tensor-core path ran)."""
    cpu, gpu = zip(*(_pair(s) for s in shapes))
    y_cpu = fn(*cpu)
    y_gpu = fn(*gpu)
    g = RNG.standard_normal(y_cpu.shape).astype(np.float32)
    y_cpu.backward(cnncore.tensor(g))
    y_gpu.backward(cnncore.tensor(g, device="cuda"))
    pairs = [("forward", y_gpu, y_cpu)] + [(f"grad of input {i}", b.grad, a.grad)
                                           for i, (a, b) in enumerate(zip(cpu, gpu))]
    for what, got, ref in pairs:
        got, ref = got.cpu().numpy(), ref.detach().numpy()
        scale = float(np.abs(ref).max())
        err = float(np.abs(got - ref).max())
        assert err <= 1e-2 * scale, f"{what}: max |diff| {err:.3g} vs scale {scale:.3g}"
    return [t.detach() for t in gpu], y_gpu.detach()


@needs_gpu
@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES + BIG_CONV_CASES)
def test_conv2d_tf32_matches_cpu_within_tf32_tolerance(tf32_flags, xs, ws, stride, padding,
                                                       dilation, groups):
    tf32_flags.cudnn.allow_tf32 = True
    fn = lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups)  # noqa: E731
    (x, w, b), y_tf32 = _tf32_close(fn, [xs, ws, (ws[0],)])
    tf32_flags.cudnn.allow_tf32 = False
    with cnncore.no_grad():
        y_fp32 = fn(x, w, b).cpu().numpy()
    same = np.array_equal(y_fp32, y_tf32.cpu().numpy())
    if cnncore.backends.cuda.tf32_supported(0) and ws[1] * ws[2] * ws[3] >= 27:
        assert not same, "TF32 allowed on a TF32 GPU, but the fp32 kernel ran"
    elif not cnncore.backends.cuda.tf32_supported(0):
        assert same, "no TF32 on this GPU: the switch must leave the fp32 kernel in place"


@needs_gpu
@pytest.mark.parametrize("rows,inp,out", [(1600, 132, 1700), (70, 9, 129), (5, 300, 3),
                                          (5, 4096, 7), (4096, 5, 7)])
def test_linear_tf32_matches_cpu_within_tf32_tolerance(tf32_flags, rows, inp, out):
    cnncore.set_float32_matmul_precision("high")
    assert cnncore.backends.cudnn.allow_tf32 is False
    fn = lambda x, w, b: F.linear(x, w, b)  # noqa: E731
    (x, w, b), y_tf32 = _tf32_close(fn, [(rows, inp), (out, inp), (out,)])
    cnncore.set_float32_matmul_precision("highest")
    with cnncore.no_grad():
        y_fp32 = fn(x, w, b).cpu().numpy()
    if cnncore.backends.cuda.tf32_supported(0):
        assert not np.array_equal(y_fp32, y_tf32.cpu().numpy())


MATMUL_CASES = [((5,), (5,)), ((3, 5), (5,)), ((5,), (5, 4)), ((3, 5), (5, 4)),
                ((2, 3, 5), (5, 4)), ((3, 5), (2, 5, 4)), ((2, 1, 3, 5), (4, 5, 2)),
                ((2, 3, 0), (0, 4))]


@needs_dev
@pytest.mark.parametrize("sa,sb", MATMUL_CASES, ids=str)
def test_matmul_matches_cpu(sa, sb):
    """matmul on the device runs through the linear kernel, batch item by batch item."""
    _cmp(lambda a, b: cnncore.matmul(a, b), [_randn(*sa), _randn(*sb)])


@needs_dev
@pytest.mark.parametrize("key", [0, (slice(1, 3), 2), (Ellipsis, slice(None, None, 2)),
                                 (None, -1, slice(1, None)), (slice(None), None, 3)], ids=str)
def test_basic_indexing_on_device_matches_cpu(key):
    """Basic indexing of a GPU tensor is a view on the device; its gradient lands on the device."""
    _cmp(lambda t: t[key] * 1.5, [_randn(4, 5, 6)])


@needs_gpu
def test_basic_indexing_on_cuda_is_a_view_and_refuses_advanced_keys():
    x = cnncore.zeros(3, 4, device="cuda")
    x[1]._c.fill_(2.0)
    assert x.cpu().numpy()[1].tolist() == [2.0] * 4 and x.cpu().numpy()[0].sum() == 0
    with pytest.raises(TypeError, match="CUDA device takes integers"):
        x[[0, 2]]
