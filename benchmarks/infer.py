"""Inference in eval mode: cnncore vs PyTorch vs onnxruntime (ResNet-50, ResNet-18, MobileNetV2).

One process, interleaved, same thread count, same weights.

    PYTHONPATH=python python3 benchmarks/infer.py [--threads 2] [--batches 1 8] [--repeats 5]
        [--models resnet50,resnet18,mobilenet_v2] [--size 224] [--json out.json]

PyTorch runs in NCHW and channels_last (the faster counts). onnxruntime (pip install
onnxruntime onnx) runs the same network exported to ONNX: by cnncore.onnx.export where cnncore
has it, else by torch.onnx.export; it is skipped with a note when missing. Prints images/s, the
ratio cnncore / each, the largest relative difference of the logits, and the conv paths taken.
cnncore runs twice: eager (the Python modules, as trained) and `opt`, the model from
cnncore.optimize_for_inference (BatchNorm folded into the convs, add and ReLU in their
epilogue, the graph run in C++); the ratios against onnxruntime are opt's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

import cnncore
from cnncore import bench, models

import torch_models


def onnx_session(torch, tmodel, ours, x, threads):
    """-> (run(x_numpy), how it was exported) or (None, reason)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime not installed"
    path = os.path.join(tempfile.mkdtemp(prefix="cnncore-infer-"), "model.onnx")
    how = None
    try:
        from cnncore import onnx as cnx  # noqa: F401  (present once cnncore exports ONNX)
        cnx.export(ours, cnncore.tensor(x), path)
        how = "cnncore.onnx.export"
    except (ImportError, AttributeError):
        try:
            with warnings.catch_warnings():  # the legacy exporter says it is legacy
                warnings.simplefilter("ignore")
                torch.onnx.export(tmodel, torch.from_numpy(x), path, input_names=["x"],
                                  output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                                  dynamo=False)
            how = "torch.onnx.export"
        except Exception as e:  # exporter missing pieces (onnx, onnxscript): say so, go on
            return None, f"export failed: {type(e).__name__}: {e}"
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    # Idle onnxruntime threads spin by default, stealing the cores from whatever runs next in
    # the interleaved loop: off, so each library gets the machine to itself in its turn.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return (lambda a: sess.run(None, {name: a})[0]), how


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    cnncore.set_num_threads(args.threads)
    torch = bench.import_torch(args.threads)
    if torch is None:
        sys.exit("infer.py compares with PyTorch: pip install torch==2.13.0")
    print(bench.machine_line(args.threads, torch, size=args.size))
    hdr = (f"{'model':10s} {'batch':>5s} {'cnncore':>9s} {'opt':>9s} {'torch':>9s} {'(fmt)':6s}"
           f" {'ratio':>6s} {'opt':>6s} {'onnxrt':>9s} {'opt':>6s} {'maxdiff':>8s}  (images/s;"
           f" ratios cnncore / torch, opt / torch, opt / onnxruntime)")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    rng = np.random.default_rng(0)
    for name in args.models.split(","):
        tmodel = getattr(torch_models, name)(torch).eval()
        with torch.no_grad():  # non-trivial BN statistics, so eval mode is really exercised
            for m in tmodel.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        ours = getattr(models, name)()
        torch_models.copy_weights(tmodel, ours)
        ours.eval()
        tmodel_cl = tmodel.to(memory_format=torch.channels_last)
        x0 = rng.standard_normal((max(args.batches), 3, args.size, args.size)).astype(np.float32)
        ort_run, how = onnx_session(torch, tmodel, ours, x0[:1], args.threads)
        if ort_run is None:
            print(f"  (onnxruntime skipped: {how})")
        for b in args.batches:
            x = x0[:b]
            X, tx = cnncore.tensor(x), torch.from_numpy(x)
            tx_cl = tx.contiguous(memory_format=torch.channels_last)

            def ours_fn():
                with cnncore.no_grad():
                    return ours(X)

            fast = cnncore.optimize_for_inference(ours, X)

            def opt_fn():
                return fast(X)

            def torch_nchw():
                with torch.no_grad():
                    return tmodel(tx)

            def torch_cl():
                with torch.no_grad():
                    return tmodel_cl(tx_cl)

            cases = {"cnncore": ours_fn, "opt": opt_fn, "torch-nchw": torch_nchw,
                     "torch-cl": torch_cl}
            if ort_run is not None:
                cases["onnxruntime"] = lambda: ort_run(x)
            ref = torch_nchw().numpy()
            out = ours_fn().numpy()
            scale = max(np.abs(ref).max(), 1e-6)
            maxdiff = float(max(np.abs(out - ref).max(), np.abs(opt_fn().numpy() - ref).max())
                            / scale)
            times = bench.interleaved(cases, args.repeats)
            med = {k: statistics.median(v) for k, v in times.items()}
            best = min(("torch-nchw", "torch-cl"), key=med.get)
            row = dict(model=name, batch=b, cnncore=b / med["cnncore"], torch=b / med[best],
                       torch_format=best[6:], ratio_torch=med[best] / med["cnncore"],
                       opt=b / med["opt"], ratio_torch_opt=med[best] / med["opt"],
                       max_rel_diff=maxdiff, spread_pct=bench.spread_pct(times["cnncore"]),
                       spread_pct_opt=bench.spread_pct(times["opt"]))
            line = (f"{name:10s} {b:5d} {row['cnncore']:9.1f} {row['opt']:9.1f} "
                    f"{row['torch']:9.1f} {best[6:]:6s} {row['ratio_torch']:6.2f} "
                    f"{row['ratio_torch_opt']:6.2f}")
            if "onnxruntime" in med:
                row.update(onnxruntime=b / med["onnxruntime"], onnx_export=how,
                           ratio_onnxruntime=med["onnxruntime"] / med["opt"],
                           ratio_onnxruntime_eager=med["onnxruntime"] / med["cnncore"])
                line += f" {row['onnxruntime']:9.1f} {row['ratio_onnxruntime']:6.2f}"
            else:
                line += f" {'-':>9s} {'-':>6s}"
            print(line + f" {maxdiff:8.1e}", flush=True)
            rows.append(row)
    if args.json:
        bench.write_json(dict(threads=args.threads, size=args.size, repeats=args.repeats,
                              date=time.strftime("%Y-%m-%d"), rows=rows), args.json)


if __name__ == "__main__":
    main()
