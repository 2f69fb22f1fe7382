"""YOLO-style object detection: boxes, IoU, non-maximum suppression, grid + anchor targets, the
YOLO loss, decoding, mAP@0.5, a synthetic dataset and a small detector.

    from cnncore import detection as D
    ds = D.SyntheticShapes(1000, seed=0)                 # (3, 64, 64) images, xyxy pixel boxes
    model = D.TinyYOLO(num_classes=3, anchors=D.DEFAULT_ANCHORS)
    target = D.encode_targets(boxes, labels, anchors, grid_size=8, num_classes=3, image_size=64)
    loss = D.yolo_loss(model(x), target, anchors)        # backpropagates
    dets = D.decode(model(x), anchors, image_size=64)     # [(boxes, scores, labels)] per image
    D.mean_average_precision(dets, [(boxes, labels), ...])["map"]

Box functions follow torchvision.ops (box_area, box_convert, box_iou, nms, batched_nms): the same
argument names and semantics; they take numpy arrays or cnncore Tensors and give back the same.

Layout of a prediction: (N, A * (5 + C), S, S) from a conv head, A anchors per cell; per anchor
the channels are (tx, ty, tw, th, objectness logit, C class logits). A box decodes as
``cx = (col + sigmoid(tx)) / S``, ``cy = (row + sigmoid(ty)) / S``, ``w = anchor_w * exp(tw)``,
``h = anchor_h * exp(th)`` in fractions of the image (anchors too are fractions of the image).
"""

from __future__ import annotations

import numbers

import numpy as np

from . import functional as F
from . import nn
from .tensor import Tensor, tensor

__all__ = [
    "box_area", "box_convert", "box_iou", "nms", "batched_nms", "DEFAULT_ANCHORS",
    "encode_targets", "decode_targets", "yolo_loss", "decode", "average_precision",
    "mean_average_precision", "SyntheticShapes", "TinyYOLO", "SHAPE_CLASSES",
]

# (w, h) as fractions of the image: a small, a wide and a tall prior for 64-pixel scenes.
DEFAULT_ANCHORS = ((0.18, 0.18), (0.32, 0.22), (0.22, 0.32))
SHAPE_CLASSES = ("rectangle", "disc", "triangle")
_FORMATS = ("xyxy", "xywh", "cxcywh")


# ---- boxes ---------------------------------------------------------------------------------------
def _boxes(boxes, fn: str, arg: str = "boxes") -> np.ndarray:
    arr = boxes.detach().numpy() if isinstance(boxes, Tensor) else np.asarray(boxes)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{fn}: {arg} must hold numbers, but got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 4:
        if arr.size == 0:
            return np.zeros((0, 4))
        raise ValueError(f"{fn}: {arg} must have shape (N, 4), but got {arr.shape}")
    return arr.astype(np.float64)


def _like(value: np.ndarray, template, dtype=np.float32):
    """Gives back a Tensor when the caller passed one, else a numpy array."""
    value = np.ascontiguousarray(value, dtype=dtype)
    return tensor(value) if isinstance(template, Tensor) else value


