"""cnncore.localization: the synthetic dataset's boxes and landmarks, the loss's masking and
gradient, decoding, and a few training steps."""

import numpy as np
import pytest
from helpers import gradcheck

import cnncore
from cnncore import localization as L


def test_dataset_boxes_and_landmarks_describe_the_shape():
    ds = L.SyntheticLocalization(40, seed=4)
    present = 0
    for i in range(len(ds)):
        image, target, label = ds[i]
        assert image.shape == (3, 64, 64) and target.shape == (13,)
        if target[0] == 0:
            assert label == -100 and not target.any()
            continue
        present += 1
        assert label in (0, 1)
        bx, by, bh, bw = target[1:5]
        points = target[5:].reshape(4, 2)
        # Landmarks lie inside the box (corners on its border for a rectangle) and are ordered
        # top-left, top-right, bottom-right, bottom-left: clockwise around the centre.
        assert (np.abs(points[:, 0] - bx) <= bw / 2 + 1e-6).all()
        assert (np.abs(points[:, 1] - by) <= bh / 2 + 1e-6).all()
        ang = np.arctan2(points[:, 1] - by, points[:, 0] - bx)
        assert np.all(np.diff(np.unwrap(ang)) > 0)
        if label == 0:
            assert np.isclose(points[:, 0].min(), bx - bw / 2, atol=1e-5)
        # The object's pixels fill the box's centre and differ from its corner's background.
        col, row = int(bx * 64), int(by * 64)
        x0, y0 = int((bx - bw / 2) * 64), int((by - bh / 2) * 64)
        assert np.abs(image[:, row, col] - image[:, y0, x0]).max() > 0.1
    assert 25 <= present < 40
    np.testing.assert_array_equal(ds[3][0], L.SyntheticLocalization(40, seed=4)[3][0])


def _batch():
    ds = L.SyntheticLocalization(6, seed=1, p_object=0.5)
    return ds.arrays()


def test_loss_ignores_box_landmarks_and_class_without_an_object():
    _, t, lab = _batch()
    rng = np.random.default_rng(0)
    out = rng.normal(size=(6, 5 + 2 + 8)).astype(np.float32)
    base = L.localization_loss(cnncore.tensor(out), t, lab, 2, 4).item()
    absent = np.nonzero(t[:, 0] == 0)[0]
    assert len(absent) and len(absent) < 6
    changed = out.copy()
    changed[absent, 1:] += 5.0   # everything but pc, on images without an object
    assert L.localization_loss(cnncore.tensor(changed), t, lab, 2, 4).item() == \
        pytest.approx(base, rel=1e-6)
    present = np.nonzero(t[:, 0] == 1)[0]
    changed = out.copy()
    changed[present[0], 7] += 1.0   # a landmark coordinate of an image with an object
    assert L.localization_loss(cnncore.tensor(changed), t, lab, 2, 4).item() != \
        pytest.approx(base, rel=1e-6)


def test_loss_value_by_hand():
    t = np.array([[1, 0.5, 0.5, 0.2, 0.4, 0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0, 0, 0, 0, 0, 0]],
                 np.float32)
    out = np.zeros((2, 5 + 2 + 4), np.float32)
    lab = np.array([1, -100])
    # pc: BCE(logit 0) = log 2 per image; box: 0.25+0.25+0.04+0.16; landmarks: 0.01+0.04+0.09+
    # 0.16; class: log 2 for the image with an object. Over a batch of 2.
    expected = (2 * np.log(2) + 0.70 + 0.30 + np.log(2)) / 2
    got = L.localization_loss(cnncore.tensor(out), t, lab, 2, 2).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_loss_gradient_by_finite_differences():
    _, t, lab = _batch()
    out = np.random.default_rng(2).normal(0, 0.5, (6, 15))
    gradcheck(lambda o: L.localization_loss(o, t, lab, 2, 4, box_weight=3.0).reshape((1,)),
              [out], rtol=2e-2, atol=2e-3)


def test_decode_and_iou():
    out = np.zeros((1, 15), np.float32)
    out[0, :5] = [3.0, 0.5, 0.4, 0.2, 0.3]
    out[0, 5:7] = [0.1, 0.9]
    out[0, 7:] = np.arange(8) / 10
    d = L.decode_localization(out, 2, 4)
    assert d["pc"][0] == pytest.approx(1 / (1 + np.exp(-3)))
    assert d["label"].tolist() == [1] and d["landmarks"].shape == (1, 4, 2)
    np.testing.assert_allclose(d["landmarks"][0, 1], [0.2, 0.3], atol=1e-6)
    iou = L.box_iou_cxcyhw([[0.5, 0.5, 0.2, 0.2]], [[0.55, 0.5, 0.2, 0.2]])
    assert iou[0] == pytest.approx(0.15 * 0.2 / (2 * 0.04 - 0.15 * 0.2))
    with pytest.raises(ValueError, match=r"decode_localization: output must be \(N, 15\)"):
        L.decode_localization(np.zeros((1, 14)), 2, 4)


def test_network_trains_a_few_steps():
    cnncore.manual_seed(0)
    x, t, lab = L.SyntheticLocalization(8, image_size=32, seed=5).arrays()
    model = L.LocalizationNet(2, 4, width=4)
    assert tuple(model(cnncore.tensor(x[:2])).shape) == (2, 15)
    opt = cnncore.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = L.localization_loss(model(cnncore.tensor(x)), t, lab, 2, 4, 5.0, 5.0)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
