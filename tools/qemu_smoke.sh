#!/usr/bin/env bash
# Runs a tiny smoke subset under qemu-user CPUs older than this machine's, proving the run-time
# ISA dispatch never executes an instruction the CPU lacks: -cpu Haswell (AVX2+FMA, no AVX-512)
# must pick avx2 and -cpu Nehalem (neither) baseline. Each check: import, build_info(), conv2d and
# max/avg pool forward+backward against the reference kernels, three training steps.
# Usage: tools/qemu_smoke.sh [python]  (default: python3; needs qemu-x86_64, e.g. Debian's
# qemu-user, and cnncore importable from that python or from python/ in this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(command -v "${1:-python3}")
py=$("$py" -c 'import sys; print(sys.executable)')  # qemu needs the real binary, not a shim
command -v qemu-x86_64 > /dev/null || { echo "qemu_smoke: qemu-x86_64 not found" >&2; exit 1; }
# A developer tree (tools/dev_build.sh copied _core into python/) runs as is; CI's installed
# package is used otherwise.
if compgen -G "python/cnncore/_core*.so" > /dev/null; then
  export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
fi
export OMP_NUM_THREADS=2

read -r -d '' smoke << 'PY' || true
import sys, time
import numpy as np
import cnncore
import cnncore.functional as F
from cnncore import _core, nn, optim

start = time.time()
want = sys.argv[1]
info = cnncore.build_info()
print(f"  build_info: isa={info['isa']} cpu_isas={info['cpu_isas']}")
assert info["isa"] == want, f"dispatch chose {info['isa']}, expected {want}"
rng = np.random.default_rng(0)

def close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4, err_msg=what)

for (n, c, h, w, k, r, stride, pad, groups) in [(2, 4, 9, 7, 6, 3, 1, 1, 2),
                                                (1, 3, 8, 8, 5, 5, 2, 2, 1)]:
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // groups, r, r)).astype(np.float32)
    o = _core.Conv2dOptions(stride, stride, _core.Padding2d.symmetric(pad, pad), 1, 1, groups)
    xc, wc = _core.from_numpy(x), _core.from_numpy(wt)
    y = _core.conv2d_forward(xc, wc, None, o)
    close(y.numpy(), _core.reference.conv2d_forward(xc, wc, None, o).numpy(), "conv2d forward")
    g = _core.from_numpy(rng.standard_normal(y.shape).astype(np.float32))
    close(_core.conv2d_backward_input(g, wc, list(x.shape), o).numpy(),
          _core.reference.conv2d_backward_input(g, wc, list(x.shape), o).numpy(), "conv2d dx")
    close(_core.conv2d_backward_weight(g, xc, list(wt.shape), o).numpy(),
          _core.reference.conv2d_backward_weight(g, xc, list(wt.shape), o).numpy(), "conv2d dw")
    po = _core.Pool2dOptions()
    po.kernel_h = po.kernel_w = 3
    po.stride_h = po.stride_w = 2
    po.pad_h = po.pad_w = 1
    ym, idx = _core.max_pool2d_forward(xc, po)
    ymr, idxr = _core.reference.max_pool2d_forward(xc, po)
    close(ym.numpy(), ymr.numpy(), "max_pool2d forward")
    gm = _core.from_numpy(rng.standard_normal(ym.shape).astype(np.float32))
    close(_core.max_pool2d_backward(gm, idx, list(x.shape)).numpy(),
          _core.reference.max_pool2d_backward(gm, idxr, list(x.shape)).numpy(), "max_pool2d dx")
    close(_core.avg_pool2d_forward(xc, po).numpy(),
          _core.reference.avg_pool2d_forward(xc, po).numpy(), "avg_pool2d forward")
    close(_core.avg_pool2d_backward(gm, list(x.shape), po).numpy(),
          _core.reference.avg_pool2d_backward(gm, list(x.shape), po).numpy(), "avg_pool2d dx")
print("  conv2d and pool forward/backward match the reference")

cnncore.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(4 * 4 * 4, 10))
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x = cnncore.tensor(rng.standard_normal((16, 1, 8, 8)).astype(np.float32))
t = cnncore.tensor(rng.integers(0, 10, 16).astype(np.int64))
losses = []
for _ in range(3):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), t)
    loss.backward()
    opt.step()
    losses.append(loss.item())
assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
print(f"  3 training steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}; {time.time() - start:.0f}s")
PY

for pair in Haswell:avx2 Nehalem:baseline; do
  cpu=${pair%%:*} isa=${pair##*:}
  t0=$(date +%s)
  echo "qemu-x86_64 -cpu $cpu (expects isa=$isa)"
  # TCG warns about CPUID bits it cannot emulate (hle, rtm...); they do not matter here.
  env -u CNNCORE_ISA qemu-x86_64 -cpu "$cpu" "$py" -c "$smoke" "$isa" \
    2> >(grep -v "TCG doesn't support" >&2)
  echo "  ok in $(( $(date +%s) - t0 ))s"
done
