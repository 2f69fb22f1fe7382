#!/usr/bin/env bash
# Builds examples/cpp from scratch against a cnncore CMake package and runs them:
#   run_consumer.sh CNNCORE_DIR WORK_DIR
# CNNCORE_DIR is the folder holding cnncoreConfig.cmake (an install's lib/cmake/cnncore, or
# `python -m cnncore --cmake-dir`). Needs a python3 that imports cnncore (to export the digits
# and a model trained in Python); exits 77 (ctest: skipped) when there is none.
set -euo pipefail
cnncore_dir=$1
work=$2
src=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
if ! "$py" -c "import cnncore" 2> /dev/null; then
  echo "skipped: $py cannot import cnncore"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -Dcnncore_DIR="$cnncore_dir" \
  > "$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j 2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$py" "$src/export_digits.py" "$work/data" --epochs 3

# The model trained in Python gives the logits Python computed (to 1e-5).
"$work/build/classify" "$work/data/lenet.cnn" "$work/data/digit.pgm" | tee "$work/classify.txt"
paste <(grep logits "$work/classify.txt" | tr ' ' '\n' | tail -n +2) \
      <(grep logits "$work/data/expected.txt" | tr ' ' '\n' | tail -n +2) |
  awk '{ d = $1 - $2; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2; if (d > 1e-5 * (1 + s)) bad = 1; n++ }
       END { if (bad || n != 10) { print "classify: logits differ from Python"; exit 1 }
             print "classify: logits match Python" }'
grep -q "$(head -1 "$work/data/expected.txt")" "$work/classify.txt"

# LeNet-5 trained in C++ learns the digits, and its saved file is read back by classify and Python.
"$work/build/train_lenet" "$work/data/digits.safetensors" 3 "$work/lenet_cpp.cnn" |
  tee "$work/train.txt"
tail -n 2 "$work/train.txt" | head -1 |
  awk '{ if ($NF + 0 < 0.85) { print "train_lenet: accuracy too low"; exit 1 } }'
"$work/build/classify" "$work/lenet_cpp.cnn" "$work/data/digit.pgm"
"$py" -c "
import sys, cnncore, numpy as np
m = cnncore.load_model(sys.argv[1])
d = cnncore.load(sys.argv[2])
with cnncore.no_grad(): acc = (m(d['test_images']).numpy().argmax(1) == d['test_labels'].numpy()).mean()
print(f'Python reads the C++-trained model: test accuracy {acc:.4f}')
assert acc > 0.85
" "$work/lenet_cpp.cnn" "$work/data/digits.safetensors"
echo "consumer test passed against $cnncore_dir"
