"""MobileNet v1 (Howard et al., 2017: depthwise-separable convolutions) and MobileNet v2 (Sandler
et al., 2018: inverted residuals) in torchvision's layout: mobilenet_v2 has 3,504,872 parameters.

`separable_savings` computes the multiplications a depthwise-separable convolution saves over a
standard one, as the notes do."""

from __future__ import annotations

from .. import nn

__all__ = ["Conv2dNormActivation", "DepthwiseSeparable", "MobileNetV1", "mobilenet_v1",
           "InvertedResidual", "MobileNetV2", "mobilenet_v2", "separable_savings"]


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Rounds a scaled channel count to a multiple of divisor, never below 90% of v."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """conv (no bias, 'same'-style padding) -> BatchNorm -> activation; a Sequential so the
    state_dict keys are torchvision's (`0.weight`, `1.running_mean`, ...)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, activation_layer=nn.ReLU6, dilation: int = 1):
        padding = (kernel_size - 1) // 2 * dilation
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                            dilation=dilation, groups=groups, bias=False),
                  nn.BatchNorm2d(out_channels)]
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise (groups = channels) then 1x1 pointwise, each with BN and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(
            Conv2dNormActivation(in_channels, in_channels, 3, stride, groups=in_channels,
                                 activation_layer=nn.ReLU),
            Conv2dNormActivation(in_channels, out_channels, 1, activation_layer=nn.ReLU),
        )


# (out_channels, stride) of MobileNet v1's 13 depthwise-separable blocks.
_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
              (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.0):
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"MobileNetV1: width_mult must be positive, but got {width_mult!r}")
        c = _make_divisible(32 * width_mult)
        layers = [Conv2dNormActivation(3, c, 3, 2, activation_layer=nn.ReLU)]
        for out, stride in _V1_BLOCKS:
            o = _make_divisible(out * width_mult)
            layers.append(DepthwiseSeparable(c, o, stride))
            c = o
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(c, num_classes))
        _init_mobilenet(self)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0, **kwargs) -> MobileNetV1:
    return MobileNetV1(num_classes, width_mult, **kwargs)


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection; residual when the
    stride is 1 and the channels match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, but got {stride}")
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden, kernel_size=1))
        layers += [Conv2dNormActivation(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 round_nearest: int = 8, dropout: float = 0.2):
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"MobileNetV2: width_mult must be positive, but got {width_mult!r}")
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                   [6, 160, 3, 2], [6, 320, 1, 1]]  # expand t, channels c, repeats n, stride s
        c_in = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features = [Conv2dNormActivation(3, c_in, stride=2)]
        for t, c, n, s in setting:
            c_out = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        features.append(Conv2dNormActivation(c_in, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout),
                                        nn.Linear(self.last_channel, num_classes))
        _init_mobilenet(self)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(x.flatten(1))


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0, **kwargs) -> MobileNetV2:
    return MobileNetV2(num_classes, width_mult, **kwargs)


def _init_mobilenet(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def separable_savings(in_channels: int, out_channels: int, kernel_size: int,
                      output_size: int) -> dict:
    """Multiplications of a standard f x f convolution (n_c -> n_c' channels, n_out x n_out
    output) versus depthwise (f x f per channel) + pointwise (1 x 1): the ratio is
    1/n_c' + 1/f^2, as the notes compute."""
    for arg, v in (("in_channels", in_channels), ("out_channels", out_channels),
                   ("kernel_size", kernel_size), ("output_size", output_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"separable_savings: {arg} must be a positive int, but got {v!r}")
    positions = output_size * output_size
    standard = positions * kernel_size * kernel_size * in_channels * out_channels
    depthwise = positions * kernel_size * kernel_size * in_channels
    pointwise = positions * in_channels * out_channels
    return {"standard": standard, "depthwise": depthwise, "pointwise": pointwise,
            "separable": depthwise + pointwise, "ratio": (depthwise + pointwise) / standard,
            "saved": standard - depthwise - pointwise}
