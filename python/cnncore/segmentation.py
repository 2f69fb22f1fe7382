"""Semantic segmentation helpers: the mean-IoU metric and synthetic masks for U-Net.

    masks = SyntheticMasks(500, seed=0)           # (image (3, 64, 64), mask (64, 64) int64)
    model = cnncore.models.unet(3, masks.num_classes, base_channels=8, depth=2)
    miou, per_class = mean_iou(model(x), y, num_classes=4)
"""

from __future__ import annotations

import numpy as np

from .detection import SHAPE_CLASSES, SyntheticShapes
from .tensor import Tensor

__all__ = ["confusion_matrix", "mean_iou", "SyntheticMasks", "SEGMENTATION_CLASSES"]

SEGMENTATION_CLASSES = ("background", *SHAPE_CLASSES)


def _labels(x, fn: str, arg: str) -> np.ndarray:
    arr = x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{fn}: {arg} must hold integer class indices, but got {arr.dtype}")
    return arr.astype(np.int64)


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = None):
    """(num_classes, num_classes) counts, rows the true class, columns the predicted one.
    pred: class indices, or logits/scores (N, C, ...) reduced by argmax over dim 1."""
    fn = "confusion_matrix"
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{fn}: num_classes must be a positive int, but got {num_classes!r}")
    t = _labels(target, fn, "target")
    p_raw = pred.detach().numpy() if isinstance(pred, Tensor) else np.asarray(pred)
    if p_raw.dtype.kind == "f":
        if p_raw.ndim != t.ndim + 1 or p_raw.shape[1] != num_classes:
            raise ValueError(f"{fn}: float pred must be scores (N, {num_classes}, ...) for a "
                             f"target of shape {t.shape}, but got {p_raw.shape}")
        p = p_raw.argmax(1)
    else:
        p = _labels(pred, fn, "pred")
    if p.shape != t.shape:
        raise ValueError(f"{fn}: pred and target must have the same shape, but got {p.shape} "
                         f"and {t.shape}")
    valid = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    t, p = t[valid], p[valid]
    if t.size and (t.min() < 0 or t.max() >= num_classes or p.min() < 0
                   or p.max() >= num_classes):
        raise ValueError(f"{fn}: class indices must be in [0, {num_classes}), but got target "
                         f"{t.min()}..{t.max()} and pred {p.min()}..{p.max()}")
    return np.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def mean_iou(pred, target, num_classes: int, ignore_index: int | None = None):
    """Mean intersection over union over the classes present in target or pred (a class absent
    from both has no IoU and is left out): returns (mean IoU, per-class IoU array with NaN for
    the absent classes). pred: class indices or scores (N, C, H, W)."""
    cm = confusion_matrix(pred, target, num_classes, ignore_index).astype(np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, np.nan)
    return (float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")), iou


class SyntheticMasks:
    """The shapes of cnncore.detection.SyntheticShapes as segmentation pairs: item i -> (image
    (3, size, size) float32, mask (size, size) int64 with 0 = background, 1 + shape class)."""

    def __init__(self, num_images: int, image_size: int = 64, max_objects: int = 3,
                 seed: int = 0):
        self.shapes = SyntheticShapes(num_images, image_size, max_objects, seed=seed)
        self.num_classes = len(SEGMENTATION_CLASSES)

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int):
        image, _, _, mask = self.shapes._render(index)
        return image, mask

    def arrays(self):
        items = [self[i] for i in range(len(self))]
        return np.stack([it[0] for it in items]), np.stack([it[1] for it in items])
