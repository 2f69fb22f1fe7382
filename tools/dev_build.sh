#!/usr/bin/env bash
# Developer build: compiles the C++ library, the extension and the C++ tests into build/dev
# (or $1) and drops _core into python/cnncore/, so `PYTHONPATH=python pytest` runs the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/dev}
mkdir -p "$dir"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNNCORE_BUILD_PYTHON=ON \
  -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(command -v python3)" > "$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
cmake --build "$dir" -j 2
cp "$dir"/_core*.so python/cnncore/
