"""U-Net (Ronneberger et al., 2015) for semantic segmentation: a contracting path of double 3x3
convolutions and 2x2 max pools, an expanding path of 2x2 transposed convolutions (or bilinear
upsampling + 1x1 conv) concatenated with the skip connections, and a 1x1 classifier per pixel."""

from __future__ import annotations

from .. import functional as F
from .. import nn

__all__ = ["DoubleConv", "UNet", "unet"]


class DoubleConv(nn.Sequential):
    """(3x3 conv 'same' -> BatchNorm -> ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )


class _Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, bilinear: bool):
        super().__init__()
        self.bilinear = bilinear
        if bilinear:  # resize-then-conv: no checkerboard artefacts
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear",
                                                align_corners=False),
                                    nn.Conv2d(in_channels, in_channels // 2, 1))
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        dh, dw = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if dh or dw:  # odd sizes upstream: pad the upsampled map to the skip's size
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.conv(F.cat([skip, x], 1))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 64,
                 depth: int = 4, bilinear: bool = False):
        super().__init__()
        for arg, v in (("in_channels", in_channels), ("num_classes", num_classes),
                       ("base_channels", base_channels), ("depth", depth)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"UNet: {arg} must be a positive int, but got {v!r}")
        chans = [base_channels * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, chans[0])
        self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), DoubleConv(chans[i], chans[i + 1]))
                                  for i in range(depth))
        self.up = nn.ModuleList(_Up(chans[i + 1], chans[i], bilinear)
                                for i in reversed(range(depth)))
        self.outc = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x):
        """(N, in_channels, H, W) -> per-pixel logits (N, num_classes, H, W); H and W need at
        least 2**depth pixels."""
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.outc(x)


def unet(in_channels: int = 1, num_classes: int = 2, base_channels: int = 64, depth: int = 4,
         bilinear: bool = False) -> UNet:
    return UNet(in_channels, num_classes, base_channels, depth, bilinear)
