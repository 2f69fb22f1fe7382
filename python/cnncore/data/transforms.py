"""Image transforms and augmentation on numpy images: one image (C, H, W) or a batch
(N, C, H, W), float32 (uint8 input is accepted by ToTensor/ToFloat). On a batch, every random
transform draws its parameters per image.

Randomness: each random transform takes ``rng`` = a numpy Generator (shared, advanced by every
call), an int seed (a Generator made once, so a fresh transform with the same seed repeats the
same draws), or None (each call seeds a Generator from cnncore's generator, so
cnncore.manual_seed makes a run repeatable).

Geometric transforms (rotation, resized crop) resample with nearest / bilinear interpolation as
torchvision does by default (RandomRotation: nearest, RandomResizedCrop: bilinear without
antialias); the colour ones assume values in [0, 1] and clamp there, as torchvision's float path.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..tensor import Tensor
from .dataset import resolve_rng

__all__ = ["is_batch_aware", "Compose", "ToTensor", "ToFloat", "Normalize", "RandomCrop",
           "CenterCrop",
           "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "RandomResizedCrop",
           "Resize", "ColorJitter", "RandomErasing", "Mixup", "CutMix", "Lambda"]


# ---- helpers -------------------------------------------------------------------------------------
def _as_image(x, name: str) -> np.ndarray:
    """A float32 numpy image (C, H, W) or batch (N, C, H, W)."""
    if isinstance(x, Tensor):
        x = x.detach().numpy()
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{name}: expected an image (C, H, W) or a batch (N, C, H, W), but got "
                         f"shape {x.shape}")
    if x.dtype != np.float32:
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected a numeric image, but got dtype {x.dtype}")
        x = x.astype(np.float32)
    return x


def _batched(x: np.ndarray):
    """(batch view (N, C, H, W), whether the input was a single image)."""
    return (x[None], True) if x.ndim == 3 else (x, False)


def _unbatch(x: np.ndarray, single: bool) -> np.ndarray:
    return x[0] if single else x


def _pair(size, name: str) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{name}: size must be a positive int or (h, w), but got {size}")
    return size


class _Random:
    """Holds the rng argument: a Generator or seed kept across calls, or None (cnncore's)."""

    def __init__(self, rng):
        if rng is not None and not isinstance(rng, (np.random.Generator, numbers.Integral)):
            raise TypeError(f"{type(self).__name__}: rng must be a numpy.random.Generator, an int "
                            f"seed or None, but got {type(rng).__name__}")
        self._rng = None if rng is None else resolve_rng(rng)

    def rng(self) -> np.random.Generator:
        return self._rng if self._rng is not None else resolve_rng(None)


def _bilinear_sample(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """img (C, H, W) sampled at float rows ys (h,) x columns xs (w,), edge-clamped."""
    h, w = img.shape[-2:]
    y0 = np.clip(np.floor(ys).astype(np.int64), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(np.int64), 0, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = np.clip(ys - y0, 0.0, 1.0).astype(np.float32)[:, None]
    wx = np.clip(xs - x0, 0.0, 1.0).astype(np.float32)[None, :]
    top = img[:, y0][:, :, x0] * (1 - wx) + img[:, y0][:, :, x1] * wx
    bottom = img[:, y1][:, :, x0] * (1 - wx) + img[:, y1][:, :, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (C, H, W), half-pixel centres (align_corners=False), like
    torch.nn.functional.interpolate(mode='bilinear') without antialiasing."""
    h, w = img.shape[-2:]
    oh, ow = size
    ys = np.maximum((np.arange(oh) + 0.5) * (h / oh) - 0.5, 0.0)
    xs = np.maximum((np.arange(ow) + 0.5) * (w / ow) - 0.5, 0.0)
    return _bilinear_sample(img, ys, xs)


# ---- deterministic -------------------------------------------------------------------------------
class Compose:
    """Applies the transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Lambda:
    """Wraps a function as a transform."""

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"Lambda: fn must be callable, but got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class ToTensor:
    """torchvision's ToTensor on numpy input: (H, W, C) or (H, W) -> (C, H, W) float32, uint8
    scaled to [0, 1]. Returns a numpy array in tensor layout (the loader makes Tensors)."""

    def __call__(self, pic):
        arr = np.asarray(pic.detach().numpy() if isinstance(pic, Tensor) else pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"ToTensor: expected an (H, W) or (H, W, C) image, but got shape "
                             f"{arr.shape}")
        out = np.ascontiguousarray(arr.transpose(2, 0, 1))
        if out.dtype == np.uint8:
            return out.astype(np.float32) / np.float32(255)
        return out.astype(np.float32)


class ToFloat:
    """Keeps the layout, converts to float32; uint8 is scaled to [0, 1] (or by 1/scale)."""

    def __init__(self, scale: float | None = None):
        self.scale = scale

    def __call__(self, x):
        arr = np.asarray(x.detach().numpy() if isinstance(x, Tensor) else x)
        scale = self.scale if self.scale is not None else (255.0 if arr.dtype == np.uint8 else 1.0)
        out = arr.astype(np.float32)
        return out / np.float32(scale) if scale != 1.0 else out


class Normalize:
    """(x - mean[c]) / std[c] per channel."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean has {self.mean.size} values but std has "
                             f"{self.std.size}")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std evaluated to zero after conversion to float32, "
                             f"leading to division by zero (std={self.std.tolist()})")
        self.inplace = inplace

    def __call__(self, x):
        x = _as_image(x, "Normalize")
        c = x.shape[-3]
        if self.mean.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} means for an image with {c} channels")
        mean = self.mean.reshape(-1, 1, 1)
        std = self.std.reshape(-1, 1, 1)
        if self.inplace and x.flags.writeable:
            x -= mean
            x /= std
            return x
        return ((x - mean) / std).astype(np.float32)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class CenterCrop:
    """Crops the centre (h, w) (rounding the offset as torchvision: int(round((H - h) / 2)))."""

    def __init__(self, size):
        self.size = _pair(size, "CenterCrop")

    def __call__(self, x):
        x = _as_image(x, "CenterCrop")
        h, w = self.size
        H, W = x.shape[-2:]
        if h > H or w > W:
            raise ValueError(f"CenterCrop: crop size {self.size} is larger than the image {(H, W)}")
        i, j = int(round((H - h) / 2.0)), int(round((W - w) / 2.0))
        return np.ascontiguousarray(x[..., i:i + h, j:j + w])


class Resize:
    """Bilinear resize to (h, w)."""

    def __init__(self, size):
        self.size = _pair(size, "Resize")

    def __call__(self, x):
        x = _as_image(x, "Resize")
        xb, single = _batched(x)
        return _unbatch(np.stack([_resize(im, self.size) for im in xb]), single)


# ---- random geometric ----------------------------------------------------------------------------
class RandomCrop(_Random):
    """Pads by `padding` (int, (pw, ph) or (left, top, right, bottom); mode 'constant' with fill,
    'edge', 'reflect' or 'symmetric'), then crops `size` at a random offset."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill: float = 0.0,
                 padding_mode: str = "constant", rng=None):
        super().__init__(rng)
        self.size = _pair(size, "RandomCrop")
        if padding is None:
            pad = (0, 0, 0, 0)
        elif isinstance(padding, numbers.Integral):
            pad = (int(padding),) * 4
        elif len(padding) == 2:
            pad = (int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1]))
        elif len(padding) == 4:
            pad = tuple(int(p) for p in padding)
        else:
            raise ValueError(f"RandomCrop: padding must be an int or a 2- or 4-element sequence, "
                             f"but got {padding}")
        if min(pad) < 0:
            raise ValueError(f"RandomCrop: padding must be non-negative, but got {padding}")
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"RandomCrop: padding_mode must be constant, edge, reflect or "
                             f"symmetric, but got {padding_mode!r}")
        self.padding = pad  # left, top, right, bottom
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def _pad(self, xb: np.ndarray, left, top, right, bottom) -> np.ndarray:
        widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        if self.padding_mode == "constant":
            return np.pad(xb, widths, mode="constant", constant_values=self.fill)
        return np.pad(xb, widths, mode=self.padding_mode)

    def __call__(self, x):
        x = _as_image(x, "RandomCrop")
        xb, single = _batched(x)
        if any(self.padding):
            xb = self._pad(xb, *self.padding)
        h, w = self.size
        H, W = xb.shape[-2:]
        if self.pad_if_needed and (H < h or W < w):
            dh, dw = max(h - H, 0), max(w - W, 0)
            xb = self._pad(xb, dw, dh, dw, dh)
            H, W = xb.shape[-2:]
        if h > H or w > W:
            raise ValueError(f"RandomCrop: required crop size {self.size} is larger than the "
                             f"(padded) image {(H, W)}")
        rng = self.rng()
        n = xb.shape[0]
        ii = rng.integers(0, H - h + 1, size=n)
        jj = rng.integers(0, W - w + 1, size=n)
        out = np.stack([xb[k, :, ii[k]:ii[k] + h, jj[k]:jj[k] + w] for k in range(n)])
        return _unbatch(out, single)


