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
def test_cpu_only_op_on_cuda_names_the_op():
    g = cnncore.randn(1, 1, 4, 4).to("cuda")
    with pytest.raises(RuntimeError, match="local_response_norm.*cuda:0.*no CUDA kernel"):
        F.local_response_norm(g, 2)


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
