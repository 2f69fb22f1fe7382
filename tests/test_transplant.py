"""PyTorch weights transplanted into the zoo give PyTorch's logits.

torchvision does not import beside torch 2.13 here, so each network is rebuilt below from torch.nn
modules, mirroring torchvision's module tree line by line (so its state_dict keys are
torchvision's). Weights and BatchNorm running statistics are random; the nets are compared in
eval mode on small inputs. The error is normwise: max |ours - torch| / max |torch| < 1e-4.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import cnncore
from cnncore import models
from helpers import child_env

torch = pytest.importorskip("torch", reason="the transplant tests compare with PyTorch")
tnn = torch.nn

MAX_REL_ERR = 1e-4


# ---- torchvision's ResNet (BasicBlock and Bottleneck) ----

def _conv3x3(cin, cout, stride=1):
    return tnn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin, cout, stride=1):
    return tnn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class TorchBasicBlock(tnn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TorchBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * 4)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TorchResNet(tnn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = tnn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = tnn.Sequential(_conv1x1(self.inplanes, planes * block.expansion, stride),
                                        tnn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return tnn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---- torchvision's VGG ----

class TorchVGG(tnn.Module):
    def __init__(self, cfg, batch_norm=False, num_classes=1000, dropout=0.5):
        super().__init__()
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(tnn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(tnn.Conv2d(c, v, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(tnn.BatchNorm2d(v))
                layers.append(tnn.ReLU(inplace=True))
                c = v
        self.features = tnn.Sequential(*layers)
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(True), tnn.Dropout(p=dropout),
            tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(p=dropout),
            tnn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---- torchvision's MobileNetV2 (Conv2dNormActivation is a Sequential: keys 0.*, 1.*) ----

class TorchConvBNAct(tnn.Sequential):
    def __init__(self, cin, cout, kernel_size=3, stride=1, groups=1):
        super().__init__(tnn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2,
                                    groups=groups, bias=False),
                         tnn.BatchNorm2d(cout), tnn.ReLU6(inplace=True))


class TorchInvertedResidual(tnn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(TorchConvBNAct(inp, hidden, kernel_size=1))
        layers += [TorchConvBNAct(hidden, hidden, stride=stride, groups=hidden),
                   tnn.Conv2d(hidden, oup, 1, 1, 0, bias=False), tnn.BatchNorm2d(oup)]
        self.conv = tnn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TorchMobileNetV2(tnn.Module):
    def __init__(self, num_classes=1000, dropout=0.2):
        super().__init__()
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                   [6, 160, 3, 2], [6, 320, 1, 1]]
        c_in, last = 32, 1280
        features = [TorchConvBNAct(3, c_in, stride=2)]
        for t, c, n, s in setting:
            for i in range(n):
                features.append(TorchInvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        features.append(TorchConvBNAct(c_in, last, kernel_size=1))
        self.features = tnn.Sequential(*features)
        self.classifier = tnn.Sequential(tnn.Dropout(p=dropout), tnn.Linear(last, num_classes))

    def forward(self, x):
        x = tnn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---- torchvision's GoogLeNet ----

class TorchBasicConv2d(tnn.Module):
    def __init__(self, cin, cout, **kwargs):
        super().__init__()
        self.conv = tnn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = tnn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return tnn.functional.relu(self.bn(self.conv(x)), inplace=True)


class TorchInception(tnn.Module):
    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = TorchBasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = tnn.Sequential(TorchBasicConv2d(cin, ch3x3red, kernel_size=1),
                                      TorchBasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        # torchvision's "5x5" branch really is 3x3 (a known quirk its weights depend on).
        self.branch3 = tnn.Sequential(TorchBasicConv2d(cin, ch5x5red, kernel_size=1),
                                      TorchBasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = tnn.Sequential(
            tnn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            TorchBasicConv2d(cin, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TorchInceptionAux(tnn.Module):
    def __init__(self, cin, num_classes, dropout=0.7):
        super().__init__()
        self.conv = TorchBasicConv2d(cin, 128, kernel_size=1)
        self.fc1 = tnn.Linear(2048, 1024)
        self.fc2 = tnn.Linear(1024, num_classes)
        self.dropout = tnn.Dropout(p=dropout)

    def forward(self, x):
        x = torch.flatten(self.conv(tnn.functional.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(tnn.functional.relu(self.fc1(x), inplace=True)))


class TorchGoogLeNet(tnn.Module):
    def __init__(self, num_classes=1000, aux_logits=False, transform_input=False, dropout=0.2):
        super().__init__()
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.conv1 = TorchBasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = TorchBasicConv2d(64, 64, kernel_size=1)
        self.conv3 = TorchBasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = TorchInception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = TorchInception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = TorchInception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = TorchInception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = TorchInception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = TorchInception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = TorchInception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = TorchInception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = TorchInception(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = TorchInceptionAux(512, num_classes)
            self.aux2 = TorchInceptionAux(528, num_classes)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.dropout = tnn.Dropout(p=dropout)
        self.fc = tnn.Linear(1024, num_classes)

    def _transform_input(self, x):
        if not self.transform_input:
            return x
        x0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat((x0, x1, x2), 1)

    def forward(self, x):  # eval mode only: the aux heads are skipped, as torchvision's
        x = self.maxpool1(self.conv1(self._transform_input(x)))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4d(self.inception4c(self.inception4b(self.inception4a(x))))
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


_VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

# name -> (torch builder, cnncore builder, input (N, C, H, W)); inputs are the smallest sizes
# that keep every stage's map non-empty (32 for the stride-32 nets), a little larger for GoogLeNet
# so its ceil-mode pools see ragged maps.
CASES = {
    "resnet18": (lambda: TorchResNet(TorchBasicBlock, [2, 2, 2, 2]),
                 lambda: models.resnet18(), (2, 3, 32, 32)),
    "resnet50": (lambda: TorchResNet(TorchBottleneck, [3, 4, 6, 3], num_classes=10),
                 lambda: models.resnet50(num_classes=10), (1, 3, 32, 32)),
    "vgg11": (lambda: TorchVGG(_VGG11), lambda: models.vgg11(),
              (1, 3, 32, 32)),
    "vgg11_bn": (lambda: TorchVGG(_VGG11, batch_norm=True, num_classes=10),
                 lambda: models.vgg11(batch_norm=True, num_classes=10),
                 (1, 3, 48, 40)),
    "mobilenet_v2": (lambda: TorchMobileNetV2(), lambda: models.mobilenet_v2(), (2, 3, 32, 32)),
    "googlenet": (lambda: TorchGoogLeNet(), lambda: models.googlenet(),
                  (2, 3, 64, 64)),
    "googlenet_aux_transform": (
        lambda: TorchGoogLeNet(num_classes=10, aux_logits=True, transform_input=True),
        lambda: models.googlenet(num_classes=10, aux_logits=True, transform_input=True),
        (1, 3, 45, 51)),
}


def _randomise(net, seed: int) -> None:
    """Weights from torch's own (seeded) init, scaled to He variance so the signal keeps its size
    through depth (drawing 100M fresh numbers for VGG's classifier would cost seconds), and
    BatchNorm statistics far from (0, 1), so a transplant that drops or swaps running_mean /
    running_var (or eps) shows up in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (tnn.Conv2d, tnn.Linear)):
                m.weight.mul_(6.0 ** 0.5)  # kaiming_uniform(a=sqrt(5)) has variance 1/(3 fan_in)
            elif isinstance(m, tnn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
                m.num_batches_tracked.fill_(7)


def _max_rel_err(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"logits shape {ours.shape} != torch's {ref.shape}"
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def _transplanted(name: str, seed: int = 0):
    make_torch, make_ours, shape = CASES[name]
    torch.manual_seed(seed)
    ref = make_torch()
    _randomise(ref, seed)
    ref.eval()
    with cnncore.nn.init.skip_init():  # every value is overwritten by the transplant
        ours = make_ours()
    ours.load_state_dict(cnncore.io.from_torch_state_dict(ref.state_dict()))
    ours.eval()
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return ref, ours, x


# The four in the default run; the other variants are extra coverage, run with -m slow.
_SLOW = {"resnet50", "vgg11_bn"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n
                                  for n in CASES])
def test_transplanted_logits_match_torch(name):
    ref, ours, x = _transplanted(name)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    with cnncore.no_grad():
        got = ours(cnncore.tensor(x)).numpy()
    assert np.std(expected) > 0, "degenerate reference logits prove nothing"
    err = _max_rel_err(got, expected)
    assert err < MAX_REL_ERR, f"{name}: max relative error {err:.3g}"


def test_state_dict_keys_are_torchvisions_in_order():
    for name in ("resnet18", "mobilenet_v2", "googlenet"):
        make_torch, make_ours, _ = CASES[name]
        with cnncore.nn.init.skip_init():
            ours = make_ours()
        assert list(ours.state_dict()) == list(make_torch().state_dict()), name


def test_transplant_rejects_a_wrong_network():
    sd = cnncore.io.from_torch_state_dict(TorchResNet(TorchBasicBlock, [2, 2, 2, 2]).state_dict())
    with cnncore.nn.init.skip_init():
        deeper, narrower = models.resnet34(), models.resnet18(num_classes=10)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "layer1.2.conv1'):
        deeper.load_state_dict(sd)
    with pytest.raises(RuntimeError, match="size mismatch for fc.weight"):
        narrower.load_state_dict(sd)


_LOAD_WITHOUT_TORCH = r"""
import sys
sys.modules["torch"] = None  # any `import torch` below now raises ImportError
import numpy as np
import cnncore
from cnncore import models
sd = cnncore.io.load_torch(sys.argv[1])
model = models.mobilenet_v2()
model.load_state_dict(sd)
model.eval()
x = np.load(sys.argv[2])
with cnncore.no_grad():
    np.save(sys.argv[3], model(cnncore.tensor(x)).numpy())
"""


def test_safetensors_written_by_torch_loads_without_torch(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    ref, _, x = _transplanted("mobilenet_v2", seed=3)
    weights = tmp_path / "mobilenet_v2.safetensors"
    st_torch.save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(weights))
    np.save(tmp_path / "x.npy", x)
    env = child_env()
    subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_TORCH, str(weights),
                    str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                   check=True, env=env, timeout=300)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    err = _max_rel_err(np.load(tmp_path / "y.npy"), expected)
    assert err < MAX_REL_ERR, f"safetensors transplant: max relative error {err:.3g}"


def test_pth_file_loads_with_weights_only(tmp_path):
    ref, _, x = _transplanted("resnet18", seed=4)
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    ours = models.resnet18()
    ours.load_state_dict(cnncore.io.load_torch(path))
    ours.eval()
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    with cnncore.no_grad():
        got = ours(cnncore.tensor(x)).numpy()
    assert _max_rel_err(got, expected) < MAX_REL_ERR
