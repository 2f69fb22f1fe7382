"""Timing cnncore against PyTorch on this machine: the pieces benchmarks/ share, and the short
`python -m cnncore bench` a user can run in under a minute.

Every comparison runs both libraries in one process, interleaved (cnncore, torch, cnncore, ...)
with the same thread count, and reports medians: on a shared machine a single time means little,
a median of interleaved repeats and the ratio between the two much more. The fp32 FMA peak is
measured at start (`peak_gflops`), never assumed, since the machines here differ from day to day.
torch is optional: without it only cnncore's figures are printed.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
import time

import numpy as np

from . import _core

__all__ = ["CONV_SHAPES", "cpu_name", "peak_gflops", "import_torch", "machine_line", "interleaved",
           "geomean", "spread_pct", "run_quick", "write_json", "plot_ratios"]

# The Performance issue's list: name, C_in, C_out, H=W, kernel, stride, padding, groups, batch
# (None = the run's batch size).
CONV_SHAPES = [
    ("resnet3x3 64@56", 64, 64, 56, 3, 1, 1, 1, None),
    ("resnet3x3 128@28", 128, 128, 28, 3, 1, 1, 1, None),
    ("resnet3x3 256@14", 256, 256, 14, 3, 1, 1, 1, None),
    ("resnet3x3 512@7", 512, 512, 7, 3, 1, 1, 1, None),
    ("1x1 256->64@56", 256, 64, 56, 1, 1, 0, 1, None),
    ("1x1 64->256@56", 64, 256, 56, 1, 1, 0, 1, None),
    ("1x1 1024->256@14", 1024, 256, 14, 1, 1, 0, 1, None),
    ("3x3/2 128->256@28", 128, 256, 28, 3, 2, 1, 1, None),
    ("stem 7x7/2 3->64@224", 3, 64, 224, 7, 2, 3, 1, None),
    ("vgg1 3->64@224", 3, 64, 224, 3, 1, 1, 1, None),
    ("alexnet1 11x11/4 3->96@227", 3, 96, 227, 11, 4, 0, 1, None),
    ("lenet1 5x5 1->6@32 b64", 1, 6, 32, 5, 1, 0, 1, 64),
    ("lenet2 5x5 6->16@14 b64", 6, 16, 14, 5, 1, 0, 1, 64),
    ("mbv2 dw3x3 144@56", 144, 144, 56, 3, 1, 1, 144, None),
    ("mbv2 dw3x3/2 96@112", 96, 96, 112, 3, 2, 1, 96, None),
]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def peak_gflops(seconds: float = 0.5) -> float:
    """The fp32 FMA peak of the active SIMD path at the current thread count, GFLOP/s."""
    return float(_core.measure_fma_peak_gflops(seconds))


def import_torch(threads: int | None = None):
    """torch with its thread count set, or None (with a note on stderr) when it is missing."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: cnncore figures only (pip install torch==2.13.0)",
              file=sys.stderr)
        return None
    if threads is not None:
        torch.set_num_threads(threads)
    return torch


def machine_line(threads: int, torch=None, **extra) -> str:
    info = _core.build_info()
    parts = [f"CPU: {cpu_name()}", f"isa: {info['isa']} (cpu: {info['cpu_isas']})",
             f"threads: {threads}"]
    parts += [f"{k}: {v}" for k, v in extra.items()]
    if torch is not None:
        parts.append(f"torch {torch.__version__}")
    parts.append(time.strftime("%Y-%m-%d"))
    return "  ".join(parts)


def interleaved(cases: dict, repeats: int, clock=time.perf_counter, min_time: float = 0.0,
                warmup: int = 1) -> dict:
    """Seconds per call of each zero-argument callable in `cases`, one list of `repeats` per
    name. Within a repeat every case runs once, in turn, so drift in the machine's load hits all
    alike. With min_time > 0 a repeat of a fast case calls it enough times to last that long and
    reports the mean (timer resolution and call overhead then stop mattering)."""
    calls = {}
    for name, fn in cases.items():
        for _ in range(warmup):
            fn()
        n = 1
        if min_time > 0:
            t0 = clock()
            fn()
            one = max(clock() - t0, 1e-7)
            n = max(1, int(math.ceil(min_time / one)))
        calls[name] = n
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            n = calls[name]
            t0 = clock()
            for _ in range(n):
                fn()
            times[name].append((clock() - t0) / n)
    return times


def geomean(values) -> float:
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def spread_pct(times) -> float:
    """(max - min) / median of a list of times, in percent."""
    med = statistics.median(times)
    return (max(times) - min(times)) / med * 100 if med > 0 else float("nan")