class _RandomFlip(_Random):
    axis = -1

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__(rng)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], but got {p}")
        self.p = p

    def __call__(self, x):
        x = _as_image(x, type(self).__name__)
        xb, single = _batched(x)
        flip = self.rng().random(xb.shape[0]) < self.p
        out = xb.copy()
        out[flip] = np.flip(xb[flip], axis=self.axis)
        return _unbatch(out, single)


class RandomHorizontalFlip(_RandomFlip):
    """Mirrors left-right with probability p (per image)."""

    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirrors top-bottom with probability p (per image)."""

    axis = -2


class RandomRotation(_Random):
    """Rotates by an angle drawn uniformly from degrees (d -> (-d, d)) about the centre,
    counter-clockwise for positive angles as torchvision; nearest (default) or bilinear
    resampling; pixels from outside the image take `fill`."""

    def __init__(self, degrees, interpolation: str = "nearest", fill: float = 0.0, rng=None):
        super().__init__(rng)
        if isinstance(degrees, numbers.Real):
            if degrees < 0:
                raise ValueError(f"RandomRotation: if degrees is a single number, it must be "
                                 f"positive, but got {degrees}")
            degrees = (-float(degrees), float(degrees))
        elif len(degrees) != 2:
            raise ValueError(f"RandomRotation: degrees must be a number or (min, max), but got "
                             f"{degrees}")
        self.degrees = (float(degrees[0]), float(degrees[1]))
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"RandomRotation: interpolation must be 'nearest' or 'bilinear', "
                             f"but got {interpolation!r}")
        self.interpolation = interpolation
        self.fill = float(fill)

    @staticmethod
    def rotate(img: np.ndarray, angle: float, interpolation: str = "nearest",
               fill: float = 0.0) -> np.ndarray:
        """img (C, H, W) rotated by angle degrees counter-clockwise about its centre."""
        c, h, w = img.shape
        a = math.radians(angle)
        cos, sin = math.cos(a), math.sin(a)
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        yy, xx = np.meshgrid(np.arange(h, dtype=np.float64) - cy,
                             np.arange(w, dtype=np.float64) - cx, indexing="ij")
        # Inverse map: output pixel -> source pixel (rotate back by -angle; y points down).
        sx = cos * xx - sin * yy + cx
        sy = sin * xx + cos * yy + cy
        out = np.full((c, h, w), fill, dtype=np.float32)
        if interpolation == "nearest":
            ix, iy = np.rint(sx).astype(np.int64), np.rint(sy).astype(np.int64)
            ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
            out[:, ok] = img[:, iy[ok], ix[ok]]
            return out
        x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
        fx, fy = (sx - x0).astype(np.float32), (sy - y0).astype(np.float32)
        acc = np.zeros((c, h, w), dtype=np.float32)
        for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                            (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            px, py = x0 + dx, y0 + dy
            ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            vals = np.full((c, h, w), fill, dtype=np.float32)
            vals[:, ok] = img[:, py[ok], px[ok]]
            acc += vals * wgt
        return acc

    def __call__(self, x):
        x = _as_image(x, "RandomRotation")
        xb, single = _batched(x)
        angles = self.rng().uniform(self.degrees[0], self.degrees[1], size=xb.shape[0])
        out = np.stack([self.rotate(im, float(a), self.interpolation, self.fill)
                        for im, a in zip(xb, angles)])
        return _unbatch(out, single)


class RandomResizedCrop(_Random):
    """Crops a random area (fraction in `scale`) with a random aspect ratio (log-uniform in
    `ratio`), resized to `size` (bilinear); torchvision's 10 tries, then a centre crop."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), rng=None):
        super().__init__(rng)
        self.size = _pair(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be of kind (min, max), "
                             f"but got scale={scale}, ratio={ratio}")
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))

    def get_params(self, height: int, width: int, rng: np.random.Generator):
        """(top, left, h, w) of the crop, as torchvision.transforms.RandomResizedCrop.get_params."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                i = int(rng.integers(0, height - h + 1))
                j = int(rng.integers(0, width - w + 1))
                return i, j, h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w = width
            h = int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h = height
            w = int(round(h * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x):
        x = _as_image(x, "RandomResizedCrop")
        xb, single = _batched(x)
        rng = self.rng()
        H, W = xb.shape[-2:]
        out = []
        for im in xb:
            i, j, h, w = self.get_params(H, W, rng)
            out.append(_resize(im[:, i:i + h, j:j + w], self.size))
        return _unbatch(np.stack(out), single)


# ---- random photometric --------------------------------------------------------------------------
def _grayscale(im: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (1, H, W) luma (ITU-R 601-2, as torchvision); one channel is its own grey."""
    if im.shape[0] == 3:
        return (0.299 * im[0] + 0.587 * im[1] + 0.114 * im[2])[None].astype(np.float32)
    return im.mean(axis=0, keepdims=True)


