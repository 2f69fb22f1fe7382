"""DataLoader: batches of a map-style dataset, optionally shuffled with a seeded generator, in the
calling thread (the kernels are where the threads are)."""

from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from .. import _core
from ..tensor import Tensor
from .dataset import resolve_rng

__all__ = ["DataLoader", "default_collate"]


def _to_tensor(arr: np.ndarray) -> Tensor:
    """float -> float32, integer/bool -> int64 (labels), as one contiguous cnncore Tensor."""
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype.kind in "iub":
        arr = arr.astype(np.int64, copy=False)
    else:
        raise TypeError(f"default_collate: cannot make a tensor of dtype {arr.dtype}")
    return Tensor._wrap(_core.from_numpy(np.ascontiguousarray(arr)))


def default_collate(batch):
    """Stacks a list of samples: arrays, cnncore Tensors and numbers become one cnncore Tensor with
    a leading batch axis (ints -> int64, floats -> float32); tuples/lists are collated field by
    field (a list, as torch), dicts key by key; strings stay a list."""
    if len(batch) == 0:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _to_tensor(np.stack([b.detach().numpy() for b in batch]))
    if isinstance(elem, (np.ndarray, np.generic)):
        return _to_tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, bool):
        return _to_tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, numbers.Integral):
        return _to_tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return _to_tensor(np.asarray(batch, dtype=np.float32))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain arrays, Tensors, numbers, dicts or "
                    f"lists; found {type(elem).__name__}")


def _collate_stacked(sample):
    """The default collate of a sample get_batch already stacked."""
    if isinstance(sample, (tuple, list)):
        return [_collate_stacked(s) for s in sample]
    if isinstance(sample, collections.abc.Mapping):
        return {k: _collate_stacked(v) for k, v in sample.items()}
    if isinstance(sample, Tensor):
        return sample
    return _to_tensor(np.asarray(sample))


class DataLoader:
    """Iterates over `dataset` in batches.

    shuffle draws a new permutation every epoch (every iter()). Where it comes from:
      - generator=None: seeded from cnncore's generator (cnncore.manual_seed makes it repeatable,
        and a checkpoint of cnncore's RNG state resumes the same orders);
      - generator=int: the permutation of epoch e depends on (seed, e) only; set_epoch(e) jumps
        there, e.g. when resuming;
      - generator=numpy.random.Generator: drawn from it.
    state_dict() / load_state_dict() carry the epoch and the generator, for exact resume.
    sampler (an iterable of indices, re-iterated each epoch) replaces the order instead, as torch;
    it excludes shuffle. batch_sampler (an iterable of index lists) gives whole batches and
    excludes batch_size, shuffle, sampler and drop_last. drop_last drops a final batch smaller
    than batch_size. collate_fn(list of samples) makes the batch (default_collate).
    batch_size=None yields single samples, uncollated. num_workers and pin_memory are accepted
    for torch compatibility: loading runs in the calling thread (the kernels are where the
    threads are) and memory is never pinned."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, generator=None):
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, numbers.Integral)
                                       or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if generator is not None and not isinstance(generator, (np.random.Generator,
                                                                numbers.Integral)):
            raise TypeError("DataLoader: generator must be a numpy.random.Generator, an int seed "
                            f"or None, but got {type(generator).__name__}")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) \
                or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iter() serves (it counts up by one per iter())."""
        self.epoch = int(epoch)

    def state_dict(self) -> dict:
        """What the next epochs' orders depend on, JSON-able: the epoch counter and the shuffle
        generator (its seed, or a numpy Generator's bit_generator state). With generator=None the
        orders come from cnncore's RNG, whose state a checkpoint saves separately."""
        g = self.generator
        if isinstance(g, np.random.Generator):
            gen = {"bit_generator": g.bit_generator.state}
        elif g is None:
            gen = None
        else:
            gen = {"seed": int(g)}
        return {"epoch": self.epoch, "generator": gen}

    def load_state_dict(self, state: dict) -> None:
        """Restores state_dict(): the next iter() serves the order an uninterrupted run would."""
        self.epoch = int(state["epoch"])
        gen = state.get("generator")
        if gen is None:
            return
        if "seed" in gen:
            self.generator = int(gen["seed"])
        elif "bit_generator" in gen:
            bg_state = gen["bit_generator"]
            bit_gen = getattr(np.random, bg_state["bit_generator"])()
            bit_gen.state = bg_state
            self.generator = np.random.Generator(bit_gen)
        else:
            raise ValueError(f"DataLoader.load_state_dict: unknown generator state {gen!r}")

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if self.sampler is not None:
            return np.fromiter((int(i) for i in self.sampler), dtype=np.int64)
        if not self.shuffle:
            return np.arange(n)
        if isinstance(self.generator, numbers.Integral):
            rng = np.random.default_rng([int(self.generator) & 0xFFFFFFFFFFFFFFFF, self.epoch])
        else:
            rng = resolve_rng(self.generator)
        return rng.permutation(n)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        # The order is drawn (and the epoch counted) when iteration starts, not at the first
        # next(): set_epoch() and the RNG state then mean what they say.
        if self.batch_sampler is not None:
            self.epoch += 1
            return (self._collate([int(i) for i in b]) for b in self.batch_sampler)
        order = self._order()
        self.epoch += 1
        return self._batches(order)

    def _collate(self, idx):
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return _collate_stacked(self.dataset.get_batch(idx))
        if hasattr(self.dataset, "__getitems__"):  # torch's protocol: a list of samples
            samples = self.dataset.__getitems__(idx)
        else:
            samples = [self.dataset[i] for i in idx]
        return (self.collate_fn or default_collate)(samples)

    def _batches(self, order):
        if self.batch_size is None:
            for i in order:
                yield self.dataset[int(i)]
            return
        bs = self.batch_size
        stop = len(order) - len(order) % bs if self.drop_last else len(order)
        for start in range(0, stop, bs):
            yield self._collate(order[start:start + bs].tolist())
