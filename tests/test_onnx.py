"""cnncore.onnx: load() against the onnx package's own node test cases and against models built
and exported here with torch.onnx.export; export() round trips through onnx.checker and
onnxruntime. Skipped without the onnx extra (or torch, for the exporter tests)."""

import collections
import warnings

import numpy as np
import pytest

import cnncore

onnx = pytest.importorskip("onnx", reason="cnncore.onnx needs the onnx package (extra 'onnx')")
from cnncore import onnx as connx
from helpers import LOAD_ERRORS, fuzz_file

# The operators of the classic CNNs the issue lists; each must pass some of onnx's node cases.
LISTED = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "LRN",
          "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Gemm",
          "MatMul", "Add", "Mul", "Concat", "Flatten", "Reshape", "Dropout", "Pad", "Resize",
          "Upsample", "Constant", "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Cast")


def _array(v):
    return onnx.numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v


@pytest.fixture(scope="module")
def node_results():
    """Runs every single-node case of a supported operator: {op: {'ok': [...], 'unsupported':
    [(name, message)], 'wrong': [(name, message)]}}."""
    node_cases = pytest.importorskip("onnx.backend.test.case.node")
    with warnings.catch_warnings():  # the generators divide by zero on purpose
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    out = collections.defaultdict(lambda: {"ok": [], "unsupported": [], "wrong": []})
    for case in cases:
        nodes = case.model.graph.node
        if len(nodes) != 1 or nodes[0].op_type not in connx.SUPPORTED_OPS:
            continue
        if case.name.startswith("test_training_dropout"):
            continue  # random masks: no reference to compare with
        if any(not isinstance(v, (np.ndarray, onnx.TensorProto))
               for ins, _ in case.data_sets for v in ins):
            continue  # sequences and optionals: not tensors
        res = out[nodes[0].op_type]
        try:
            model = connx.load(case.model)
            for ins, expected in case.data_sets:
                got = model(*[_array(v) for v in ins])
                got = got if isinstance(got, tuple) else (got,)
                assert len(got) == len(expected)
                for g, e in zip(got, expected):
                    e = _array(e)
                    g = g.detach().numpy()
                    assert g.shape == e.shape, f"shape {g.shape}, expected {e.shape}"
                    np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64),
                                               rtol=max(case.rtol, 1e-4),
                                               atol=max(case.atol, 1e-5))
            res["ok"].append(case.name)
        except connx.OnnxUnsupportedError as e:
            res["unsupported"].append((case.name, str(e)))
        except Exception as e:  # noqa: BLE001 -- any other outcome is a wrong answer
            res["wrong"].append((case.name, f"{type(e).__name__}: {e}"))
    return out


@pytest.mark.parametrize("op", LISTED)
def test_onnx_node_cases(node_results, op):
    res = node_results[op]
    assert not res["wrong"], res["wrong"]
    assert res["ok"], f"no {op} case passes; unsupported: {res['unsupported']}"
    # Refusals must name the node and the operator.
    for name, msg in res["unsupported"]:
        assert f"({op}, #" in msg, msg


def test_onnx_node_case_coverage(node_results):
    ok = sum(len(r["ok"]) for r in node_results.values())
    refused = sum(len(r["unsupported"]) for r in node_results.values())
    assert ok >= 250, (ok, refused)  # 258 at the time of writing; 81 refused (3-D, cubic, fp8)


# ---- unsupported operators -----------------------------------------------------------------------
def _tiny_model(nodes, inputs, outputs, opset=17, initializers=()):
    graph = onnx.helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])


def _vi(name, shape):
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def test_unsupported_operators_are_all_named_with_their_nodes():
    nodes = [onnx.helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
             onnx.helper.make_node("Einsum", ["a", "a"], ["b"], equation="ij,ij->ij",
                                   name="my_einsum"),
             onnx.helper.make_node("Erf", ["b"], ["y"])]
    model = _tiny_model(nodes, [_vi("x", [2, 2])], [_vi("y", [2, 2])])
    with pytest.raises(NotImplementedError) as e:
        connx.load(model)
    msg = str(e.value)
    assert "Einsum" in msg and "Erf" in msg and "'my_einsum'" in msg and "#2" in msg
    assert "Relu" not in msg.split("Supported")[0]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        connx.load(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="expected a path"):
        connx.load(3)
    model = connx.load(_tiny_model([onnx.helper.make_node("Relu", ["x"], ["y"])],
                                   [_vi("x", [2])], [_vi("y", [2])]))
    with pytest.raises(TypeError, match="takes 1 input"):
        model(cnncore.zeros(2), cnncore.zeros(2))


