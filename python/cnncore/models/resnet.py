"""ResNet (He et al., 2015) in torchvision's layout (same module tree and state_dict keys, so
torchvision weights load by key), plus the CIFAR-size resnet20/32/44/56 with a 3x3 stem."""

from __future__ import annotations

from .. import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50", "resnet101",
           "resnet152", "CifarResNet", "resnet20", "resnet32", "resnet44", "resnet56"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1,
            dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and the identity (or a 1x1 projection) added before the last ReLU."""
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, as torchvision's v1.5), 1x1 expand by 4."""
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _init_resnet(model: nn.Module, zero_init_residual: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:  # each block starts as the identity
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)


def _make_layer(owner, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    downsample = None
    if stride != 1 or owner.inplanes != planes * block.expansion:
        downsample = nn.Sequential(conv1x1(owner.inplanes, planes * block.expansion, stride),
                                   nn.BatchNorm2d(planes * block.expansion))
    layers = [block(owner.inplanes, planes, stride, downsample)]
    owner.inplanes = planes * block.expansion
    layers += [block(owner.inplanes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes: int = 1000, zero_init_residual: bool = False,
                 in_channels: int = 3):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _make_layer(self, block, 64, layers[0])
        self.layer2 = _make_layer(self, block, 128, layers[1], stride=2)
        self.layer3 = _make_layer(self, block, 256, layers[2], stride=2)
        self.layer4 = _make_layer(self, block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_resnet(self, zero_init_residual)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, **kwargs)


def resnet34(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, **kwargs)


def resnet101(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, **kwargs)


def resnet152(num_classes: int = 1000, **kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, **kwargs)


class CifarResNet(nn.Module):
    """He et al.'s CIFAR network: a 3x3 stem and three stages of n BasicBlocks (16, 32, 64
    channels), depth 6n + 2; projections (1x1 conv + BN) where the shape changes."""

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), "
                             f"but got {depth!r}")
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _make_layer(self, BasicBlock, 16, n)
        self.layer2 = _make_layer(self, BasicBlock, 32, n, stride=2)
        self.layer3 = _make_layer(self, BasicBlock, 64, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        _init_resnet(self, zero_init_residual=False)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def resnet20(num_classes: int = 10, **kwargs) -> CifarResNet:
    return CifarResNet(20, num_classes, **kwargs)


def resnet32(num_classes: int = 10, **kwargs) -> CifarResNet:
    return CifarResNet(32, num_classes, **kwargs)


def resnet44(num_classes: int = 10, **kwargs) -> CifarResNet:
    return CifarResNet(44, num_classes, **kwargs)


def resnet56(num_classes: int = 10, **kwargs) -> CifarResNet:
    return CifarResNet(56, num_classes, **kwargs)
