"""Classic image filters built on cnncore.functional.conv2d, with scikit-image's conventions.

    edges = filters.sobel(image)               # gradient magnitude
    gy, gx = filters.sobel_h(image), filters.sobel_v(image)
    theta = filters.gradient_direction(image)  # radians, x right and y down
    mask = filters.canny(image, sigma=2)       # bool edge map

Every filter takes (H, W), (C, H, W) or (N, C, H, W) numpy arrays or cnncore Tensors and filters
each channel on its own. A numpy array in gives a float32 numpy array out; a Tensor in gives a
Tensor out, with autograd through the filter (so an edge map can sit inside a loss). Integer
arrays are scaled to [0, 1] by their dtype's maximum, as skimage.util.img_as_float does.

Kernels, normalisation and borders follow skimage.filters: sobel_h/_v are ``[1, 0, -1]`` across
the edge times ``[1, 2, 1] / 4`` along it (scharr: ``[3, 10, 3] / 16``, prewitt: ``[1, 1, 1] /
3``), applied as a true convolution (scipy.ndimage.convolve); the magnitude is
``sqrt((h**2 + v**2) / 2)``; the default border mode is scipy's 'reflect' (edge pixel repeated:
``d c b a | a b c d``). Modes: 'reflect', 'constant' (cval), 'nearest', 'mirror' (``d c b |
a b c d``), 'wrap'. canny matches skimage.feature.canny (Gaussian with 'constant' borders and
bleed-over correction, unnormalised Sobel, bilinear non-maximum suppression, 8-connected
hysteresis).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import functional as F
from .tensor import Tensor, no_grad, tensor

__all__ = [
    "sobel", "sobel_h", "sobel_v", "scharr", "scharr_h", "scharr_v", "prewitt", "prewitt_h",
    "prewitt_v", "roberts", "roberts_pos_diag", "roberts_neg_diag", "laplace", "gaussian",
    "gaussian_kernel", "gradient_direction", "canny", "non_maximum_suppression", "hysteresis",
]

_MODES = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap",
          "constant": None}  # scipy.ndimage name -> numpy.pad name
_EDGE = np.array([1.0, 0.0, -1.0])
_SMOOTH = {"sobel": np.array([1.0, 2.0, 1.0]) / 4, "scharr": np.array([3.0, 10.0, 3.0]) / 16,
           "prewitt": np.full(3, 1.0 / 3)}
_ROBERTS_POS = np.array([[1.0, 0.0], [0.0, -1.0]])
_ROBERTS_NEG = np.array([[0.0, 1.0], [-1.0, 0.0]])


# ---- plumbing: any layout in, (M, 1, H, W) Tensor inside, the caller's layout out --------------
class _Images:
    """Holds how the caller's image was shaped so results go back the same way."""

    def __init__(self, image, fn: str):
        self.fn = fn
        self.is_tensor = isinstance(image, Tensor)
        if self.is_tensor:
            x = image
            if x.dtype != np.float32:
                raise TypeError(f"{fn}: image must be a float32 Tensor, but got {x.dtype}")
        else:
            arr = np.asarray(image)
            if arr.dtype == np.bool_:
                arr = arr.astype(np.float32)
            elif arr.dtype.kind in "iu":
                arr = arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
            elif arr.dtype.kind != "f":
                raise TypeError(f"{fn}: image must be a numeric array or a Tensor, but got "
                                f"dtype {arr.dtype}")
            x = tensor(np.ascontiguousarray(arr, dtype=np.float32))
        self.shape = tuple(x.shape)
        if len(self.shape) not in (2, 3, 4):
            raise ValueError(f"{fn}: image must be (H, W), (C, H, W) or (N, C, H, W), but got "
                             f"shape {self.shape}")
        if 0 in self.shape:
            raise ValueError(f"{fn}: image must not be empty, but got shape {self.shape}")
        h, w = self.shape[-2:]
        self.x = x.reshape((-1, 1, h, w))

    def out(self, y):
        """(M, 1, H, W) Tensor -> the caller's shape and kind."""
        y = y.reshape(self.shape)
        return y if self.is_tensor else y.detach().numpy()


