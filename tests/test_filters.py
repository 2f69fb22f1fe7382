"""cnncore.filters against scikit-image on its bundled sample images, plus shapes, gradients,
directions and errors; cnncore.image's PNG/PGM codec round trips and cross-checks with Pillow."""

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
from helpers import child_env, gradcheck

import cnncore
from cnncore import filters
from cnncore.image import read_image, to_grayscale, write_image

LINEAR = ["sobel_h", "sobel_v", "scharr_h", "scharr_v", "prewitt_h", "prewitt_v",
          "roberts_pos_diag", "roberts_neg_diag", "laplace"]
MAGNITUDE = ["sobel", "scharr", "prewitt", "roberts"]
MODES = ["reflect", "constant", "nearest", "mirror", "wrap"]


def _sample(name):
    skdata = pytest.importorskip("skimage.data", reason="scikit-image compares the filters")
    image = getattr(skdata, name)()
    if image.ndim == 3:
        image = image[..., 0]
    return image


@pytest.mark.parametrize("name", LINEAR + MAGNITUDE)
@pytest.mark.parametrize("sample", ["camera", "coins"])
def test_edge_filters_match_skimage(name, sample):
    skf = pytest.importorskip("skimage.filters", reason="scikit-image compares the filters")
    image = _sample(sample).astype(np.float32) / 255
    ours, theirs = getattr(filters, name)(image), getattr(skf, name)(image)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_border_modes_match_skimage(mode):
    skf = pytest.importorskip("skimage.filters", reason="scikit-image compares the filters")
    image = _sample("camera")[:61, :47].astype(np.float32) / 255
    np.testing.assert_allclose(filters.sobel(image, mode=mode, cval=0.3),
                               skf.sobel(image, mode=mode, cval=0.3), rtol=0, atol=1e-6)
    np.testing.assert_allclose(filters.scharr(image, axis=1, mode=mode, cval=0.3),
                               skf.scharr(image, axis=1, mode=mode, cval=0.3), rtol=0, atol=1e-6)


def test_uint8_input_is_scaled_as_img_as_float():
    skf = pytest.importorskip("skimage.filters", reason="scikit-image compares the filters")
    image = _sample("camera")[100:180, 200:300]
    np.testing.assert_allclose(filters.prewitt(image), skf.prewitt(image), rtol=0, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, (1.0, 3.0)])
@pytest.mark.parametrize("mode", ["nearest", "reflect", "constant", "wrap"])
def test_gaussian_matches_skimage(sigma, mode):
    skf = pytest.importorskip("skimage.filters", reason="scikit-image compares the filters")
    image = _sample("coins")[:90, :130].astype(np.float32) / 255
    ours = filters.gaussian(image, sigma, mode=mode)
    theirs = skf.gaussian(image, sigma=sigma, mode=mode)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_gaussian_kernel_sums_to_one_with_scipy_radius():
    k = filters.gaussian_kernel(1.5, truncate=4.0)
    assert len(k) == 2 * int(4.0 * 1.5 + 0.5) + 1
    assert k.sum() == pytest.approx(1.0) and np.argmax(k) == len(k) // 2
    assert len(filters.gaussian_kernel(0.0)) == 1


@pytest.mark.parametrize("sample,sigma", [("camera", 1.0), ("camera", 2.0), ("coins", 1.0),
                                          ("moon", 1.0), ("astronaut", 2.0)])
def test_canny_agrees_with_skimage(sample, sigma):
    # Measured on the full images (sigma 1, 2, 3): identical maps on camera, coins and
    # astronaut, 1 pixel of 4,267 differs on moon (float32 here, float64 in skimage). A
    # synthetic checkerboard is ill-posed (exact ties): skimage's own float32 and float64
    # results differ there by a quarter of the edge pixels, so it is not used.
    feature = pytest.importorskip("skimage.feature", reason="scikit-image compares Canny")
    image = _sample(sample)[:200, :256]
    ours, theirs = filters.canny(image, sigma=sigma), feature.canny(image, sigma=sigma)
    assert ours.dtype == np.bool_ and ours.shape == theirs.shape
    assert theirs.sum() > 300
    agreement = (ours & theirs).sum() / (ours | theirs).sum()
    assert agreement >= 0.999, agreement


def test_canny_thresholds_and_quantiles_match_skimage():
    feature = pytest.importorskip("skimage.feature", reason="scikit-image compares Canny")
    image = _sample("camera")[200:330, 100:260]
    for kwargs in ({"low_threshold": 20, "high_threshold": 60},
                   {"low_threshold": 0.7, "high_threshold": 0.9, "use_quantiles": True},
                   {"mode": "nearest"}):
        ours, theirs = filters.canny(image, 1.5, **kwargs), feature.canny(image, 1.5, **kwargs)
        assert theirs.sum() > 100
        assert (ours & theirs).sum() / (ours | theirs).sum() >= 0.999, kwargs


