"""Model files (.cnn): model.save / cnncore.load_model in Python, the C++ runtime
(cnncore::load_model, through _core) reproducing Python's outputs and training steps, and the
loader's behaviour on damaged files."""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncore as cc
from cnncore import _core, graph, models, nn

pytest.importorskip("safetensors")


def _small_alexnet():
    m = models.AlexNet(num_classes=10)
    m.classifier = nn.Sequential(nn.Dropout(), nn.Linear(256 * 6 * 6, 10))  # the head is 55M
    return m


def _small_vgg():
    m = models.VGG(models.vgg.make_vgg_layers([16, "M", 32, "M", 32, "M", 64, "M", 64, "M"],
                                              batch_norm=True), num_classes=10)
    m.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 10))
    m.features[0] = nn.Conv2d(3, 16, 3, padding=1)
    return m


ZOO = {
    "lenet5": (models.lenet5, (2, 1, 32, 32)),
    "alexnet": (_small_alexnet, (1, 3, 63, 63)),
    "vgg_bn": (_small_vgg, (2, 3, 32, 32)),
    "resnet18": (lambda: models.resnet18(num_classes=7), (1, 3, 32, 32)),
    "resnet20": (models.resnet20, (2, 3, 16, 16)),
    "mobilenet_v1": (lambda: models.mobilenet_v1(num_classes=5, width_mult=0.25), (1, 3, 32, 32)),
    "mobilenet_v2": (lambda: models.mobilenet_v2(num_classes=5, width_mult=0.25), (1, 3, 32, 32)),
    "unet": (lambda: models.unet(base_channels=4, depth=2), (1, 1, 13, 11)),  # odd: pads
    "unet_bilinear": (lambda: models.unet(base_channels=4, depth=2, bilinear=True), (1, 1, 12, 12)),
    "googlenet": (lambda: models.googlenet(num_classes=4), (1, 3, 32, 32)),
}


