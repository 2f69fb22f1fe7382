"""cnncore.detection: IoU and NMS against plain-loop references and hand-computed cases, mAP on
hand-built cases, the YOLO loss's gradient by finite differences, target round trips, the
synthetic dataset and a short training smoke run."""

import numpy as np
import pytest
from helpers import gradcheck

import cnncore
from cnncore import detection as D


# ---- references: obviously-correct loops ---------------------------------------------------------
def ref_iou(a, b):
    out = np.zeros((len(a), len(b)))
    for i, (ax0, ay0, ax1, ay1) in enumerate(a):
        for j, (bx0, by0, bx1, by1) in enumerate(b):
            iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
            ih = max(0.0, min(ay1, by1) - max(ay0, by0))
            inter = iw * ih
            union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def ref_nms(boxes, scores, thr):
    """Greedy NMS as written in papers: take the best remaining box, drop those overlapping it."""
    remaining = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [i for i in remaining if ref_iou(boxes[[best]], boxes[[i]])[0, 0] <= thr]
    return keep


def ref_batched_nms(boxes, scores, idxs, thr):
    keep = []
    for c in np.unique(idxs):
        members = np.nonzero(idxs == c)[0]
        keep += [members[k] for k in ref_nms(boxes[members], scores[members], thr)]
    return sorted(keep, key=lambda i: -scores[i])


def random_boxes(rng, n, size=50.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1)


# ---- boxes ---------------------------------------------------------------------------------------
def test_box_iou_hand_computed():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], np.float32)
    np.testing.assert_allclose(D.box_iou(a, b), [[1 / 7, 1, 0], [0, 0.25, 0]], rtol=1e-6)
    # cxcywh: the same boxes given by centre and size
    ac = D.box_convert(a, "xyxy", "cxcywh")
    np.testing.assert_allclose(ac, [[1, 1, 2, 2], [0.5, 0.5, 1, 1]])
    np.testing.assert_allclose(D.box_iou(ac, D.box_convert(b, "xyxy", "cxcywh"), fmt="cxcywh"),
                               D.box_iou(a, b), rtol=1e-6)


@pytest.mark.parametrize("n,m", [(1, 1), (7, 13), (40, 3)])
def test_box_iou_matches_loop_reference(n, m):
    rng = np.random.default_rng(n * 100 + m)
    a, b = random_boxes(rng, n), random_boxes(rng, m)
    np.testing.assert_allclose(D.box_iou(a, b), ref_iou(a, b), rtol=1e-5, atol=1e-7)
    out = D.box_iou(cnncore.tensor(a.astype(np.float32)), b)
    assert isinstance(out, cnncore.Tensor) and tuple(out.shape) == (n, m)


def test_box_convert_round_trips_and_area():
    b = random_boxes(np.random.default_rng(5), 9)
    for fmt in ("xywh", "cxcywh"):
        np.testing.assert_allclose(D.box_convert(D.box_convert(b, "xyxy", fmt), fmt, "xyxy"), b,
                                   rtol=1e-5)
    np.testing.assert_allclose(D.box_area(b), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]),
                               rtol=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.9])
def test_nms_matches_loop_reference(seed, thr):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    boxes, scores = random_boxes(rng, n), rng.permutation(n).astype(np.float32)
    keep = D.nms(boxes, scores, thr)
    assert keep.dtype == np.int64
    assert keep.tolist() == ref_nms(boxes, scores, thr)
    idxs = rng.integers(0, 4, n)
    assert D.batched_nms(boxes, scores, idxs, thr).tolist() == \
        ref_batched_nms(boxes, scores, idxs, thr)


