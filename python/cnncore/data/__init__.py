"""Data loading: datasets, DataLoader, transforms/augmentation, and the bundled digits."""

from . import transforms  # noqa: F401
from .dataloader import DataLoader, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .datasets import CIFAR10, MNIST, Digits, FashionMNIST, load_digits
from .glyphs import SyntheticGlyphs

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader",
           "default_collate", "transforms", "load_digits", "Digits", "MNIST", "FashionMNIST",
           "CIFAR10", "SyntheticGlyphs"]
