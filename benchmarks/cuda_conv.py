"""conv2d on the GPU: cnncore's CUDA backend vs PyTorch's CUDA build (cuDNN), same process.

    PYTHONPATH=python python3 benchmarks/cuda_conv.py [--batch 8] [--repeats 20] [--only resnet]
        [--mode fwd|fwdbwd|both] [--tf32] [--json out.json]

The Performance issue's shape list (cnncore.bench.CONV_SHAPES, as benchmarks/conv.py). For every
shape cnncore and torch run one after the other in each repeat, each timed with a device
synchronisation before and after; medians give GFLOP/s (forward 2*N*K*OH*OW*C/g*R*S, forward +
backward 3x that) and the ratio cnncore / torch (> 1 = cnncore faster). Both sides run fp32 FMA
by default (torch with TF32 off); --tf32 turns TF32 on for both (cnncore.backends.cudnn.allow_tf32
and torch.backends.cudnn.allow_tf32), and the path cnncore takes is printed (TF32 needs compute
capability >= 8.0; below that cnncore stays on fp32). Also printed: the largest difference from
torch's output (with --tf32 both sides round differently: expect ~1e-3 of the output scale).
Without a CUDA build of cnncore and a GPU, it says why and exits 0; without a CUDA torch it
times cnncore alone. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import cnncore
import cnncore.functional as F
from cnncore import bench, cuda


def sync_all(torch):
    cuda.synchronize()
    if torch is not None:
        torch.cuda.synchronize()


def median_time(fn, sync, repeats):
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--only", default="")
    ap.add_argument("--mode", choices=["fwd", "fwdbwd", "both"], default="both")
    ap.add_argument("--tf32", action="store_true",
                    help="allow TF32 tensor cores in cnncore and in torch (off: both fp32)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if not cuda.is_available():
        print(f"cuda_conv: skipped: {cuda.unavailable_reason()}")
        return 0
    cnncore.backends.cudnn.allow_tf32 = args.tf32
    cnncore.backends.cuda.matmul.allow_tf32 = args.tf32
    if args.tf32 and cnncore.backends.cuda.tf32_supported(0):
        path = "TF32 tensor cores (wmma m16n16k8, fp32 accumulate)"
    elif args.tf32:
        path = "fp32 FMA (TF32 asked for, but this GPU is older than compute capability 8.0)"
    else:
        path = "fp32 FMA"
    print(f"cnncore conv2d path: {path}")
    try:
        import torch
        if not torch.cuda.is_available():
            print("cuda_conv: torch has no CUDA here: timing cnncore alone")
            torch = None
    except ImportError:
        torch = None
    if torch is not None:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
              f"GPU {torch.cuda.get_device_name(0)}, TF32 {'on' if args.tf32 else 'off'}")
    rng = np.random.default_rng(0)
    rows = []
    modes = ["fwd", "fwdbwd"] if args.mode == "both" else [args.mode]
    print(f"{'layer':28s} {'mode':7s} {'cnncore GF/s':>12s} {'torch GF/s':>11s} {'ratio':>6s} "
          f"{'max|diff|':>9s}")
    for shape in bench.CONV_SHAPES:
        name, c, k, hw, ks, stride, pad, groups, b = shape
        if args.only and args.only not in name:
            continue
        n = b or args.batch
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((k, c // groups, ks, ks)) /
             np.sqrt(c // groups * ks * ks)).astype(np.float32)
        oh = (hw + 2 * pad - ks) // stride + 1
        flops = 2.0 * n * k * oh * oh * (c // groups) * ks * ks
        X = cnncore.tensor(x, device="cuda", requires_grad=True)
        W = cnncore.tensor(w, device="cuda", requires_grad=True)
        G = cnncore.ones(n, k, oh, oh, device="cuda")
        if torch is not None:
            tx = torch.tensor(x, device="cuda", requires_grad=True)
            tw = torch.tensor(w, device="cuda", requires_grad=True)
            tg = torch.ones(n, k, oh, oh, device="cuda")
        for mode in modes:
            def ours():
                if mode == "fwd":
                    with cnncore.no_grad():
                        return F.conv2d(X, W, None, stride, pad, 1, groups)
                y = F.conv2d(X, W, None, stride, pad, 1, groups)
                y.backward(G)
                return y

            def theirs():
                if mode == "fwd":
                    with torch.no_grad():
                        return torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
                y = torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
                y.backward(tg)
                return y

            ours()  # warm-up: allocator blocks, cuDNN's algorithm search
            t_ours = median_time(ours, lambda: sync_all(torch), args.repeats)
            work = flops * (1 if mode == "fwd" else 3)
            row = dict(layer=name, mode=mode, batch=n, cnncore_gflops=work / t_ours / 1e9)
            if torch is not None:
                theirs()
                t_theirs = median_time(theirs, lambda: sync_all(torch), args.repeats)
                row["torch_gflops"] = work / t_theirs / 1e9
                row["ratio"] = t_theirs / t_ours
                with torch.no_grad():
                    ref = torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
                with cnncore.no_grad():
                    got = F.conv2d(X, W, None, stride, pad, 1, groups).cpu().numpy()
                row["max_diff"] = float(np.abs(got - ref.cpu().numpy()).max())
            rows.append(row)
            print(f"{name:28s} {mode:7s} {row['cnncore_gflops']:12.1f} "
                  f"{row.get('torch_gflops', float('nan')):11.1f} "
                  f"{row.get('ratio', float('nan')):6.2f} {row.get('max_diff', float('nan')):9.2e}")
            X.grad = W.grad = None
            if torch is not None:
                tx.grad = tw.grad = None
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    if ratios:
        print(f"geometric mean ratio: {bench.geomean(ratios):.2f}")
    if args.json:
        bench.write_json({"rows": rows, "tf32": args.tf32, "cnncore_path": path}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