def test_canny_square_outline_without_skimage():
    image = np.zeros((40, 40), np.float32)
    image[10:30, 12:28] = 1.0
    edges = filters.canny(image, sigma=1.0)
    # Each side of the square is found as a thin line (a step between two pixels is one or
    # two pixels wide: both sides tie), with nothing far from the sides.
    for across in (edges[20, 9:15], edges[20, 25:31], edges[7:13, 20], edges[27:33, 20]):
        assert 1 <= across.sum() <= 2
    assert not edges[15:25, 16:24].any() and not edges[:5].any()


def test_hysteresis_keeps_weak_chains_touching_a_strong_pixel():
    weak = np.zeros((6, 12), bool)
    weak[1, 0:10] = True    # a long chain with one strong pixel at its end: kept whole
    weak[4, 2:5] = True     # a weak chain alone: dropped
    weak[2, 10] = True      # diagonal neighbour of the first chain: 8-connected, kept
    strong = np.zeros_like(weak)
    strong[1, 0] = True
    out = filters.hysteresis(weak, strong)
    assert out[1, 0:10].all() and out[2, 10] and not out[4].any()
    assert out.sum() == 11


def test_non_maximum_suppression_thins_a_ramp_edge():
    x = np.arange(9, dtype=np.float32)
    magnitude = np.tile(np.array([0, 1, 2, 3, 4, 3, 2, 1, 0], np.float32), (7, 1))
    keep = filters.non_maximum_suppression(magnitude, np.zeros_like(magnitude),
                                           np.ones_like(magnitude) + 0 * x)
    assert keep[1:-1].sum(axis=1).tolist() == [1] * 5 and keep[1:-1, 4].all()
    assert not keep[0].any() and not keep[-1].any()


@pytest.mark.parametrize("fn", ["sobel", "scharr_h", "roberts", "laplace", "gaussian"])
def test_layouts_filter_each_channel(fn):
    rng = np.random.default_rng(0)
    batch = rng.random((2, 3, 13, 11), dtype=np.float32)
    f = getattr(filters, fn)
    out = f(batch)
    assert out.shape == batch.shape
    np.testing.assert_allclose(out[1, 2], f(batch[1, 2]), atol=1e-6)
    np.testing.assert_allclose(f(batch[0])[1], f(batch[0, 1]), atol=1e-6)
    assert filters.canny(batch).shape == batch.shape


def test_tensor_in_tensor_out_with_gradients():
    rng = np.random.default_rng(1)
    image = rng.random((1, 5, 4)).astype(np.float32) + 0.5
    out = filters.sobel_v(cnncore.tensor(image))
    assert isinstance(out, cnncore.Tensor) and tuple(out.shape) == (1, 5, 4)
    gradcheck(lambda x: filters.sobel(x), [image])
    gradcheck(lambda x: filters.gaussian(x, 0.8, mode="reflect"), [image])
    gradcheck(lambda x: filters.roberts_neg_diag(x, mode="constant"), [image])


@pytest.mark.parametrize("operator", ["sobel", "scharr", "prewitt", "roberts"])
@pytest.mark.parametrize("angle", [0.0, 0.7, 1.5707963, 2.5, -2.0, -0.3])
def test_gradient_direction_of_a_ramp(operator, angle):
    yy, xx = np.mgrid[0:12, 0:12].astype(np.float32)
    image = np.cos(angle) * xx + np.sin(angle) * yy  # brighter along (cos, sin) in (x, y-down)
    theta = filters.gradient_direction(image, operator)[3:-3, 3:-3]
    np.testing.assert_allclose(np.angle(np.exp(1j * (theta - angle))), 0, atol=1e-4)


def test_filter_errors_name_the_function_and_argument():
    with pytest.raises(ValueError, match=r"sobel: image must be \(H, W\).*shape \(5,\)"):
        filters.sobel(np.zeros(5))
    with pytest.raises(ValueError, match="gaussian: mode must be one of"):
        filters.gaussian(np.zeros((4, 4)), mode="edge")
    with pytest.raises(ValueError, match="canny: low_threshold .* must not exceed"):
        filters.canny(np.zeros((8, 8)), low_threshold=0.5, high_threshold=0.1)
    with pytest.raises(ValueError, match="use_quantiles=True, high_threshold must be in"):
        filters.canny(np.zeros((8, 8)), high_threshold=3, use_quantiles=True)
    with pytest.raises(ValueError, match="gaussian_kernel: sigma must be a finite number"):
        filters.gaussian(np.zeros((4, 4)), sigma=-1)
    with pytest.raises(TypeError, match="sobel: image must be a numeric array"):
        filters.sobel(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="gradient_direction: operator must be"):
        filters.gradient_direction(np.zeros((4, 4)), "canny")
    with pytest.raises(ValueError, match="laplace: ksize must be 3"):
        filters.laplace(np.zeros((4, 4)), ksize=5)


