"""Training speed, cnncore vs PyTorch with the same network, data, optimizer, batch size and
threads, interleaved in one process:

- LeNet-5 on the bundled digits: whole epochs (same schedule), images/s per epoch (median), the
  ratio, and each side's final test accuracy;
- ResNet-18 (torchvision's, on 32x32 inputs, batch 32): one SGD training step, median of
  repeats, images/s and the ratio;
- peak resident memory of those ResNet-18 steps, each library in its own fresh process
  (ru_maxrss is per process): the peak and its growth over the set-up before the first step.

    PYTHONPATH=python python3 benchmarks/train.py --threads 2 --epochs 15 [--skip lenet,resnet18,memory]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

import cnncore
from cnncore import bench, data, models, nn, optim

import torch_models


def digits(seed: int):
    images, labels = data.load_digits()
    images = images.repeat(4, axis=2).repeat(4, axis=3)  # 32x32, as the CLI trains
    order = np.random.default_rng(seed).permutation(len(images))
    test, train = order[: len(images) // 5], order[len(images) // 5:]
    mean, std = images[train].mean(), images[train].std()
    images = ((images - mean) / std).astype(np.float32)
    return images[train], labels[train], images[test], labels[test]


def torch_lenet(torch):
    tnn = torch.nn

    class LeNet5(tnn.Module):  # cnncore.models.lenet5's tree, so the state_dict keys match
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.AvgPool2d(2),
                                           tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.AvgPool2d(2))
            self.classifier = tnn.Sequential(tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(),
                                             tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))

        def forward(self, x):
            return self.classifier(self.features(x))

    return LeNet5()


def lenet_epochs(args, torch) -> dict:
    x_tr, y_tr, x_te, y_te = digits(args.seed)
    cnncore.manual_seed(args.seed)
    torch.manual_seed(args.seed)
    ours = models.lenet5()
    theirs = torch_lenet(torch)
    # Same starting weights on both sides (the module trees have the same keys).
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    o_opt = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    o_sched = optim.lr_scheduler.CosineAnnealingLR(o_opt, T_max=args.epochs)
    t_sched = torch.optim.lr_scheduler.CosineAnnealingLR(t_opt, T_max=args.epochs)
    o_loss, t_loss = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    n, bs = len(x_tr), args.batch_size
    o_times, t_times = [], []
    for epoch in range(args.epochs):
        perm = np.random.default_rng(args.seed + epoch).permutation(n)
        batches = [perm[i:i + bs] for i in range(0, n, bs)]
        # cnncore epoch
        ours.train()
        start = time.perf_counter()
        for b in batches:
            o_opt.zero_grad()
            # from_numpy on both sides: the batch's memory shared, not copied again
            o_loss(ours(cnncore.from_numpy(x_tr[b])), cnncore.from_numpy(y_tr[b])).backward()
            o_opt.step()
        o_times.append(time.perf_counter() - start)
        o_sched.step()
        # PyTorch epoch, same batches
        theirs.train()
        start = time.perf_counter()
        for b in batches:
            t_opt.zero_grad()
            t_loss(theirs(torch.from_numpy(x_tr[b])), torch.from_numpy(y_tr[b])).backward()
            t_opt.step()
        t_times.append(time.perf_counter() - start)
        t_sched.step()
    ours.eval()
    theirs.eval()
    with cnncore.no_grad():
        o_acc = float((ours(cnncore.tensor(x_te)).numpy().argmax(1) == y_te).mean())
    with torch.no_grad():
        t_acc = float((theirs(torch.from_numpy(x_te)).numpy().argmax(1) == y_te).mean())
    o_ips, t_ips = n / statistics.median(o_times), n / statistics.median(t_times)
    print(f"LeNet-5 training on digits ({n} images/epoch, batch {bs}, {args.epochs} epochs), "
          f"median epoch:")
    print(f"  cnncore {o_ips:8.0f} images/s  ({statistics.median(o_times):.3f} s/epoch)  "
          f"test accuracy {o_acc:.4f}")
    print(f"  torch   {t_ips:8.0f} images/s  ({statistics.median(t_times):.3f} s/epoch)  "
          f"test accuracy {t_acc:.4f}")
    print(f"  ratio (cnncore / torch images/s): {o_ips / t_ips:.2f}")
    return dict(case="lenet5 digits epoch", cnncore=o_ips, torch=t_ips, ratio=o_ips / t_ips,
                cnncore_accuracy=o_acc, torch_accuracy=t_acc)


def resnet18_step(lib: str, torch, batch: int, seed: int = 0):
    """A zero-argument training step of torchvision's ResNet-18 on 32x32 inputs for `lib`, same
    weights on both sides (the torch model is built first, its weights copied)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    torch.manual_seed(seed)
    tmodel = torch_models.resnet18(torch, num_classes=10)
    if lib == "torch":
        opt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        loss, X, Y = torch.nn.CrossEntropyLoss(), torch.from_numpy(x), torch.from_numpy(y)
        model = tmodel
    else:
        model = models.resnet18(num_classes=10)
        torch_models.copy_weights(tmodel, model)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        loss, X, Y = nn.CrossEntropyLoss(), cnncore.tensor(x), cnncore.tensor(y)
    model.train()

    def step():
        opt.zero_grad()
        out = loss(model(X), Y)
        out.backward()
        opt.step()
        return out

    return step