def _blend(a: np.ndarray, b, ratio: float) -> np.ndarray:
    return np.clip(ratio * a + (1.0 - ratio) * b, 0.0, 1.0).astype(np.float32)


def _adjust_hue(im: np.ndarray, shift: float) -> np.ndarray:
    """Rotates the hue of an RGB image (3, H, W) in [0, 1] by shift (in turns), via HSV as
    torchvision's adjust_hue; other channel counts have no hue and pass through."""
    if im.shape[0] != 3 or shift == 0.0:
        return im
    r, g, b = im.astype(np.float64)
    maxc, minc = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    v, delta = maxc, maxc - minc
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1.0), 0.0)
    dz = np.where(delta > 0, delta, 1.0)
    rc, gc, bc = (maxc - r) / dz, (maxc - g) / dz, (maxc - b) / dz
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    h = (h + shift) % 1.0
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    out = np.stack([np.choose(i, [v, q, p, p, t, v]), np.choose(i, [t, v, v, q, p, p]),
                    np.choose(i, [p, p, t, v, v, q])])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class ColorJitter(_Random):
    """Random brightness, contrast, saturation and hue, in a random order per image
    (torchvision's float semantics, values clamped to [0, 1]): brightness scales by b, contrast
    blends with the mean grey level, saturation with the grey image, each factor uniform in
    [max(0, 1 - v), 1 + v] (or the (min, max) given); hue shifts by a uniform draw in
    [-hue, hue] turns (hue <= 0.5; RGB only)."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, rng=None):
        super().__init__(rng)
        self.brightness = self._range(brightness, "brightness")
        self.contrast = self._range(contrast, "contrast")
        self.saturation = self._range(saturation, "saturation")
        if isinstance(hue, numbers.Real):
            if hue < 0:
                raise ValueError(f"ColorJitter: if hue is a single number, it must be non "
                                 f"negative, but got {hue}")
            hue = (-float(hue), float(hue))
        if not -0.5 <= hue[0] <= hue[1] <= 0.5:
            raise ValueError(f"ColorJitter: hue values should be between (-0.5, 0.5), but got "
                             f"{hue}")
        self.hue = None if hue[0] == hue[1] == 0.0 else (float(hue[0]), float(hue[1]))

    @staticmethod
    def _range(value, name):
        if isinstance(value, numbers.Real):
            if value < 0:
                raise ValueError(f"ColorJitter: if {name} is a single number, it must be "
                                 f"non negative, but got {value}")
            value = (max(0.0, 1.0 - value), 1.0 + value)
        lo, hi = float(value[0]), float(value[1])
        if not 0.0 <= lo <= hi:
            raise ValueError(f"ColorJitter: {name} values should be between 0 and inf, in order, "
                             f"but got {value}")
        return None if lo == hi == 1.0 else (lo, hi)

    def __call__(self, x):
        x = _as_image(x, "ColorJitter")
        xb, single = _batched(x)
        rng = self.rng()
        out = []
        for im in xb:
            for op in rng.permutation(4):
                if op == 0 and self.brightness is not None:
                    im = _blend(im, 0.0, rng.uniform(*self.brightness))
                elif op == 1 and self.contrast is not None:
                    im = _blend(im, float(_grayscale(im).mean()), rng.uniform(*self.contrast))
                elif op == 2 and self.saturation is not None:
                    im = _blend(im, _grayscale(im), rng.uniform(*self.saturation))
                elif op == 3 and self.hue is not None:
                    im = _adjust_hue(im, rng.uniform(*self.hue))
            out.append(im)
        return _unbatch(np.stack(out).astype(np.float32), single)


class RandomErasing(_Random):
    """With probability p, sets a random rectangle (area fraction in scale, aspect ratio
    log-uniform in ratio) to `value` (a number, per-channel values, or 'random' for normal noise);
    torchvision's algorithm (10 tries, else unchanged)."""

    def __init__(self, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0,
                 rng=None):
        super().__init__(rng)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p must be in [0, 1], but got {p}")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("RandomErasing: scale and ratio should be of kind (min, max)")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError(f"RandomErasing: scale should be between 0 and 1, but got {scale}")
        self.p, self.scale, self.ratio, self.value = p, tuple(scale), tuple(ratio), value

    def _erase_one(self, im: np.ndarray, rng) -> np.ndarray:
        c, H, W = im.shape
        area = H * W
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            erase_area = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if not (h < H and w < W) or h == 0 or w == 0:
                continue
            i = int(rng.integers(0, H - h + 1))
            j = int(rng.integers(0, W - w + 1))
            im = im.copy()
            if isinstance(self.value, str):
                if self.value != "random":
                    raise ValueError(f"RandomErasing: value must be a number, a sequence or "
                                     f"'random', but got {self.value!r}")
                im[:, i:i + h, j:j + w] = rng.standard_normal((c, h, w)).astype(np.float32)
            else:
                v = np.asarray(self.value, dtype=np.float32).reshape(-1)
                if v.size not in (1, c):
                    raise ValueError(f"RandomErasing: {v.size} values for {c} channels")
                im[:, i:i + h, j:j + w] = v.reshape(-1, 1, 1)
            return im
        return im

    def __call__(self, x):
        x = _as_image(x, "RandomErasing")
        xb, single = _batched(x)
        rng = self.rng()
        out = [self._erase_one(im, rng) if rng.random() < self.p else im for im in xb]
        return _unbatch(np.stack(out), single)


