"""Bundled and on-disk image datasets; nothing is downloaded.

Digits (bundled, the default): the 8x8 handwritten digits, 1,797 images of 10 classes, from the
UCI Machine Learning Repository's "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin, C. Kaynak, 1998; https://archive.ics.uci.edu/dataset/80; licensed CC BY 4.0).
digits.npz holds the copy scikit-learn bundles (sklearn/datasets/data/digits.csv.gz, the UCI
test set), extracted once as uint8 (images 0..16, labels 0..9); cnncore does not depend on
scikit-learn.

MNIST / FashionMNIST read the IDX files (raw or .gz) from a directory you point to; CIFAR10 reads
the official "python version" batches. Those are pickles, so they are read by an unpickler that
refuses every global except the few that rebuild a numpy array: a hostile file cannot run code.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle  # only for the restricted unpickler below
from pathlib import Path

import numpy as np

from . import transforms
from .dataset import Dataset

__all__ = ["load_digits", "Digits", "ImageArrayDataset", "MNIST", "FashionMNIST", "CIFAR10",
           "read_idx"]

_DIGITS_FILE = Path(__file__).with_name("digits.npz")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: images (1797, 1, 8, 8) float32 in [0, 1], labels (1797,) int64."""
    with np.load(_DIGITS_FILE) as z:
        images = z["images"].astype(np.float32)[:, None] / np.float32(16.0)
        labels = z["labels"].astype(np.int64)
    return images, labels


