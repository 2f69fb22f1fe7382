// One shared-memory tiled, register-blocked fp32 GEMM for every matrix product the backend does:
// C[m, n] = sum_k A(m, k) * B(k, n), with A, B and the store given as functors. Linear layers
// pass plain row-major loads; convolutions pass implicit-im2col loads (the column matrix is never
// built), so conv forward, backward-input and backward-weight are three loaders over one kernel.
// blockIdx.z is the group: loaders and store receive it.
//
// Tile: 64 x 64 outputs per block of 256 threads, 16-deep k slices; thread (ty, tx) owns the 4 x 4
// outputs (ty + 16 i, tx + 16 j), so a warp's shared-memory reads are conflict-free broadcasts.
// No tensor cores: fp32 FMA only (a TF32 path is future work, see README "CUDA").
#pragma once

#include "common.cuh"

namespace cnncore::cuda {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kTileThreads = 256;

template <class LoadA, class LoadB, class Store>
__global__ void __launch_bounds__(kTileThreads)
gemm_tile_kernel(int64_t M, int64_t N, int64_t K, LoadA load_a, LoadB load_b, Store store) {
  __shared__ float As[kTileK][kTileM + 1];
  __shared__ float Bs[kTileK][kTileN + 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int g = blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
    // A: k varies fastest across threads (weights are contiguous in k); B: n fastest (pixels).
    for (int e = tid; e < kTileM * kTileK; e += kTileThreads) {
      const int mm = e / kTileK, kk = e % kTileK;
      const int64_t m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < M && k < K) ? load_a(g, m, k) : 0.0f;
    }
    for (int e = tid; e < kTileN * kTileK; e += kTileThreads) {
      const int kk = e / kTileN, nn = e % kTileN;
      const int64_t n = n0 + nn, k = k0 + kk;
      Bs[kk][nn] = (n < N && k < K) ? load_b(g, k, n) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) store(g, m, n, acc[i][j]);
    }
}

// Launches over groups x ceil(M/64) x ceil(N/64) blocks; nothing when the product is empty.
template <class LoadA, class LoadB, class Store>
void gemm_tiles(int64_t groups, int64_t M, int64_t N, int64_t K, LoadA a, LoadB b, Store s,
                const char* op) {
  if (M <= 0 || N <= 0 || groups <= 0) return;
  const int64_t gx = (N + kTileN - 1) / kTileN, gy = (M + kTileM - 1) / kTileM;
  CNNCORE_CHECK_VALUE(gy <= 65535 && groups <= 65535 && gx <= 2147483647LL, op,
                      ": the product is too large for one CUDA launch (", M, " x ", N, ")");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                  static_cast<unsigned>(groups));
  gemm_tile_kernel<<<grid, kTileThreads>>>(M, N, K, a, b, s);
  check_launch(op);
}

}  // namespace cnncore::cuda