def _check_mode(mode, cval, fn):
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{fn}: mode must be one of {list(_MODES)}, but got {mode!r}")
    if isinstance(cval, bool) or not isinstance(cval, numbers.Real):
        raise TypeError(f"{fn}: cval must be a number, but got {cval!r}")


def _pad(x: Tensor, top: int, bottom: int, left: int, right: int, mode: str, cval: float):
    """Pads (M, 1, H, W) like scipy.ndimage's border modes; differentiable (index or pad op)."""
    if not (top or bottom or left or right):
        return x
    if mode == "constant":
        return F.pad(x, (left, right, top, bottom), value=float(cval))
    h, w = x.shape[-2:]
    np_mode = _MODES[mode]
    # np.pad of an index ramp gives, for every padded position, which source pixel it copies;
    # it also handles pads wider than the image, as scipy does.
    rows = np.pad(np.arange(h), (top, bottom), mode=np_mode)
    cols = np.pad(np.arange(w), (left, right), mode=np_mode)
    return x[:, :, rows[:, None], cols[None, :]]


def _convolve(x: Tensor, kernel: np.ndarray, mode: str, cval: float) -> Tensor:
    """scipy.ndimage.convolve(x, kernel) per (H, W) plane: conv2d is a correlation, so the kernel
    is flipped; an even-sized kernel's window starts at the pixel (scipy's origin rule)."""
    kh, kw = kernel.shape
    padded = _pad(x, (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2, mode, cval)
    weight = tensor(np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)[None, None])
    return F.conv2d(padded, weight)


def _edge_kernel(operator: str, axis: int) -> np.ndarray:
    """The 3x3 kernel differentiating along `axis` (0: rows, 1: columns)."""
    k = np.outer(_EDGE, _SMOOTH[operator])
    return k if axis == 0 else k.T


def _edge_filter(image, operator: str, axis, mode: str, cval: float, fn: str):
    _check_mode(mode, cval, fn)
    if axis not in (None, 0, 1, -1, -2):
        raise ValueError(f"{fn}: axis must be None (magnitude), 0 (rows) or 1 (columns), but got "
                         f"{axis!r}")
    im = _Images(image, fn)
    if axis is not None:
        return im.out(_convolve(im.x, _edge_kernel(operator, axis % 2), mode, cval))
    h = _convolve(im.x, _edge_kernel(operator, 0), mode, cval)
    v = _convolve(im.x, _edge_kernel(operator, 1), mode, cval)
    return im.out(F.sqrt((h * h + v * v) * 0.5))


def sobel(image, *, axis=None, mode="reflect", cval=0.0):
    """Sobel edge magnitude ``sqrt((sobel_h**2 + sobel_v**2) / 2)``, or the derivative along
    `axis` (0: down the rows, finds horizontal edges; 1: along the columns, vertical edges)."""
    return _edge_filter(image, "sobel", axis, mode, cval, "sobel")


def sobel_h(image, *, mode="reflect", cval=0.0):
    """Horizontal edges: the Sobel derivative down the rows (y), ``[1 2 1; 0 0 0; -1 -2 -1]/4``
    convolved; positive where the image gets brighter downwards."""
    return _edge_filter(image, "sobel", 0, mode, cval, "sobel_h")


def sobel_v(image, *, mode="reflect", cval=0.0):
    """Vertical edges: the Sobel derivative along the columns (x); positive where the image gets
    brighter to the right."""
    return _edge_filter(image, "sobel", 1, mode, cval, "sobel_v")


def scharr(image, *, axis=None, mode="reflect", cval=0.0):
    """Scharr edge magnitude or derivative along `axis` (as sobel, smoothing ``[3 10 3]/16``)."""
    return _edge_filter(image, "scharr", axis, mode, cval, "scharr")


def scharr_h(image, *, mode="reflect", cval=0.0):
    return _edge_filter(image, "scharr", 0, mode, cval, "scharr_h")