def box_area(boxes):
    """Areas of (N, 4) xyxy boxes."""
    b = _boxes(boxes, "box_area")
    return _like((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), boxes)


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Converts (N, 4) boxes between 'xyxy', 'xywh' (corner + size) and 'cxcywh'."""
    for arg, v in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if v not in _FORMATS:
            raise ValueError(f"box_convert: {arg} must be one of {list(_FORMATS)}, but got "
                             f"{v!r}")
    return _like(_convert(_boxes(boxes, "box_convert"), in_fmt, out_fmt), boxes)


def _convert(b: np.ndarray, in_fmt: str, out_fmt: str) -> np.ndarray:
    if in_fmt == out_fmt:
        return b
    if in_fmt == "xywh":
        b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
    elif in_fmt == "cxcywh":
        b = np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1)
    if out_fmt == "xywh":
        return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
    if out_fmt == "cxcywh":
        return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)
    return b


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy float64 -> (N, M) IoU; 0 where the union is empty."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def box_iou(boxes1, boxes2, *, fmt: str = "xyxy"):
    """(N, M) intersection over union of two sets of boxes (torchvision.ops.box_iou), given as
    'xyxy' (default, as torchvision) or, with fmt=, 'cxcywh' / 'xywh'."""
    if fmt not in _FORMATS:
        raise ValueError(f"box_iou: fmt must be one of {list(_FORMATS)}, but got {fmt!r}")
    a = _convert(_boxes(boxes1, "box_iou", "boxes1"), fmt, "xyxy")
    b = _convert(_boxes(boxes2, "box_iou", "boxes2"), fmt, "xyxy")
    return _like(_iou(a, b), boxes1)


def _scores(scores, n: int, fn: str, arg: str = "scores") -> np.ndarray:
    s = scores.detach().numpy() if isinstance(scores, Tensor) else np.asarray(scores)
    if s.shape != (n,):
        raise ValueError(f"{fn}: {arg} must have shape ({n},) to match boxes, but got {s.shape}")
    return s


def _nms(b: np.ndarray, s: np.ndarray, iou_threshold: float) -> np.ndarray:
    order = np.argsort(-s, kind="stable")
    iou = _iou(b[order], b[order])
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[np.array(keep, np.int64)]


def _threshold(v, fn):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or np.isnan(v):
        raise TypeError(f"{fn}: iou_threshold must be a number, but got {v!r}")
    return float(v)


def nms(boxes, scores, iou_threshold: float):
    """torchvision.ops.nms: indices (int64) of the boxes kept, by decreasing score; a box is
    dropped when its IoU with a higher-scoring kept box is > iou_threshold."""
    b = _boxes(boxes, "nms")
    s = _scores(scores, len(b), "nms")
    keep = _nms(b, s, _threshold(iou_threshold, "nms"))
    return _like(keep, boxes, np.int64)


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """torchvision.ops.batched_nms: NMS within each category of `idxs` (boxes of different
    categories never suppress each other); indices kept, by decreasing score."""
    b = _boxes(boxes, "batched_nms")
    s = _scores(scores, len(b), "batched_nms")
    c = _scores(idxs, len(b), "batched_nms", "idxs")
    keep = _batched_nms(b, s, c, _threshold(iou_threshold, "batched_nms"))
    return _like(keep, boxes, np.int64)


def _batched_nms(b: np.ndarray, s: np.ndarray, c: np.ndarray, thr: float) -> np.ndarray:
    if len(b) == 0:
        return np.zeros(0, np.int64)
    # torchvision's trick: shift each category to its own region so boxes never overlap across
    # categories, then one NMS handles all of them.
    offset = (c.astype(np.float64) - c.min()) * (b.max() - b.min() + 1.0)
    return _nms(b + offset[:, None], s, thr)


# ---- YOLO targets, loss, decoding ----------------------------------------------------------------
def _anchors(anchors, fn: str) -> np.ndarray:
    a = np.asarray(anchors, np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or len(a) == 0 or not (a > 0).all():
        raise ValueError(f"{fn}: anchors must be a non-empty list of positive (w, h) pairs, but "
                         f"got {anchors!r}")
    return a


def encode_targets(boxes, labels, anchors, grid_size: int, num_classes: int,
                   image_size=1.0) -> np.ndarray:
    """YOLO targets for one image: (A, 6, S, S) float32 with channels (tx*, ty*, tw*, th*,
    object, class index).

    Each box (xyxy in pixels of an image_size-pixel square, or (H, W) pair) goes to the cell
    holding its centre and to the anchor whose shape (w, h) overlaps it best, as in YOLOv2:
    tx*, ty* are the centre's offset inside the cell (in [0, 1)), tw* = log(w / anchor_w). When
    two boxes claim the same cell and anchor, the larger one is kept."""
    fn = "encode_targets"
    a = _anchors(anchors, fn)
    s = int(grid_size)
    b = _boxes(boxes, fn)
    lab = np.asarray(labels.numpy() if isinstance(labels, Tensor) else labels).reshape(-1)
    if len(lab) != len(b):
        raise ValueError(f"{fn}: labels must have one entry per box ({len(b)}), but got "
                         f"{len(lab)}")
    if len(lab) and (lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(f"{fn}: labels must be in [0, {num_classes}), but got {lab.tolist()}")
    ih, iw = (image_size, image_size) if np.isscalar(image_size) else image_size
    cxcywh = _convert(b, "xyxy", "cxcywh") / np.array([iw, ih, iw, ih], np.float64)
    target = np.zeros((len(a), 6, s, s), np.float32)
    best_area = np.zeros((len(a), s, s))
    for (cx, cy, w, h), label in zip(cxcywh, lab):
        if w <= 0 or h <= 0:
            continue
        col, row = min(int(cx * s), s - 1), min(int(cy * s), s - 1)
        inter = np.minimum(w, a[:, 0]) * np.minimum(h, a[:, 1])
        k = int(np.argmax(inter / (w * h + a[:, 0] * a[:, 1] - inter)))
        if w * h <= best_area[k, row, col]:
            continue
        best_area[k, row, col] = w * h
        target[k, :, row, col] = (cx * s - col, cy * s - row, np.log(w / a[k, 0]),
                                  np.log(h / a[k, 1]), 1.0, label)
    return target


def decode_targets(target, anchors, image_size=1.0):
    """The inverse of encode_targets: (A, 6, S, S) -> (boxes xyxy in pixels, labels)."""
    a = _anchors(anchors, "decode_targets")
    t = np.asarray(target, np.float64)
    s = t.shape[-1]
    ih, iw = (image_size, image_size) if np.isscalar(image_size) else image_size
    k, row, col = np.nonzero(t[:, 4] > 0.5)
    cx = (col + t[k, 0, row, col]) / s
    cy = (row + t[k, 1, row, col]) / s
    w = a[k, 0] * np.exp(t[k, 2, row, col])
    h = a[k, 1] * np.exp(t[k, 3, row, col])
    boxes = _convert(np.stack([cx, cy, w, h], 1), "cxcywh", "xyxy") * [iw, ih, iw, ih]
    return boxes.astype(np.float32), t[k, 5, row, col].astype(np.int64)


def _split(pred: Tensor, num_anchors: int, fn: str):
    n, ch, s1, s2 = pred.shape
    if ch % num_anchors or ch // num_anchors < 6:
        raise ValueError(f"{fn}: prediction must have A * (5 + C) channels with A = "
                         f"{num_anchors} anchors and C >= 1 classes, but got {ch}")
    return pred.reshape((n, num_anchors, ch // num_anchors, s1, s2))


def yolo_loss(pred, target, anchors, lambda_coord: float = 5.0, lambda_noobj: float = 0.5):
    """The YOLO loss (summed over the grid, averaged over the batch), from cnncore ops so it
    backpropagates into `pred` (N, A * (5 + C), S, S).

    target: (N, A, 6, S, S) from encode_targets (stacked). Terms, as in YOLOv1/v2:
    lambda_coord * squared error of (sigmoid(tx), sigmoid(ty), tw, th) on the anchors that hold
    an object; binary cross entropy of the objectness logit (target 1) there and, weighted by
    lambda_noobj, (target 0) everywhere else; cross entropy of the class logits where objects
    are."""
    fn = "yolo_loss"
    a = _anchors(anchors, fn)
    p = _split(pred, len(a), fn)
    t = target.numpy() if isinstance(target, Tensor) else np.asarray(target, np.float32)
    n, na, _, s1, s2 = p.shape
    if t.shape != (n, na, 6, s1, s2):
        raise ValueError(f"{fn}: target must have shape {(n, na, 6, s1, s2)} for this "
                         f"prediction, but got {t.shape}")
    obj = t[:, :, 4:5]                                      # (N, A, 1, S, S)
    coord_w = np.ascontiguousarray(np.repeat(obj, 4, axis=2), np.float32)
    xy = F.sigmoid(p[:, :, 0:2])
    wh = p[:, :, 2:4]
    coord = F.mse_loss(F.cat([xy, wh], 2), tensor(np.ascontiguousarray(t[:, :, 0:4])),
                       reduction="sum", weight=tensor(coord_w))
    obj_weight = np.ascontiguousarray(obj + lambda_noobj * (1.0 - obj), np.float32)
    objectness = F.binary_cross_entropy_with_logits(
        p[:, :, 4:5], tensor(np.ascontiguousarray(obj)), weight=tensor(obj_weight),
        reduction="sum")
    classes = np.where(obj[:, :, 0] > 0.5, t[:, :, 5], -100).astype(np.int64)  # (N, A, S, S)
    logits = p[:, :, 5:].permute((0, 2, 1, 3, 4))          # (N, C, A, S, S)
    cls = F.cross_entropy(logits, tensor(classes), ignore_index=-100, reduction="sum") \
        if (classes >= 0).any() else (logits * 0.0).sum()
    return (lambda_coord * coord + objectness + cls) * (1.0 / n)


def decode(pred, anchors, conf_threshold: float = 0.25, iou_threshold: float = 0.45,
           image_size=1.0, max_detections: int = 100):
    """Predictions (N, A * (5 + C), S, S) -> per image (boxes xyxy in pixels, scores, labels),
    numpy, after per-class NMS; score = sigmoid(objectness) * softmax(class) of the best class,
    kept when >= conf_threshold."""
    a = _anchors(anchors, "decode")
    p = _split(pred, len(a), "decode").detach().numpy().astype(np.float64)
    n, _, _, s1, s2 = p.shape
    ih, iw = (image_size, image_size) if np.isscalar(image_size) else image_size
    rows, cols = np.mgrid[0:s1, 0:s2]
    sig = 1.0 / (1.0 + np.exp(-p[:, :, :2]))
    cx = (cols + sig[:, :, 0]) / s2
    cy = (rows + sig[:, :, 1]) / s1
    w = a[None, :, 0, None, None] * np.exp(np.clip(p[:, :, 2], -10, 10))
    h = a[None, :, 1, None, None] * np.exp(np.clip(p[:, :, 3], -10, 10))
    objectness = 1.0 / (1.0 + np.exp(-p[:, :, 4]))
    logits = p[:, :, 5:]
    probs = np.exp(logits - logits.max(axis=2, keepdims=True))
    probs /= probs.sum(axis=2, keepdims=True)
    label = probs.argmax(axis=2)
    score = objectness * probs.max(axis=2)
    out = []
    for i in range(n):
        keep = score[i] >= conf_threshold
        boxes = _convert(np.stack([cx[i][keep], cy[i][keep], w[i][keep], h[i][keep]], 1),
                         "cxcywh", "xyxy") * [iw, ih, iw, ih]
        sc, lab = score[i][keep], label[i][keep]
        k = _batched_nms(boxes, sc, lab, iou_threshold)[:max_detections]
        out.append((boxes[k].astype(np.float32), sc[k].astype(np.float32),
                    lab[k].astype(np.int64)))
    return out


# ---- mAP -----------------------------------------------------------------------------------------
def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC (2010+) all-point interpolated AP: the area under the precision envelope
    (precision made non-increasing from the right) over recall."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def mean_average_precision(detections, ground_truths, iou_threshold: float = 0.5,
                           num_classes: int | None = None) -> dict:
    """mAP at one IoU threshold, VOC style: per class, detections of all images by decreasing
    score; each is a true positive when its best-overlapping ground-truth box of that class in
    its image has IoU >= iou_threshold and was not matched before, else a false positive;
    AP by all-point interpolation; the mean over the classes that have ground truth.

    detections: per image (boxes (D, 4) xyxy, scores (D,), labels (D,)); ground_truths: per
    image (boxes (G, 4), labels (G,)). Returns {"map": float, "ap": {class: AP}}."""
    fn = "mean_average_precision"
    if len(detections) != len(ground_truths):
        raise ValueError(f"{fn}: detections and ground_truths must list the same images, but "
                         f"got {len(detections)} and {len(ground_truths)}")
    gts = [(_boxes(b, fn, "ground-truth boxes"), np.asarray(lab).reshape(-1))
           for b, lab in ground_truths]
    dets = [(_boxes(b, fn, "detection boxes"), np.asarray(s).reshape(-1),
             np.asarray(lab).reshape(-1)) for b, s, lab in detections]
    classes = set(np.concatenate([g[1] for g in gts]).tolist()) if gts else set()
    if num_classes is not None:
        classes = {c for c in classes if c < num_classes}
    ap = {}
    for c in sorted(classes):
        n_pos = sum(int((lab == c).sum()) for _, lab in gts)
        records = [(s, img, j) for img, (_, ss, ll) in enumerate(dets)
                   for j, (s, lab) in enumerate(zip(ss, ll)) if lab == c]
        records.sort(key=lambda r: -r[0])
        matched = [np.zeros(int((lab == c).sum()), bool) for _, lab in gts]
        tp = np.zeros(len(records))
        for r, (_, img, j) in enumerate(records):
            gt_boxes = gts[img][0][gts[img][1] == c]
            if len(gt_boxes) == 0:
                continue
            iou = _iou(dets[img][0][j:j + 1], gt_boxes)[0]
            best = int(np.argmax(iou))
            if iou[best] >= iou_threshold and not matched[img][best]:
                matched[img][best] = True
                tp[r] = 1
        ctp = np.cumsum(tp)
        recall = ctp / n_pos
        precision = ctp / np.arange(1, len(records) + 1)
        ap[int(c)] = average_precision(recall, precision)
    return {"map": float(np.mean(list(ap.values()))) if ap else 0.0, "ap": ap}


# ---- synthetic data ------------------------------------------------------------------------------
def _shape_mask(kind: int, box, yy, xx) -> np.ndarray:
    x0, y0, x1, y1 = box
    if kind == 0:
        return (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    if kind == 1:
        return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0
    # An upright isosceles triangle filling its box: apex at the top centre.
    t = (yy + 0.5 - y0) / (y1 - y0)
    return (t >= 0) & (t <= 1) & (np.abs(xx + 0.5 - cx) <= rx * t)


class SyntheticShapes:
    """Seeded images of rectangles, discs and triangles (SHAPE_CLASSES) on smooth, noisy
    backgrounds: item i -> (image (3, size, size) float32 in [0, 1], boxes (k, 4) float32 xyxy
    in pixels, labels (k,) int64), 1..max_objects objects whose boxes overlap by IoU <= 0.1.
    The same (seed, index) always gives the same image."""

    def __init__(self, num_images: int, image_size: int = 64, max_objects: int = 3,
                 min_size: int = 10, max_size: int = 26, seed: int = 0):
        for arg, v in (("num_images", num_images), ("image_size", image_size),
                       ("max_objects", max_objects), ("min_size", min_size),
                       ("max_size", max_size)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise ValueError(f"SyntheticShapes: {arg} must be a positive int, but got {v!r}")
        if not min_size <= max_size < image_size:
            raise ValueError(f"SyntheticShapes: need min_size <= max_size < image_size, but got "
                             f"{min_size}, {max_size}, {image_size}")
        self.num_images, self.image_size, self.max_objects = num_images, image_size, max_objects
        self.min_size, self.max_size, self.seed = min_size, max_size, seed
        self.num_classes = len(SHAPE_CLASSES)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int):
        image, boxes, labels, _ = self._render(index)
        return image, boxes, labels

    def mask(self, index: int) -> np.ndarray:
        """The image's segmentation mask (size, size) int64: 0 background, 1 + class of the
        shape covering the pixel (later shapes on top)."""
        return self._render(index)[3]

    def _render(self, index: int):
        if not -self.num_images <= index < self.num_images:
            raise IndexError(f"SyntheticShapes: index {index} out of range for "
                             f"{self.num_images} images")
        rng = np.random.default_rng([self.seed, index % self.num_images])
        size = self.image_size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
        base = rng.uniform(0.1, 0.5, 3)
        tilt = rng.uniform(-0.15, 0.15, (2, 3))
        image = (base[:, None, None] + tilt[0, :, None, None] * xx / size
                 + tilt[1, :, None, None] * yy / size)
        segmentation = np.zeros((size, size), np.int64)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            for _attempt in range(20):
                w, h = rng.integers(self.min_size, self.max_size + 1, 2)
                x0, y0 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
                box = np.array([x0, y0, x0 + w, y0 + h], np.float64)
                if not boxes or _iou(box[None], np.array(boxes)).max() <= 0.1:
                    break
            else:
                continue
            kind = int(rng.integers(0, 3))
            colour = rng.uniform(0.55, 1.0, 3) * rng.permutation([1.0, 0.6, 0.2])
            mask = _shape_mask(kind, box, yy, xx)
            image[:, mask] = colour[:, None]
            segmentation[mask] = kind + 1
            boxes.append(box)
            labels.append(kind)
        image = image + rng.normal(0, 0.03, image.shape)
        return (np.clip(image, 0, 1).astype(np.float32), np.array(boxes, np.float32).reshape(-1, 4),
                np.array(labels, np.int64), segmentation)

    def arrays(self, grid_size: int = 8, anchors=DEFAULT_ANCHORS):
        """All images (N, 3, size, size), YOLO targets (N, A, 6, S, S), and the ground truth as
        a list of (boxes, labels)."""
        items = [self[i] for i in range(len(self))]
        images = np.stack([it[0] for it in items])
        targets = np.stack([encode_targets(b, lab, anchors, grid_size, self.num_classes,
                                           self.image_size) for _, b, lab in items])
        return images, targets, [(b, lab) for _, b, lab in items]


# ---- model ---------------------------------------------------------------------------------------
def _conv_bn(cin: int, cout: int) -> list:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.1)]


class TinyYOLO(nn.Module):
    """A small one-stage detector: a 3x3 conv + BatchNorm + LeakyReLU backbone halving the
    resolution `downsample` times (64x64 -> 8x8 grid for 3), and a 1x1 head giving
    A * (5 + C) channels per cell."""

    def __init__(self, num_classes: int = 3, anchors=DEFAULT_ANCHORS, in_channels: int = 3,
                 width: int = 16, downsample: int = 3):
        super().__init__()
        self.anchors = tuple(tuple(float(v) for v in a) for a in _anchors(anchors, "TinyYOLO"))
        self.num_classes = num_classes
        layers, c = [], in_channels
        for i in range(downsample):
            layers += _conv_bn(c, width * 2 ** i) + [nn.MaxPool2d(2)]
            c = width * 2 ** i
        layers += _conv_bn(c, c * 2)
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(c * 2, len(self.anchors) * (5 + num_classes), 1)

    def forward(self, x):
        return self.head(self.features(x))