def plot_ratios(rows, path, title: str) -> None:
    """A bar chart of cnncore / torch ratios per row ("shape"/"case" + "mode" + "ratio"), with the
    1.0 line; needs matplotlib (the bench extra)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plot_ratios needs matplotlib: pip install 'cnncore[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if "ratio" in r]
    labels = [(r.get("shape") or r.get("case")) + (f" {r['mode']}" if "mode" in r else "")
              for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(rows) + 1.2))
    ax.barh(range(len(rows)), [r["ratio"] for r in rows],
            color=["tab:green" if r["ratio"] >= 1 else "tab:red" for r in rows])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("cnncore / PyTorch speed (> 1: cnncore faster)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- the short run behind `python -m cnncore bench` ----------------------------------------------
_QUICK_CONV = ("resnet3x3 128@28", "1x1 256->64@56", "3x3/2 128->256@28", "lenet2 5x5 6->16@14 b64",
               "mbv2 dw3x3 144@56")


def _conv_case(shape, batch: int, torch, rng):
    from . import functional as F
    from . import no_grad, tensor
    name, c, k, hw, ks, stride, pad, groups, b = shape
    n = b or batch
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((k, c // groups, ks, ks)) / math.sqrt(c // groups * ks * ks)).astype(
        np.float32)
    X, W = tensor(x), tensor(w)
    opts = _core.Conv2dOptions(stride, stride, _core.Padding2d.symmetric(pad, pad), 1, 1, groups)
    params = _core.conv2d_params(list(x.shape), list(w.shape), opts)

    def ours():
        with no_grad():
            F.conv2d(X, W, stride=stride, padding=pad, groups=groups)

    cases = {"cnncore": ours}
    if torch is not None:
        tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        tw = torch.from_numpy(w).contiguous(memory_format=torch.channels_last)

        def theirs():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad, groups=groups)

        cases["torch"] = theirs
    return params, cases


def _lenet_step_case(batch: int, torch, rng):
    from . import models, nn, optim, tensor
    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    model = models.lenet5()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = nn.CrossEntropyLoss()
    X, Y = tensor(x), tensor(y)

    def ours():
        opt.zero_grad()
        loss(model(X), Y).backward()
        opt.step()

    cases = {"cnncore": ours}
    if torch is not None:
        tnn = torch.nn
        tm = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.AvgPool2d(2), tnn.Conv2d(6, 16, 5),
                            tnn.ReLU(), tnn.AvgPool2d(2), tnn.Flatten(), tnn.Linear(400, 120),
                            tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))
        topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
        tloss = tnn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def theirs():
            topt.zero_grad()
            tloss(tm(tx), ty).backward()
            topt.step()

        cases["torch"] = theirs
    return cases


def run_quick(threads: int, repeats: int = 5, batch: int = 8, out=None) -> dict:
    """A few forward convolutions and a LeNet-5 training step, cnncore vs torch (if installed):
    GFLOP/s, % of the measured peak, ratio. Prints to `out` (default stdout); returns the rows."""
    from . import set_num_threads
    out = out if out is not None else sys.stdout
    set_num_threads(threads)
    torch = import_torch(threads)
    peak = peak_gflops()
    print(machine_line(threads, torch, batch=batch), file=out)
    print(f"measured fp32 FMA peak: {peak:.0f} GFLOP/s ({threads} thread"
          f"{'s' if threads > 1 else ''}, {_core.active_isa()})", file=out)
    hdr = (f"{'case':28s} {'cnncore':>9s} {'torch':>9s} {'ratio':>6s} {'%peak':>6s}  "
           f"{'cnncore path'}")
    print(hdr, file=out)
    print("-" * len(hdr), file=out)
    rng = np.random.default_rng(0)
    rows = []
    for shape in (s for s in CONV_SHAPES if s[0] in _QUICK_CONV):
        params, cases = _conv_case(shape, batch, torch, rng)
        t = {k: statistics.median(v) for k, v in interleaved(cases, repeats).items()}
        gf = params.flops() / t["cnncore"] / 1e9
        row = dict(case=shape[0], unit="GFLOP/s", cnncore=gf, peak_pct=gf / peak * 100,
                   path=_core.conv2d_algorithm(params).split(":")[0])
        if "torch" in t:
            row.update(torch=params.flops() / t["torch"] / 1e9, ratio=t["torch"] / t["cnncore"])
        rows.append(row)
        _print_row(row, out)
    t = {k: statistics.median(v) for k, v in
         interleaved(_lenet_step_case(64, torch, rng), repeats, min_time=0.05).items()}
    row = dict(case="lenet5 train step b64", unit="images/s", cnncore=64 / t["cnncore"],
               peak_pct=float("nan"), path="(whole step)")
    if "torch" in t:
        row.update(torch=64 / t["torch"], ratio=t["torch"] / t["cnncore"])
    rows.append(row)
    _print_row(row, out)
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    if ratios:
        print(f"geometric mean ratio (cnncore / torch, > 1 = cnncore faster): {geomean(ratios):.2f}"
              f"  (conv: GFLOP/s; train step: images/s; torch conv in channels_last)", file=out)
    return dict(peak_gflops=peak, threads=threads, rows=rows)


def _print_row(row, out) -> None:
    theirs = f"{row['torch']:9.1f}" if "torch" in row else f"{'-':>9s}"
    ratio = f"{row['ratio']:6.2f}" if "ratio" in row else f"{'-':>6s}"
    pct = f"{row['peak_pct']:6.1f}" if math.isfinite(row["peak_pct"]) else f"{'':6s}"
    print(f"{row['case']:28s} {row['cnncore']:9.1f} {theirs} {ratio} {pct}  {row['path']}",
          file=out, flush=True)


def write_json(result: dict, path) -> None:
    """The figures plus where they were taken, written atomically."""
    from .io import atomic_write
    result = dict(result, cpu=cpu_name(), isa=_core.active_isa(),
                  date=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    with atomic_write(path, "w") as f:
        json.dump(result, f, indent=1, default=float)
