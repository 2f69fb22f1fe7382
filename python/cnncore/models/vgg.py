"""VGG (Simonyan & Zisserman, 2014) in torchvision's layout: vgg16 has 138,357,544 parameters."""

from __future__ import annotations

from .. import nn

__all__ = ["VGG", "vgg11", "vgg13", "vgg16", "vgg19", "make_vgg_layers", "VGG_CONFIGS"]

# Channel counts per 3x3 conv; "M" is a 2x2 max pool. A..E are the paper's columns.
VGG_CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512,
          512, 512, "M"],
}


def make_vgg_layers(cfg, batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(cfg: str, batch_norm: bool, num_classes: int, **kwargs) -> VGG:
    return VGG(make_vgg_layers(VGG_CONFIGS[cfg], batch_norm), num_classes, **kwargs)


def vgg11(batch_norm: bool = False, num_classes: int = 1000, **kwargs) -> VGG:
    return _vgg("A", batch_norm, num_classes, **kwargs)


def vgg13(batch_norm: bool = False, num_classes: int = 1000, **kwargs) -> VGG:
    return _vgg("B", batch_norm, num_classes, **kwargs)


def vgg16(batch_norm: bool = False, num_classes: int = 1000, **kwargs) -> VGG:
    return _vgg("D", batch_norm, num_classes, **kwargs)


def vgg19(batch_norm: bool = False, num_classes: int = 1000, **kwargs) -> VGG:
    return _vgg("E", batch_norm, num_classes, **kwargs)