def scharr_v(image, *, mode="reflect", cval=0.0):
    return _edge_filter(image, "scharr", 1, mode, cval, "scharr_v")


def prewitt(image, *, axis=None, mode="reflect", cval=0.0):
    """Prewitt edge magnitude or derivative along `axis` (as sobel, smoothing ``[1 1 1]/3``)."""
    return _edge_filter(image, "prewitt", axis, mode, cval, "prewitt")


def prewitt_h(image, *, mode="reflect", cval=0.0):
    return _edge_filter(image, "prewitt", 0, mode, cval, "prewitt_h")


def prewitt_v(image, *, mode="reflect", cval=0.0):
    return _edge_filter(image, "prewitt", 1, mode, cval, "prewitt_v")


def roberts_pos_diag(image, *, mode="reflect", cval=0.0):
    """Roberts cross ``[[1, 0], [0, -1]]`` convolved: the derivative along the main diagonal."""
    _check_mode(mode, cval, "roberts_pos_diag")
    im = _Images(image, "roberts_pos_diag")
    return im.out(_convolve(im.x, _ROBERTS_POS, mode, cval))


def roberts_neg_diag(image, *, mode="reflect", cval=0.0):
    """Roberts cross ``[[0, 1], [-1, 0]]`` convolved: the derivative along the anti-diagonal."""
    _check_mode(mode, cval, "roberts_neg_diag")
    im = _Images(image, "roberts_neg_diag")
    return im.out(_convolve(im.x, _ROBERTS_NEG, mode, cval))


def roberts(image, *, mode="reflect", cval=0.0):
    """Roberts cross magnitude ``sqrt((pos**2 + neg**2) / 2)``."""
    _check_mode(mode, cval, "roberts")
    im = _Images(image, "roberts")
    p = _convolve(im.x, _ROBERTS_POS, mode, cval)
    n = _convolve(im.x, _ROBERTS_NEG, mode, cval)
    return im.out(F.sqrt((p * p + n * n) * 0.5))


def laplace(image, ksize=3, *, mode="reflect", cval=0.0):
    """The discrete Laplacian ``[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]`` (skimage.filters.laplace;
    positive on the dark side of an edge). Only ksize=3 exists there, and here."""
    if ksize != 3:
        raise ValueError(f"laplace: ksize must be 3 (the 3x3 operator), but got {ksize!r}")
    _check_mode(mode, cval, "laplace")
    im = _Images(image, "laplace")
    kernel = np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
    return im.out(_convolve(im.x, kernel, mode, cval))


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The 1-D kernel scipy.ndimage.gaussian_filter uses: radius ``int(truncate * sigma + 0.5)``,
    ``exp(-x**2 / (2 sigma**2))`` normalised to sum 1 (float64)."""
    for arg, v in (("sigma", sigma), ("truncate", truncate)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0 \
                or not math.isfinite(v):
            raise ValueError(f"gaussian_kernel: {arg} must be a finite number >= 0, but got "
                             f"{v!r}")
    radius = int(truncate * sigma + 0.5)
    if sigma == 0 or radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _sigma_pair(sigma, fn):
    if isinstance(sigma, (tuple, list)):
        if len(sigma) != 2:
            raise ValueError(f"{fn}: sigma must be a number or a (rows, columns) pair, but got "
                             f"{sigma!r}")
        return sigma[0], sigma[1]
    return sigma, sigma


def _gaussian(x: Tensor, sigma, mode, cval, truncate, fn) -> Tensor:
    sy, sx = _sigma_pair(sigma, fn)
    ky, kx = gaussian_kernel(sy, truncate), gaussian_kernel(sx, truncate)
    # Separable: a column pass then a row pass, k + k multiplies per pixel instead of k * k.
    if len(ky) > 1:
        x = _convolve(x, ky[:, None], mode, cval)
    if len(kx) > 1:
        x = _convolve(x, kx[None, :], mode, cval)
    return x


def gaussian(image, sigma=1.0, *, mode="nearest", cval=0.0, truncate=4.0):
    """Gaussian blur (skimage.filters.gaussian on a float image, channels kept apart); sigma is a
    number or a (rows, columns) pair; the default border is 'nearest', as skimage's."""
    _check_mode(mode, cval, "gaussian")
    im = _Images(image, "gaussian")
    return im.out(_gaussian(im.x, sigma, mode, cval, truncate, "gaussian"))


