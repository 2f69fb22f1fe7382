"""Trainer: fit / evaluate / predict with metrics, a progress bar, early stopping, history files
and exact, atomic checkpoints.

A checkpoint is a directory holding `state.json` (epoch, history, optimizer hyperparameters,
scheduler state, cnncore's RNG state, the data loaders' generator states) and one generation
folder `gen-<n>/` with `model.safetensors` (weights and buffers) and `optimizer.safetensors`
(optimizer state tensors). The set is atomic as a whole: a new generation is written into a
temporary folder, fsynced and renamed; then `state.json`, which names that generation and the
SHA-256 of each of its files, replaces the old one atomically; only then are older generations
removed. A writer killed at any point leaves the previous checkpoint loadable and the new one
complete or absent, and a file corrupted later is reported, not loaded.
Resuming restores all of it, so an interrupted run continues bit for bit as if uninterrupted
(same seed and thread count).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import shutil
import sys
import time

import numpy as np

from . import io as cio
from .tensor import Tensor, get_rng_state, no_grad, set_rng_state, tensor

__all__ = ["Trainer", "accuracy", "read_checkpoint_state"]


def accuracy(output: Tensor, target: Tensor) -> float:
    """Fraction of rows whose argmax over dim 1 equals the target class (class-probability
    targets: their argmax)."""
    out = output.detach().numpy()
    tgt = target.detach().numpy() if isinstance(target, Tensor) else np.asarray(target)
    if tgt.ndim == out.ndim and tgt.dtype.kind == "f":
        tgt = tgt.argmax(1)
    return float((out.argmax(1) == tgt).mean()) if out.shape[0] else 0.0


_METRICS = {"accuracy": accuracy}


def _batch_size(x) -> int:
    first = x[0] if isinstance(x, (tuple, list)) else x
    return int(first.shape[0])


class _Progress:
    """tqdm when available and wanted; otherwise silent (the per-epoch line is printed by fit)."""

    def __init__(self, enabled: bool, total, desc: str):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)

    def update(self, **postfix):
        if self.bar is not None:
            self.bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                                  for k, v in postfix.items()}, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class Trainer:
    """Trainer(model, optimizer, loss, scheduler=None, metrics=("accuracy",)).

    loss: a callable (e.g. nn.CrossEntropyLoss()) taking (output, target). metrics: names
    ("accuracy") or callables (output, target) -> float, averaged over samples. progress: True,
    False, or None (= only when stderr is a terminal). Batches are (input, target) pairs where
    input may be a tuple of tensors for multi-input models.
    """

    def __init__(self, model, optimizer, loss, scheduler=None, metrics=("accuracy",),
                 progress=None, checkpoint_dir=None, early_stopping_patience=None,
                 monitor: str = "val_loss", history_path=None, verbose: bool = True):
        from .nn import Module
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be a cnncore.nn.Module, but got "
                            f"{type(model).__name__}")
        if not callable(loss):
            raise TypeError(f"Trainer: loss must be callable, but got {type(loss).__name__}")
        self.model, self.optimizer, self.loss_fn, self.scheduler = model, optimizer, loss, scheduler
        self.metrics = {}
        for m in metrics or ():
            if callable(m):
                self.metrics[getattr(m, "__name__", "metric")] = m
            elif m in _METRICS:
                self.metrics[m] = _METRICS[m]
            else:
                raise ValueError(f"Trainer: unknown metric {m!r}; available: "
                                 f"{', '.join(_METRICS)} or a callable")
        if early_stopping_patience is not None and (
                isinstance(early_stopping_patience, bool)
                or not isinstance(early_stopping_patience, int) or early_stopping_patience < 1):
            raise ValueError(f"Trainer: early_stopping_patience must be a positive int or None, "
                             f"but got {early_stopping_patience!r}")
        self.progress = progress
        self.checkpoint_dir = os.fspath(checkpoint_dir) if checkpoint_dir is not None else None
        self.patience, self.monitor = early_stopping_patience, monitor
        self.history_path = history_path
        self.verbose = verbose
        self.history: list[dict] = []
        self.epoch = 0  # epochs completed
        self._best, self._bad_epochs = math.inf, 0

    # ---- one pass ----
    def _forward(self, x):
        return self.model(*x) if isinstance(x, (tuple, list)) else self.model(x)

    def _per_batch_scheduler(self) -> bool:
        return type(self.scheduler).__name__ == "OneCycleLR"

    def _run(self, loader, train: bool, desc: str) -> dict:
        self.model.train(train)
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        try:
            total = len(loader)
        except TypeError:
            total = None
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # a DistributedSampler reshuffles by epoch
            sampler.set_epoch(self.epoch)
        bar = _Progress(bool(show) and _is_rank0(), total, desc)
        seen, loss_sum = 0, 0.0
        metric_sums = dict.fromkeys(self.metrics, 0.0)
        start = time.perf_counter()
        try:
            for x, y in loader:
                n = _batch_size(x)
                if train:
                    self.optimizer.zero_grad()
                    out = self._forward(x)
                    loss = self.loss_fn(out, y)
                    loss.backward()
                    self.optimizer.step()
                    if self.scheduler is not None and self._per_batch_scheduler():
                        self.scheduler.step()
                else:
                    with no_grad():
                        out = self._forward(x)
                        loss = self.loss_fn(out, y)
                lv = float(loss.item())
                if not math.isfinite(lv):
                    raise FloatingPointError(f"Trainer: the loss became {lv} at epoch "
                                             f"{self.epoch + 1}; lower the learning rate")
                seen += n
                loss_sum += lv * n
                for name, fn in self.metrics.items():
                    metric_sums[name] += fn(out, y) * n
                elapsed = time.perf_counter() - start
                bar.update(loss=loss_sum / seen, **{k: v / seen for k, v in metric_sums.items()},
                           img_s=f"{seen / max(elapsed, 1e-9):.0f}")
        finally:
            bar.close()
        elapsed = time.perf_counter() - start
        seen, loss_sum, metric_sums = _reduce_across_ranks(seen, loss_sum, metric_sums)
        if seen == 0:
            raise ValueError(f"Trainer: the {'training' if train else 'evaluation'} loader "
                             f"yielded no batches")
        res = {"loss": loss_sum / seen, **{k: v / seen for k, v in metric_sums.items()},
               "seconds": elapsed, "images_per_second": seen / max(elapsed, 1e-9)}
        return res

    def evaluate(self, loader) -> dict:
        """Mean loss and metrics over the loader, in eval mode, without gradients."""
        res = self._run(loader, train=False, desc="eval")
        return {k: v for k, v in res.items() if k not in ("seconds",)}

    def predict(self, loader) -> Tensor:
        """The model's outputs for every batch (eval mode, no grad), concatenated on dim 0.
        Batches may be (input, target) pairs or bare inputs."""
        self.model.eval()
        outs = []
        with no_grad():
            for batch in loader:
                x = batch[0] if isinstance(batch, (tuple, list)) and len(batch) == 2 else batch
                outs.append(self._forward(x).numpy())
        if not outs:
            raise ValueError("Trainer.predict: the loader yielded no batches")
        return tensor(np.concatenate(outs, 0))

    # ---- the loop ----
    def fit(self, train_loader, val_loader=None, epochs: int = 1, resume: bool = False) -> list:
        """Trains until `epochs` epochs are complete in total (a resumed run continues from the
        checkpoint's epoch). Returns the history: one dict per epoch with train_loss, train_<metric>,
        val_loss, val_<metric>, lr, seconds, images_per_second."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"Trainer.fit: epochs must be a non-negative int, but got {epochs!r}")
        self._loaders = [ld for ld in (train_loader, val_loader) if ld is not None]
        if resume:
            if self.checkpoint_dir is None:
                raise ValueError("Trainer.fit: resume=True needs checkpoint_dir")
            if os.path.isfile(os.path.join(self.checkpoint_dir, "state.json")):
                self.load_checkpoint(self.checkpoint_dir)
        while self.epoch < epochs:
            tr = self._run(train_loader, True, f"epoch {self.epoch + 1}/{epochs}")
            row = {"epoch": self.epoch + 1, **{f"train_{k}": v for k, v in tr.items()
                                                if k not in ("seconds", "images_per_second")},
                   "lr": self._lr(), "seconds": tr["seconds"],
                   "images_per_second": tr["images_per_second"]}
            if val_loader is not None:
                va = self._run(val_loader, False, "val")
                row.update({f"val_{k}": v for k, v in va.items()
                            if k not in ("seconds", "images_per_second")})
            if self.scheduler is not None and not self._per_batch_scheduler():
                if type(self.scheduler).__name__ == "ReduceLROnPlateau":
                    self.scheduler.step(row.get(self.monitor, row["train_loss"]))
                else:
                    self.scheduler.step()
            self.epoch += 1
            self.history.append(row)
            if self.verbose and _is_rank0():
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row.items()), file=sys.stderr)
            stop = self._early_stop(row)
            if self.checkpoint_dir is not None:
                self.save_checkpoint(self.checkpoint_dir)
            if self.history_path is not None:
                self.write_history(self.history_path)
            if stop:
                break
        return self.history

    def _lr(self):
        groups = getattr(self.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else None

    def _early_stop(self, row) -> bool:
        if self.patience is None:
            return False
        value = row.get(self.monitor)
        if value is None:
            raise ValueError(f"Trainer: early stopping monitors '{self.monitor}', which is not "
                             f"in the history ({', '.join(row)})")
        better = value < self._best if "loss" in self.monitor else value > -self._best
        if better:
            self._best = value if "loss" in self.monitor else -value
            self._bad_epochs = 0
            return False
        self._bad_epochs += 1
        return self._bad_epochs >= self.patience

    def write_history(self, path) -> None:
        """The per-epoch history as JSON (.json) or CSV (anything else), atomically."""
        path = os.fspath(path)
        if not _is_rank0():
            return
        if path.endswith(".json"):
            with cio.atomic_write(path, "w") as f:
                json.dump(self.history, f, indent=1)
            return
        keys = list(dict.fromkeys(k for row in self.history for k in row))
        with cio.atomic_write(path, "w") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.history)

    # ---- checkpoints ----
    def _loader_states(self):
        out = []
        for ld in getattr(self, "_loaders", []):
            out.append(ld.state_dict() if hasattr(ld, "state_dict") else None)
        return out

    def _bare_model(self):
        """The model without a DistributedDataParallel wrapper: checkpoints keep the plain
        model's keys, so one loads into a single process too."""
        from .distributed import DistributedDataParallel
        m = self.model
        return m.module if isinstance(m, DistributedDataParallel) else m

    def save_checkpoint(self, directory) -> None:
        directory = os.fspath(directory)
        if not _is_rank0():  # every rank holds the same weights; one writes, the rest wait
            _barrier()
            return
        try:
            self._save_checkpoint(directory)
        finally:
            _barrier()

    def _save_checkpoint(self, directory) -> None:
        os.makedirs(directory, exist_ok=True)
        gen = _next_generation(directory)
        tmp = os.path.join(directory, f".{gen}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # a killed writer's leftovers
        os.mkdir(tmp)
        cio.save(self._bare_model().state_dict(), os.path.join(tmp, "model.safetensors"))
        opt_state = self.optimizer.state_dict()
        tensors, plain = _split_tensors(opt_state)
        if tensors:
            cio.save(tensors, os.path.join(tmp, "optimizer.safetensors"))
        files = {name: _sha256(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}
        os.rename(tmp, os.path.join(directory, gen))
        _fsync_dir(directory)
        state = {
            "format": _FORMAT,
            "generation": gen,
            "files": files,
            "epoch": self.epoch,
            "history": self.history,
            "optimizer": plain,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": list(get_rng_state()),
            "loaders": self._loader_states(),
            "early_stopping": {"best": self._best if math.isfinite(self._best) else None,
                               "bad_epochs": self._bad_epochs},
        }
        with cio.atomic_write(os.path.join(directory, "state.json"), "w") as f:
            json.dump(state, f, default=_json_default)
        _remove_stale(directory, keep=gen)

    def load_checkpoint(self, directory) -> None:
        directory = os.fspath(directory)
        state, files = read_checkpoint_state(directory)
        self._bare_model().load_state_dict(cio.load(files["model.safetensors"]))
        opt_path = files.get("optimizer.safetensors")
        tensors = cio.load(opt_path) if opt_path is not None else {}
        try:
            opt_state = _join_tensors(state["optimizer"], tensors)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"load_checkpoint: the optimizer state in {directory} does not "
                             f"match its tensors ({e!r})") from None
        self.optimizer.load_state_dict(opt_state)
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(tuple(state["rng"]))
        for ld, st in zip(getattr(self, "_loaders", []), state.get("loaders") or []):
            if st is not None and hasattr(ld, "load_state_dict"):
                ld.load_state_dict(st)
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        es = state.get("early_stopping") or {}
        self._best = es.get("best") if es.get("best") is not None else math.inf
        self._bad_epochs = int(es.get("bad_epochs", 0))


def _multi_rank_comm():
    from . import distributed
    return distributed._active_comm()


def _is_rank0() -> bool:
    comm = _multi_rank_comm()
    return comm is None or comm.Get_rank() == 0


def _barrier() -> None:
    comm = _multi_rank_comm()
    if comm is not None:
        comm.Barrier()


def _reduce_across_ranks(seen, loss_sum, metric_sums):
    """Sample counts and sums over every rank's shard, so each rank reports the global mean."""
    comm = _multi_rank_comm()
    if comm is None:
        return seen, loss_sum, metric_sums
    from . import distributed
    total = distributed.all_reduce([seen, loss_sum, *metric_sums.values()])
    return int(total[0]), float(total[1]), dict(zip(metric_sums, map(float, total[2:])))


_FORMAT = "cnncore-checkpoint-2"
_GEN_PREFIX = "gen-"


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(directory) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _generation_number(name: str) -> int:
    """gen-<n> (also as a .gen-<n>.tmp leftover) -> n; anything else -> -1."""
    core = name[1:-4] if name.startswith(".") and name.endswith(".tmp") else name
    digits = core[len(_GEN_PREFIX):]
    return int(digits) if core.startswith(_GEN_PREFIX) and digits.isdigit() else -1


def _next_generation(directory) -> str:
    """One past every generation present, committed or not, so a new one never reuses a name
    that state.json may still point to."""
    used = [_generation_number(n) for n in os.listdir(directory)]
    return f"{_GEN_PREFIX}{max(used, default=-1) + 1:06d}"


def _remove_stale(directory, keep: str) -> None:
    """Older generations and temporary folders, once state.json names a newer one."""
    for name in os.listdir(directory):
        if name != keep and _generation_number(name) >= 0:
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    for name in os.listdir(directory):  # a killed writer's state.json temporaries
        if name.startswith(".state.json.") and name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
    for name in ("model.safetensors", "optimizer.safetensors"):  # format 1's loose files
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, name))


