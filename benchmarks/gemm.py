"""SGEMM speed: cnncore vs torch.matmul in one process, interleaved, same thread count.

    PYTHONPATH=python python3 benchmarks/gemm.py --threads 1 2 [--repeats 15] [--peak GFLOPS]
        [--clock wall|cpu]

Each shape is first checked against numpy (float64); then cnncore and torch run alternately and
the median of the repeats gives GFLOP/s (2*M*N*K / time) and the ratio cnncore / torch. The
table shows the fraction of the FMA peak, measured at start (or --peak, the one-core peak in
GFLOP/s, times the threads).
--clock cpu times with process CPU time instead of the wall clock: on a shared, overloaded machine
it discounts the time this process was not running (meaningful for --threads 1 only, since CPU
time adds up over threads).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from cnncore import _core
from cnncore.bench import cpu_name, peak_gflops

SQUARE = [64, 128, 256, 384, 512, 768, 1024]
CONV_LIKE = [  # (M, N, K, what)
    (64, 3136, 576, "resnet 3x3 conv 56x56x64"),
    (256, 196, 2304, "resnet 3x3 conv 14x14x256"),
    (64, 3136, 64, "resnet 1x1 conv 56x56x64"),
    (512, 49, 4608, "resnet 3x3 conv 7x7x512"),
]


CLOCK = time.perf_counter


def timed(fn, min_time=0.02):
    """Seconds per call: enough calls to last at least min_time, averaged."""
    fn()
    n, t0 = 1, CLOCK()
    fn()
    dt = CLOCK() - t0
    if dt < min_time:
        n = max(1, int(min_time / max(dt, 1e-7)))
        t0 = CLOCK()
        for _ in range(n):
            fn()
        dt = CLOCK() - t0
    return dt / n


def bench(m, n, k, repeats, torch):
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    ca, cb = _core.from_numpy(a), _core.from_numpy(b)
    got = _core.gemm(ca, cb).numpy()
    err = np.abs(got - a.astype(np.float64) @ b).max()
    assert err < 1e-3 * np.sqrt(k), f"cnncore gemm wrong for {m}x{n}x{k}: max error {err}"
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(timed(lambda: _core.gemm(ca, cb)))
        theirs.append(timed(lambda: torch.matmul(ta, tb)))
    flops = 2.0 * m * n * k
    return flops / statistics.median(ours) / 1e9, flops / statistics.median(theirs) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--peak", type=float, default=None,
                   help="one-core FMA peak, GFLOP/s (default: measured at each thread count)")
    p.add_argument("--sizes", type=int, nargs="*", default=SQUARE)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = p.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    import torch

    info = _core.build_info()
    print(f"CPU: {cpu_name()}  cnncore {info['version']}  isa={info['isa']}  "
          f"blocking={_core.gemm_blocking()}  cpu isas={info['cpu_isas']}  torch "
          f"{torch.__version__}  clock={args.clock}")
    shapes = [(s, s, s, "square") for s in args.sizes] + CONV_LIKE
    for threads in args.threads:
        _core.set_num_threads(threads)
        torch.set_num_threads(threads)
        peak = args.peak * threads if args.peak else peak_gflops(1.0)
        print(f"\nthreads={threads}  FMA peak {peak:.0f} GFLOP/s"
              f" ({'given' if args.peak else 'measured'})")
        head = f"{'M':>5} {'N':>5} {'K':>5}  {'cnncore':>8} {'torch':>8} {'ratio':>6} {'%peak':>6}"
        print(head + "  GFLOP/s  (shape)")
        for m, n, k, what in shapes:
            ours, theirs = bench(m, n, k, args.repeats, torch)
            line = f"{m:>5} {n:>5} {k:>5}  {ours:8.1f} {theirs:8.1f} {ours / theirs:6.2f}"
            print(line + f" {100 * ours / peak:5.0f}%  {what}")


if __name__ == "__main__":
    main()
