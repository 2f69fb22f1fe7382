"""torchvision-shaped ResNets and MobileNetV2 built from torch.nn (torchvision does not import
beside the torch build used here), with the module tree and state_dict keys of
cnncore.models.resnet* and mobilenet_v2, so one side's weights load into the other and both run
the same network."""

from __future__ import annotations


def resnet(torch, layers, bottleneck: bool, num_classes: int = 1000):
    tnn = torch.nn

    class Block(tnn.Module):
        expansion = 4 if bottleneck else 1

        def __init__(self, inplanes, planes, stride, downsample):
            super().__init__()
            if bottleneck:
                self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
                self.bn1 = tnn.BatchNorm2d(planes)
                self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
                self.bn2 = tnn.BatchNorm2d(planes)
                self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
                self.bn3 = tnn.BatchNorm2d(planes * 4)
            else:
                self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
                self.bn1 = tnn.BatchNorm2d(planes)
                self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                self.bn2 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            if bottleneck:
                out = self.relu(self.bn2(self.conv2(out)))
                out = self.bn3(self.conv3(out))
            else:
                out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.inplanes = 64
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            self.layer1 = self._layer(64, layers[0], 1)
            self.layer2 = self._layer(128, layers[1], 2)
            self.layer3 = self._layer(256, layers[2], 2)
            self.layer4 = self._layer(512, layers[3], 2)
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(512 * Block.expansion, num_classes)

        def _layer(self, planes, blocks, stride):
            down = None
            if stride != 1 or self.inplanes != planes * Block.expansion:
                down = tnn.Sequential(
                    tnn.Conv2d(self.inplanes, planes * Block.expansion, 1, stride, bias=False),
                    tnn.BatchNorm2d(planes * Block.expansion))
            mods = [Block(self.inplanes, planes, stride, down)]
            self.inplanes = planes * Block.expansion
            mods += [Block(self.inplanes, planes, 1, None) for _ in range(1, blocks)]
            return tnn.Sequential(*mods)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def resnet18(torch, num_classes: int = 1000):
    return resnet(torch, (2, 2, 2, 2), False, num_classes)


def resnet50(torch, num_classes: int = 1000):
    return resnet(torch, (3, 4, 6, 3), True, num_classes)


def mobilenet_v2(torch, num_classes: int = 1000):
    """torchvision's MobileNetV2 (width 1.0) with cnncore.models.mobilenet_v2's keys."""
    tnn = torch.nn

    def conv_bn(i, o, k=3, s=1, g=1, act=True):
        layers = [tnn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), tnn.BatchNorm2d(o)]
        return tnn.Sequential(*(layers + [tnn.ReLU6(inplace=True)] if act else layers))

    class InvertedResidual(tnn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            h = i * t
            self.use_res_connect = s == 1 and i == o
            layers = [conv_bn(i, h, 1)] if t != 1 else []
            layers += [conv_bn(h, h, 3, s, h), tnn.Conv2d(h, o, 1, bias=False),
                       tnn.BatchNorm2d(o)]
            self.conv = tnn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(tnn.Module):
        def __init__(self):
            super().__init__()
            c, feats = 32, [conv_bn(3, 32, 3, 2)]
            for t, o, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                               [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]:
                for k in range(n):
                    feats.append(InvertedResidual(c, o, s if k == 0 else 1, t))
                    c = o
            feats.append(conv_bn(c, 1280, 1))
            self.features = tnn.Sequential(*feats)
            self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes))

        def forward(self, x):
            x = tnn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2()


def copy_weights(torch_model, cnncore_model) -> None:
    """torch -> cnncore by key (every key must match: a mismatch raises)."""
    cnncore_model.load_state_dict({k: v.detach().numpy()
                                   for k, v in torch_model.state_dict().items()})
