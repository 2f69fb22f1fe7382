"""cnncore.segmentation: mean IoU on hand-built cases, synthetic masks, a U-Net step."""

import numpy as np
import pytest

import cnncore
from cnncore import models
from cnncore import functional as F
from cnncore.segmentation import SyntheticMasks, confusion_matrix, mean_iou


def test_mean_iou_hand_built():
    target = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
    pred = np.array([[0, 0, 1, 0], [0, 0, 1, 1], [2, 2, 1, 2]])
    miou, per = mean_iou(pred, target, 3)
    # class 0: 4 / 5; class 1: 3 / 5 (3 shared, 1 missed, 1 extra); class 2: 3 / 4.
    np.testing.assert_allclose(per, [4 / 5, 3 / 5, 3 / 4])
    assert miou == pytest.approx((0.8 + 0.6 + 0.75) / 3)
    assert mean_iou(target, target, 3)[0] == 1.0
    # A class absent from both prediction and target is left out of the mean.
    miou4, per4 = mean_iou(pred, target, 4)
    assert np.isnan(per4[3]) and miou4 == pytest.approx(miou)
    # ignore_index pixels count for nothing: without row 2, class 2 is gone and class 1 loses
    # the extra pixel predicted there.
    t2 = target.copy()
    t2[2] = 255
    _, per_ignored = mean_iou(pred, t2, 3, ignore_index=255)
    np.testing.assert_allclose(per_ignored[:2], [4 / 5, 3 / 4])
    assert np.isnan(per_ignored[2])


def test_scores_are_reduced_by_argmax_and_tensors_accepted():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
    target = rng.integers(0, 3, (2, 5, 4))
    cm = confusion_matrix(cnncore.tensor(scores), target, 3)
    np.testing.assert_array_equal(cm, confusion_matrix(scores.argmax(1), target, 3))
    assert cm.sum() == target.size
    with pytest.raises(ValueError, match=r"confusion_matrix: class indices must be in \[0, 3\)"):
        confusion_matrix(target + 1, target, 3)
    with pytest.raises(ValueError, match="float pred must be scores"):
        confusion_matrix(scores[:, :2], target, 3)


def test_synthetic_masks_match_boxes():
    ds = SyntheticMasks(6, seed=2)
    for i in range(len(ds)):
        _, mask = ds[i]
        _, boxes, labels = ds.shapes[i]
        assert mask.shape == (64, 64) and mask.dtype == np.int64
        for (x0, y0, x1, y1), lab in zip(boxes.astype(int), labels):
            inside = mask[y0:y1, x0:x1]
            assert (inside == lab + 1).mean() > 0.3  # a shape fills much of its own box
        assert (mask == 0).mean() > 0.3


def test_unet_segmentation_loss_falls():
    cnncore.manual_seed(0)
    x, y = SyntheticMasks(4, image_size=32, seed=3).arrays()
    model = models.unet(3, 4, base_channels=4, depth=2)
    opt = cnncore.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.cross_entropy(model(cnncore.tensor(x)), cnncore.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
