"""Run under `mpiexec -n 2` by tests/test_distributed.py (not collected by pytest itself).

Every rank trains a DistributedDataParallel model on its half of each global batch and, beside
it, a plain single-process copy on the whole batch; rank 0 prints one JSON line with the largest
differences found, which the test asserts on.
"""

import json
import sys
import tempfile

import numpy as np

import cnncore
from cnncore import distributed, nn, optim
from cnncore.data import DataLoader, TensorDataset
from cnncore.train import Trainer

distributed.init()
RANK, WORLD = distributed.rank(), distributed.world_size()
B, STEPS = 4, 3
EARLY = []  # per equivalence run: did a bucket start before the last gradient was final?
cnncore.set_num_threads(1)


def build(kind, seed, sync):
    cnncore.manual_seed(seed)
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(2 * 6 * 6, 16), nn.Tanh(), nn.Linear(16, 5))
    bn = distributed.SyncBatchNorm(6) if sync else nn.BatchNorm2d(6)
    # No conv bias before BatchNorm: its true gradient is 0, and Adam would amplify the
    # rounding noise in it (g / sqrt(v)) into full-size steps that differ between the two runs.
    return nn.Sequential(nn.Conv2d(2, 6, 3, padding=1, bias=False), bn, nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6 * 3 * 3, 5))


def make_opt(name, params):
    if name == "sgd":
        return optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    return optim.Adam(params, lr=1e-2)


