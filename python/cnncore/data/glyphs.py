"""Synthetic glyphs: as many pen-stroke classes as wanted, for one-shot learning.

The 10 digits are too few classes to learn a metric that carries to classes never seen (an
embedding trained on seven digits only learns those seven). Here every class id names one
glyph, a prototype of 2-4 connected or loose quadratic pen strokes drawn from a generator seeded
by (seed, class id) alone, so class 12 is the same glyph in every dataset that holds it and two
datasets with disjoint class ids share no class. Every image is its class prototype written
again: each control point jittered, then the whole glyph rotated, scaled, sheared and shifted,
with its own pen width and pixel noise (an Omniglot-like task, without a download).
"""

from __future__ import annotations

import numbers

import numpy as np

from .dataset import Dataset

__all__ = ["SyntheticGlyphs"]

_SEGMENTS_PER_STROKE = 6   # a quadratic Bezier drawn as this many straight pieces


def _positive_int(v, cls: str, arg: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
        raise ValueError(f"{cls}: {arg} must be a positive int, but got {v!r}")
    return int(v)


def _prototype(rng: np.random.Generator) -> np.ndarray:
    """Control points (strokes, 3, 2) in [-0.7, 0.7]^2: start, bend, end of each stroke."""
    n = int(rng.integers(2, 5))
    strokes = rng.uniform(-0.7, 0.7, (n, 3, 2))
    for s in range(1, n):
        if rng.random() < 0.6:                 # pen stays down: starts where the last ended
            strokes[s, 0] = strokes[s - 1, 2]
    return strokes


def _render(points: np.ndarray, width: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased pen strokes. points (N, strokes, 3, 2) in [-1, 1] coordinates (x, y),
    width (N,) pen half-widths in the same units -> images (N, size, size) in [0, 1]."""
    t = np.linspace(0.0, 1.0, _SEGMENTS_PER_STROKE + 1)[:, None]
    p0, p1, p2 = points[:, :, None, 0], points[:, :, None, 1], points[:, :, None, 2]
    curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2     # (N, S, T+1, 2)
    a = curve[:, :, :-1].reshape(len(points), -1, 2)                   # segment starts
    b = curve[:, :, 1:].reshape(len(points), -1, 2)
    centres = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    yy, xx = np.meshgrid(centres, centres, indexing="ij")
    pix = np.stack([xx.ravel(), yy.ravel()], -1)                       # (P, 2)
    ab = b - a
    ap = pix[None, None] - a[:, :, None]                               # (N, segs, P, 2)
    denom = np.maximum((ab * ab).sum(-1), 1e-12)[:, :, None]
    u = np.clip((ap * ab[:, :, None]).sum(-1) / denom, 0.0, 1.0)
    d = np.linalg.norm(ap - u[..., None] * ab[:, :, None], axis=-1).min(1)   # (N, P)
    pixel = 2.0 / size
    ink = np.clip((width[:, None] - d) / pixel + 0.5, 0.0, 1.0)
    return ink.reshape(len(points), size, size)


class SyntheticGlyphs(Dataset):
    """Seeded glyph images: item i -> (image (1, size, size) float32 in [0, 1], label int64),
    samples_per_class images of each class in ``classes`` (an int n for the ids 0..n-1, or a
    sequence of distinct non-negative ids), class by class. ``targets`` holds the labels (the
    class ids themselves) and ``arrays()`` gives everything at once. The same (seed, class id,
    sample index) always gives the same image; ``distortion`` scales every random deformation
    (0 draws the prototypes themselves)."""

    def __init__(self, classes, samples_per_class: int, image_size: int = 16, seed: int = 0,
                 distortion: float = 1.0):
        name = type(self).__name__
        if isinstance(classes, numbers.Integral) and not isinstance(classes, bool):
            ids = np.arange(_positive_int(classes, name, "classes"), dtype=np.int64)
        else:
            try:
                ids = np.asarray(list(classes))
            except TypeError:
                raise TypeError(f"{name}: classes must be an int or a sequence of class ids, "
                                f"but got {type(classes).__name__}") from None
            if (ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer)
                    or (ids < 0).any() or len(np.unique(ids)) != ids.size):
                raise ValueError(f"{name}: classes must be distinct non-negative int ids, but got "
                                 f"{ids.tolist()!r:.80}")
            ids = ids.astype(np.int64)
        self.class_ids = ids
        self.samples_per_class = _positive_int(samples_per_class, name, "samples_per_class")
        self.image_size = _positive_int(image_size, name, "image_size")
        if self.image_size < 8:
            raise ValueError(f"{name}: image_size must be at least 8, but got {image_size}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{name}: seed must be a non-negative int, but got {seed!r}")
        if isinstance(distortion, bool) or not isinstance(distortion, numbers.Real) or \
                not 0 <= distortion <= 3:
            raise ValueError(f"{name}: distortion must be a number in [0, 3], but got "
                             f"{distortion!r}")
        self.seed, self.distortion = int(seed), float(distortion)
        self.targets = np.repeat(ids, self.samples_per_class)
        self._cache: dict[int, np.ndarray] = {}

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{type(self).__name__}: index must be an int, but got "
                            f"{type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__}: index {index} out of range for "
                             f"{len(self)} images")
        index %= len(self)
        k, j = divmod(index, self.samples_per_class)
        return self._class_images(k)[j], int(self.targets[index])

    def get_batch(self, indices):
        idx = np.asarray(indices, dtype=np.int64) % len(self)
        k, j = np.divmod(idx, self.samples_per_class)
        images = np.stack([self._class_images(int(a))[b] for a, b in zip(k, j)])
        return images, self.targets[idx]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All images (N, 1, size, size) float32 and labels (N,) int64."""
        return (np.concatenate([self._class_images(k) for k in range(self.num_classes)]),
                self.targets.copy())

    def _class_images(self, k: int) -> np.ndarray:
        if k not in self._cache:
            self._cache[k] = self._draw(int(self.class_ids[k]))
        return self._cache[k]

    def _draw(self, class_id: int) -> np.ndarray:
        """All samples of one class (samples_per_class, 1, size, size)."""
        proto = _prototype(np.random.default_rng([self.seed, class_id, 0]))
        rng = np.random.default_rng([self.seed, class_id, 1])
        n, s = self.samples_per_class, self.distortion
        pts = proto[None] + rng.normal(0.0, 0.05 * s, (n,) + proto.shape)
        angle = rng.uniform(-0.3, 0.3, n) * s                       # about +-17 degrees
        scale = np.exp(rng.uniform(-0.15, 0.15, (n, 2)) * s)
        shear = rng.uniform(-0.2, 0.2, n) * s
        shift = rng.uniform(-0.15, 0.15, (n, 2)) * s
        c, si = np.cos(angle), np.sin(angle)
        rot = np.stack([np.stack([c, -si], -1), np.stack([si, c], -1)], -2)  # (n, 2, 2)
        shr = np.zeros((n, 2, 2))
        shr[:, 0, 0] = shr[:, 1, 1] = 1.0
        shr[:, 0, 1] = shear
        affine = rot @ shr * scale[:, None, :]
        pts = np.einsum("nij,nskj->nski", affine, pts) + shift[:, None, None, :]
        # Pen half-width in [-1, 1] units, never thinner than 0.6 pixel (or the ink aliases away).
        width = np.maximum(0.09 * np.exp(rng.uniform(-0.25, 0.25, n) * s), 1.2 / self.image_size)
        ink = _render(pts, width, self.image_size)
        ink = ink + rng.normal(0.0, 0.04 * s, ink.shape)
        return np.clip(ink, 0.0, 1.0).astype(np.float32)[:, None]
