"""A multi-input network as in the notes: an image branch (a small CNN), a text branch (token
embeddings averaged over the sequence) and a numeric branch (an MLP), concatenated into one head."""

from __future__ import annotations

from .. import functional as F
from .. import nn

__all__ = ["MultiInputNet"]


class MultiInputNet(nn.Module):
    """forward(image (N, C, H, W), tokens int64 (N, L), numeric (N, num_numeric)) -> logits."""

    def __init__(self, num_classes: int = 10, image_channels: int = 3, vocab_size: int = 1000,
                 embed_dim: int = 32, num_numeric: int = 8, hidden: int = 64):
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(image_channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.numeric = nn.Sequential(nn.Linear(num_numeric, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(32 + embed_dim + hidden, hidden), nn.ReLU(),
                                  nn.Dropout(0.1), nn.Linear(hidden, num_classes))

    def forward(self, image, tokens, numeric):
        a = self.image(image)
        b = self.embedding(tokens).mean(1)
        c = self.numeric(numeric)
        return self.head(F.cat([a, b, c], 1))
