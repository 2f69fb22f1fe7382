"""LeNet-5 on the bundled digits: cnncore vs PyTorch, the same network, data, optimizer, schedule,
batch size and threads, epochs interleaved in one process. Prints images/s per epoch (median),
the ratio, and each side's final test accuracy.

    python benchmarks/train.py --threads 2 --epochs 15
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import cnncore
from cnncore import data, models, nn, optim


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cnncore.set_num_threads(args.threads)
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
            o_loss(ours(cnncore.tensor(x_tr[b])), cnncore.tensor(y_tr[b])).backward()
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
    print(f"CPU: {cpu_name()}  isa: {cnncore.build_info()['isa']}  threads: {args.threads}  "
          f"batch: {bs}  epochs: {args.epochs}  torch {torch.__version__}")
    print(f"LeNet-5 training on digits ({n} images/epoch), median epoch:")
    print(f"  cnncore {o_ips:8.0f} images/s  ({statistics.median(o_times):.3f} s/epoch)  "
          f"test accuracy {o_acc:.4f}")
    print(f"  torch   {t_ips:8.0f} images/s  ({statistics.median(t_times):.3f} s/epoch)  "
          f"test accuracy {t_acc:.4f}")
    print(f"  ratio (cnncore / torch images/s): {o_ips / t_ips:.2f}")


if __name__ == "__main__":
    main()