# ---- batch-level mixing --------------------------------------------------------------------------
def _one_hot(labels, num_classes: int, smoothing: float = 0.0) -> np.ndarray:
    labels = np.asarray(labels.detach().numpy() if isinstance(labels, Tensor) else labels)
    if labels.ndim == 2:  # already soft
        return labels.astype(np.float32)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be class indices (N,) or soft labels (N, K), but got "
                         f"shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), but got values in "
                         f"[{labels.min()}, {labels.max()}]")
    off = smoothing / num_classes
    y = np.full((labels.size, num_classes), off, dtype=np.float32)
    y[np.arange(labels.size), labels] += 1.0 - smoothing
    return y


class _Mix(_Random):
    def __init__(self, alpha: float, num_classes: int, p: float, label_smoothing: float, rng):
        super().__init__(rng)
        if alpha <= 0:
            raise ValueError(f"{type(self).__name__}: alpha must be > 0, but got {alpha}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) \
                or num_classes < 1:
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive int, but got "
                             f"{num_classes}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], but got {p}")
        self.alpha, self.num_classes, self.p = float(alpha), int(num_classes), p
        self.label_smoothing = float(label_smoothing)

    def _prepare(self, images, labels):
        x = _as_image(images, type(self).__name__)
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expects a batch (N, C, H, W), but got shape "
                             f"{x.shape}")
        y = _one_hot(labels, self.num_classes, self.label_smoothing)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{type(self).__name__}: {x.shape[0]} images but {y.shape[0]} labels")
        return x, y


