"""Data-parallel training over MPI (mpi4py), shaped like torch.distributed and torch's DDP.

    mpiexec -n 4 python -m cnncore train --threads 1
    mpiexec -n 4 python my_script.py        # init(); model = DistributedDataParallel(model); ...

Every rank runs the same program on its own shard of each batch (DistributedSampler). The wrapper
broadcasts rank 0's weights and buffers when it is built, and averages the gradients during
backward: parameters are grouped into buckets of about ``bucket_cap_mb`` in reverse registration
order (the order backward produces them); a bucket's non-blocking allreduce starts as soon as
the last gradient in it is final, while the tape is still computing the earlier layers, and
backward returns with every ``.grad`` averaged. Buckets are launched strictly in order so every
rank issues the same collectives in the same order.

Needs the optional extra ``dist`` (``pip install "cnncore[dist]"``: mpi4py and the mpich wheel,
whose ``mpiexec`` lands in the environment's bin/). ``import cnncore`` never imports mpi4py.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os

import numpy as np

from . import _core
from .nn.module import Module
from .nn.normalization import _BatchNorm
from .tensor import Tensor, _record, no_grad

__all__ = ["init", "is_initialized", "is_available", "launched_by_mpi", "rank", "world_size",
           "barrier", "all_reduce", "broadcast", "DistributedDataParallel", "DistributedSampler",
           "SyncBatchNorm"]

_comm = None  # the world communicator once init() ran

# Rank/size variables MPI launchers put into each process's environment.
_LAUNCH_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE",
                     "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """True when this process was started by mpiexec/mpirun with more than one rank (MPICH's
    PMI_SIZE, Open MPI's OMPI_COMM_WORLD_SIZE, MVAPICH's MV2_COMM_WORLD_SIZE)."""
    for var in _LAUNCH_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def is_available() -> bool:
    """Whether mpi4py can be imported (without initialising MPI twice)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def init(comm=None) -> None:
    """Joins the MPI job (idempotent). comm: an mpi4py communicator (default COMM_WORLD)."""
    global _comm
    if _comm is not None and comm is None:
        return
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("cnncore.distributed.init: needs mpi4py and an MPI library; install "
                          "the extra: pip install 'cnncore[dist]' (mpi4py + mpich)") from e
    _comm = MPI.COMM_WORLD if comm is None else comm


def is_initialized() -> bool:
    return _comm is not None


def _world():
    if _comm is None:
        raise RuntimeError("cnncore.distributed: call cnncore.distributed.init() first")
    return _comm


def rank() -> int:
    """This process's rank in [0, world_size())."""
    return _world().Get_rank()


def world_size() -> int:
    return _world().Get_size()


def _active_comm():
    """The communicator when a multi-rank job is running, else None (single-process code paths)."""
    return _comm if _comm is not None and _comm.Get_size() > 1 else None


def barrier() -> None:
    _world().Barrier()


_OPS = ("sum", "mean", "max", "min")


def _mpi_op(op: str):
    from mpi4py import MPI
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}, but got {op!r}")
    return {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]


def all_reduce(data, op: str = "sum"):
    """Reduces across ranks. A cnncore Tensor or numpy array is reduced in place and returned;
    numbers and lists of numbers come back as a float or a float64 array. op: sum, mean, max,
    min."""
    comm = _world()
    mpi_op = _mpi_op(op)
    if isinstance(data, Tensor):
        arr = np.array(data.detach().numpy(), order="C")
        comm.Allreduce(_in_place(), arr, op=mpi_op)
        if op == "mean":
            arr = (arr / comm.Get_size()).astype(arr.dtype, copy=False)
        with no_grad():
            data._c.copy_(_core.from_numpy(arr))
        return data
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            raise ValueError("all_reduce: a numpy array must be C-contiguous to be reduced in "
                             "place")
        comm.Allreduce(_in_place(), data, op=mpi_op)
        if op == "mean":
            data /= comm.Get_size()
        return data
    scalar = isinstance(data, numbers.Real)
    arr = np.atleast_1d(np.asarray(data, dtype=np.float64)).copy()
    if arr.dtype.kind != "f":
        raise TypeError(f"all_reduce: expected a Tensor, an array or numbers, but got "
                        f"{type(data).__name__}")
    comm.Allreduce(_in_place(), arr, op=mpi_op)
    if op == "mean":
        arr /= comm.Get_size()
    return float(arr[0]) if scalar else arr