def test_nms_hand_cases():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]],
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(0, 1) = 81 / 119 = 0.68: suppressed at 0.5, kept at 0.7; box 3 duplicates box 0.
    assert D.nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert D.nms(boxes, scores, 0.7).tolist() == [3, 1, 2]
    # Same boxes in different classes never suppress each other.
    assert D.batched_nms(boxes, scores, np.array([0, 0, 0, 1]), 0.5).tolist() == [3, 0, 2]
    keep = D.nms(cnncore.tensor(boxes), cnncore.tensor(scores), 0.5)
    assert isinstance(keep, cnncore.Tensor) and keep.dtype == np.int64
    assert D.nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_box_errors():
    with pytest.raises(ValueError, match=r"box_iou: boxes1 must have shape \(N, 4\)"):
        D.box_iou(np.zeros((3, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"nms: scores must have shape \(2,\)"):
        D.nms(np.zeros((2, 4)), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="box_convert: out_fmt must be one of"):
        D.box_convert(np.zeros((1, 4)), "xyxy", "yxyx")
    with pytest.raises(TypeError, match="nms: iou_threshold must be a number"):
        D.nms(np.zeros((1, 4)), np.zeros(1), "0.5")


# ---- mAP -----------------------------------------------------------------------------------------
def test_average_precision_all_point_interpolation():
    # Recall/precision after each of 5 detections (TP, FP, TP, FP, TP) with 4 positives.
    recall = np.array([0.25, 0.25, 0.5, 0.5, 0.75])
    precision = np.array([1.0, 0.5, 2 / 3, 0.5, 0.6])
    # Envelope: 1.0 up to recall 0.25, then 2/3 to 0.5, then 0.6 to 0.75, then 0.
    assert D.average_precision(recall, precision) == pytest.approx(
        0.25 * 1.0 + 0.25 * 2 / 3 + 0.25 * 0.6)


def test_map_hand_built_cases():
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 1])),
          (np.array([[5, 5, 15, 15]]), np.array([0]))]
    perfect = [(b.astype(np.float32), np.ones(len(b)), lab) for b, lab in gt]
    assert D.mean_average_precision(perfect, gt) == {"map": 1.0, "ap": {0: 1.0, 1: 1.0}}
    dets = [
        # class 0: a hit (0.9), a duplicate of it (0.8, FP), class 1 box shifted to IoU 0.33.
        (np.array([[0, 0, 10, 10], [0, 0, 10, 10], [25, 20, 35, 30]]), np.array([0.9, 0.8, 0.7]),
         np.array([0, 0, 1])),
        (np.array([[5, 5, 15, 14]]), np.array([0.6]), np.array([0])),  # IoU 0.9: a hit
    ]
    result = D.mean_average_precision(dets, gt)
    # class 0 ranking TP, FP, TP over 2 positives: AP = 0.5 * 1 + 0.5 * 2/3; class 1: 0.
    assert result["ap"][0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert result["ap"][1] == 0.0
    assert result["map"] == pytest.approx((0.5 + 1 / 3) / 2)
    # At IoU 0.3 the shifted class-1 box (IoU 1/3) counts.
    assert D.mean_average_precision(dets, gt, iou_threshold=0.3)["ap"][1] == 1.0
    # A wrong label is a miss for its true class and a false positive for the other.
    wrong = [(b.astype(np.float32), np.ones(len(b)), 1 - lab) for b, lab in gt]
    assert D.mean_average_precision(wrong, gt)["map"] == 0.0


# ---- YOLO targets, loss, decode ------------------------------------------------------------------
def test_encode_decode_targets_round_trip():
    ds = D.SyntheticShapes(12, seed=3)
    for i in range(len(ds)):
        _, boxes, labels = ds[i]
        t = D.encode_targets(boxes, labels, D.DEFAULT_ANCHORS, 8, 3, image_size=64)
        assert t.shape == (3, 6, 8, 8) and t[:, 4].sum() == len(boxes)
        back, back_labels = D.decode_targets(t, D.DEFAULT_ANCHORS, image_size=64)
        order = np.lexsort(back.T[::-1])
        ref = np.lexsort(boxes.T[::-1])
        np.testing.assert_allclose(back[order], boxes[ref], atol=1e-4)
        assert back_labels[order].tolist() == labels[ref].tolist()


def test_encode_targets_picks_cell_and_anchor():
    anchors = ((0.1, 0.1), (0.5, 0.2))
    # A wide box centred at (0.55, 0.3) of a unit image on a 4x4 grid: cell (row 1, col 2).
    t = D.encode_targets([[0.35, 0.2, 0.75, 0.4]], [2], anchors, 4, 3)
    k, row, col = np.argwhere(t[:, 4] == 1)[0]
    assert (k, row, col) == (1, 1, 2)
    np.testing.assert_allclose(t[1, :, 1, 2], [0.2, 0.2, np.log(0.4 / 0.5), 0.0, 1, 2],
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"encode_targets: labels must be in \[0, 3\)"):
        D.encode_targets([[0, 0, 1, 1]], [3], anchors, 4, 3)


def test_decode_recovers_boxes_from_a_perfect_prediction():
    ds = D.SyntheticShapes(4, seed=7)
    _, targets, truth = ds.arrays(8)
    # The logits a perfect network would output: sigmoid^-1 of the offsets, big objectness.
    t = targets.astype(np.float64)
    off = np.clip(t[:, :, 0:2], 1e-4, 1 - 1e-4)
    pred = np.zeros((4, 3, 8, 8, 8))
    pred[:, :, 0:2] = np.log(off / (1 - off))
    pred[:, :, 2:4] = t[:, :, 2:4]
    pred[:, :, 4] = np.where(t[:, :, 4] > 0, 12.0, -12.0)
    onehot = np.eye(3)[t[:, :, 5].astype(int)].transpose(0, 1, 4, 2, 3)
    pred[:, :, 5:] = 10.0 * onehot
    dets = D.decode(cnncore.tensor(pred.reshape(4, 24, 8, 8).astype(np.float32)),
                    D.DEFAULT_ANCHORS, image_size=64)
    assert D.mean_average_precision(dets, truth)["map"] == 1.0
    assert sum(len(d[0]) for d in dets) == sum(len(b) for b, _ in truth)


def test_yolo_loss_gradient_by_finite_differences():
    rng = np.random.default_rng(0)
    anchors = ((0.3, 0.3), (0.5, 0.2))
    targets = np.stack([D.encode_targets([[4, 4, 20, 16], [20, 2, 30, 12]], [0, 1], anchors, 3,
                                         2, image_size=32),
                        D.encode_targets([[1, 1, 9, 30]], [1], anchors, 3, 2, image_size=32)])
    pred = rng.normal(0, 0.5, (2, 2 * 7, 3, 3))
    gradcheck(lambda p: D.yolo_loss(p, targets, anchors).reshape((1,)), [pred], eps=1e-2,
              rtol=2e-2, atol=2e-3)


def test_yolo_loss_is_zero_terms_for_a_perfect_prediction_and_checks_shapes():
    anchors = D.DEFAULT_ANCHORS
    _, targets, _ = D.SyntheticShapes(2, seed=1).arrays(8)
    pred = cnncore.zeros((2, 24, 8, 8), requires_grad=True)
    loss = D.yolo_loss(pred, targets, anchors)
    loss.backward()
    assert loss.item() > 0 and pred.grad is not None
    assert float(np.abs(pred.grad.numpy()).sum()) > 0
    with pytest.raises(ValueError, match=r"yolo_loss: target must have shape \(2, 3, 6, 8, 8\)"):
        D.yolo_loss(pred, targets[:, :, :, :4], anchors)
    with pytest.raises(ValueError, match="yolo_loss: prediction must have A \\* \\(5 \\+ C\\)"):
        D.yolo_loss(cnncore.zeros((2, 10, 8, 8)), targets, anchors)


# ---- dataset and model ---------------------------------------------------------------------------
def test_synthetic_shapes_are_seeded_and_boxes_fit():
    a, b = D.SyntheticShapes(5, seed=11), D.SyntheticShapes(5, seed=11)
    for i in range(5):
        (ia, ba, la), (ib, bb, lb) = a[i], b[i]
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ba, bb)
        np.testing.assert_array_equal(la, lb)
        assert ia.shape == (3, 64, 64) and ia.dtype == np.float32
        assert 1 <= len(ba) <= 3 and ((ba >= 0) & (ba <= 64)).all()
        assert set(la.tolist()) <= {0, 1, 2}
        # the object's pixels differ from the background right outside its box
        x0, y0, x1, y1 = ba[0].astype(int)
        inside = ia[:, (y0 + y1) // 2, (x0 + x1) // 2]
        assert np.abs(inside - ia[:, y0, x0 - 1 if x0 > 0 else x1]).max() > 0.05 or la[0] == 2
    assert not np.array_equal(D.SyntheticShapes(1, seed=1)[0][0], D.SyntheticShapes(1)[0][0])
    with pytest.raises(ValueError, match="SyntheticShapes: num_images must be a positive int"):
        D.SyntheticShapes(0)


def test_tiny_yolo_trains_a_few_steps():
    cnncore.manual_seed(0)
    x, t, _ = D.SyntheticShapes(8, seed=2).arrays(8)
    model = D.TinyYOLO(num_classes=3, width=8)
    assert tuple(model(cnncore.tensor(x[:2])).shape) == (2, 24, 8, 8)
    opt = cnncore.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = D.yolo_loss(model(cnncore.tensor(x)), t, model.anchors)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
