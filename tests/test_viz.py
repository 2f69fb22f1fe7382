"""cnncore.viz: every picture is a real PNG of the stated pixel size, and saliency is the input
gradient of the class score."""

from __future__ import annotations

import numpy as np
import pytest

import cnncore
from cnncore import models, nn, viz
from helpers import check_close

mpl_image = pytest.importorskip("matplotlib.image", reason="cnncore.viz needs matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path, size):
    """Asserts path is a PNG of size (height, width) and returns its pixels."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, f"{path} is not a PNG"
    pixels = mpl_image.imread(str(path))
    assert pixels.shape[:2] == tuple(size), f"{path}: {pixels.shape[:2]} pixels, expected {size}"
    return pixels


def test_save_image_is_exactly_the_image_times_scale(tmp_path):
    img = np.random.default_rng(0).random((3, 5, 7)).astype(np.float32)
    viz.save_image(img, tmp_path / "a.png", scale=3)
    px = _png(tmp_path / "a.png", (15, 21))
    # RGB values survive (8-bit rounding), each pixel a 3x3 block
    np.testing.assert_allclose(px[::3, ::3, :3], img.transpose(1, 2, 0), atol=1 / 255 + 1e-6)
    viz.save_image(img[0], tmp_path / "g.png")
    _png(tmp_path / "g.png", (5, 7))


def test_tile_images_layout():
    t = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    m = viz.tile_images(t, ncols=2, pad=1, normalize="none")
    assert m.shape == (3 * 3 + 1, 2 * 4 + 1)
    np.testing.assert_array_equal(m[1:3, 5:8], t[1])
    np.testing.assert_array_equal(m[7:9, 1:4], t[4])
    assert (m[7:9, 5:8] == 1).all()  # the empty sixth cell is background
    with pytest.raises(ValueError, match="tile_images: normalize"):
        viz.tile_images(t, normalize="max")


def test_plot_filters_tiles_the_first_conv_layer(tmp_path):
    cnncore.manual_seed(0)
    net = models.alexnet(num_classes=10)        # 64 RGB filters of 11x11
    size = viz.plot_filters(net, tmp_path / "f.png", ncols=8, scale=2)
    assert size == (2 * (8 * 12 + 1), 2 * (8 * 12 + 1))
    _png(tmp_path / "f.png", size)
    lenet = models.lenet5()                     # 6 gray 5x5 filters
    size = viz.plot_filters(lenet, tmp_path / "l.png", ncols=3, scale=4)
    assert size == (4 * (2 * 6 + 1), 4 * (3 * 6 + 1))
    _png(tmp_path / "l.png", size)
    with pytest.raises(ValueError, match="no Conv2d"):
        viz.plot_filters(nn.Linear(3, 4), tmp_path / "x.png")


def test_plot_feature_maps_of_a_named_layer(tmp_path):
    cnncore.manual_seed(0)
    net = models.lenet5()
    x = cnncore.rand(2, 1, 32, 32)
    name = next(n for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    size = viz.plot_feature_maps(net, name, x, tmp_path / "m.png", ncols=4, scale=2)
    assert size == (2 * (2 * 29 + 1), 2 * (4 * 29 + 1))  # 6 maps of 28x28, 4 a row
    _png(tmp_path / "m.png", size)
    assert net.training  # mode restored
    with pytest.raises(ValueError, match="no layer named"):
        viz.plot_feature_maps(net, "nope", x, tmp_path / "m.png")


def test_plot_history_from_trainer_rows(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e,
                "train_accuracy": 0.5 + e / 20, "lr": 0.1, "seconds": 1.0} for e in range(1, 6)]
    size = viz.plot_history(history, tmp_path / "h.png", figsize=(6, 3), dpi=50)
    assert size == (150, 300)
    px = _png(tmp_path / "h.png", size)
    assert px[..., :3].std() > 0.05  # something was drawn
    with pytest.raises(ValueError, match="plot_history: keys"):
        viz.plot_history(history, tmp_path / "h.png", keys=["val_accuracy"])
    with pytest.raises(ValueError, match="non-empty list of dicts"):
        viz.plot_history([], tmp_path / "h.png")


def test_draw_detections_and_masks(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.random((3, 20, 30)).astype(np.float32)
    boxes = np.array([[2, 3, 12, 15], [15, 2, 28, 18]], np.float32)
    size = viz.draw_detections(image, boxes, tmp_path / "d.png", labels=[1, 3],
                               scores=[0.9, 0.75], class_names=["bg", "cat", "dog", "car"])
    assert size == (80, 120)
    px = _png(tmp_path / "d.png", size)
    assert not np.allclose(px[..., :3], image.transpose(1, 2, 0).repeat(4, 0).repeat(4, 1),
                           atol=0.02)  # boxes were drawn over it
    viz.draw_detections(image, np.zeros((0, 4)), tmp_path / "empty.png")
    _png(tmp_path / "empty.png", (80, 120))
    mask = np.zeros((20, 30), np.int64)
    mask[5:10, 5:20] = 2
    size = viz.draw_masks(image, mask, tmp_path / "s.png", alpha=1.0, scale=2)
    px = _png(tmp_path / "s.png", (40, 60))
    np.testing.assert_allclose(px[0, 0, :3], image[:, 0, 0], atol=1 / 255 + 1e-6)  # background
    import matplotlib
    np.testing.assert_allclose(px[12, 12, :3], matplotlib.colormaps["tab10"](2)[:3],
                               atol=1 / 255 + 1e-6)  # class 2's colour at full alpha
    with pytest.raises(ValueError, match="draw_masks: mask"):
        viz.draw_masks(image, mask[:5], tmp_path / "s.png")
    with pytest.raises(ValueError, match="draw_detections: 1 labels for 2 boxes"):
        viz.draw_detections(image, boxes, tmp_path / "d.png", labels=[1])


def test_saliency_is_the_input_gradient_of_the_class_score():
    cnncore.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 4, 5))
    x = np.random.default_rng(0).random((3, 2, 3, 4)).astype(np.float32)
    g = viz.saliency(lin, x, target=[0, 4, 2])
    w = lin[1].weight.detach().numpy()
    for i, t in enumerate([0, 4, 2]):      # d (W x + b)_t / dx = W[t]
        check_close(g[i], w[t].reshape(2, 3, 4), what=f"image {i}")
    # a conv net, against autograd run by hand, default target = top class
    net = models.lenet5()
    net.train()
    x = np.random.default_rng(1).random((2, 1, 32, 32)).astype(np.float32)
    g = viz.saliency(net, x)
    assert net.training
    net.eval()
    xt = cnncore.tensor(x, requires_grad=True)
    out = net(xt)
    top = out.detach().numpy().argmax(1)
    (out[0, int(top[0])] + out[1, int(top[1])]).backward()
    check_close(g, xt.grad, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="saliency: target"):
        viz.saliency(net, x, target=10)


def test_plot_saliency_writes_image_and_map(tmp_path):
    cnncore.manual_seed(0)
    net = models.lenet5()
    x = np.random.default_rng(2).random((1, 1, 32, 32)).astype(np.float32)
    size = viz.plot_saliency(net, x, tmp_path / "sal.png", target=3, scale=2)
    assert size == (2 * 34, 2 * 67)
    _png(tmp_path / "sal.png", size)
