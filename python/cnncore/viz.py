"""Pictures of what a network does, each written as a PNG (matplotlib, the optional `viz` extra,
imported inside each function; the Agg canvas is used directly, so no display is needed and
pyplot's global state is never touched).

    viz.plot_filters(model, "filters.png")                  # first conv layer, one tile a filter
    viz.plot_feature_maps(model, "layer1", x, "maps.png")   # any named layer's maps for x
    viz.plot_history(trainer.history, "curves.png")         # loss / metric curves per epoch
    viz.draw_detections(image, boxes, "det.png", labels=labels, scores=scores)
    viz.draw_masks(image, mask, "seg.png")
    viz.plot_saliency(model, x, "saliency.png", target=3)   # |d score / d input| (Simonyan 2013)

Tile pictures (filters, feature maps, masks, saliency, save_image) are exact pixel mosaics: their
size is given in the docstrings. Plots (history, detections) are figsize * dpi pixels.
"""

from __future__ import annotations

import numpy as np

from .io import atomic_write
from .tensor import Tensor, no_grad, tensor

__all__ = ["save_image", "tile_images", "plot_filters", "plot_feature_maps", "plot_history",
           "draw_detections", "draw_masks", "saliency", "plot_saliency"]


def _mpl():
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("cnncore.viz needs matplotlib: pip install 'cnncore[viz]'") from e
    return matplotlib


def _figure(figsize, dpi):
    _mpl()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, path) -> None:
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=fig.dpi)


def _numpy(x, op: str, arg: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().numpy()
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {arg} must be an array or Tensor, but got "
                        f"{type(x).__name__}") from None


def _hwc(image, op: str) -> np.ndarray:
    """(C, H, W), (H, W, C) or (H, W) with C in {1, 3, 4} -> float (H, W, 3|4) or (H, W)."""
    a = _numpy(image, op, "image").astype(np.float32)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (3, 4):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"{op}: image must be (C, H, W), (H, W, C) with 1, 3 or 4 channels, "
                         f"or (H, W), but got shape {a.shape}")
    return a


def _check_scale(scale, op: str) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{op}: scale must be a positive int, but got {scale!r}")
    return scale


def save_image(image, path, scale: int = 1, cmap: str = "gray", vmin=None, vmax=None) -> None:
    """Writes image ((C, H, W), (H, W, C) or (H, W); RGB values in [0, 1], gray ones mapped
    through cmap from [vmin, vmax], default their range) as a PNG of exactly (H * scale) x
    (W * scale) pixels, each pixel a scale x scale block."""
    _mpl()
    from matplotlib import image as mimage
    a = _hwc(image, "save_image")
    scale = _check_scale(scale, "save_image")
    a = a.repeat(scale, 0).repeat(scale, 1)
    if a.ndim == 3:
        a = np.clip(a, 0.0, 1.0)
    with atomic_write(path) as f:
        mimage.imsave(f, a, cmap=cmap, vmin=vmin, vmax=vmax, format="png")


