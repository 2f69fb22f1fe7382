// Reductions on CUDA: sum / mean over a set of dims (hence sum_to_shape, the backward of the
// broadcasting binary ops) and max over one dim with its index (max_dim, argmax).
//
// The input is read through its own strides (no copy). Its dims are split into kept dims (the
// output's, row-major) and reduced dims, each set coalesced where neighbours step as one. Each
// output is then either added up by one thread (many outputs, or a short reduction, or a kept
// innermost dim, where neighbouring threads read neighbouring columns), or by a block with a
// warp-shuffle tree (few outputs, long contiguous rows); a long reduction with very few outputs
// is split into pieces fixed by the shape alone, whose partial sums a second kernel adds in
// order. Sums are in double, as on the CPU; every order is fixed, so results are deterministic.
#include <algorithm>
#include <cmath>
#include <limits>

#include "block_reduce.cuh"
#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
// A set of dims: sizes and element strides (ndim 0 = one element at offset 0).
struct Dims {
  int ndim;
  int64_t size[kMaxDims];
  int64_t stride[kMaxDims];
};

__device__ inline int64_t dims_offset(const Dims& d, int64_t linear) {
  if (d.ndim == 1) return linear * d.stride[0];
  int64_t off = 0;
  for (int k = d.ndim - 1; k >= 0; --k) {
    off += (linear % d.size[k]) * d.stride[k];
    linear /= d.size[k];
  }
  return off;
}

void push_dim(Dims& d, int64_t size, int64_t stride) {
  if (size == 1) return;
  if (d.ndim > 0 && d.stride[d.ndim - 1] == stride * size) {  // steps as one with the previous
    d.size[d.ndim - 1] *= size;
    d.stride[d.ndim - 1] = stride;
    return;
  }
  d.size[d.ndim] = size;
  d.stride[d.ndim] = stride;
  ++d.ndim;
}

constexpr int64_t kBlockMin = 64;        // reductions shorter than this: one thread per output
constexpr int64_t kManyOutputs = 4096;   // this many outputs fill the GPU thread by thread
constexpr int64_t kPieceLen = 4096;      // elements per piece of a split reduction (at least)
constexpr int64_t kTargetTasks = 2048;   // blocks wanted when the outputs are few
constexpr unsigned kMaxGrid = 1u << 20;

// ---- sum / mean ---------------------------------------------------------------------------------
__global__ void sum_thread_kernel(const float* x, Dims kept, Dims red, int64_t n_out,
                                  int64_t n_red, double scale, float* y) {
  CNNCORE_CUDA_LOOP(o, n_out) {
    const float* base = x + dims_offset(kept, o);
    double acc = 0.0;
    for (int64_t r = 0; r < n_red; ++r) acc += base[dims_offset(red, r)];
    y[o] = static_cast<float>(acc * scale);
  }
}

// Task t = (output t / pieces, piece t % pieces); the loop bound is the same for every thread of
// a block, so all of them reach block_sum's barriers.
__global__ void sum_block_kernel(const float* x, Dims kept, Dims red, int64_t n_out,
                                 int64_t n_red, int64_t pieces, int64_t chunk, double scale,
                                 float* y, double* partial) {
  for (int64_t t = blockIdx.x; t < n_out * pieces; t += gridDim.x) {
    const int64_t o = t / pieces, pc = t % pieces;
    const int64_t r0 = pc * chunk, r1 = min(n_red, r0 + chunk);
    const float* base = x + dims_offset(kept, o);
    double acc = 0.0;
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) acc += base[dims_offset(red, r)];
    acc = block_sum(acc);
    if (threadIdx.x == 0) {
      if (pieces == 1) y[o] = static_cast<float>(acc * scale);
      else partial[t] = acc;
    }
  }
}

__global__ void sum_pieces_kernel(const double* partial, int64_t n_out, int64_t pieces,
                                  double scale, float* y) {
  CNNCORE_CUDA_LOOP(o, n_out) {
    double acc = 0.0;
    for (int64_t p = 0; p < pieces; ++p) acc += partial[o * pieces + p];
    y[o] = static_cast<float>(acc * scale);
  }
}

// ---- max over one dim -------------------------------------------------------------------------
__global__ void max_thread_kernel(const float* x, Dims kept, int64_t D, int64_t sd, int64_t n_out,
                                  float* vals, int64_t* idx) {
  CNNCORE_CUDA_LOOP(o, n_out) {
    const float* p = x + dims_offset(kept, o);
    float best = p[0];
    int64_t bi = 0;
    for (int64_t k = 1; k < D; ++k) {
      const float v = p[k * sd];
      if (best == best && (v > best || v != v)) {  // the CPU's rule: first NaN, first maximum
        best = v;
        bi = k;
      }
    }
    vals[o] = best;
    idx[o] = bi;
  }
}

__global__ void max_block_kernel(const float* x, Dims kept, int64_t D, int64_t sd, int64_t n_out,
                                 float* vals, int64_t* idx) {
  for (int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    const float* p = x + dims_offset(kept, o);
    ArgMax m{0.0f, -1};
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
      const float v = p[k * sd];
      if (m.i < 0 || (m.v == m.v && (v > m.v || v != v))) m = ArgMax{v, k};
    }
    m = block_argmax(m);
    if (threadIdx.x == 0) {
      vals[o] = m.v;
      idx[o] = m.i;
    }
  }
}

}  // namespace

