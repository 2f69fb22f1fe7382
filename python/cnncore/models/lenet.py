"""LeNet-5 (LeCun et al., 1998) as in the notes: two 5x5 convolutions with average pooling, then
three fully connected layers, on 32x32 single-channel images (61,706 parameters for 10 classes)."""

from __future__ import annotations

from .. import nn

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 for (N, in_channels, 32, 32) inputs."""
    return LeNet5(num_classes, in_channels)
