"""conv2d: cnncore vs PyTorch on the Performance issue's shape list, same process, interleaved.

    PYTHONPATH=python python3 benchmarks/conv.py [--threads 2] [--batch 8] [--repeats 5]
        [--only resnet] [--mode fwd|fwdbwd|both] [--clock wall|cpu] [--json out.json] [--plot out.png]

For every shape: cnncore (the functional API, as a user calls it) and PyTorch in NCHW and in
channels_last (the faster counts) run one after the other in each repeat, with the same thread
count; the median of the repeats gives GFLOP/s (forward: 2*N*K*OH*OW*C/g*R*S; forward+backward:
3x that, for the input and weight gradients) and the ratio cnncore / PyTorch (> 1 = cnncore
faster). Also printed: the algorithm cnncore chose, the spread (min-max over repeats) and the
largest difference from PyTorch's output. Nothing here is asserted by the test suite.

--clock cpu times with the process's CPU time instead of the wall clock: on a shared, overloaded
machine it leaves out the time other processes held the cores (GFLOP/s then means per CPU-second
summed over threads, so compare like with like, best with --threads 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import cnncore
import cnncore.functional as F
from cnncore import _core, bench

SHAPES = bench.CONV_SHAPES


CLOCK = time.perf_counter


def timed(fn) -> float:
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


def make_cases(shape, batch, rng, torch):
    name, c, k, hw, ks, stride, pad, groups, b = shape
    n = b or batch
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((k, c // groups, ks, ks)) / np.sqrt(c // groups * ks * ks)).astype(
        np.float32)
    bias = rng.standard_normal(k).astype(np.float32)
    X, W, B = cnncore.tensor(x), cnncore.tensor(w), cnncore.tensor(bias)
    Xg, Wg, Bg = (cnncore.tensor(a, requires_grad=True) for a in (x, w, bias))
    args = dict(stride=stride, padding=pad, groups=groups)
    p = _core.conv2d_params(list(x.shape), list(w.shape),
                            _core.Conv2dOptions(stride, stride, _core.Padding2d.symmetric(pad, pad),
                                                1, 1, groups))
    out_shape = tuple(p.output_shape())
    gy = cnncore.tensor(np.ones(out_shape, np.float32))

    def ours_fwd():
        with cnncore.no_grad():
            return F.conv2d(X, W, B, **args)

    def ours_fwdbwd():
        Xg.grad = Wg.grad = Bg.grad = None
        F.conv2d(Xg, Wg, Bg, **args).backward(gy)

    cases = {"cnncore": (ours_fwd, ours_fwdbwd)}
    if torch is not None:
        for fmt, mf in (("nchw", torch.contiguous_format), ("cl", torch.channels_last)):
            tx = torch.tensor(x).contiguous(memory_format=mf)
            tw = torch.tensor(w).contiguous(memory_format=mf)
            tb = torch.tensor(bias)
            txg, twg, tbg = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
            tgy = torch.ones(out_shape).contiguous(memory_format=mf)

            def t_fwd(tx=tx, tw=tw, tb=tb):
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, tb, **args)

            def t_fwdbwd(txg=txg, twg=twg, tbg=tbg, tgy=tgy):
                txg.grad = twg.grad = tbg.grad = None
                torch.nn.functional.conv2d(txg, twg, tbg, **args).backward(tgy)

            cases["torch-" + fmt] = (t_fwd, t_fwdbwd)
    return p, cases


def run(args) -> dict:
    try:
        import torch
    except ImportError:
        torch = None
        print("torch not installed: cnncore timings only", file=sys.stderr)
    cnncore.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    info = _core.build_info()
    print(bench.machine_line(args.threads, torch, batch=args.batch, repeats=args.repeats,
                             clock=args.clock))
    peak = bench.peak_gflops(1.0)
    print(f"measured fp32 FMA peak: {peak:.0f} GFLOP/s on {args.threads} thread(s), isa "
          f"{info['isa']} (%peak below divides by it)")
    rng = np.random.default_rng(0)
    modes = ["fwd", "fwdbwd"] if args.mode == "both" else [args.mode]
    rows = []
    hdr = (f"{'shape':28s} {'mode':6s} {'cnncore':>9s} {'%peak':>5s} {'torch':>9s} {'(fmt)':6s}"
           f" {'ratio':>6s} {'spread%':>7s} {'maxdiff':>8s}  algorithm")
    print(hdr)
    print("-" * len(hdr))
    for shape in SHAPES:
        if args.only and not any(o in shape[0] for o in args.only.split(",")):
            continue
        p, cases = make_cases(shape, args.batch, rng, torch)
        algo = _core.conv2d_algorithm(p).split(":")[0]
        maxdiff = float("nan")
        if torch is not None:
            ours = cases["cnncore"][0]().numpy()
            ref = cases["torch-nchw"][0]().numpy()
            maxdiff = float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-6))
        for mode in modes:
            idx = 0 if mode == "fwd" else 1
            flops = p.flops() * (1 if mode == "fwd" else 3)
            times = {name: [] for name in cases}
            for fn in cases.values():  # warm-up: caches, thread pools, allocator
                fn[idx]()
            for _ in range(args.repeats):  # interleaved so drift hits every variant alike
                for name, fn in cases.items():
                    times[name].append(timed(fn[idx]))
            med = {name: statistics.median(t) for name, t in times.items()}
            ours_t = med["cnncore"]
            spread = (max(times["cnncore"]) - min(times["cnncore"])) / ours_t * 100
            row = dict(shape=shape[0], mode=mode, algorithm=algo, threads=args.threads,
                       batch=shape[8] or args.batch, gflops=flops / ours_t / 1e9,
                       seconds=ours_t, spread_pct=spread, max_rel_diff=maxdiff)
            row["peak_pct"] = row["gflops"] / peak * 100
            line = f"{shape[0]:28s} {mode:6s} {row['gflops']:9.1f} {row['peak_pct']:5.1f}"
            if torch is not None:
                best = min((n for n in med if n.startswith("torch")), key=med.get)
                row.update(torch_gflops=flops / med[best] / 1e9, torch_format=best[6:],
                           torch_seconds={n: med[n] for n in med if n.startswith("torch")},
                           ratio=med[best] / ours_t)
                line += (f" {row['torch_gflops']:9.1f} {best[6:]:6s} {row['ratio']:6.2f}"
                         f" {spread:7.1f} {maxdiff:8.1e}  {algo}")
            else:
                line += f" {'':9s} {'':6s} {'':6s} {spread:7.1f} {'':8s}  {algo}"
            print(line, flush=True)
            rows.append(row)
    ratios = {m: [r["ratio"] for r in rows if r["mode"] == m and "ratio" in r] for m in modes}
    for m, rs in ratios.items():
        if rs:
            print(f"geometric mean ratio {m}: {float(np.exp(np.mean(np.log(rs)))):.2f} "
                  f"(min {min(rs):.2f}) over {len(rs)} shapes")
    return dict(cpu=bench.cpu_name(), isa=info["isa"], threads=args.threads, batch=args.batch,
                peak_gflops=peak,
                clock=args.clock,
                repeats=args.repeats, date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                torch=None if torch is None else torch.__version__, rows=rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--mode", choices=["fwd", "fwdbwd", "both"], default="both")
    ap.add_argument("--only", default="", help="comma-separated substrings of shape names")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: process CPU time (for overloaded shared machines)")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--plot", default=None, help="draw the ratios into this PNG (matplotlib)")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    result = run(args)
    if args.json:
        bench.write_json(result, args.json)
    if args.plot:
        bench.plot_ratios(result["rows"], args.plot,
                          f"conv2d, {result['cpu']}, {args.threads} threads, batch {args.batch}")


if __name__ == "__main__":
    main()