def broadcast(data, src: int = 0):
    """Rank src's values into every rank's Tensor or numpy array, in place; returns it."""
    comm = _world()
    if isinstance(data, Tensor):
        arr = np.array(data.detach().numpy(), order="C")
        comm.Bcast(arr, root=src)
        with no_grad():
            data._c.copy_(_core.from_numpy(arr))
        return data
    if isinstance(data, np.ndarray) and data.flags.c_contiguous:
        comm.Bcast(data, root=src)
        return data
    raise TypeError(f"broadcast: expected a Tensor or a C-contiguous numpy array, but got "
                    f"{type(data).__name__}")


def _in_place():
    from mpi4py import MPI
    return MPI.IN_PLACE


# ---- DistributedDataParallel ---------------------------------------------------------------------
class _Bucket:
    __slots__ = ("params", "offsets", "buffer", "ready", "request")

    def __init__(self, params):
        self.params = params
        sizes = [p.numel() for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.buffer = np.zeros(int(self.offsets[-1]), np.float32)
        self.ready = 0
        self.request = None


def _graph_leaf_uses(outputs, params_by_id) -> dict:
    """How many gradient edges of the recorded graph end at each parameter: the number of times
    backward will accumulate into it (the tape adds edge by edge)."""
    uses = dict.fromkeys(params_by_id, 0)
    stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
    seen = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for t, need in zip(node.inputs, node.needs):
            if t is None or not need:
                continue
            if t.grad_fn is None:
                if id(t) in uses:
                    uses[id(t)] += 1
            elif id(t.grad_fn) not in seen:
                stack.append(t.grad_fn)
    return uses


def _tensors_in(obj):
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors_in(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors_in(o)]
    return []


class DistributedDataParallel(Module):
    """DistributedDataParallel(module, bucket_cap_mb=4, broadcast_buffers=True).

    Wraps ``module`` (its state_dict keys gain the ``module.`` prefix, as torch's). Building it
    broadcasts rank 0's parameters and buffers; each training forward broadcasts rank 0's buffers
    again when broadcast_buffers (torch's default), so the BatchNorm running statistics follow
    rank 0 while each rank normalises with its own batch's statistics (use SyncBatchNorm for
    global batch statistics). Gradients are averaged across ranks during backward.

    The bucket default (4 MB, torch uses 25) suits the CPU-sized models here: the first bucket
    starts reducing sooner. Inside ``with ddp.no_sync():`` gradients only accumulate locally; the
    next backward outside it averages the accumulated sum. One forward per backward: a second
    forward before backward re-plans the reduction for the new graph only.
    """

    def __init__(self, module, bucket_cap_mb: float = 4.0, broadcast_buffers: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a cnncore.nn.Module, but "
                            f"got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, numbers.Real) \
                or not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive number, "
                             f"but got {bucket_cap_mb!r}")
        world = _world()
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        # A private communicator: our non-blocking reductions never interleave with the user's or
        # SyncBatchNorm's collectives on COMM_WORLD.
        object.__setattr__(self, "_comm", world.Dup())
        self._check_same_model()
        with no_grad():
            for t in list(module.parameters()) + [b for b in module.buffers() if b is not None]:
                broadcast_into(self._comm, t)
        params = [p for p in module.parameters() if p.requires_grad]
        cap = int(bucket_cap_mb * 1024 * 1024)
        buckets, current, size = [], [], 0
        for p in reversed(params):
            if current and size + 4 * p.numel() > cap:
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += 4 * p.numel()
        if current:
            buckets.append(_Bucket(current))
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_where", {id(p): (b, i) for b in buckets
                                            for i, p in enumerate(b.params)})
        object.__setattr__(self, "_pending_uses", {})
        object.__setattr__(self, "_next_bucket", len(buckets))  # nothing to reduce yet
        object.__setattr__(self, "_sync", True)
        object.__setattr__(self, "_handles", [p.register_post_accumulate_grad_hook(self._on_grad)
                                              for p in params])

    @property
    def bucket_sizes(self) -> list:
        """Bytes per bucket, in launch order."""
        return [int(b.buffer.nbytes) for b in self._buckets]

    def _check_same_model(self):
        shapes = [tuple(p.shape) for p in self.module.parameters()]
        every = self._comm.allgather(shapes)
        for r, other in enumerate(every):
            if other != shapes:
                raise ValueError(f"DistributedDataParallel: rank {r} has parameter shapes that "
                                 f"differ from rank {self._comm.Get_rank()}'s ({len(other)} vs "
                                 f"{len(shapes)} parameters); every rank must build the same "
                                 f"model")

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients accumulate locally without communication inside this block."""
        prev = self._sync
        object.__setattr__(self, "_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "_sync", prev)

    def forward(self, *args, **kwargs):
        if self.training and self.broadcast_buffers:
            with no_grad():
                for b in self.module.buffers():
                    if b is not None:
                        broadcast_into(self._comm, b)
        out = self.module(*args, **kwargs)
        self._plan(_tensors_in(out))
        return out

    def _plan(self, outputs):
        """Counts, from the graph just recorded, how many accumulations each parameter's gradient
        gets in the coming backward; a parameter is final when its count reaches zero."""
        if not self._sync or not any(t.grad_fn is not None for t in outputs):
            object.__setattr__(self, "_next_bucket", len(self._buckets))
            return
        uses = _graph_leaf_uses(outputs, self._where)
        object.__setattr__(self, "_pending_uses", uses)
        object.__setattr__(self, "_next_bucket", 0)
        for b in self._buckets:
            b.ready, b.request = 0, None
        # Parameters this graph never reaches are final already (their gradient is unchanged).
        for b in self._buckets:
            for i, p in enumerate(b.params):
                if uses[id(p)] == 0:
                    self._mark_ready(b, i, p)
        self._launch_ready()

    def _on_grad(self, p):
        uses = self._pending_uses
        key = id(p)
        if self._next_bucket >= len(self._buckets) or uses.get(key, 0) <= 0:
            return
        uses[key] -= 1
        if uses[key] == 0:
            b, i = self._where[key]
            self._mark_ready(b, i, p)
            self._launch_ready()

    def _mark_ready(self, b, i, p):
        view = b.buffer[b.offsets[i]:b.offsets[i + 1]]
        if p.grad is None:
            view[:] = 0.0
        else:
            view[:] = p.grad.numpy().reshape(-1)
        b.ready += 1

    def _launch_ready(self):
        from mpi4py import MPI
        k = self._next_bucket
        while k < len(self._buckets) and self._buckets[k].ready == len(self._buckets[k].params):
            b = self._buckets[k]
            b.request = self._comm.Iallreduce(MPI.IN_PLACE, b.buffer, op=MPI.SUM)
            k += 1
        object.__setattr__(self, "_next_bucket", k)
        launched = [b.request for b in self._buckets[:k] if b.request is not None]
        if k < len(self._buckets):
            MPI.Request.Testall(launched)  # lets MPI progress the reductions in flight
            return
        MPI.Request.Waitall(launched)
        n = float(self._comm.Get_size())
        for b in self._buckets:
            b.request = None
            b.buffer /= n
            for i, p in enumerate(b.params):
                if p.grad is None and self._pending_uses.get(id(p), 0) == 0 and \
                        not b.buffer[b.offsets[i]:b.offsets[i + 1]].any():
                    continue  # unused everywhere: stays None, as in a single process
                avg = b.buffer[b.offsets[i]:b.offsets[i + 1]].reshape(p.shape).copy()
                p.grad = Tensor._wrap(_core.from_numpy(avg))
        object.__setattr__(self, "_pending_uses", {})
        object.__setattr__(self, "_next_bucket", len(self._buckets))


def broadcast_into(comm, t: Tensor, src: int = 0) -> None:
    arr = np.array(t.detach().numpy(), order="C")
    comm.Bcast(arr, root=src)
    t._c.copy_(_core.from_numpy(arr))


# ---- DistributedSampler --------------------------------------------------------------------------
class DistributedSampler:
    """DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
    drop_last=False), with torch's semantics: each rank takes every num_replicas-th index of
    one permutation (seeded by seed + epoch, identical on all ranks; call set_epoch(epoch) each
    epoch, which the Trainer does), padded by wrapping around to an equal count per rank, or
    with drop_last the tail dropped instead. num_replicas/rank default to the MPI job's."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None:
            num_replicas = world_size()
        if rank is None:
            rank = globals()["rank"]()
        for name, v in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"DistributedSampler: {name} must be an int, but got "
                                f"{type(v).__name__}")
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be positive, but got "
                             f"{num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0:
                indices = np.concatenate([indices, np.resize(indices, pad)])
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas].tolist())