def read_checkpoint_state(directory) -> tuple[dict, dict]:
    """A checkpoint directory's state.json and {file name: path} of the generation it names,
    each file checked against its recorded SHA-256. Format 1 (loose files) is read as well."""
    directory = os.fspath(directory)
    path = os.path.join(directory, "state.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint in {directory} (looked for "
                                f"state.json, model.safetensors)")
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"load_checkpoint: {path} is not valid JSON ({e})") from None
    if not isinstance(state, dict) or state.get("format") not in (_FORMAT,
                                                                   "cnncore-checkpoint-1"):
        raise ValueError(f"load_checkpoint: {path} is not a cnncore checkpoint")
    if state["format"] == "cnncore-checkpoint-1":
        files = {n: os.path.join(directory, n) for n in ("model.safetensors",
                                                         "optimizer.safetensors")
                 if os.path.isfile(os.path.join(directory, n))}
    else:
        gen, recorded = state.get("generation"), state.get("files")
        if (not isinstance(gen, str) or _generation_number(gen) < 0
                or not isinstance(recorded, dict)):
            raise ValueError(f"load_checkpoint: {path} names no valid generation")
        files = {}
        for name, digest in recorded.items():
            if name not in ("model.safetensors", "optimizer.safetensors"):
                raise ValueError(f"load_checkpoint: {path} lists an unknown file {name!r}")
            fp = os.path.join(directory, gen, name)
            if not os.path.isfile(fp):
                raise FileNotFoundError(f"load_checkpoint: {fp}, named by {path}, is missing")
            if _sha256(fp) != digest:
                raise ValueError(f"load_checkpoint: {fp} is corrupted (its SHA-256 does not "
                                 f"match the one recorded in {path})")
            files[name] = fp
    if "model.safetensors" not in files:
        raise FileNotFoundError(f"load_checkpoint: {directory} has no model.safetensors")
    for key in ("optimizer", "rng", "epoch", "history"):
        if key not in state:
            raise ValueError(f"load_checkpoint: {path} lacks '{key}'")
    return state, files