def _randomise_bn(model):
    """Non-trivial running statistics, so eval-mode BatchNorm is really exercised."""
    rng = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.numpy()[...] = rng.normal(0, 0.1, m.num_features)
            m.running_var.numpy()[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.weight.detach().numpy()[...] = rng.uniform(0.5, 1.5, m.num_features)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_cpp_runtime_reproduces_python_outputs(name, tmp_path):
    build, shape = ZOO[name]
    cc.manual_seed(0)
    model = build()
    _randomise_bn(model)
    model.eval()
    x = cc.randn(*shape)
    with cc.no_grad():
        expected = model(x).numpy()
    path = tmp_path / f"{name}.cnn"
    model.save(path, x)
    cpp = _core.load_model(str(path))
    (out,) = cpp.forward([x._c])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    # and Python reads the same file back into a module with the same outputs and keys
    loaded = cc.load_model(path)
    assert list(loaded.state_dict()) == list(model.state_dict())
    with cc.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_cpp_runtime_takes_other_batch_sizes(tmp_path):
    model = models.resnet20().eval()
    model.save(tmp_path / "r.cnn", cc.randn(1, 3, 16, 16))
    cpp = _core.load_model(str(tmp_path / "r.cnn"))
    x = cc.randn(3, 3, 16, 16)
    with cc.no_grad():
        np.testing.assert_allclose(cpp.forward([x._c])[0].numpy(), model(x).numpy(),
                                   rtol=1e-5, atol=1e-5)


class _TrainNet(nn.Module):
    """Every trainable op kind the C++ backward implements, in one small net."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4 + 8, 6)
        self.act = nn.ReLU6()

    def forward(self, x):
        y = self.bn(self.conv(x)).relu()
        z = self.act(self.dw(y))
        u = self.pool(self.up(z) * 0.5)
        g = cc.functional.adaptive_avg_pool2d(y, 1).flatten(1)
        h = cc.cat([u.flatten(1), g], 1)
        return cc.functional.log_softmax(self.fc(h) - 1.0, dim=1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cpp_backward_and_optimizer_step_match_python(optimizer, tmp_path):
    cc.manual_seed(1)
    model = _TrainNet()
    x = cc.randn(4, 3, 8, 8)
    g = cc.randn(4, 6)
    model.save(tmp_path / "t.cnn", x)
    cpp = _core.load_model(str(tmp_path / "t.cnn"))
    cpp.train()
    model.train()

    out = model(x)
    out.backward(g)
    (cout,) = cpp.forward([x._c])
    np.testing.assert_allclose(cout.numpy(), out.detach().numpy(), rtol=1e-5, atol=1e-5)
    cpp.backward([g._c])
    names = cpp.parameter_names()
    assert names == [k for k, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    for k in names:
        np.testing.assert_allclose(cpp.grad(k).numpy(), params[k].grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=k)
    # BatchNorm's running statistics moved the same way
    sd = model.state_dict()
    for k, v in cpp.state_dict():
        np.testing.assert_allclose(v.numpy(), sd[k].numpy(), rtol=1e-5, atol=1e-6, err_msg=k)

    if optimizer == "sgd":
        opt = cc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        copt = _core.ModelSGD(cpp, lr=0.1, momentum=0.9, weight_decay=1e-3)
    else:
        opt = cc.optim.Adam(model.parameters(), lr=0.01)
        copt = _core.ModelAdam(cpp, lr=0.01)
    opt.step()
    copt.step()
    for k in names:
        np.testing.assert_allclose(cpp.parameter(k).numpy(), params[k].detach().numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=k)


def test_cpp_backward_needs_a_training_forward(tmp_path):
    models.lenet5().save(tmp_path / "l.cnn", cc.zeros(1, 1, 32, 32))
    cpp = _core.load_model(str(tmp_path / "l.cnn"))
    cpp.forward([cc.zeros(1, 1, 32, 32)._c])  # eval mode: nothing recorded
    with pytest.raises(ValueError, match="call train"):
        cpp.backward([cc.zeros(1, 10)._c])
    cpp.train()
    cpp.forward([cc.zeros(1, 1, 32, 32)._c])
    with pytest.raises(ValueError, match=r"must have the output's shape \(1, 10\)"):
        cpp.backward([cc.zeros(2, 10)._c])


def test_save_without_example_uses_the_last_input_shape(tmp_path):
    model = models.lenet5().eval()
    model(cc.randn(5, 1, 32, 32))
    g = model.save(tmp_path / "m.cnn")
    assert g.shapes["x"] == (1, 1, 32, 32)
    with pytest.raises(ValueError, match="call the model once first"):
        models.lenet5().save(tmp_path / "n.cnn")


def test_file_is_safetensors_with_graph_and_checksum(tmp_path):
    from safetensors.numpy import load_file
    model = models.lenet5()
    model.save(tmp_path / "m.cnn", cc.zeros(1, 1, 32, 32))
    raw = (tmp_path / "m.cnn").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    meta = json.loads(raw[8:8 + n])["__metadata__"]
    assert json.loads(meta["cnncore.graph"])["format"] == "cnncore.graph"
    assert len(meta["cnncore.crc32"]) == 8
    arrays = load_file(str(tmp_path / "m.cnn"))
    assert set(arrays) == set(model.state_dict())


def test_cpp_save_is_read_by_python(tmp_path):
    model = models.resnet20().eval()
    x = cc.randn(1, 3, 16, 16)
    model.save(tmp_path / "a.cnn", x)
    _core.load_model(str(tmp_path / "a.cnn")).save(str(tmp_path / "b.cnn"))
    with cc.no_grad():
        np.testing.assert_allclose(cc.load_model(tmp_path / "b.cnn")(x).numpy(),
                                   model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_custom_forward_can_still_save_weights(tmp_path):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x.exp())

    m = Custom()
    with pytest.raises(graph.TraceError, match=r"ExpBackward.*cnncore\.save"):
        m.save(tmp_path / "c.cnn", cc.randn(2, 4))
    assert not os.path.exists(tmp_path / "c.cnn")
    cc.save(m, tmp_path / "c.safetensors")
    with pytest.raises(ValueError, match="holds weights only"):
        cc.load_model(tmp_path / "c.safetensors")
    with pytest.raises(ValueError, match="no graph in the file"):
        _core.load_model(str(tmp_path / "c.safetensors"))


def test_checksum_catches_flipped_weight_bytes(tmp_path):
    models.lenet5().save(tmp_path / "m.cnn", cc.zeros(1, 1, 32, 32))
    raw = bytearray((tmp_path / "m.cnn").read_bytes())
    raw[-3] ^= 0x40
    (tmp_path / "bad.cnn").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum mismatch"):
        _core.load_model(str(tmp_path / "bad.cnn"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        cc.load_model(tmp_path / "bad.cnn")


def test_damaged_files_name_the_problem(tmp_path):
    models.lenet5().save(tmp_path / "m.cnn", cc.zeros(1, 1, 32, 32))
    raw = (tmp_path / "m.cnn").read_bytes()
    with pytest.raises(ValueError, match="shorter than the 8-byte header"):
        _core.load_model_from_bytes(raw[:5])
    with pytest.raises(ValueError, match="truncated: the header claims"):
        _core.load_model_from_bytes(raw[:100])
    with pytest.raises(ValueError, match="fall outside"):
        _core.load_model_from_bytes(raw[:-10])
    with pytest.raises(ValueError, match="cannot open"):
        _core.load_model(str(tmp_path / "missing.cnn"))
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    g = json.loads(header["__metadata__"]["cnncore.graph"])
    g["nodes"][3]["op"] = "Conv3d"

    def rewrite(gr):
        h = dict(header)
        h["__metadata__"] = dict(h["__metadata__"], **{"cnncore.graph": json.dumps(gr)})
        text = json.dumps(h).encode()
        return len(text).to_bytes(8, "little") + text + raw[8 + n:]
    with pytest.raises(ValueError, match=r"node 'features.3' \(Conv3d\).*not supported"):
        _core.load_model_from_bytes(rewrite(g))
    g = json.loads(header["__metadata__"]["cnncore.graph"])
    g["nodes"][2]["inputs"] = ["nowhere"]
    with pytest.raises(ValueError, match="not defined by an earlier node"):
        _core.load_model_from_bytes(rewrite(g))
    g = json.loads(header["__metadata__"]["cnncore.graph"])
    g["nodes"][0]["attrs"]["stride"] = "two"
    with pytest.raises(ValueError, match="attribute 'stride' must be an int or a pair"):
        _core.load_model_from_bytes(rewrite(g))
    g = json.loads(header["__metadata__"]["cnncore.graph"])
    g["nodes"][0]["params"]["weight"] = "features.3.weight"
    with pytest.raises(ValueError, match=r"'features.0.bias' must have shape \(16,\)"):
        _core.load_model_from_bytes(rewrite(g))
    deep = "[" * 100000 + "]" * 100000
    with pytest.raises(ValueError, match="nesting deeper than 64"):
        _core.load_model_from_bytes(len(deep).to_bytes(8, "little") + deep.encode())


@pytest.fixture(scope="module")
def tiny_model_bytes(tmp_path_factory):
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.bn = nn.BatchNorm2d(2)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(cc.functional.max_pool2d(self.bn(self.conv(x)).relu(), 2).flatten(1))

    path = tmp_path_factory.mktemp("fuzz") / "tiny.cnn"
    Tiny().save(path, cc.zeros(1, 1, 6, 6))
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_loader_never_crashes(tiny_model_bytes, data):
    raw = bytearray(tiny_model_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "byte", "truncate", "insert"]))
        if not raw:
            break
        i = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "byte":
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[i:]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        m = _core.load_model_from_bytes(bytes(raw), "fuzzed")
    except (ValueError, TypeError, IndexError) as e:
        assert str(e)
        return
    try:  # a file that still loads runs or fails cleanly
        m.forward([cc.zeros(1, 1, 6, 6)._c])
    except (ValueError, TypeError, IndexError, RuntimeError) as e:
        assert str(e)
