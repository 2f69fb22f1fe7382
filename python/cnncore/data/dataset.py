"""Datasets: the map-style protocol (__getitem__ / __len__), TensorDataset, Subset,
ConcatDataset and random_split, as in torch.utils.data.

A dataset may also define ``get_batch(indices)`` returning one already-stacked sample for the
whole batch (a tuple of arrays with a leading batch axis); DataLoader then skips the per-item
Python loop. TensorDataset, Subset and the bundled image datasets do. (torch's
``__getitems__(indices)``, a list of samples then collated, is honoured too.)
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings

import numpy as np

from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]


class Dataset:
    """A map-style dataset: subclasses give __getitem__(index) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _as_array(t, what: str) -> np.ndarray:
    if isinstance(t, Tensor):
        return t.detach().numpy()
    if isinstance(t, np.ndarray):
        return t
    if type(t).__module__.startswith("torch"):
        return t.detach().cpu().numpy()
    raise TypeError(f"TensorDataset: {what} must be a cnncore Tensor or a numpy array, but got "
                    f"{type(t).__name__}")


class TensorDataset(Dataset):
    """Wraps arrays (cnncore Tensors or numpy arrays) that share their first dimension; item i is
    the tuple of their i-th rows, as numpy views (a 1-D array gives a numpy scalar). DataLoader's
    default collate turns a batch of them back into cnncore Tensors."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        self.tensors = tuple(_as_array(t, f"tensors[{i}]") for i, t in enumerate(tensors))
        n = self.tensors[0].shape[0] if self.tensors[0].ndim else None
        for i, t in enumerate(self.tensors):
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError("TensorDataset: size mismatch between tensors: "
                                 + ", ".join(str(tuple(a.shape)) for a in self.tensors)
                                 + f" (tensors[{i}] differs in its first dimension)")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def get_batch(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        return tuple(t[idx] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The items of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, idx):
        if isinstance(idx, (list, np.ndarray)):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)

    def __getattr__(self, name):
        # Subset(dataset).get_batch / __getitems__ exist exactly when the wrapped dataset has them.
        if name in ("get_batch", "__getitems__") and hasattr(self.dataset, name):
            fn = getattr(self.dataset, name)
            return lambda indices: fn([self.indices[i] for i in indices])
        raise AttributeError(name)


class ConcatDataset(Dataset):
    """Several datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][idx - start]


def resolve_rng(generator) -> np.random.Generator:
    """A numpy Generator from: a Generator (used as is), an int seed, or None (seeded from
    cnncore's generator, so cnncore.manual_seed makes it reproducible)."""
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        from ..tensor import rand
        seed = (rand(4).numpy().astype(np.float64) * 2.0**32).astype(np.uint64)
        return np.random.default_rng([int(s) for s in seed])
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError("generator must be a numpy.random.Generator, an int seed or None, but got "
                    f"{type(generator).__name__}")


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Splits into non-overlapping Subsets of the given lengths, or fractions summing to 1
    (floor of each, then the remainder handed out one by one from the first, as torch)."""
    lengths = list(lengths)
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        subset_lengths = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            subset_lengths.append(int(math.floor(n * frac)))
        remainder = n - sum(subset_lengths)
        for i in range(remainder):
            subset_lengths[i % len(subset_lengths)] += 1
        lengths = subset_lengths
        for i, length in enumerate(lengths):
            if length == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty "
                              "dataset.", UserWarning, stacklevel=2)
    if any(not isinstance(x, numbers.Integral) or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions summing "
                         f"to 1, but got {lengths}")
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    perm = resolve_rng(generator).permutation(n).tolist()
    return [Subset(dataset, perm[offset - length:offset])
            for offset, length in zip(itertools.accumulate(lengths), lengths)]