def tile_images(tiles, ncols: int = 8, pad: int = 1, normalize: str = "each") -> np.ndarray:
    """Tiles (K, h, w) or (K, h, w, 3) -> one mosaic (rows*(h+pad)+pad, ncols'*(w+pad)+pad[, 3])
    with ncols' = min(ncols, K), rows = ceil(K / ncols'), on a white background. normalize:
    'each' maps every tile's own range to [0, 1], 'all' the common range, 'none' leaves them."""
    t = np.asarray(tiles, np.float32)
    if t.ndim not in (3, 4) or len(t) == 0:
        raise ValueError(f"tile_images: tiles must be (K, h, w) or (K, h, w, 3) with K >= 1, but "
                         f"got shape {t.shape}")
    if normalize not in ("each", "all", "none"):
        raise ValueError(f"tile_images: normalize must be 'each', 'all' or 'none', but got "
                         f"{normalize!r}")
    if normalize != "none":
        axes = tuple(range(1, t.ndim)) if normalize == "each" else None
        lo = t.min(axis=axes, keepdims=True)
        span = t.max(axis=axes, keepdims=True) - lo
        t = (t - lo) / np.where(span > 0, span, 1.0)
    k, h, w = t.shape[:3]
    ncols = max(1, min(ncols, k))
    rows = -(-k // ncols)
    out = np.ones((rows * (h + pad) + pad, ncols * (w + pad) + pad) + t.shape[3:], np.float32)
    for i in range(k):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = t[i]
    return out


def _first_conv_weight(model_or_weight) -> np.ndarray:
    from .nn import Conv2d, Module
    if isinstance(model_or_weight, Module):
        for m in model_or_weight.modules():
            if isinstance(m, Conv2d):
                return m.weight.detach().numpy()
        raise ValueError(f"plot_filters: {type(model_or_weight).__name__} has no Conv2d layer")
    w = _numpy(model_or_weight, "plot_filters", "model_or_weight")
    if w.ndim != 4:
        raise ValueError(f"plot_filters: a weight must be 4-D (out, in, kh, kw), but got shape "
                         f"{w.shape}")
    return w


def plot_filters(model_or_weight, path, ncols: int = 8, scale: int = 8, pad: int = 1) -> tuple:
    """The first Conv2d layer's filters (or a given weight (O, C, kh, kw)) as tiles: RGB when
    C == 3, else each input channel of each filter as a gray tile. Each tile is normalised to
    its own range. The PNG is scale times the mosaic of tile_images (pad between tiles);
    returns its (height, width) in pixels."""
    w = _first_conv_weight(model_or_weight).astype(np.float32)
    tiles = w.transpose(0, 2, 3, 1) if w.shape[1] == 3 else w.reshape(-1, *w.shape[2:])
    mosaic = tile_images(tiles, ncols=ncols if w.shape[1] == 3 else ncols * w.shape[1],
                         pad=pad)
    save_image(mosaic, path, scale=scale, vmin=0.0, vmax=1.0)
    return mosaic.shape[0] * scale, mosaic.shape[1] * scale


def plot_feature_maps(model, layer: str, x, path, max_maps: int = 32, ncols: int = 8,
                      scale: int = 4, pad: int = 1) -> tuple:
    """The feature maps (first max_maps channels) the named layer (a name from
    model.named_modules()) outputs for the first image of x, tiled, each normalised to its own
    range (viridis). Returns the PNG's (height, width) in pixels."""
    from .style import FeatureExtractor
    xt = x if isinstance(x, Tensor) else tensor(_numpy(x, "plot_feature_maps", "x"))
    if xt.ndim == 3:
        xt = tensor(xt.detach().numpy()[None])
    was_training = model.training
    model.eval()
    try:
        with no_grad(), FeatureExtractor(model, [layer]) as ext:
            fmap = ext(xt[0:1])[layer]
    finally:
        model.train(was_training)
    f = fmap.detach().numpy()
    if f.ndim != 4:
        raise ValueError(f"plot_feature_maps: layer {layer!r} outputs shape {f.shape}, not "
                         f"feature maps (N, C, H, W)")
    mosaic = tile_images(f[0, :max_maps], ncols=ncols, pad=pad)
    save_image(mosaic, path, scale=scale, cmap="viridis", vmin=0.0, vmax=1.0)
    return mosaic.shape[0] * scale, mosaic.shape[1] * scale


def plot_history(history, path, keys=None, figsize=(8.0, 4.0), dpi: int = 100) -> tuple:
    """Training curves from a Trainer history (a list of dicts, one an epoch): keys (default:
    every numeric key but epoch/lr/seconds/images_per_second) against the epoch; losses on the
    left panel, other metrics on the right (when there are any). figsize * dpi pixels;
    returns (height, width)."""
    if not isinstance(history, (list, tuple)) or not history or \
            not all(isinstance(r, dict) for r in history):
        raise ValueError("plot_history: history must be a non-empty list of dicts (one per "
                         "epoch), as Trainer.fit returns")
    skip = {"epoch", "lr", "seconds", "images_per_second"}
    if keys is None:
        keys = [k for k in dict.fromkeys(k for r in history for k in r)
                if k not in skip and all(isinstance(r.get(k, 0.0), (int, float)) for r in history)]
    missing = [k for k in keys if not any(k in r for r in history)]
    if missing or not keys:
        raise ValueError(f"plot_history: keys {missing or keys} not in the history (it has "
                         f"{', '.join(dict.fromkeys(k for r in history for k in r))})")
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    losses = [k for k in keys if "loss" in k]
    others = [k for k in keys if "loss" not in k]
    fig = _figure(figsize, dpi)
    panels = [p for p in (losses, others) if p]
    for i, group in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for k in group:
            pts = [(e, r[k]) for e, r in zip(epochs, history) if k in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if group is losses else "metric")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)
    return round(figsize[1] * dpi), round(figsize[0] * dpi)


