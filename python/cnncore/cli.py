"""`python -m cnncore` (also the `cnncore` script): train, eval, summary and bench.

    python -m cnncore train                      # LeNet-5 on the bundled 8x8 digits
    python -m cnncore train --dataset mnist:DIR --model lenet5 --epochs 5
    python -m cnncore eval --checkpoint runs/lenet
    python -m cnncore summary --model resnet18 --input-size 3,224,224
    python -m cnncore filters photo.png --out edges/   # Sobel, ..., Canny maps as PNGs
    python -m cnncore bench                      # a one-minute speed check against PyTorch

Bad names and paths print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

# Models the train command can build for 32x32 inputs, with their constructor's channel argument.
_TRAINABLE = ("lenet5", "resnet20", "resnet32", "resnet44", "resnet56", "mobilenet_v1",
              "mobilenet_v2")


class CliError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def _load_dataset(spec: str, seed: int):
    """'digits' | 'mnist:DIR' | 'fashion-mnist:DIR' | 'cifar10:DIR' -> (x_train, y_train, x_test,
    y_test) as float32 (N, C, 32, 32) and int64, plus the number of classes."""
    from . import data
    name, _, root = spec.partition(":")
    if name == "digits":
        images, labels = data.load_digits()
        # 8x8 -> 32x32 so the classic 32x32 networks apply unchanged (each pixel becomes 4x4).
        images = images.repeat(4, axis=2).repeat(4, axis=3)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(images))
        n_test = len(images) // 5
        test, train = order[:n_test], order[n_test:]
        return images[train], labels[train], images[test], labels[test], 10
    if name in ("mnist", "fashion-mnist", "cifar10"):
        if not root:
            raise CliError(f"dataset '{name}' needs a directory: --dataset {name}:DIR")
        if not os.path.isdir(root):
            raise CliError(f"dataset directory not found: {root}")
        try:
            if name == "cifar10":
                tr, te = data.CIFAR10(root, train=True), data.CIFAR10(root, train=False)
            else:
                cls = data.MNIST if name == "mnist" else data.FashionMNIST
                tr, te = cls(root, train=True), cls(root, train=False)
        except FileNotFoundError as e:
            raise CliError(str(e)) from None
        out = []
        for ds in (tr, te):
            x, y = ds.data, ds.targets
            x = np.asarray(x, np.float32)
            if x.ndim == 3:
                x = x[:, None]
            if x.max() > 1.5:
                x = x / 255.0
            if x.shape[-1] == 28:  # LeNet's classic 2-pixel border for 28x28 digits
                x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
            out += [x.astype(np.float32), np.asarray(y, np.int64)]
        return (*out, 10)
    raise CliError(f"unknown dataset '{spec}'; use digits, mnist:DIR, fashion-mnist:DIR or "
                   f"cifar10:DIR")


def _build_model(name: str, in_channels: int, num_classes: int):
    from . import models
    if name not in _TRAINABLE:
        known = models.list_models()
        if name in known:
            raise CliError(f"model '{name}' is for larger inputs; train supports: "
                           f"{', '.join(_TRAINABLE)}")
        raise CliError(f"unknown model '{name}'; train supports: {', '.join(_TRAINABLE)}")
    if name == "lenet5":
        return models.lenet5(num_classes=num_classes, in_channels=in_channels)
    if name.startswith("resnet"):
        return models.get_model(name, num_classes=num_classes, in_channels=in_channels)
    if in_channels != 3:
        # The MobileNets take RGB; repeat a grey channel at the input instead.
        raise CliError(f"model '{name}' needs 3-channel images; use it with cifar10")
    return models.get_model(name, num_classes=num_classes)


def _normalise(x_train, x_test):
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def _loaders(x_train, y_train, x_test, y_test, batch_size: int, seed: int,
             distributed: bool = False):
    from . import data
    from .tensor import tensor
    train = data.TensorDataset(tensor(x_train), tensor(y_train))
    test = data.TensorDataset(tensor(x_test), tensor(y_test))
    if distributed:  # each rank a shard of every epoch; batch_size is per rank
        from .distributed import DistributedSampler
        return (data.DataLoader(train, batch_size=batch_size,
                                sampler=DistributedSampler(train, shuffle=True, seed=seed)),
                data.DataLoader(test, batch_size=256,
                                sampler=DistributedSampler(test, shuffle=False)))
    return (data.DataLoader(train, batch_size=batch_size, shuffle=True, generator=seed),
            data.DataLoader(test, batch_size=256, shuffle=False))


def _make_optimizer(name: str, params, lr):
    from . import optim
    if name == "sgd":
        return optim.SGD(params, lr=0.05 if lr is None else lr, momentum=0.9, weight_decay=5e-4)
    if name == "adam":
        return optim.Adam(params, lr=2e-3 if lr is None else lr)
    raise CliError(f"unknown optimizer '{name}'; use sgd or adam")


def cmd_train(args) -> int:
    import cnncore
    from . import nn, optim
    from .train import Trainer
    if args.threads is not None:
        if args.threads < 1:
            raise CliError(f"--threads must be positive, but got {args.threads}")
        cnncore.set_num_threads(args.threads)
    if args.epochs < 1 or args.batch_size < 1:
        raise CliError("--epochs and --batch-size must be positive")
    cnncore.manual_seed(args.seed)
    from . import distributed
    dist = args.distributed or distributed.launched_by_mpi()
    if dist:
        distributed.init()
    rank0 = not dist or distributed.rank() == 0
    x_tr, y_tr, x_te, y_te, classes = _load_dataset(args.dataset, args.seed)
    x_tr, x_te = _normalise(x_tr, x_te)
    model = _build_model(args.model, x_tr.shape[1], classes)
    if dist:
        model = distributed.DistributedDataParallel(model)
    opt = _make_optimizer(args.optimizer, model.parameters(), args.lr)
    train_loader, test_loader = _loaders(x_tr, y_tr, x_te, y_te, args.batch_size, args.seed,
                                         distributed=dist)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    if args.checkpoint_dir and rank0:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        with open(os.path.join(args.checkpoint_dir, "run.json"), "w") as f:
            json.dump({"model": args.model, "dataset": args.dataset, "seed": args.seed,
                       "in_channels": int(x_tr.shape[1]), "num_classes": classes}, f)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched,
                      checkpoint_dir=args.checkpoint_dir, progress=None if args.progress else False)
    start = time.perf_counter()
    history = trainer.fit(train_loader, test_loader, epochs=args.epochs, resume=args.resume)
    seconds = time.perf_counter() - start
    result = trainer.evaluate(test_loader)
    trained = [h for h in history]
    ips = float(np.median([h["images_per_second"] for h in trained])) if trained else 0.0
    metrics = {"test_accuracy": result["accuracy"], "test_loss": result["loss"],
               "epochs": trainer.epoch, "seconds": seconds, "images_per_second": ips,
               "model": args.model, "dataset": args.dataset, "threads": cnncore.get_num_threads(),
               "world_size": distributed.world_size() if dist else 1}
    if not rank0:
        return 0
    print(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
          f"{seconds:.1f} s  {ips:.0f} images/s (training)")
    if args.metrics_json:
        from .io import atomic_write
        with atomic_write(args.metrics_json, "w") as f:
            json.dump(metrics, f, indent=1)
    return 0


def cmd_eval(args) -> int:
    from . import nn
    from .train import Trainer
    run_path = os.path.join(args.checkpoint, "run.json")
    if not os.path.isfile(run_path):
        raise CliError(f"no checkpoint in {args.checkpoint} (looked for run.json, state.json, "
                       f"model.safetensors)")
    with open(run_path) as f:
        run = json.load(f)
    x_tr, y_tr, x_te, y_te, classes = _load_dataset(run["dataset"], run["seed"])
    x_tr, x_te = _normalise(x_tr, x_te)
    model = _build_model(run["model"], run["in_channels"], run["num_classes"])
    from .io import load
    from .train import read_checkpoint_state
    model.load_state_dict(load(read_checkpoint_state(args.checkpoint)[1]["model.safetensors"]))
    _, test_loader = _loaders(x_tr, y_tr, x_te, y_te, 256, run["seed"])
    res = Trainer(model, None, nn.CrossEntropyLoss(), progress=False).evaluate(test_loader)
    print(f"test accuracy {res['accuracy']:.4f}  test loss {res['loss']:.4f}")
    return 0


def cmd_summary(args) -> int:
    from . import models
    from .summary import summary
    try:
        size = tuple(int(s) for s in args.input_size.split(","))
    except ValueError:
        raise CliError(f"--input-size must look like 3,224,224, but got '{args.input_size}'") \
            from None
    if args.model not in models.list_models():
        raise CliError(f"unknown model '{args.model}'; available: "
                       f"{', '.join(models.list_models())}")
    from .nn import init
    with init.skip_init():
        kwargs = {"in_channels": size[0]} if args.model == "lenet5" else {}
        model = models.get_model(args.model, **kwargs)
    try:
        summary(model, size)
    except ValueError as e:
        raise CliError(str(e)) from None
    return 0


def cmd_filters(args) -> int:
    from . import filters
    from .image import read_image, to_grayscale, write_image
    if not os.path.isfile(args.image):
        raise CliError(f"image not found: {args.image}")
    try:
        image = to_grayscale(read_image(args.image))
    except ValueError as e:
        raise CliError(str(e)) from None
    if args.sigma <= 0:
        raise CliError(f"--sigma must be positive, but got {args.sigma}")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot create output directory {args.out}: {e.strerror}") from None

    def stretched(m):  # edge strengths to the full [0, 1] range so the PNG is visible
        m = np.abs(m)
        return m / m.max() if m.max() > 0 else m

    maps = {name: stretched(getattr(filters, name)(image))
            for name in ("sobel", "scharr", "prewitt", "roberts", "laplace")}
    maps["gaussian"] = filters.gaussian(image, args.sigma)
    try:
        maps["canny"] = filters.canny(image, args.sigma, args.low_threshold,
                                      args.high_threshold)
    except (TypeError, ValueError) as e:
        raise CliError(str(e)) from None
    for name, m in maps.items():
        write_image(os.path.join(args.out, f"{name}.png"), m)
    print(f"wrote {len(maps)} maps ({', '.join(maps)}) of {image.shape[1]}x{image.shape[0]} "
          f"to {args.out}")
    return 0


def cmd_bench(args) -> int:
    from . import bench, get_num_threads
    threads = args.threads if args.threads is not None else get_num_threads()
    if threads < 1:
        raise CliError(f"--threads must be >= 1, but got {threads}")
    if args.repeats < 1:
        raise CliError(f"--repeats must be >= 1, but got {args.repeats}")
    result = bench.run_quick(threads, args.repeats)
    if args.json:
        bench.write_json(result, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnncore", description="cnncore: train, evaluate and "
                                "inspect convolutional networks")
    p.add_argument("--cmake-dir", action="store_true",
                   help="print the directory of cnncore's CMake package (for cnncore_DIR)")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model (default: LeNet-5 on the bundled digits)")
    t.add_argument("--model", default="lenet5")
    t.add_argument("--dataset", default="digits", help="digits | mnist:DIR | fashion-mnist:DIR "
                   "| cifar10:DIR")
    t.add_argument("--epochs", type=int, default=15)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--optimizer", default="sgd", choices=None)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-dir", default=None)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--metrics-json", default=None)
    t.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    t.add_argument("--distributed", action="store_true", help="data-parallel over MPI (implied "
                   "under mpiexec with more than one rank); --batch-size is per rank")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="evaluate a checkpoint on its dataset's test split")
    e.add_argument("--checkpoint", required=True)
    e.set_defaults(func=cmd_eval)
    s = sub.add_parser("summary", help="print a model's layers, shapes, parameters and MACs")
    s.add_argument("--model", required=True)
    s.add_argument("--input-size", default="3,224,224")
    s.set_defaults(func=cmd_summary)
    fl = sub.add_parser("filters", help="write edge maps (Sobel, Scharr, Prewitt, Roberts, "
                        "Laplace, Gaussian, Canny) of a PNG/PGM image as PNGs")
    fl.add_argument("image")
    fl.add_argument("--out", required=True, help="directory for the PNGs")
    fl.add_argument("--sigma", type=float, default=1.0, help="Gaussian / Canny sigma")
    fl.add_argument("--low-threshold", type=float, default=None)
    fl.add_argument("--high-threshold", type=float, default=None)
    fl.set_defaults(func=cmd_filters)
    b = sub.add_parser("bench", help="a one-minute speed check against PyTorch (if installed)")
    b.add_argument("--threads", type=int, default=None,
                   help="threads for both libraries (default: cnncore's current count)")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--json", default=None, help="also write the figures to this file")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["--cmake-dir"]:  # as `python -m pybind11 --cmake-dir`: for -Dcnncore_DIR=...
        from . import get_cmake_dir
        try:
            print(get_cmake_dir())
        except FileNotFoundError as e:
            print(f"cnncore: error: {e}", file=sys.stderr)
            return 2
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "resume", False) and not args.checkpoint_dir:
        print("cnncore: error: --resume needs --checkpoint-dir", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except CliError as e:
        print(f"cnncore: error: {e}", file=sys.stderr)
        return 2