class ImageArrayDataset(Dataset):
    """Images held as one array (N, C, H, W) (uint8 or float) with int labels. Item i is
    (image float32 (C, H, W), label int) after transform / target_transform; get_batch serves
    a whole batch at once: cnncore's own transforms then see the batch (N, C, H, W) and draw per
    image, any other transform is called image by image."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, scale: float, transform=None,
                 target_transform=None, classes=None):
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{type(self).__name__}: {images.shape[0]} images but "
                             f"{labels.shape[0]} labels")
        self.data = images
        self.targets = labels.astype(np.int64)
        self.scale = np.float32(scale)
        self.transform = transform
        self.target_transform = target_transform
        self.classes = list(classes) if classes is not None else [str(i) for i in range(10)]

    def __len__(self) -> int:
        return self.data.shape[0]

    def _images(self, idx) -> np.ndarray:
        x = self.data[idx]
        return x.astype(np.float32) / self.scale if self.scale != 1 else x.astype(np.float32)

    def __getitem__(self, index):
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__}: index {index} out of range for "
                             f"{len(self)} items")
        x = self._images(index)
        y = int(self.targets[index])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def get_batch(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        x = self._images(idx)
        y = self.targets[idx]
        if self.transform is not None:
            if transforms.is_batch_aware(self.transform):
                x = self.transform(x)
            else:  # a per-image transform (a Lambda, ToTensor, a user's function): one by one
                x = np.stack([np.asarray(self.transform(im)) for im in x])
        if self.target_transform is not None:
            y = np.asarray([self.target_transform(int(v)) for v in y])
        return x, y


class Digits(ImageArrayDataset):
    """The bundled 8x8 digits as (1, 8, 8) images in [0, 1]. A fixed split (seeded permutation,
    stratified per class so both halves keep the class balance): test_fraction of each class is
    the test set, the rest train; the same for every seed-0 user, so results are comparable."""

    def __init__(self, train: bool = True, transform=None, target_transform=None,
                 test_fraction: float = 0.2, seed: int = 0):
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"Digits: test_fraction must be in (0, 1), but got {test_fraction}")
        images, labels = load_digits()
        rng = np.random.default_rng(seed)
        test_idx = []
        for c in range(10):
            members = np.flatnonzero(labels == c)
            members = members[rng.permutation(members.size)]
            test_idx.append(members[:int(round(members.size * test_fraction))])
        test_mask = np.zeros(labels.size, dtype=bool)
        test_mask[np.concatenate(test_idx)] = True
        keep = np.flatnonzero(~test_mask if train else test_mask)
        keep = keep[rng.permutation(keep.size)]
        self.train = train
        super().__init__(images[keep], labels[keep], 1.0, transform, target_transform)


# ---- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Reads an IDX file (raw or gzip): magic 0x00 0x00 <type> <ndim>, ndim big-endian int32 sizes,
    then the data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number "
                         f"{data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"read_idx: {path} is truncated: its header needs {header} bytes but "
                         f"the file has {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in dims):
        raise ValueError(f"read_idx: {path} has negative sizes {dims} in its header")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a hostile header cannot wrap
    if len(data) - header != expected:
        raise ValueError(f"read_idx: {path} holds {len(data) - header} data bytes but its header "
                         f"{dims} says {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def _find(root: Path, subdirs, names) -> tuple[Path | None, list[Path]]:
    """The first existing file among names (each also tried with .gz) in root and its subdirs."""
    tried = []
    for d in [root, *[root / s for s in subdirs]]:
        for name in names:
            for candidate in (d / name, d / (name + ".gz")):
                tried.append(candidate)
                if candidate.is_file():
                    return candidate, tried
    return None, tried


class MNIST(ImageArrayDataset):
    """MNIST from its four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; raw or .gz) in root, root/<Name>/raw or
    root/<Name>. Images (1, 28, 28) float32 in [0, 1], labels int64."""

    classes_names = [str(i) for i in range(10)]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        root = Path(os.path.expanduser(str(root)))
        name = type(self).__name__
        prefix = "train" if train else "t10k"
        subdirs = [f"{name}/raw", name]
        files = {}
        missing = []
        for kind, ndim in (("images", 3), ("labels", 1)):
            path, tried = _find(root, subdirs, [f"{prefix}-{kind}-idx{ndim}-ubyte",
                                                f"{prefix}-{kind}.idx{ndim}-ubyte"])
            if path is None:
                missing.append(f"{prefix}-{kind}-idx{ndim}-ubyte[.gz]")
            files[kind] = path
        if missing:
            raise FileNotFoundError(
                f"{name}: {' and '.join(missing)} not found in {root} (also looked in "
                f"{', '.join(str(root / s) for s in subdirs)}); nothing is downloaded, so put the "
                f"{name} IDX files there")
        images = read_idx(files["images"])
        labels = read_idx(files["labels"])
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"{name}: expected images (N, H, W) and labels (N,), but got "
                             f"{images.shape} and {labels.shape}")
        self.train = train
        self.root = root
        super().__init__(images[:, None], labels, 255.0, transform, target_transform,
                         self.classes_names)


class FashionMNIST(MNIST):
    """Fashion-MNIST: the same IDX layout and file names as MNIST (in root or
    root/FashionMNIST/raw)."""

    classes_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"]


# ---- CIFAR-10 ------------------------------------------------------------------------------------
class CIFAR10(ImageArrayDataset):
    """CIFAR-10 from the official python batches (data_batch_1..5, test_batch, batches.meta) in
    root or root/cifar-10-batches-py. Images (3, 32, 32) float32 in [0, 1], labels int64."""

    train_list = [f"data_batch_{i}" for i in range(1, 6)]
    test_list = ["test_batch"]
    base_folder = "cifar-10-batches-py"

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        root = Path(os.path.expanduser(str(root)))
        names = self.train_list if train else self.test_list
        folder = None
        for d in (root, root / self.base_folder):
            if all((d / n).is_file() for n in names):
                folder = d
                break
        if folder is None:
            missing = [n for n in names if not (root / n).is_file()
                       and not (root / self.base_folder / n).is_file()]
            raise FileNotFoundError(
                f"CIFAR10: {', '.join(missing)} not found in {root} or "
                f"{root / self.base_folder}; nothing is downloaded, so extract "
                f"cifar-10-python.tar.gz there")
        data, labels = [], []
        for n in names:
            entry = self._load(folder / n)
            try:
                images = entry[b"data"]
                if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
                    raise TypeError("data is not a uint8 array")
                data.append(images.reshape(-1, 3, 32, 32))
                batch_labels = entry[b"labels"] if b"labels" in entry else entry[b"fine_labels"]
                labels.extend(int(v) for v in batch_labels)
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"CIFAR10: {folder / n} is not a CIFAR-10 python batch "
                                 f"({type(e).__name__}: {e})") from None
        classes = None
        meta = folder / "batches.meta"
        if meta.is_file():
            m = self._load(meta)
            classes = [c.decode() if isinstance(c, bytes) else c for c in m[b"label_names"]]
        self.train = train
        self.root = root
        super().__init__(np.concatenate(data), np.asarray(labels, dtype=np.int64), 255.0,
                         transform, target_transform, classes)

    @staticmethod
    def _load(path: Path) -> dict:
        # CIFAR-10's official python format is a pickled dict of bytes keys (hence
        # encoding='bytes') holding a numpy array; only the globals that rebuild it are allowed.
        with open(path, "rb") as f:
            try:
                entry = _ArrayOnlyUnpickler(f, encoding="bytes").load()
            except _RefusedGlobal as e:
                raise ValueError(f"CIFAR10: {path} refused: {e}") from None
            except Exception as e:  # a corrupted pickle fails in many ways; all mean "bad file"
                raise ValueError(f"CIFAR10: {path} is not a CIFAR-10 python batch "
                                 f"({type(e).__name__}: {e})") from None
        if not isinstance(entry, dict) or b"data" not in entry and b"label_names" not in entry:
            raise ValueError(f"CIFAR10: {path} is not a CIFAR-10 python batch")
        return entry


class _RefusedGlobal(Exception):
    pass


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds only plain containers, strings, numbers and numpy arrays: every other global a
    pickle names (os.system, builtins.eval, ...) is refused before it is looked up."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise _RefusedGlobal(f"it names {module}.{name}, which is not allowed in a data file")
        return super().find_class(module, name)