def test_damaged_files_are_errors_at_load(tmp_path):
    path = tmp_path / "m.onnx"
    model = cnncore.models.lenet5().eval()
    connx.export(model, cnncore.randn(1, 1, 32, 32), path)
    raw = path.read_bytes()
    with pytest.raises(ValueError, match="is not a valid ONNX model"):
        connx.load(raw[: len(raw) // 2])
    broken = onnx.load_from_string(raw)
    broken.graph.node[0].input[1] = "nowhere"
    with pytest.raises(ValueError, match="input 'nowhere' is not a graph input"):
        connx.load(broken)
    del broken.graph.node[-1]
    broken.graph.node[0].input[1] = onnx.load_from_string(raw).graph.node[0].input[1]
    with pytest.raises(ValueError, match="produced by no node"):
        connx.load(broken)
    x = cnncore.randn(2, 1, 32, 32)

    def load_and_run():  # a damaged file that loads must also run, or fail with an error
        with cnncore.no_grad():
            connx.load(path)(x)

    # NotImplementedError: a flipped op_type or attribute names an unsupported operator.
    assert fuzz_file(path, raw, load_and_run, count=60, seed=7,
                     errors=LOAD_ERRORS + (NotImplementedError,)) == 62


def test_constant_subgraphs_fold_at_load():
    # Shape of a constant -> ConstantOfShape -> Add: all static, nothing left to run per call.
    c = onnx.numpy_helper.from_array(np.ones((2, 3), np.float32), "c")
    nodes = [onnx.helper.make_node("Constant", [], ["k"], value=c),
             onnx.helper.make_node("Shape", ["k"], ["s"]),
             onnx.helper.make_node("ConstantOfShape", ["s"], ["z"],
                                   value=onnx.numpy_helper.from_array(np.array([2.0], np.float32))),
             onnx.helper.make_node("Add", ["z", "x"], ["y"])]
    model = connx.load(_tiny_model(nodes, [_vi("x", [2, 3])], [_vi("y", [2, 3])]))
    assert [n.op for n in model._nodes] == ["Add"]
    np.testing.assert_allclose(model(cnncore.ones(2, 3)).numpy(), np.full((2, 3), 3.0))


# ---- models exported by torch --------------------------------------------------------------------
def _export(model, x, path, **kw):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], **kw)
    return str(path)


def _torch_nets():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class Mixed(tnn.Module):
        """Every listed operator a torch CNN exports to, including the Shape/Gather/Concat chain
        of x.view(x.size(0), -1)."""

        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(3, 6, 3, stride=2, padding=1, dilation=1, groups=3)
            self.bn = tnn.BatchNorm2d(6)
            self.up = tnn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
            self.fc = tnn.Linear(8 * 4 * 4, 5)

        def forward(self, x):
            y = torch.relu(self.bn(self.conv(x)))
            y = torch.nn.functional.leaky_relu(self.up(y), 0.2)
            a = torch.nn.functional.avg_pool2d(y, 2)
            m = torch.nn.functional.max_pool2d(y, 2)
            y = torch.cat([torch.sigmoid(a) * torch.tanh(m), a + m], 1)
            y = torch.nn.functional.pad(y, (1, 1, 1, 1), mode="reflect")
            y = torch.nn.functional.interpolate(y, scale_factor=2, mode="nearest")
            y = torch.nn.functional.interpolate(y, size=(4, 4), mode="bilinear",
                                                align_corners=False)
            y = y.view(y.size(0), -1)
            return torch.softmax(self.fc(y), dim=1)

    lenet = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5),
                           tnn.ReLU(), tnn.AdaptiveAvgPool2d(1), tnn.Flatten(),
                           tnn.Dropout(0.5), tnn.Linear(16, 10))
    return {"mixed": (Mixed(), (2, 3, 8, 8)), "lenet": (lenet, (3, 1, 16, 16))}