# ---- SyncBatchNorm -------------------------------------------------------------------------------
def _sync_batch_norm(x: Tensor, bn: "SyncBatchNorm", comm, momentum: float) -> Tensor:
    """Batch norm over the union of every rank's batch: per-channel sums are allreduced in the
    forward (sum x, sum x^2, count) and in the backward (sum dy, sum dy*xhat). Weight and bias
    gradients stay local sums, which DistributedDataParallel then averages, as in torch."""
    xn = x._c.numpy()
    c = xn.shape[1]
    axes = (0,) + tuple(range(2, xn.ndim))
    bshape = (1, c) + (1,) * (xn.ndim - 2)
    x64 = xn.astype(np.float64)
    stats = np.concatenate([x64.sum(axes), (x64 * x64).sum(axes), [xn.size // c]])
    comm.Allreduce(_in_place(), stats)
    count = stats[-1]
    mean = stats[:c] / count
    var = np.maximum(stats[c:2 * c] / count - mean * mean, 0.0)
    invstd = 1.0 / np.sqrt(var + bn.eps)
    xhat = ((x64 - mean.reshape(bshape)) * invstd.reshape(bshape))
    w = None if bn.weight is None else bn.weight._c.numpy().astype(np.float64)
    b = None if bn.bias is None else bn.bias._c.numpy().astype(np.float64)
    y = xhat * w.reshape(bshape) if w is not None else xhat.copy()
    if b is not None:
        y += b.reshape(bshape)
    if bn.track_running_stats and bn.running_mean is not None:
        rm, rv = bn.running_mean._c.numpy(), bn.running_var._c.numpy()
        unbiased = var * count / max(count - 1.0, 1.0)
        rm[...] = ((1.0 - momentum) * rm + momentum * mean).astype(np.float32)
        rv[...] = ((1.0 - momentum) * rv + momentum * unbiased).astype(np.float32)

    def backward(g, needs):
        gn = g.numpy().astype(np.float64)
        sums = np.concatenate([gn.sum(axes), (gn * xhat).sum(axes)])
        local = sums.copy()
        comm.Allreduce(_in_place(), sums)
        scale = invstd if w is None else invstd * w
        dx = (gn - (sums[:c] / count).reshape(bshape)
              - xhat * (sums[c:] / count).reshape(bshape)) * scale.reshape(bshape)
        out = [_core.from_numpy(np.ascontiguousarray(dx, np.float32)) if needs[0] else None,
               _core.from_numpy(local[c:].astype(np.float32)) if needs[1] else None,
               _core.from_numpy(local[:c].astype(np.float32)) if needs[2] else None]
        return tuple(out)

    y_core = _core.from_numpy(np.ascontiguousarray(y, np.float32))
    return _record(y_core, (x, bn.weight, bn.bias), backward, "SyncBatchNormBackward")


class SyncBatchNorm(_BatchNorm):
    """SyncBatchNorm(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, process_group=None): BatchNorm whose training statistics cover
    the whole global batch (all ranks). Outside training, or in a single process, it is
    BatchNorm. process_group: an mpi4py communicator (default: the world). Inputs (N, C, ...)."""

    _expected_dims = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def forward(self, input: Tensor):
        comm = self.process_group if self.process_group is not None else _active_comm()
        if not self.training or comm is None or comm.Get_size() == 1:
            return super().forward(input)
        if input.ndim < 2 or input.ndim > 5:
            raise ValueError(f"SyncBatchNorm: expected 2-D to 5-D input, but got {input.ndim}-D "
                             f"with shape {input.shape}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: input has {input.shape[1]} channels but the layer "
                             f"expects num_features={self.num_features}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.numpy()[...] += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        return _sync_batch_norm(input, self, comm, momentum)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Returns ``module`` with every BatchNorm layer replaced by a SyncBatchNorm holding the
        same parameters and running statistics (torch's helper)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)
            with no_grad():
                if module.affine:
                    out.weight.copy_(module.weight)
                    out.bias.copy_(module.bias)
                if module.track_running_stats:
                    out.running_mean.copy_(module.running_mean)
                    out.running_var.copy_(module.running_var)
                    out.num_batches_tracked.copy_(module.num_batches_tracked)
            out.train(module.training)
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module