def gradient_direction(image, operator="sobel", *, mode="reflect", cval=0.0):
    """The gradient's angle in radians, ``atan2(d/dy, d/dx)`` with x to the right and y down, in
    (-pi, pi]: 0 where the image gets brighter to the right, pi/2 where it gets brighter
    downwards. operator: 'sobel', 'scharr', 'prewitt' or 'roberts'. Returns a numpy array."""
    _check_mode(mode, cval, "gradient_direction")
    im = _Images(image, "gradient_direction")
    with no_grad():
        if operator in _SMOOTH:
            gy = _convolve(im.x, _edge_kernel(operator, 0), mode, cval)
            gx = _convolve(im.x, _edge_kernel(operator, 1), mode, cval)
        elif operator == "roberts":
            # pos = I(y+1, x+1) - I(y, x) and neg = I(y+1, x) - I(y, x+1) are the derivatives
            # along (1, 1) and (1, -1) in (y, x); rotating them back gives d/dy and d/dx.
            p = _convolve(im.x, _ROBERTS_POS, mode, cval)
            n = _convolve(im.x, _ROBERTS_NEG, mode, cval)
            gy, gx = (p + n) * 0.5, (p - n) * 0.5
        else:
            raise ValueError(f"gradient_direction: operator must be 'sobel', 'scharr', "
                             f"'prewitt' or 'roberts', but got {operator!r}")
        theta = np.arctan2(gy.numpy(), gx.numpy())
    return theta.reshape(im.shape).astype(np.float32)


# ---- Canny ---------------------------------------------------------------------------------------
def canny(image, sigma=1.0, low_threshold=None, high_threshold=None, use_quantiles=False, *,
          mode="constant", cval=0.0):
    """Canny edges as skimage.feature.canny: a bool numpy array of the image's shape.

    Steps: Gaussian blur (sigma; `mode` borders, and for 'constant' divided by the blurred
    ones so the border is not darkened); unnormalised Sobel gradients; non-maximum suppression
    interpolating the magnitude bilinearly along the gradient; double threshold (low/high,
    default 0.1 and 0.2 of the magnitude's units; for integer images given thresholds are
    divided by the dtype's maximum; use_quantiles=True takes them as quantiles of the magnitude);
    hysteresis keeps the low pixels 8-connected to a high one. The one-pixel frame is never an
    edge."""
    fn = "canny"
    _check_mode(mode, cval, fn)
    dtype_max = 1.0
    if not isinstance(image, Tensor):
        arr = np.asarray(image)
        if arr.dtype.kind in "iu":
            dtype_max = float(np.iinfo(arr.dtype).max)
    im = _Images(image, fn)
    low, high = _thresholds(low_threshold, high_threshold, use_quantiles, dtype_max, fn)
    with no_grad():
        x = im.x.detach()
        smoothed = _gaussian(x, sigma, mode, cval, 4.0, fn)
        if mode == "constant":
            ones = tensor(np.ones(x.shape[-2:], np.float32)[None, None])
            bleed = _gaussian(ones, sigma, mode, cval, 4.0, fn).numpy()
            smoothed = smoothed / tensor(bleed + np.finfo(np.float32).eps)
        # ndimage.sobel's unnormalised [-1 0 1] x [1 2 1] = 4 x skimage's normalised kernel.
        gy = (_convolve(smoothed, _edge_kernel("sobel", 0), "reflect", 0.0) * 4.0).numpy()
        gx = (_convolve(smoothed, _edge_kernel("sobel", 1), "reflect", 0.0) * 4.0).numpy()
    out = np.zeros(gy.shape, bool)
    for i in range(gy.shape[0]):
        gi, gj = gy[i, 0], gx[i, 0]
        magnitude = np.sqrt(gi * gi + gj * gj)
        lo, hi = low, high
        if use_quantiles:
            lo, hi = np.percentile(magnitude, [100.0 * low, 100.0 * high])
        maxima = non_maximum_suppression(magnitude, gi, gj) & (magnitude >= lo)
        out[i, 0] = hysteresis(maxima, maxima & (magnitude >= hi))
    return out.reshape(im.shape)