def max_state_diff(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    d = {k: float(np.abs(sa[k].numpy().astype(np.float64) - sb[k].numpy()).max()) for k in sa}
    if RANK == 0 and max(d.values()) > 1e-5:
        print(d)
    return max(d.values())


def equivalence(kind, opt_name, sync=True):
    """2 ranks x batch B against 1 process x batch 2B, k steps."""
    rng = np.random.default_rng(7)
    xs = rng.standard_normal((STEPS, WORLD * B, 2, 6, 6)).astype(np.float32)
    ys = rng.integers(0, 5, (STEPS, WORLD * B))
    ref = build(kind, 100, sync=False)
    # Every rank builds different weights: the wrapper must replace them by rank 0's.
    ddp = distributed.DistributedDataParallel(build(kind, 100 + RANK, sync=sync),
                                              bucket_cap_mb=0.001)  # several buckets
    ref_opt, ddp_opt = make_opt(opt_name, ref.parameters()), make_opt(opt_name, ddp.parameters())
    # Buckets launched so far, seen at each gradient hook: values strictly between 0 and the
    # bucket count mean reductions started while backward was still running.
    launched = set()
    real_launch = ddp._launch_ready

    def spy():
        real_launch()
        launched.add(ddp._next_bucket)
    object.__setattr__(ddp, "_launch_ready", spy)
    loss_fn = nn.CrossEntropyLoss()
    for s in range(STEPS):
        ref_opt.zero_grad()
        loss_fn(ref(cnncore.tensor(xs[s])), cnncore.tensor(ys[s])).backward()
        ref_opt.step()
        shard = slice(RANK * B, (RANK + 1) * B)
        ddp_opt.zero_grad()
        loss_fn(ddp(cnncore.tensor(xs[s, shard])), cnncore.tensor(ys[s, shard])).backward()
        ddp_opt.step()
    n = len(ddp.bucket_sizes)
    if kind == "bn":  # the MLP's first Linear finishes both its buckets at one node
        EARLY.append(any(0 < k < n for k in launched))
    return max_state_diff(ref, ddp.module), n


def sync_bn_grads():
    """SyncBatchNorm on a shard against BatchNorm2d on the whole batch: output, input gradient,
    weight/bias gradients (summed over ranks) and running statistics."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((WORLD * 3, 4, 5, 5)).astype(np.float32) * 2 + 1
    g = rng.standard_normal(x.shape).astype(np.float32)
    shard = slice(RANK * 3, (RANK + 1) * 3)
    ref, sbn = nn.BatchNorm2d(4), distributed.SyncBatchNorm(4)
    with cnncore.no_grad():
        for layer in (ref, sbn):
            layer.weight.copy_(cnncore.tensor(np.linspace(0.5, 2, 4, dtype=np.float32)))
            layer.bias.copy_(cnncore.tensor(np.linspace(-1, 1, 4, dtype=np.float32)))
    xr = cnncore.tensor(x, requires_grad=True)
    yr = ref(xr)
    (yr * cnncore.tensor(g)).sum().backward()
    xs = cnncore.tensor(x[shard], requires_grad=True)
    ys = sbn(xs)
    (ys * cnncore.tensor(g[shard])).sum().backward()
    dw = distributed.all_reduce(sbn.weight.grad.numpy().copy())
    db = distributed.all_reduce(sbn.bias.grad.numpy().copy())
    return max(float(np.abs(ys.detach().numpy() - yr.detach().numpy()[shard]).max()),
               float(np.abs(xs.grad.numpy() - xr.grad.numpy()[shard]).max()),
               float(np.abs(dw - ref.weight.grad.numpy()).max()),
               float(np.abs(db - ref.bias.grad.numpy()).max()),
               float(np.abs(sbn.running_mean.numpy() - ref.running_mean.numpy()).max()),
               float(np.abs(sbn.running_var.numpy() - ref.running_var.numpy()).max()))


def trainer_metrics(tmp):
    """Trainer on sharded loaders: evaluation metrics are the whole data set's; only rank 0
    writes the checkpoint."""
    rng = np.random.default_rng(5)
    ds = TensorDataset(cnncore.tensor(rng.standard_normal((24, 2, 6, 6)).astype(np.float32)),
                       cnncore.tensor(rng.integers(0, 5, 24)))
    model = build("mlp", 1, sync=False)
    single = Trainer(model, None, nn.CrossEntropyLoss(), progress=False, verbose=False)
    # One process over everything: the answer the sharded evaluation must reproduce.
    comm = distributed._comm
    distributed._comm = None
    try:
        whole = single.evaluate(DataLoader(ds, batch_size=5))
    finally:
        distributed._comm = comm
    ddp = distributed.DistributedDataParallel(model)
    sampler = distributed.DistributedSampler(ds, shuffle=False)
    trainer = Trainer(ddp, optim.SGD(ddp.parameters(), lr=0.01), nn.CrossEntropyLoss(),
                      progress=False, verbose=False, checkpoint_dir=tmp)
    sharded = trainer.evaluate(DataLoader(ds, batch_size=5, sampler=sampler))
    saves = []
    real_save = trainer._save_checkpoint
    trainer._save_checkpoint = lambda d: (saves.append(d), real_save(d))
    trainer.fit(DataLoader(ds, batch_size=4, sampler=distributed.DistributedSampler(ds)),
                epochs=1)
    loss_all = distributed._comm.allgather(trainer.history[0]["train_loss"])
    return {"eval_loss_diff": abs(sharded["loss"] - whole["loss"]),
            "eval_acc_diff": abs(sharded["accuracy"] - whole["accuracy"]),
            "saves": distributed._comm.allgather(len(saves)),
            "train_loss_spread": max(loss_all) - min(loss_all)}


def main():
    out = {"world": WORLD}
    for kind in ("mlp", "bn"):
        for opt_name in ("sgd", "adam"):
            out[f"{kind}_{opt_name}"], out["buckets"] = equivalence(kind, opt_name)
    # Plain BatchNorm normalises each rank's half on its own: not the 2B answer (the default).
    out["bn_per_rank_sgd"], _ = equivalence("bn", "sgd", sync=False)
    out["overlapped"] = all(EARLY)
    out["sync_bn"] = sync_bn_grads()
    tmp = distributed._comm.bcast(tempfile.mkdtemp() if RANK == 0 else None)
    out.update(trainer_metrics(tmp))
    if RANK == 0:
        print("RESULT " + json.dumps(out))
        sys.stdout.flush()


main()