_TENSOR_MARK = "__tensor__"


def _split_tensors(obj, prefix: str = ""):
    """Optimizer state -> ({flat name: array}, JSON-able structure with placeholders)."""
    tensors = {}

    def walk(o, path):
        if isinstance(o, Tensor):
            tensors[path] = o.detach().numpy()
            return {_TENSOR_MARK: path}
        if isinstance(o, np.ndarray):
            tensors[path] = o
            return {_TENSOR_MARK: path}
        if isinstance(o, dict):
            # JSON turns int keys into str: remember them as such.
            return {"__dict__": [[walk(k, f"{path}.k{i}"), walk(v, f"{path}.{k}")]
                                 for i, (k, v) in enumerate(o.items())]}
        if isinstance(o, (list, tuple)):
            return {"__list__": [walk(v, f"{path}.{i}") for i, v in enumerate(o)],
                    "tuple": isinstance(o, tuple)}
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        return o

    return tensors, walk(obj, prefix or "opt")


def _join_tensors(obj, tensors):
    if isinstance(obj, dict):
        if _TENSOR_MARK in obj:
            return tensors[obj[_TENSOR_MARK]]
        if "__dict__" in obj:
            return {_join_tensors(k, tensors): _join_tensors(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_join_tensors(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
    return obj


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Tensor):
        return o.detach().numpy().tolist()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"checkpoint: cannot store a {type(o).__name__} in state.json")
