"""The other CNN ops: cnncore vs PyTorch in one process, interleaved, same thread count.

    PYTHONPATH=python python3 benchmarks/ops.py [--threads 2] [--batch 8] [--repeats 7]
        [--only pool,bn] [--clock wall|cpu] [--json out.json] [--plot out.png]

Pooling (max 3x3/2 and 2x2/2, average 2x2/2, global average), transposed convolution (U-Net's
2x2/2 up-convolution and a 4x4/2 one), batch norm (training: batch statistics, and eval), LRN,
bilinear upsampling and SGEMM, forward and forward+backward. Memory-bound ops are reported in
GB/s of the input plus output they must touch at least, compute-bound ones (transposed conv,
GEMM) in GFLOP/s with % of the measured FMA peak. torch runs in NCHW, as cnncore's API does.
Nothing here is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import cnncore
import cnncore.functional as F
from cnncore import bench

def cases(batch: int):
    """(name, kind, input shape, spec): spec is the call (same code for both libraries, given the
    functional module), or the transposed conv's (out channels, kernel, stride, padding)."""
    n = batch
    return [
        ("max_pool 3x3/2 64@112", "pool", (n, 64, 112, 112),
         lambda f, x: f.max_pool2d(x, 3, 2, 1)),
        ("max_pool 2x2/2 128@56", "pool", (n, 128, 56, 56), lambda f, x: f.max_pool2d(x, 2)),
        ("avg_pool 2x2/2 128@56", "pool", (n, 128, 56, 56), lambda f, x: f.avg_pool2d(x, 2)),
        ("adaptive_avg 1x1 512@7", "pool", (n, 512, 7, 7),
         lambda f, x: f.adaptive_avg_pool2d(x, 1)),
        ("batch_norm train 64@56", "bn", (n, 64, 56, 56), None),
        ("batch_norm eval 256@14", "bn-eval", (n, 256, 14, 14), None),
        ("lrn size 5 96@55", "lrn", (n, 96, 55, 55),
         lambda f, x: f.local_response_norm(x, 5, 1e-4, 0.75, 2.0)),
        ("bilinear x2 64@56", "resize", (n, 64, 56, 56),
         lambda f, x: f.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)),
        ("conv_transpose 2x2/2 128->64@28", "convT", (n, 128, 28, 28), (64, 2, 2, 0)),
        ("conv_transpose 4x4/2 64->32@56", "convT", (n, 64, 56, 56), (32, 4, 2, 1)),
        ("sgemm 512x512x512", "gemm", (512, 512, 512), None),
        ("sgemm 1024x1024x1024", "gemm", (1024, 1024, 1024), None),
        ("linear b256 4096->1000", "linear", (256, 4096, 1000), None),
    ]