# ---- image codec ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,dtype,ext", [
    ((5, 7), np.uint8, ".png"), ((6, 3, 3), np.uint8, ".png"), ((4, 9, 4), np.uint8, ".png"),
    ((3, 2, 2), np.uint8, ".png"), ((5, 6), np.uint16, ".png"), ((4, 4, 3), np.uint16, ".png"),
    ((5, 7), np.uint8, ".pgm"), ((5, 6), np.uint16, ".pgm"), ((6, 3, 3), np.uint8, ".ppm"),
    ((4, 4, 3), np.uint16, ".ppm")])
def test_image_round_trip(tmp_path, shape, dtype, ext):
    rng = np.random.default_rng(2)
    image = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    path = tmp_path / f"im{ext}"
    write_image(path, image)
    back = read_image(path, as_float=False)
    assert back.dtype == dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)
    as_float = read_image(path)
    assert as_float.dtype == np.float32 and 0 <= as_float.min() and as_float.max() <= 1


def test_png_decoder_reads_every_filter_type_pillow_writes(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow writes the reference PNGs").Image
    from PIL import Image as PILImage
    del Image
    rng = np.random.default_rng(3)
    smooth = np.cumsum(rng.integers(0, 4, (40, 37, 3)), axis=1).astype(np.uint8)
    for mode, arr in (("RGB", smooth), ("L", smooth[..., 0]), ("RGBA", np.dstack(
            [smooth, smooth[..., :1]]))):
        path = tmp_path / f"pil_{mode}.png"
        PILImage.fromarray(arr, mode).save(path, optimize=True)  # adaptive per-row filters
        np.testing.assert_array_equal(read_image(path, as_float=False), arr)
    pal = PILImage.fromarray(smooth[..., 0] % 16, "L").convert("P")
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(read_image(tmp_path / "pal.png", as_float=False)[..., 0],
                                  np.array(pal.convert("RGB"))[..., 0])
    ours = tmp_path / "ours.png"
    write_image(ours, smooth)
    np.testing.assert_array_equal(np.array(PILImage.open(ours)), smooth)


def test_ascii_pgm_and_comments(tmp_path):
    path = tmp_path / "a.pgm"
    path.write_bytes(b"P2\n# a comment\n3 2\n# another\n10\n0 5 10\n10 5 0\n")
    np.testing.assert_allclose(read_image(path), [[0, 0.5, 1], [1, 0.5, 0]], atol=0.003)


def test_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="read_image: no such file"):
        read_image(tmp_path / "missing.png")
    good = tmp_path / "g.png"
    write_image(good, np.zeros((4, 4), np.uint8))
    raw = bytearray(good.read_bytes())
    raw[40] ^= 0xFF
    (tmp_path / "bad.png").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt PNG"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "short.pgm").write_bytes(b"P5\n4 4\n255\n" + bytes(5))
    with pytest.raises(ValueError, match="PGM/PPM data has 5 bytes, expected 16"):
        read_image(tmp_path / "short.pgm")
    with pytest.raises(ValueError, match="write_image: path must end in"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="write_image: a .pgm file needs 1"):
        write_image(tmp_path / "x.pgm", np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "x.png", np.full((2, 2), np.nan))
    assert not (tmp_path / "x.png").exists()
    assert zlib.crc32(b"") == 0  # zlib is the only codec dependency


def test_to_grayscale_uses_rgb2gray_weights():
    color = pytest.importorskip("skimage.color", reason="scikit-image gives the reference")
    rgb = np.random.default_rng(4).random((5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(to_grayscale(rgb), color.rgb2gray(rgb), atol=1e-6)


def _cli(*args, cwd=None):
    env = child_env()
    return subprocess.run([sys.executable, "-m", "cnncore", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)


def test_cli_filters_writes_edge_maps(tmp_path):
    image = np.zeros((24, 30, 3), np.uint8)
    image[6:18, 8:22] = 200
    write_image(tmp_path / "in.png", image)
    out = tmp_path / "edges"
    res = _cli("filters", str(tmp_path / "in.png"), "--out", str(out), "--sigma", "1.0")
    assert res.returncode == 0, res.stderr
    names = sorted(os.listdir(out))
    assert names == sorted(f"{n}.png" for n in ("sobel", "scharr", "prewitt", "roberts",
                                                "laplace", "gaussian", "canny"))
    canny = read_image(out / "canny.png")
    assert canny.shape == (24, 30) and set(np.unique(canny)) <= {0.0, 1.0} and canny.sum() > 20
    sobel = read_image(out / "sobel.png")
    assert sobel.max() == 1.0 and sobel[12, 15] == 0.0  # scaled to the full range; flat inside


def test_cli_filters_bad_paths_are_one_line_exit_2(tmp_path):
    res = _cli("filters", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "image not found" in res.stderr
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    res = _cli("filters", str(tmp_path / "junk.png"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "junk.png" in res.stderr
    write_image(tmp_path / "ok.png", np.zeros((8, 8)))
    res = _cli("filters", str(tmp_path / "ok.png"), "--out", str(tmp_path / "ok.png"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "cannot create output directory" in res.stderr