def resnet18_steps(args, torch) -> dict:
    steps = {lib: resnet18_step(lib, torch, args.resnet_batch) for lib in ("cnncore", "torch")}
    times = bench.interleaved(steps, args.repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    b = args.resnet_batch
    row = dict(case=f"resnet18 32x32 b{b} train step", cnncore=b / med["cnncore"],
               torch=b / med["torch"], ratio=med["torch"] / med["cnncore"],
               spread_pct=bench.spread_pct(times["cnncore"]))
    print(f"ResNet-18 training step (32x32, batch {b}, SGD momentum), median of {args.repeats}:")
    print(f"  cnncore {row['cnncore']:8.1f} images/s  ({med['cnncore'] * 1e3:.0f} ms/step, "
          f"spread {row['spread_pct']:.0f}%)")
    print(f"  torch   {row['torch']:8.1f} images/s  ({med['torch'] * 1e3:.0f} ms/step)")
    print(f"  ratio (cnncore / torch images/s): {row['ratio']:.2f}")
    return row


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_probe(lib: str, args) -> None:
    """Child process: set up, 3 ResNet-18 steps, print {"setup_mb", "peak_mb"} as JSON."""
    import torch
    torch.set_num_threads(args.threads)
    cnncore.set_num_threads(args.threads)
    step = resnet18_step(lib, torch, args.resnet_batch)
    setup = _rss_mb()
    for _ in range(3):
        step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(dict(setup_mb=setup, peak_mb=peak)))


def memory(args) -> dict:
    out = {}
    for lib in ("cnncore", "torch"):
        cmd = [sys.executable, __file__, "--memory-probe", lib, "--threads", str(args.threads),
               "--resnet-batch", str(args.resnet_batch)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            raise RuntimeError(f"memory probe for {lib} failed:\n{res.stderr}")
        out[lib] = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"ResNet-18 training (32x32, batch {args.resnet_batch}, 3 steps), resident memory in "
          f"a fresh process each (both import torch to build the same weights):")
    for lib, m in out.items():
        print(f"  {lib:7s} peak {m['peak_mb']:7.0f} MB   growth over set-up "
              f"{m['peak_mb'] - m['setup_mb']:7.0f} MB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--resnet-batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma-separated: lenet, resnet18, memory")
    ap.add_argument("--json", default=None)
    ap.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_probe:
        return memory_probe(args.memory_probe, args)
    cnncore.set_num_threads(args.threads)
    torch = bench.import_torch(args.threads)
    if torch is None:
        sys.exit("train.py compares with PyTorch: pip install torch==2.13.0")
    print(bench.machine_line(args.threads, torch))
    skip = set(filter(None, args.skip.split(",")))
    result = {}
    if "lenet" not in skip:
        result["lenet"] = lenet_epochs(args, torch)
    if "resnet18" not in skip:
        result["resnet18"] = resnet18_steps(args, torch)
    if "memory" not in skip:
        result["memory"] = memory(args)
    if args.json:
        bench.write_json(dict(threads=args.threads, **result), args.json)


if __name__ == "__main__":
    main()