class Mixup(_Mix):
    """mixup (Zhang et al. 2018) on a batch: lam ~ Beta(alpha, alpha), the batch is blended with
    a random permutation of itself, x = lam x + (1 - lam) x[perm], and the one-hot labels the same
    way. Returns (images, soft labels (N, num_classes)) as numpy; with probability 1 - p the batch
    passes through unmixed (labels still one-hot). The last lam is kept in .lam."""

    def __init__(self, alpha: float = 1.0, num_classes: int = 10, p: float = 1.0,
                 label_smoothing: float = 0.0, rng=None):
        super().__init__(alpha, num_classes, p, label_smoothing, rng)
        self.lam = 1.0

    def __call__(self, images, labels):
        x, y = self._prepare(images, labels)
        rng = self.rng()
        if rng.random() >= self.p:
            self.lam = 1.0
            return x.copy(), y
        lam = float(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(x.shape[0])
        self.lam = lam
        xm = (lam * x + (1.0 - lam) * x[perm]).astype(np.float32)
        ym = (lam * y + (1.0 - lam) * y[perm]).astype(np.float32)
        return xm, ym


class CutMix(_Mix):
    """CutMix (Yun et al. 2019) on a batch: a box of area fraction 1 - lam (lam ~ Beta(alpha,
    alpha)), centred uniformly and clipped to the image, is pasted from a random permutation of
    the batch; the labels mix by the box's true area. Returns (images, soft labels) as numpy."""

    def __init__(self, alpha: float = 1.0, num_classes: int = 10, p: float = 1.0,
                 label_smoothing: float = 0.0, rng=None):
        super().__init__(alpha, num_classes, p, label_smoothing, rng)
        self.lam = 1.0

    def __call__(self, images, labels):
        x, y = self._prepare(images, labels)
        rng = self.rng()
        if rng.random() >= self.p:
            self.lam = 1.0
            return x.copy(), y
        lam = float(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(x.shape[0])
        H, W = x.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(H * cut), int(W * cut)
        cy, cx = int(rng.integers(0, H)), int(rng.integers(0, W))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, H)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, W)
        out = x.copy()
        out[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(H * W)
        self.lam = lam
        ym = (lam * y + (1.0 - lam) * y[perm]).astype(np.float32)
        return out, ym


# Transforms that accept a batch (N, C, H, W) and treat each image as on its own.
_BATCH_AWARE = (ToFloat, Normalize, CenterCrop, Resize, RandomCrop, RandomHorizontalFlip,
                RandomVerticalFlip, RandomRotation, RandomResizedCrop, ColorJitter, RandomErasing)


def is_batch_aware(transform) -> bool:
    """Whether transform(batch) equals applying it image by image (up to the random draws)."""
    if isinstance(transform, Compose):
        return all(is_batch_aware(t) for t in transform.transforms)
    return isinstance(transform, _BATCH_AWARE)
