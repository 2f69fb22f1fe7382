"""cnncore.data: datasets, DataLoader batching and seeded shuffling, random_split, every
transform's shape, determinism and semantics, the bundled digits, and the IDX / CIFAR readers on
small files written here in the real formats."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

import cnncore
from cnncore import data
from cnncore.data import transforms as T
from helpers import check_close


def images(n=4, c=3, h=6, w=7, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


# ---- datasets and loader -------------------------------------------------------------------------
def test_tensor_dataset_items_and_errors():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    ds = data.TensorDataset(cnncore.tensor(x), y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == 3
    with pytest.raises(ValueError, match="size mismatch"):
        data.TensorDataset(x, np.arange(9))
    with pytest.raises(TypeError, match="Tensor or a numpy array"):
        data.TensorDataset([1, 2, 3])


def batch_sizes(loader):
    return [len(b[1].numpy()) for b in loader]


def test_loader_batching_and_drop_last():
    ds = data.TensorDataset(np.zeros((10, 3), np.float32), np.arange(10))
    loader = data.DataLoader(ds, batch_size=4)
    assert len(loader) == 3 and batch_sizes(loader) == [4, 4, 2]
    loader = data.DataLoader(ds, batch_size=4, drop_last=True)
    assert len(loader) == 2 and batch_sizes(loader) == [4, 4]
    xb, yb = next(iter(data.DataLoader(ds, batch_size=10)))
    assert isinstance(xb, cnncore.Tensor) and xb.shape == (10, 3) and xb.dtype == np.float32
    assert yb.dtype == np.int64
    np.testing.assert_array_equal(yb.numpy(), np.arange(10))  # no shuffle: in order
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        data.DataLoader(ds, batch_size=0)


class PlainDataset(data.Dataset):
    """Items as python numbers and arrays, no get_batch: the per-item collate path."""

    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2, 2), i, dtype=np.float64), i, float(i) / 2


def test_default_collate_types_and_fast_path_agree():
    xb, yb, zb = next(iter(data.DataLoader(PlainDataset(), batch_size=3)))
    assert xb.shape == (3, 2, 2) and xb.dtype == np.float32
    assert yb.dtype == np.int64 and yb.tolist() == [0, 1, 2]
    assert zb.dtype == np.float32 and zb.tolist() == [0.0, 0.5, 1.0]
    batch = data.default_collate([{"a": 1, "b": np.ones(2, np.float32)}] * 2)
    assert batch["a"].dtype == np.int64 and batch["b"].shape == (2, 2)
    # A dataset with get_batch (TensorDataset) gives the same batches as item by item.
    x = np.random.default_rng(0).random((7, 3)).astype(np.float32)
    ds = data.TensorDataset(x, np.arange(7))
    fast = list(data.DataLoader(ds, batch_size=3, shuffle=True, generator=5))
    slow = list(data.DataLoader(ds, batch_size=3, shuffle=True, generator=5,
                                collate_fn=data.default_collate))
    for (fx, fy), (sx, sy) in zip(fast, slow):
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())
    custom = data.DataLoader(ds, batch_size=2, collate_fn=lambda b: len(b))
    assert list(custom) == [2, 2, 2, 1]


def order(loader):
    return np.concatenate([b[1].numpy() for b in loader]).tolist()


def test_shuffle_is_deterministic_per_seed():
    ds = data.TensorDataset(np.zeros((50, 1), np.float32), np.arange(50))
    a = data.DataLoader(ds, batch_size=8, shuffle=True, generator=123)
    b = data.DataLoader(ds, batch_size=8, shuffle=True, generator=123)
    c = data.DataLoader(ds, batch_size=8, shuffle=True, generator=124)
    ea1, ea2 = order(a), order(a)
    assert sorted(ea1) == list(range(50)) and ea1 != list(range(50))
    assert ea1 != ea2  # a new order every epoch
    assert [order(b), order(b)] == [ea1, ea2]  # same seed, same orders
    assert order(c) != ea1
    b.set_epoch(1)  # resume at epoch 1
    assert order(b) == ea2
    # A numpy Generator is drawn from.
    g1 = data.DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(7))
    g2 = data.DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(7))
    assert order(g1) == order(g2)
    # generator=None follows cnncore.manual_seed.
    cnncore.manual_seed(3)
    n1 = order(data.DataLoader(ds, batch_size=8, shuffle=True))
    cnncore.manual_seed(3)
    n2 = order(data.DataLoader(ds, batch_size=8, shuffle=True))
    assert n1 == n2 and n1 != list(range(50))


def test_random_split_lengths_and_fractions():
    ds = data.TensorDataset(np.zeros((11, 1), np.float32), np.arange(11))
    parts = data.random_split(ds, [3, 8], generator=0)
    assert [len(p) for p in parts] == [3, 8]
    idx = [p.indices for p in parts]
    assert sorted(idx[0] + idx[1]) == list(range(11))
    again = data.random_split(ds, [3, 8], generator=0)
    assert [p.indices for p in again] == idx
    # torch's rounding: floor each fraction, the remainder one by one from the first split.
    fr = data.random_split(ds, [0.3, 0.3, 0.4], generator=1)
    assert [len(p) for p in fr] == [4, 3, 4]
    torch = pytest.importorskip("torch", reason="compare split sizes with torch")
    tparts = torch.utils.data.random_split(range(11), [0.3, 0.3, 0.4])
    assert [len(p) for p in tparts] == [len(p) for p in fr]
    # Subsets keep the fast batch path and index the base dataset.
    x, y = next(iter(data.DataLoader(parts[1], batch_size=8)))
    assert y.tolist() == idx[1]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        data.random_split(ds, [3, 7])
    with pytest.raises(ValueError, match="not between 0 and 1"):
        data.random_split(ds, [1.5, -0.5])


def test_concat_dataset():
    a = data.TensorDataset(np.zeros((2, 1), np.float32), np.array([0, 1]))
    b = data.TensorDataset(np.zeros((3, 1), np.float32), np.array([2, 3, 4]))
    c = a + b
    assert len(c) == 5 and c[4][1] == 4 and c[-5][1] == 0


# ---- transforms ----------------------------------------------------------------------------------
def test_flip_p1_is_np_flip_and_p0_identity():
    x = images()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x), np.flip(x, -1))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x[0]), np.flip(x[0], -1))
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(x), np.flip(x, -2))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(x), x)
    # p=0.5 on a batch: each image either flipped or not, both happen, seeded.
    xb = images(n=64)
    out = T.RandomHorizontalFlip(rng=0)(xb)
    flipped = [np.array_equal(o, np.flip(i, -1)) for o, i in zip(out, xb)]
    kept = [np.array_equal(o, i) for o, i in zip(out, xb)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
    np.testing.assert_array_equal(T.RandomHorizontalFlip(rng=0)(xb), out)


def test_normalize_values():
    x = images(c=3)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]
    out = T.Normalize(mean, std)(x)
    m, s = np.array(mean, np.float32)[:, None, None], np.array(std, np.float32)[:, None, None]
    expected = (x - m) / s
    check_close(out, expected, what="Normalize")
    assert out.dtype == np.float32
    check_close(T.Normalize(mean, std)(x[1]), expected[1], what="Normalize single image")
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="3 means for an image with 1 channels"):
        T.Normalize(mean, std)(images(c=1))


def test_random_crop_with_padding():
    x = images(n=8, c=2, h=5, w=6)
    crop = T.RandomCrop((5, 6), padding=2, rng=3)
    out = crop(x)
    assert out.shape == x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for o, p in zip(out, padded):  # every output is some 5x6 window of the zero-padded image
        assert any(np.array_equal(o, p[:, i:i + 5, j:j + 6]) for i in range(5) for j in range(5))
    np.testing.assert_array_equal(T.RandomCrop((5, 6), padding=2, rng=3)(x), out)
    assert T.RandomCrop(3, rng=0)(x[0]).shape == (2, 3, 3)
    np.testing.assert_array_equal(T.RandomCrop((5, 6))(x), x)  # full size, no padding
    edge = T.RandomCrop((9, 10), padding=2, padding_mode="edge", rng=0)(x[0])
    np.testing.assert_array_equal(edge, np.pad(x[0], ((0, 0), (2, 2), (2, 2)), mode="edge"))
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(7)(x)
    assert T.RandomCrop(7, pad_if_needed=True, rng=0)(x).shape == (8, 2, 7, 7)
    assert T.CenterCrop(3)(x).shape == (8, 2, 3, 3)


def test_random_rotation():
    x = images(n=3, c=2, h=7, w=7)
    rot90 = T.RandomRotation((90, 90))(x)
    np.testing.assert_allclose(rot90, np.rot90(x, k=1, axes=(-2, -1)), atol=1e-6)
    np.testing.assert_array_equal(T.RandomRotation(0)(x), x)
    out = T.RandomRotation(30, rng=1)(x)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(T.RandomRotation(30, rng=1)(x), out)
    bil = T.RandomRotation((45, 45), interpolation="bilinear", fill=0.0)(np.ones((1, 9, 9),
                                                                            np.float32))
    assert bil[0, 4, 4] == pytest.approx(1.0) and bil[0, 0, 0] == 0.0  # corners come from outside
    with pytest.raises(ValueError, match="must be positive"):
        T.RandomRotation(-5)


def test_random_resized_crop():
    x = images(n=5, c=3, h=16, w=12)
    out = T.RandomResizedCrop(8, rng=0)(x)
    assert out.shape == (5, 3, 8, 8)
    np.testing.assert_array_equal(T.RandomResizedCrop(8, rng=0)(x), out)
    assert T.RandomResizedCrop((6, 4), rng=0)(x[0]).shape == (3, 6, 4)
    full = T.RandomResizedCrop((16, 12), scale=(1.0, 1.0), ratio=(0.75, 0.75), rng=0)(x)
    check_close(full, x, what="RandomResizedCrop of the whole image at its own size")
    t = T.RandomResizedCrop(8, scale=(0.25, 0.5), rng=np.random.default_rng(1))
    for _ in range(20):
        i, j, h, w = t.get_params(16, 12, np.random.default_rng(_))
        assert 0 <= i and i + h <= 16 and 0 <= j and j + w <= 12


def test_resize_matches_torch_bilinear():
    torch = pytest.importorskip("torch", reason="bilinear resize vs torch.nn.functional")
    x = images(n=2, c=3, h=9, w=7)
    ours = T.Resize((5, 11))(x)
    theirs = torch.nn.functional.interpolate(torch.tensor(x), size=(5, 11), mode="bilinear",
                                             align_corners=False)
    check_close(ours, theirs, what="Resize vs F.interpolate bilinear")


def test_color_jitter():
    x = images(n=6, c=3)
    out = T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, rng=0)(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and not np.array_equal(out, x)
    np.testing.assert_array_equal(T.ColorJitter(0.4, 0.4, 0.4, rng=0)(x), out)
    check_close(T.ColorJitter(brightness=(2.0, 2.0))(x), np.clip(2 * x, 0, 1),
                what="brightness factor 2")
    grey = T.ColorJitter(contrast=(0.0, 0.0))(x[0])  # contrast 0: the mean grey everywhere
    lum = (0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2]).mean()
    check_close(grey, np.full_like(x[0], lum), what="contrast 0")
    one = images(n=2, c=1)
    np.testing.assert_allclose(T.ColorJitter(saturation=(0.0, 0.0))(one), one, atol=1e-6)
    np.testing.assert_array_equal(T.ColorJitter()(x), x)
    with pytest.raises(ValueError, match="non negative"):
        T.ColorJitter(brightness=-1)


def test_random_erasing():
    x = images(n=16, c=3, h=10, w=10) + 1.0  # no zeros before erasing
    out = T.RandomErasing(p=1.0, value=0.0, rng=0)(x)
    assert out.shape == x.shape
    for o in out:
        zero = np.all(o == 0.0, axis=0)
        rows, cols = np.nonzero(zero)
        assert rows.size > 0
        # the erased pixels form one filled rectangle, the same in every channel
        assert zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert zero.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    np.testing.assert_array_equal(T.RandomErasing(p=0.0)(x), x)
    np.testing.assert_array_equal(T.RandomErasing(p=1.0, rng=0)(x), out)
    assert T.RandomErasing(p=1.0, value="random", rng=0)(x[0]).shape == x[0].shape


def test_mixup_and_cutmix_soft_labels():
    x = images(n=8, c=1, h=8, w=8)
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    mix = T.Mixup(alpha=0.4, num_classes=10, rng=0)
    xm, ym = mix(x, y)
    assert xm.shape == x.shape and ym.shape == (8, 10)
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, rtol=1e-6)
    lam = mix.lam
    assert 0.0 <= lam <= 1.0
    # Every mixed image is lam * itself + (1 - lam) * the image its label mass points to.
    for k in range(8):
        other = [c for c in np.nonzero(ym[k])[0] if c != y[k]] or [y[k]]
        expect = lam * x[k] + (1 - lam) * x[other[0]]
        np.testing.assert_allclose(xm[k], expect, atol=1e-6)
    xc, yc = T.CutMix(alpha=1.0, num_classes=10, rng=1)(cnncore.tensor(x), cnncore.tensor(y))
    assert xc.shape == x.shape and yc.shape == (8, 10)
    np.testing.assert_allclose(yc.sum(axis=1), 1.0, rtol=1e-6)
    xm2, _ = T.Mixup(alpha=0.4, num_classes=10, rng=0)(x, y)
    np.testing.assert_array_equal(xm2, xm)
    with pytest.raises(ValueError, match="labels must be in"):
        T.Mixup(num_classes=5)(x, y)
    with pytest.raises(ValueError, match="expects a batch"):
        T.CutMix()(x[0], y[:1])


def test_compose_and_to_tensor():
    hwc = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    t = T.Compose([T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    out = t(hwc)
    assert out.shape == (3, 5, 4)
    check_close(out, (hwc.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5, what="ToTensor + Normalize")
    check_close(T.ToFloat()(hwc), hwc / 255.0, what="ToFloat of uint8")


def test_transforms_follow_cnncore_manual_seed():
    x = images(n=4)
    cnncore.manual_seed(11)
    a = T.RandomCrop(4, padding=1)(x)
    cnncore.manual_seed(11)
    b = T.RandomCrop(4, padding=1)(x)
    np.testing.assert_array_equal(a, b)


# ---- bundled digits ------------------------------------------------------------------------------
def test_load_digits():
    x, y = data.load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert y[:10].tolist() == list(range(10))


def test_digits_split_is_fixed_and_disjoint():
    train, test = data.Digits(train=True), data.Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 359
    all_x, _ = data.load_digits()
    key = lambda a: {r.tobytes() for r in a.reshape(len(a), -1)}  # noqa: E731
    assert len(key(train.data) | key(test.data)) == len(key(all_x))
    np.testing.assert_array_equal(data.Digits(train=False).targets, test.targets)
    img, label = train[0]
    assert img.shape == (1, 8, 8) and isinstance(label, int)
    loader = data.DataLoader(data.Digits(transform=T.RandomCrop(8, padding=1, rng=0)),
                             batch_size=100, shuffle=True, generator=0)
    xb, yb = next(iter(loader))
    assert xb.shape == (100, 1, 8, 8) and yb.dtype == np.int64


# ---- IDX and CIFAR readers -----------------------------------------------------------------------
def write_idx(path, arr, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}i", *arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cls", [data.MNIST, data.FashionMNIST])
def test_mnist_idx_reader(tmp_path, gz, cls):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs, gz)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz)
    ds = cls(tmp_path, train=False)
    assert len(ds) == 5
    x, y = ds[2]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == 4
    check_close(x[0], imgs[2] / 255.0, what="MNIST image scaled to [0, 1]")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*train-labels-idx1-ubyte"):
        cls(tmp_path, train=True)


def test_idx_reader_in_torchvision_layout_and_bad_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 9], np.uint8))
    assert data.MNIST(tmp_path).targets.tolist() == [0, 9]
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.datasets.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header"):
        data.datasets.read_idx(tmp_path / "short")


def write_cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    entry = {b"batch_label": b"test", b"labels": rng.integers(0, 10, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [b"x.png"] * n}
    with open(path, "wb") as f:
        pickle.dump(entry, f)
    return entry


def test_cifar10_reader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    entry = write_cifar_batch(folder / "test_batch", 4, 0)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                                      b"dog", b"frog", b"horse", b"ship", b"truck"]}, f)
    ds = data.CIFAR10(tmp_path, train=False)
    assert len(ds) == 4 and ds.classes[0] == "airplane"
    x, y = ds[1]
    assert x.shape == (3, 32, 32) and y == entry[b"labels"][1]
    check_close(x, entry[b"data"][1].reshape(3, 32, 32) / 255.0, what="CIFAR image")
    with pytest.raises(FileNotFoundError, match="data_batch_1, data_batch_2"):
        data.CIFAR10(tmp_path, train=True)
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", 2, i)
    assert len(data.CIFAR10(folder, train=True)) == 10


def test_per_image_transforms_still_work_on_the_batch_path():
    seen = []

    def per_image(im):
        seen.append(im.shape)
        return im * 2

    ds = data.Digits(train=False, transform=T.Compose([T.Lambda(per_image)]))
    xb, _ = next(iter(data.DataLoader(ds, batch_size=5)))
    assert seen == [(1, 8, 8)] * 5
    check_close(xb, ds.data[:5] * 2, what="Lambda applied per image")
    assert T.is_batch_aware(T.Compose([T.RandomCrop(8, padding=1), T.Normalize([0.5], [0.5])]))
    assert not T.is_batch_aware(T.ToTensor())


def test_digits_train_softmax_regression_end_to_end():
    # Loader + transforms + optimizer on the bundled data, gradients by hand (numpy), so this
    # checks the data and the update path without depending on the op library.
    from cnncore import optim
    from cnncore.nn import Parameter

    train = data.Digits(train=True, transform=T.Normalize([0.3], [0.4]))
    test = data.Digits(train=False, transform=T.Normalize([0.3], [0.4]))
    w = Parameter(np.zeros((64, 10), np.float32))
    b = Parameter(np.zeros(10, np.float32))
    opt = optim.Adam([w, b], lr=0.05)
    sched = optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)

    def probs(x):
        z = x.reshape(len(x), -1) @ w.detach().numpy() + b.detach().numpy()
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    for _ in range(8):
        for xb, yb in data.DataLoader(train, batch_size=64, shuffle=True, generator=0):
            x, y = xb.numpy(), yb.numpy()
            g = probs(x)
            g[np.arange(len(y)), y] -= 1.0
            g /= len(y)
            w.grad = cnncore.tensor(x.reshape(len(x), -1).T @ g)
            b.grad = cnncore.tensor(g.sum(axis=0))
            opt.step()
        sched.step()
    xt, yt = next(iter(data.DataLoader(test, batch_size=len(test))))
    accuracy = (probs(xt.numpy()).argmax(axis=1) == yt.numpy()).mean()
    assert accuracy > 0.93, accuracy  # it reaches about 0.95


def test_loader_sampler_and_torch_compatible_arguments():
    ds = data.TensorDataset(np.zeros((6, 1), np.float32), np.arange(6))
    loader = data.DataLoader(ds, batch_size=2, sampler=[5, 3, 1], num_workers=0, pin_memory=True)
    assert len(loader) == 2 and order(loader) == [5, 3, 1]
    with pytest.raises(ValueError, match="mutually exclusive"):
        data.DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="num_workers"):
        data.DataLoader(ds, num_workers=-1)
    bl = data.DataLoader(ds, batch_sampler=[[0, 1, 2], [4]])
    assert len(bl) == 2 and batch_sizes(bl) == [3, 1]
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        data.DataLoader(ds, batch_size=2, batch_sampler=[[0]])


def test_torch_style_getitems_is_collated():
    class Batched(PlainDataset):
        calls = 0

        def __getitems__(self, indices):
            Batched.calls += 1
            return [self[i] for i in indices]

    xb, yb, _ = next(iter(data.DataLoader(Batched(), batch_size=4)))
    assert Batched.calls == 1 and xb.shape == (4, 2, 2) and yb.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("generator", [7, "numpy", None], ids=["seed", "numpy", "cnncore"])
def test_loader_state_dict_resumes_the_same_orders(generator):
    import json

    ds = data.TensorDataset(np.zeros((20, 1), np.float32), np.arange(20))

    def loader(g):
        g = np.random.default_rng(5) if g == "numpy" else g
        return data.DataLoader(ds, batch_size=6, shuffle=True, generator=g)

    cnncore.manual_seed(0)
    full = loader(generator)
    orders = [order(full) for _ in range(4)]
    cnncore.manual_seed(0)
    first = loader(generator)
    assert [order(first) for _ in range(2)] == orders[:2]
    saved = json.loads(json.dumps(first.state_dict()))  # as a JSON checkpoint keeps it
    rng_state = cnncore.get_rng_state()
    cnncore.manual_seed(99)  # whatever ran in between
    resumed = loader(99 if generator == 7 else generator)
    resumed.load_state_dict(saved)
    cnncore.set_rng_state(rng_state)  # the Trainer restores cnncore's RNG itself
    assert [order(resumed) for _ in range(2)] == orders[2:]


def test_color_jitter_hue_rotates_hsv_hue():
    import colorsys

    x = images(n=1, c=3, h=4, w=5)[0]
    out = T.ColorJitter(hue=(0.2, 0.2))(x)
    expected = np.empty_like(x)
    for i in range(4):
        for j in range(5):
            h, s, v = colorsys.rgb_to_hsv(*x[:, i, j])
            expected[:, i, j] = colorsys.hsv_to_rgb((h + 0.2) % 1.0, s, v)
    check_close(out, expected, what="hue shift of 0.2 turn")
    grey = images(n=2, c=1)
    np.testing.assert_array_equal(T.ColorJitter(hue=0.5, rng=0)(grey), grey)  # no hue in grey
    with pytest.raises(ValueError, match="hue values should be between"):
        T.ColorJitter(hue=0.6)