@pytest.mark.parametrize("name", ["mixed", "lenet"])
def test_torch_exported_models_match_torch_forward_and_backward(tmp_path, name):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net, shape = _torch_nets()[name]
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(*shape)
    path = _export(net, x, tmp_path / "m.onnx", do_constant_folding=False,
                   dynamic_axes={"x": {0: "n"}})
    model = connx.load(path)
    if name == "mixed":
        ops = {n.op for n in model._nodes}
        # (torch writes LocalResponseNorm as a subgraph with If: the node cases cover LRN)
        assert {"BatchNormalization", "ConvTranspose", "Resize", "Pad", "Shape"} <= ops, ops
    # Another batch size than at export: the shape chain is evaluated for it.
    x2 = torch.randn(shape[0] + 1, *shape[1:], requires_grad=True)
    ours_x = cnncore.tensor(x2.detach().numpy(), requires_grad=True)
    ours = model(ours_x)
    ref = net(x2)
    np.testing.assert_allclose(ours.detach().numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = torch.randn(ref.shape)
    ref.backward(g)
    ours.backward(cnncore.tensor(g.numpy()))
    np.testing.assert_allclose(ours_x.grad.numpy(), x2.grad.numpy(), rtol=1e-3, atol=1e-5)
    # Parameters keep torch's names and receive torch's gradients.
    tparams = dict(net.named_parameters())
    ours_params = dict(model.named_parameters())
    assert set(ours_params) == set(tparams)
    for k, p in ours_params.items():
        np.testing.assert_allclose(p.grad.numpy(), tparams[k].grad.numpy(), rtol=1e-3,
                                   atol=1e-5, err_msg=k)


@pytest.mark.slow
def test_dynamo_exporter_model_loads(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    torch.manual_seed(1)
    net, shape = _torch_nets()["lenet"]
    net.eval()
    x = torch.randn(*shape)
    path = str(tmp_path / "d.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), path, dynamo=True)
    got = connx.load(path)(cnncore.tensor(x.numpy()))
    np.testing.assert_allclose(got.detach().numpy(), net(x).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def test_loaded_model_fine_tunes(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    net, shape = _torch_nets()["lenet"]
    path = _export(net.eval(), torch.randn(*shape), tmp_path / "l.onnx")
    model = connx.load(path)
    model.train()
    opt = cnncore.optim.SGD(model.parameters(), lr=0.1)
    x = cnncore.randn(8, 1, 16, 16)
    y = cnncore.tensor(np.arange(8) % 10)
    loss_fn = cnncore.nn.CrossEntropyLoss()
    model.eval()  # no dropout: compare losses on the same function
    before = float(loss_fn(model(x), y).item())
    for _ in range(5):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    assert float(loss_fn(model(x), y).item()) < before


# ---- export --------------------------------------------------------------------------------------
def _ort():
    return pytest.importorskip("onnxruntime", reason="checking exports needs onnxruntime")


class _Functional(cnncore.nn.Module):
    """Built-in layers wired with the functional ops forward code uses."""

    def __init__(self):
        nn = cnncore.nn
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 0, 1, 0))
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding="same", bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.LeakyReLU(0.1)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.lrn = nn.LocalResponseNorm(3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.avg = nn.AdaptiveAvgPool2d(2)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4 * 2 * 2 + 4, 6)
        self.bn1 = nn.BatchNorm1d(6)

    def forward(self, x):
        F = cnncore.nn.functional
        y = self.act(self.bn(self.conv(self.pad(x))))
        y = self.lrn(self.up(y))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = F.pad(y, (2, 2, 2, 2), mode="reflect")
        y = self.pool(F.relu6(y * 0.5 + 1.0))
        z = F.adaptive_avg_pool2d(y, 1).flatten(1)
        y = cnncore.cat([self.avg(torch_like_sigmoid(y)).flatten(1), z], 1)
        return F.softmax(self.bn1(self.fc(self.drop(y))), dim=1)


def torch_like_sigmoid(t):
    return cnncore.nn.functional.sigmoid(t) - cnncore.nn.functional.tanh(t) / 4


def _randomise_bn(model):
    rng = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, (cnncore.nn.BatchNorm1d, cnncore.nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(cnncore.tensor(rng.uniform(-0.5, 0.5, c).astype(np.float32)))
            m.running_var.copy_(cnncore.tensor(rng.uniform(0.5, 2.0, c).astype(np.float32)))
            with cnncore.no_grad():
                m.weight.copy_(cnncore.tensor(rng.uniform(0.5, 1.5, c).astype(np.float32)))
                m.bias.copy_(cnncore.tensor(rng.uniform(-0.2, 0.2, c).astype(np.float32)))


def _exportable(name):
    if name == "functional":
        return _Functional(), (2, 3, 15, 15)
    kwargs = {"num_classes": 10} if name != "lenet5" else {}
    model = cnncore.models.get_model(name, **kwargs)
    return model, ((2, 1, 32, 32) if name == "lenet5" else (2, 3, 32, 32))


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "mobilenet_v2", "functional"])
def test_export_runs_in_onnxruntime_like_cnncore(tmp_path, name):
    rt = _ort()
    cnncore.manual_seed(3)
    model, shape = _exportable(name)
    _randomise_bn(model)
    model.eval()
    x = cnncore.randn(*shape)
    path = tmp_path / f"{name}.onnx"
    connx.export(model, x, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    sess = rt.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # Another batch size than the example's: the batch dimension is free.
    x3 = cnncore.randn(3, *shape[1:])
    with cnncore.no_grad():
        ref = model(x3).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x3.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # ... and back into cnncore.
    with cnncore.no_grad():
        back = connx.load(path)(x3).numpy()
    np.testing.assert_allclose(back, ref, rtol=1e-4, atol=1e-5)


def test_export_keeps_parameter_names_and_checks_arguments(tmp_path):
    model = cnncore.models.lenet5()
    path = tmp_path / "l.onnx"
    proto = connx.export(model, cnncore.randn(1, 1, 32, 32), path, opset_version=18)
    assert {i.name for i in proto.graph.initializer} >= set(model.state_dict())
    assert set(connx.load(path).state_dict()) == set(model.state_dict())
    with pytest.raises(ValueError, match="opset_version must be an int in"):
        connx.export(model, cnncore.randn(1, 1, 32, 32), path, opset_version=11)


def test_export_refuses_what_onnx_cannot_express(tmp_path):
    nn = cnncore.nn
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(3))
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d .* maps 6x6 to 3x3|whole-window"):
        connx.export(model, cnncore.randn(1, 1, 7, 7), tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
