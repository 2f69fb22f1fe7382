"""Object localization and landmark detection: one object per image, found as class + box
(pc, bx, by, bh, bw) + k landmark points, as in the notes.

    ds = SyntheticLocalization(1000, seed=0)
    image, target, label = ds[0]     # target: (pc, bx, by, bh, bw, x1, y1, ..., xk, yk)
    model = LocalizationNet(num_classes=2, num_landmarks=4)
    out = model(x)                   # (N, 1 + 4 + C + 2k) raw outputs
    loss = localization_loss(out, targets, labels, num_classes=2, num_landmarks=4)
    pred = decode_localization(out, num_classes=2, num_landmarks=4)

Coordinates are fractions of the image (0..1): (bx, by) the box centre, bh and bw its height
and width, landmarks (x, y). pc = 1 when an object is present; then the label is its class,
else the label is -100 and only pc is learnt.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import functional as F
from . import nn
from .detection import _iou
from .tensor import Tensor, tensor

__all__ = ["LOCALIZATION_CLASSES", "SyntheticLocalization", "LocalizationHead",
           "LocalizationNet", "localization_loss", "decode_localization", "box_iou_cxcyhw"]

LOCALIZATION_CLASSES = ("rectangle", "ellipse")


class SyntheticLocalization:
    """Seeded images with at most one rotated rectangle or ellipse on a noisy, shaded background.

    Item i -> (image (3, size, size) float32, target (5 + 2k,) float32, label int64). The k = 4
    landmarks are the rectangle's corners, or the ellipse's points at 45 degrees between its
    axes, in the order top-left, top-right, bottom-right, bottom-left of the unrotated shape
    (rotations stay within +-max_rotation degrees so the order is never ambiguous). Without an
    object (probability 1 - p_object) the target is zeros and the label -100."""

    num_landmarks = 4

    def __init__(self, num_images: int, image_size: int = 64, p_object: float = 0.85,
                 max_rotation: float = 25.0, seed: int = 0):
        for arg, v in (("num_images", num_images), ("image_size", image_size)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 8 and \
                    arg == "image_size" or v <= 0:
                raise ValueError(f"SyntheticLocalization: {arg} must be a positive int (image_size"
                                 f" >= 8), but got {v!r}")
        if not 0.0 <= p_object <= 1.0:
            raise ValueError(f"SyntheticLocalization: p_object must be in [0, 1], but got "
                             f"{p_object!r}")
        self.num_images, self.image_size, self.p_object = num_images, image_size, p_object
        self.max_rotation, self.seed = max_rotation, seed
        self.num_classes = len(LOCALIZATION_CLASSES)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int):
        if not -self.num_images <= index < self.num_images:
            raise IndexError(f"SyntheticLocalization: index {index} out of range for "
                             f"{self.num_images} images")
        rng = np.random.default_rng([self.seed, 7, index % self.num_images])
        n = self.image_size
        yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
        base = rng.uniform(0.1, 0.45, 3)
        image = base[:, None, None] + rng.uniform(-0.1, 0.1, (3, 1, 1)) * (xx + yy)[None]
        target = np.zeros(5 + 2 * self.num_landmarks, np.float32)
        label = -100
        if rng.random() < self.p_object:
            label = int(rng.integers(0, self.num_classes))
            half = rng.uniform(0.12, 0.28, 2)               # half width, half height
            angle = np.deg2rad(rng.uniform(-self.max_rotation, self.max_rotation))
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            # Landmarks in the shape's own frame: corners, or the ellipse at 45 degrees.
            unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
            local = unit * half * (1.0 if label == 0 else np.sqrt(0.5))
            extent = np.abs(rot) @ half if label == 0 else np.sqrt((rot ** 2) @ (half ** 2))
            centre = rng.uniform(extent + 0.02, 1 - extent - 0.02)
            points = local @ rot.T + centre
            # Pixel (x, y) -> the shape's frame: rotate back about the centre.
            u = (xx - centre[0]) * np.cos(angle) + (yy - centre[1]) * np.sin(angle)
            v = -(xx - centre[0]) * np.sin(angle) + (yy - centre[1]) * np.cos(angle)
            if label == 0:
                mask = (np.abs(u) <= half[0]) & (np.abs(v) <= half[1])
            else:
                mask = (u / half[0]) ** 2 + (v / half[1]) ** 2 <= 1.0
            colour = rng.uniform(0.6, 1.0, 3) * rng.permutation([1.0, 0.7, 0.3])
            image[:, mask] = colour[:, None]
            target[:5] = (1.0, centre[0], centre[1], 2 * extent[1], 2 * extent[0])
            target[5:] = points.reshape(-1)
        image = image + rng.normal(0, 0.03, image.shape)
        return np.clip(image, 0, 1).astype(np.float32), target, np.int64(label)

    def arrays(self):
        """(images (N, 3, s, s), targets (N, 5 + 2k), labels (N,))."""
        items = [self[i] for i in range(len(self))]
        return (np.stack([it[0] for it in items]), np.stack([it[1] for it in items]),
                np.array([it[2] for it in items], np.int64))


class LocalizationHead(nn.Module):
    """A linear layer giving, per image, 1 + 4 + num_classes + 2 * num_landmarks outputs:
    the pc logit, (bx, by, bh, bw), class logits and landmark (x, y) pairs."""

    def __init__(self, in_features: int, num_classes: int, num_landmarks: int = 0):
        super().__init__()
        self.num_classes, self.num_landmarks = num_classes, num_landmarks
        self.fc = nn.Linear(in_features, 5 + num_classes + 2 * num_landmarks)

    def forward(self, x):
        return self.fc(x)


class LocalizationNet(nn.Module):
    """A small CNN (four 3x3 conv + BatchNorm + ReLU + 2x2 max-pool stages, global average
    pool) with a LocalizationHead."""

    def __init__(self, num_classes: int = 2, num_landmarks: int = 4, in_channels: int = 3,
                 width: int = 16):
        super().__init__()
        layers, c = [], in_channels
        for i in range(4):
            out = width * 2 ** min(i, 2)
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))  # keeps coarse position, unlike a 1x1 pool
        self.head = LocalizationHead(c * 4, num_classes, num_landmarks)

    def forward(self, x):
        return self.head(F.flatten(self.pool(self.features(x)), 1))


def _check_output(output, num_classes, num_landmarks, fn):
    width = 5 + num_classes + 2 * num_landmarks
    if output.ndim != 2 or output.shape[1] != width:
        raise ValueError(f"{fn}: output must be (N, {width}) for {num_classes} classes and "
                         f"{num_landmarks} landmarks, but got {tuple(output.shape)}")


def localization_loss(output, target, labels, num_classes: int, num_landmarks: int,
                      box_weight: float = 1.0, landmark_weight: float = 1.0):
    """The notes' loss: pc by binary cross entropy (logistic) on every image; the box and the
    landmarks by squared error (times box_weight and landmark_weight), and the class by cross
    entropy, only where pc = 1. Averaged over the batch (sums over an image's coordinates)."""
    fn = "localization_loss"
    _check_output(output, num_classes, num_landmarks, fn)
    t = target.numpy() if isinstance(target, Tensor) else np.asarray(target, np.float32)
    lab = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels, np.int64)
    n = output.shape[0]
    if t.shape != (n, 5 + 2 * num_landmarks) or lab.shape != (n,):
        raise ValueError(f"{fn}: target must be ({n}, {5 + 2 * num_landmarks}) and labels "
                         f"({n},), but got {t.shape} and {lab.shape}")
    present = t[:, :1]
    pc = F.binary_cross_entropy_with_logits(output[:, 0:1], tensor(np.ascontiguousarray(present)),
                                            reduction="sum")
    box_w = np.ascontiguousarray(np.repeat(present, 4, 1), np.float32)
    box = F.mse_loss(output[:, 1:5], tensor(np.ascontiguousarray(t[:, 1:5])), reduction="sum",
                     weight=tensor(box_w))
    loss = pc + box_weight * box
    if num_landmarks:
        lm_w = np.ascontiguousarray(np.repeat(present, 2 * num_landmarks, 1), np.float32)
        start = 5 + num_classes
        loss = loss + landmark_weight * F.mse_loss(
            output[:, start:], tensor(np.ascontiguousarray(t[:, 5:])), reduction="sum",
            weight=tensor(lm_w))
    classes = np.where(present[:, 0] > 0.5, lab, -100).astype(np.int64)
    if (classes >= 0).any():
        loss = loss + F.cross_entropy(output[:, 5:5 + num_classes], tensor(classes),
                                      ignore_index=-100, reduction="sum")
    return loss * (1.0 / n)


def decode_localization(output, num_classes: int, num_landmarks: int) -> dict:
    """Raw outputs -> numpy {"pc": probability (N,), "box": (N, 4) (bx, by, bh, bw),
    "label": (N,), "landmarks": (N, k, 2)}."""
    _check_output(output, num_classes, num_landmarks, "decode_localization")
    o = output.detach().numpy() if isinstance(output, Tensor) else np.asarray(output)
    return {"pc": 1.0 / (1.0 + np.exp(-o[:, 0])), "box": o[:, 1:5],
            "label": o[:, 5:5 + num_classes].argmax(1),
            "landmarks": o[:, 5 + num_classes:].reshape(len(o), num_landmarks, 2)}


def box_iou_cxcyhw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (N, 4) arrays of (bx, by, bh, bw) boxes -> (N,)."""
    def xyxy(x):
        x = np.asarray(x, np.float64)
        return np.stack([x[:, 0] - x[:, 3] / 2, x[:, 1] - x[:, 2] / 2, x[:, 0] + x[:, 3] / 2,
                         x[:, 1] + x[:, 2] / 2], 1)
    a, b = xyxy(a), xyxy(b)
    return np.array([_iou(a[i:i + 1], b[i:i + 1])[0, 0] for i in range(len(a))])