def build(case, rng, torch):
    """-> (flops or None, bytes, {name: (fwd, fwdbwd)})."""
    name, kind, shape, spec = case
    out = {}
    if kind in ("gemm", "linear"):
        m, k, nn_ = shape
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = (rng.standard_normal((k, nn_)) / np.sqrt(k)).astype(np.float32)
        flops = 2.0 * m * k * nn_
        libs = {"cnncore": (cnncore, cnncore.matmul)}
        if torch is not None:
            libs["torch"] = (torch, torch.matmul)
        for lib, (mod, mm) in libs.items():
            A, B = mod.tensor(a), mod.tensor(b)
            Ag, Bg = mod.tensor(a, requires_grad=True), mod.tensor(b, requires_grad=True)
            ng = mod.no_grad

            def fwd(A=A, B=B, mm=mm, ng=ng):
                with ng():
                    mm(A, B)

            def fwdbwd(Ag=Ag, Bg=Bg, mm=mm):
                Ag.grad = Bg.grad = None
                mm(Ag, Bg).sum().backward()

            out[lib] = (fwd, fwdbwd)
        return flops, 4.0 * (m * k + k * nn_ + m * nn_), out
    x = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    flops = None
    if kind == "convT":
        k_out, ks, stride, pad = spec
        w = (rng.standard_normal((c, k_out, ks, ks)) / np.sqrt(c * ks * ks)).astype(np.float32)
        oh = (shape[2] - 1) * stride - 2 * pad + ks
        flops = 2.0 * shape[0] * c * k_out * ks * ks * shape[2] * shape[3]
        extra = {"w": w}

        def call(f, X, P):
            return f.conv_transpose2d(X, P["w"], stride=stride, padding=pad)

        out_elems = shape[0] * k_out * oh * oh
    elif kind in ("bn", "bn-eval"):
        extra = {"rm": np.zeros(c, np.float32), "rv": np.ones(c, np.float32),
                 "g": rng.standard_normal(c).astype(np.float32),
                 "b": rng.standard_normal(c).astype(np.float32)}
        training = kind == "bn"

        def call(f, X, P):
            return f.batch_norm(X, P["rm"], P["rv"], P["g"], P["b"], training=training)

        out_elems = x.size
    else:
        extra = {}

        def call(f, X, P):
            return spec(f, X)

        out_elems = None
    libs = {"cnncore": (cnncore, F)}
    if torch is not None:
        libs["torch"] = (torch, torch.nn.functional)
    for lib, (mod, f) in libs.items():
        X = mod.tensor(x)
        Xg = mod.tensor(x, requires_grad=True)
        P = {k: mod.tensor(v) for k, v in extra.items()}
        Pg = {k: mod.tensor(v, requires_grad=k in ("w", "g", "b")) for k, v in extra.items()}
        if out_elems is None:
            with mod.no_grad():
                out_elems = int(np.prod(call(f, X, P).shape))
        ng = mod.no_grad

        def fwd(X=X, P=P, f=f, ng=ng):
            with ng():
                call(f, X, P)

        def fwdbwd(Xg=Xg, Pg=Pg, f=f):
            Xg.grad = None
            for v in Pg.values():
                v.grad = None
            call(f, Xg, Pg).sum().backward()

        out[lib] = (fwd, fwdbwd)
    return flops, 4.0 * (x.size + out_elems), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="draw the ratios into this PNG (matplotlib)")
    args = ap.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    cnncore.set_num_threads(args.threads)
    torch = bench.import_torch(args.threads)
    print(bench.machine_line(args.threads, torch, batch=args.batch, clock=args.clock))
    peak = bench.peak_gflops(1.0)
    print(f"measured fp32 FMA peak: {peak:.0f} GFLOP/s")
    hdr = (f"{'case':34s} {'mode':6s} {'cnncore':>9s} {'torch':>9s} {'unit':8s} {'ratio':>6s} "
           f"{'%peak':>5s} {'spread%':>7s}")
    print(hdr)
    print("-" * len(hdr))
    rng = np.random.default_rng(0)
    rows = []
    for case in cases(args.batch):
        if args.only and not any(o in case[0] for o in args.only.split(",")):
            continue
        flops, nbytes, fns = build(case, rng, torch)
        for mode, idx in (("fwd", 0), ("fwdbwd", 1)):
            times = bench.interleaved({k: v[idx] for k, v in fns.items()}, args.repeats,
                                      clock=clock, min_time=0.02)
            med = {k: statistics.median(v) for k, v in times.items()}
            # fwd+bwd does about 3x the forward's work (2x for memory-bound ops is closer, but
            # the ratio, which is what matters, does not depend on the factor).
            work = (flops if flops else nbytes) * (1 if mode == "fwd" else 3)
            unit, scale = ("GFLOP/s", 1e9) if flops else ("GB/s", 1e9)
            row = dict(case=case[0], mode=mode, unit=unit, cnncore=work / med["cnncore"] / scale,
                       spread_pct=bench.spread_pct(times["cnncore"]))
            if flops:
                row["peak_pct"] = row["cnncore"] / peak * 100
            if "torch" in med:
                row.update(torch=work / med["torch"] / scale, ratio=med["torch"] / med["cnncore"])
            rows.append(row)
            print(f"{case[0]:34s} {mode:6s} {row['cnncore']:9.1f} "
                  f"{row.get('torch', float('nan')):9.1f} {unit:8s} "
                  f"{row.get('ratio', float('nan')):6.2f} {row.get('peak_pct', float('nan')):5.1f} "
                  f"{row['spread_pct']:7.1f}", flush=True)
    for mode in ("fwd", "fwdbwd"):
        rs = [r["ratio"] for r in rows if r["mode"] == mode and "ratio" in r]
        if rs:
            print(f"geometric mean ratio {mode}: {bench.geomean(rs):.2f} (min {min(rs):.2f}) "
                  f"over {len(rs)} cases")
    result = dict(threads=args.threads, batch=args.batch, clock=args.clock, repeats=args.repeats,
                  peak_gflops=peak, torch=None if torch is None else torch.__version__, rows=rows)
    if args.json:
        bench.write_json(result, args.json)
    if args.plot:
        bench.plot_ratios(rows, args.plot, f"ops, {bench.cpu_name()}, {args.threads} threads")


if __name__ == "__main__":
    main()
