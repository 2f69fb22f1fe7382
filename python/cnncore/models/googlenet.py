"""GoogLeNet / Inception v1 (Szegedy et al., 2014) in torchvision's layout: 6,624,904 parameters
without the auxiliary heads. `InceptionBlock` is the reusable four-branch module."""

from __future__ import annotations

from .. import nn
from .. import functional as F

__all__ = ["BasicConv2d", "InceptionBlock", "Inception", "InceptionAux", "GoogLeNet", "googlenet"]


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> "5x5"; 3x3 max
    pool -> 1x1. Output channels: ch1x1 + ch3x3 + ch5x5 + pool_proj. The "5x5" branch uses a 3x3
    kernel, as torchvision's GoogLeNet does (so its weights load); pass five_by_five=True for the
    paper's 5x5."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, five_by_five: bool = False):
        super().__init__()
        k = 5 if five_by_five else 3
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=k, padding=k // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1,
                                                  ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        return F.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


Inception = InceptionBlock  # torchvision's name


class InceptionAux(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(x, (4, 4))
        x = self.conv(x).flatten(1)
        return self.fc2(self.dropout(self.fc1(x).relu()))


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, aux_logits: bool = False,
                 transform_input: bool = False, dropout: float = 0.2,
                 dropout_aux: float = 0.7, init_weights: bool = True):
        super().__init__()
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def _transform_input(self, x):
        if not self.transform_input:
            return x
        # ImageNet-normalised input -> the (x - 0.5) / 0.5 scaling the original weights expect.
        scale = [0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5]
        shift = [(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5]
        chans = [x[:, i:i + 1] * scale[i] + shift[i] for i in range(3)]
        return F.cat(chans, 1)

    def forward(self, x):
        """Logits; in training mode with aux_logits, (logits, aux2, aux1) as torchvision's
        GoogLeNetOutputs order."""
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if self.training and self.aux_logits:
            return x, aux2, aux1
        return x


def googlenet(num_classes: int = 1000, aux_logits: bool = False, **kwargs) -> GoogLeNet:
    return GoogLeNet(num_classes, aux_logits, **kwargs)