def _image_axes(image, scale, op):
    a = _hwc(image, op)
    scale = _check_scale(scale, op)
    h, w = a.shape[:2]
    dpi = 100
    fig = _figure((w * scale / dpi, h * scale / dpi), dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_axis_off()
    ax.imshow(np.clip(a, 0, 1) if a.ndim == 3 else a, cmap="gray", interpolation="nearest",
              extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    return fig, ax, (h * scale, w * scale)


def draw_detections(image, boxes, path, labels=None, scores=None, class_names=None,
                    scale: int = 4, box_format: str = "xyxy") -> tuple:
    """Boxes (K, 4) in pixels of image ('xyxy': x1, y1, x2, y2; 'cxcywh': centre, width,
    height) drawn over image, each with its label (class_names[label] when given) and score.
    The PNG is (H * scale) x (W * scale) pixels; returns that (height, width)."""
    matplotlib = _mpl()
    from matplotlib.patches import Rectangle
    b = _numpy(boxes, "draw_detections", "boxes").astype(np.float64).reshape(-1, 4) \
        if len(boxes) else np.zeros((0, 4))
    if box_format not in ("xyxy", "cxcywh"):
        raise ValueError(f"draw_detections: box_format must be 'xyxy' or 'cxcywh', but got "
                         f"{box_format!r}")
    if box_format == "cxcywh":
        b = np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
    for arg, v in (("labels", labels), ("scores", scores)):
        if v is not None and len(v) != len(b):
            raise ValueError(f"draw_detections: {len(v)} {arg} for {len(b)} boxes")
    fig, ax, size = _image_axes(image, scale, "draw_detections")
    cmap = matplotlib.colormaps["tab10"]
    for i, (x1, y1, x2, y2) in enumerate(b):
        lab = None if labels is None else int(_numpy(labels, "draw_detections", "labels")[i])
        color = cmap((lab or 0) % 10)
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                               edgecolor=color, linewidth=2))
        text = [] if lab is None else [class_names[lab] if class_names else str(lab)]
        if scores is not None:
            text.append(f"{float(_numpy(scores, 'draw_detections', 'scores')[i]):.2f}")
        if text:
            ax.text(x1 - 0.5, y1 - 0.5, " ".join(text), color="white", fontsize=8,
                    va="bottom", bbox={"facecolor": color, "pad": 1, "linewidth": 0})
    _save_figure(fig, path)
    return size


def draw_masks(image, mask, path, alpha: float = 0.5, num_classes=None, scale: int = 4) -> tuple:
    """A class mask (H, W) of ints (0 = background, left clear) blended over image with one
    tab10/tab20 colour a class. The PNG is exactly (H * scale) x (W * scale); returns it."""
    matplotlib = _mpl()
    a = _hwc(image, "draw_masks")
    m = _numpy(mask, "draw_masks", "mask")
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape != a.shape[:2] or m.dtype.kind not in "iub":
        raise ValueError(f"draw_masks: mask must be integer class ids of the image's size "
                         f"{a.shape[:2]}, but got {m.dtype} {m.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"draw_masks: alpha must be in [0, 1], but got {alpha}")
    rgb = np.clip(a[..., :3] if a.ndim == 3 else np.repeat(a[..., None], 3, -1), 0, 1)
    if a.ndim == 2 and a.max() > a.min():
        rgb = (rgb - a.min()) / (a.max() - a.min())
    n = int(m.max()) + 1 if num_classes is None else num_classes
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    colors = np.array([cmap(i % cmap.N)[:3] for i in range(max(n, 1))], np.float32)
    over = colors[np.clip(m, 0, len(colors) - 1).astype(np.int64)]
    fg = (m > 0)[..., None]
    out = np.where(fg, (1 - alpha) * rgb + alpha * over, rgb)
    save_image(out, path, scale=scale)
    return out.shape[0] * scale, out.shape[1] * scale


def saliency(model, x, target=None) -> np.ndarray:
    """The gradient of the class score (the logit, before softmax) with respect to the input:
    d model(x)[n, target[n]] / d x[n] for every image, shape of x. target: an int, one int per
    image, or None for each image's top class. The model runs in eval mode (restored after)."""
    xa = _numpy(x, "saliency", "x").astype(np.float32)
    was_training = model.training
    model.eval()
    try:
        xt = tensor(xa, requires_grad=True)
        scores = model(xt)
        if scores.ndim != 2:
            raise ValueError(f"saliency: the model must output scores (N, classes), but gave "
                             f"shape {scores.shape}")
        n, k = scores.shape
        if target is None:
            t = scores.detach().numpy().argmax(1)
        else:
            t = np.broadcast_to(np.asarray(target, np.int64), (n,))
        if ((t < 0) | (t >= k)).any():
            raise ValueError(f"saliency: target must be a class in [0, {k}), but got {target}")
        onehot = np.zeros((n, k), np.float32)
        onehot[np.arange(n), t] = 1.0
        scores.backward(tensor(onehot))
        return xt.grad.numpy().copy()
    finally:
        model.train(was_training)


def plot_saliency(model, x, path, target=None, scale: int = 8) -> tuple:
    """The first image of x beside its saliency map max_c |d score / d x_c| (Simonyan et al.):
    a mosaic of two tiles (tile_images, pad 1), scale times. Returns (height, width)."""
    xa = _numpy(x, "plot_saliency", "x").astype(np.float32)
    if xa.ndim == 3:
        xa = xa[None]
    g = saliency(model, xa[:1], target)[0]
    sal = np.abs(g).max(0)
    img = xa[0].mean(0)  # the image in gray, so both tiles share one colour map
    mosaic = tile_images(np.stack([img, sal]), ncols=2, pad=1)
    save_image(mosaic, path, scale=scale, cmap="inferno", vmin=0.0, vmax=1.0)
    return mosaic.shape[0] * scale, mosaic.shape[1] * scale
