// Block-wide reductions for the CUDA kernels (cuda-b's reductions and losses): warp shuffles,
// then one value per warp through shared memory. The order of the additions depends only on
// blockDim and each thread's value, so results are deterministic run to run.
//
// Every thread of the block must call these (they contain __syncthreads()), with blockDim.x a
// multiple of 32 and at most 1024. The result is valid in thread 0 only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace cnncore::cuda {

__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline double block_sum(double v) {
  __shared__ double warp_part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) warp_part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int nwarps = (blockDim.x + 31) >> 5;
    v = lane < nwarps ? warp_part[lane] : 0.0;
    v = warp_sum(v);
  }
  __syncthreads();  // warp_part is free again for the next call
  return v;
}

// Two sums at once (a loss and its weights).
__device__ inline void block_sum2(double& a, double& b) {
  __shared__ double part_a[32], part_b[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  a = warp_sum(a);
  b = warp_sum(b);
  if (lane == 0) {
    part_a[warp] = a;
    part_b[warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    const int nwarps = (blockDim.x + 31) >> 5;
    a = warp_sum(lane < nwarps ? part_a[lane] : 0.0);
    b = warp_sum(lane < nwarps ? part_b[lane] : 0.0);
  }
  __syncthreads();
}

// The running maximum with its index: NaN beats everything (the first NaN), otherwise the larger
// value, ties to the lower index; idx < 0 marks "no element" (a thread that saw nothing). This
// order is total, so the result does not depend on the combining order and equals a serial scan
// that keeps the first maximum (the CPU kernel's rule).
struct ArgMax {
  float v;
  int64_t i;
};
__device__ inline ArgMax better(ArgMax a, ArgMax b) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  const bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) {
    if (an && bn) return a.i < b.i ? a : b;
    return an ? a : b;
  }
  if (a.v > b.v) return a;
  if (b.v > a.v) return b;
  return a.i < b.i ? a : b;
}

__device__ inline ArgMax warp_argmax(ArgMax m) {
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax other;
    other.v = __shfl_down_sync(0xffffffffu, m.v, o);
    other.i = static_cast<int64_t>(
        __shfl_down_sync(0xffffffffu, static_cast<long long>(m.i), o));
    m = better(m, other);
  }
  return m;
}

__device__ inline ArgMax block_argmax(ArgMax m) {
  __shared__ float part_v[32];
  __shared__ int64_t part_i[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  m = warp_argmax(m);
  if (lane == 0) {
    part_v[warp] = m.v;
    part_i[warp] = m.i;
  }
  __syncthreads();
  if (warp == 0) {
    const int nwarps = (blockDim.x + 31) >> 5;
    ArgMax w{0.0f, -1};
    if (lane < nwarps) w = ArgMax{part_v[lane], part_i[lane]};
    m = warp_argmax(w);
  }
  __syncthreads();
  return m;
}

// Warp-wide float max and sum (every lane gets the result): the softmax rows.
__device__ inline float warp_allmax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ inline float warp_allsum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return __shfl_sync(0xffffffffu, v, 0);  // lane 0's sum everywhere: one value per row
}

}  // namespace cnncore::cuda