def _thresholds(low, high, use_quantiles, dtype_max, fn):
    values = []
    for arg, v, default in (("low_threshold", low, 0.1), ("high_threshold", high, 0.2)):
        if v is None:
            values.append(default)
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
            raise TypeError(f"{fn}: {arg} must be a number, but got {v!r}")
        if use_quantiles:
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{fn}: with use_quantiles=True, {arg} must be in [0, 1], but "
                                 f"got {v}")
            values.append(float(v))
        else:
            values.append(float(v) / dtype_max)
    if values[1] < values[0]:
        raise ValueError(f"{fn}: low_threshold ({values[0]}) must not exceed high_threshold "
                         f"({values[1]})")
    return values


def non_maximum_suppression(magnitude: np.ndarray, grad_y: np.ndarray,
                            grad_x: np.ndarray) -> np.ndarray:
    """Thins edges: True where the (H, W) magnitude is >= both neighbours along the gradient.

    The neighbour in direction (dy, dx) is interpolated between the pixel one step along the
    dominant axis and the diagonal pixel, weighted by the ratio of the smaller to the larger
    component. Zero-magnitude pixels and the one-pixel frame are never maxima."""
    h, w = magnitude.shape
    ay, ax = np.abs(grad_y), np.abs(grad_x)
    sy, sx = np.sign(grad_y).astype(np.intp), np.sign(grad_x).astype(np.intp)
    rows_dominate = ay >= ax
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(rows_dominate, ax / ay, ay / ax)
    weight = np.nan_to_num(weight, nan=0.0)
    # One step along the dominant axis, and the diagonal step (both components' signs).
    axis_y = np.where(rows_dominate, sy, 0)
    axis_x = np.where(rows_dominate, 0, sx)
    padded = np.pad(magnitude, 1)
    yy, xx = np.mgrid[0:h, 0:w]
    keep = (magnitude > 0)
    for direction in (1, -1):
        on_axis = padded[yy + 1 + direction * axis_y, xx + 1 + direction * axis_x]
        diagonal = padded[yy + 1 + direction * sy, xx + 1 + direction * sx]
        keep &= weight * diagonal + (1.0 - weight) * on_axis <= magnitude
    keep[0, :] = keep[-1, :] = keep[:, 0] = keep[:, -1] = False
    return keep


def hysteresis(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """The pixels of `weak` (bool (H, W)) 8-connected through `weak` to a pixel of `strong`.

    Connected components on the weak pixels alone (a sparse graph: each pixel and its forward
    neighbours), by hooking every edge's larger root under its smaller one and then jumping
    pointers to the roots, repeated until each edge joins one root: a few vectorised passes
    even for long edge chains, where growing the strong set by dilation takes one pass per
    pixel of chain."""
    h, w = weak.shape
    index = np.full((h + 1, w + 2), -1, np.intp)  # a -1 frame: neighbours off the image
    ys, xs = np.nonzero(weak)
    index[ys, xs + 1] = np.arange(len(ys))
    us, vs = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each undirected neighbour pair once
        other = index[ys + dy, xs + 1 + dx]
        linked = other >= 0
        us.append(np.nonzero(linked)[0])
        vs.append(other[linked])
    u, v = np.concatenate(us), np.concatenate(vs)
    parent = np.arange(len(ys))
    while True:
        pu, pv = parent[u], parent[v]
        apart = pu != pv
        if not apart.any():
            break
        np.minimum.at(parent, np.maximum(pu, pv)[apart], np.minimum(pu, pv)[apart])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    root_is_strong = np.zeros(len(ys), bool)
    root_is_strong[parent[strong[ys, xs]]] = True
    out = np.zeros_like(weak)
    out[ys, xs] = root_is_strong[parent]
    return out