Tensor reduce_sum(const Tensor& x, const std::vector<bool>& red, bool keepdim, bool mean,
                  const char* op) {
  const int dev = check_cuda_inputs(op, {{"input", &x}});
  CNNCORE_CHECK_VALUE(x.dim() <= kMaxDims, op, ": CUDA kernels handle up to ", kMaxDims,
                      " dimensions, but got ", x.dim());
  DeviceGuard guard(dev, op);
  const Shape& s = x.shape();
  Tensor y = Tensor::empty(reduced_shape(s, red, keepdim), DType::Float32, x.device());
  const int64_t n_out = y.numel();
  Dims kept{}, rd{};
  int64_t n_red = 1;
  for (size_t d = 0; d < s.size(); ++d) {
    if (red[d]) {
      n_red *= s[d];
      push_dim(rd, s[d], x.strides()[d]);
    } else {
      push_dim(kept, s[d], x.strides()[d]);
    }
  }
  if (n_out == 0) return y;
  const double scale = mean ? (n_red ? 1.0 / static_cast<double>(n_red)
                                     : std::numeric_limits<double>::quiet_NaN())
                            : 1.0;
  if (n_red == 0) {  // an empty sum is 0, an empty mean nan (as the CPU)
    fill(y, static_cast<float>(mean ? scale : 0.0));
    return y;
  }
  const float* xp = x.device_data<float>();
  float* yp = y.device_data<float>();
  const bool rows_contiguous = rd.ndim > 0 && rd.stride[rd.ndim - 1] == 1;
  const bool by_block = n_red >= kBlockMin && (rows_contiguous || n_out < kManyOutputs);
  if (!by_block) {
    sum_thread_kernel<<<grid_for(n_out), kThreads>>>(xp, kept, rd, n_out, n_red, scale, yp);
    check_launch(op);
    return y;
  }
  int64_t pieces = 1, chunk = n_red;
  if (n_out < kTargetTasks) {
    pieces = std::min((n_red + kPieceLen - 1) / kPieceLen,
                      std::max<int64_t>(1, kTargetTasks / n_out));
    pieces = std::max<int64_t>(pieces, 1);
    chunk = (n_red + pieces - 1) / pieces;
    pieces = (n_red + chunk - 1) / chunk;
  }
  Tensor scratch;
  double* partial = nullptr;
  if (pieces > 1) {  // int64 storage holds the doubles
    scratch = Tensor::empty({n_out * pieces}, DType::Int64, x.device());
    partial = reinterpret_cast<double*>(scratch.device_data<int64_t>());
  }
  const unsigned grid =
      static_cast<unsigned>(std::min<int64_t>(n_out * pieces, static_cast<int64_t>(kMaxGrid)));
  sum_block_kernel<<<grid, kThreads>>>(xp, kept, rd, n_out, n_red, pieces, chunk, scale, yp,
                                       partial);
  check_launch(op);
  if (pieces > 1) {
    sum_pieces_kernel<<<grid_for(n_out), kThreads>>>(partial, n_out, pieces, scale, yp);
    check_launch(op);
  }
  return y;
}

std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t d, bool keepdim) {
  const char* op = "max";
  const int dev = check_cuda_inputs(op, {{"input", &x}});
  CNNCORE_CHECK_VALUE(x.dim() <= kMaxDims, op, ": CUDA kernels handle up to ", kMaxDims,
                      " dimensions, but got ", x.dim());
  DeviceGuard guard(dev, op);
  const Shape& s = x.shape();
  std::vector<bool> red(static_cast<size_t>(std::max<int64_t>(x.dim(), 1)), false);
  red[d] = true;
  const Shape os = reduced_shape(s, red, keepdim);
  Tensor vals = Tensor::empty(os, DType::Float32, x.device());
  Tensor idx = Tensor::empty(os, DType::Int64, x.device());
  const int64_t D = x.dim() ? s[d] : 1, sd = x.dim() ? x.strides()[d] : 0;
  Dims kept{};
  for (int64_t k = 0; k < x.dim(); ++k)
    if (k != d) push_dim(kept, s[k], x.strides()[k]);
  const int64_t n_out = vals.numel();
  if (n_out == 0) return {vals, idx};
  const float* xp = x.device_data<float>();
  const bool by_block = D >= kBlockMin && (sd == 1 || n_out < kManyOutputs);
  if (by_block) {
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(n_out, kMaxGrid));
    max_block_kernel<<<grid, kThreads>>>(xp, kept, D, sd, n_out, vals.device_data<float>(),
                                         idx.device_data<int64_t>());
  } else {
    max_thread_kernel<<<grid_for(n_out), kThreads>>>(xp, kept, D, sd, n_out,
                                                     vals.device_data<float>(),
                                                     idx.device_data<int64_t>());
  }
  check_launch(op);
  return {vals, idx};
}

}  // namespace cnncore::cuda
