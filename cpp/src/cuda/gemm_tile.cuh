// One shared-memory tiled GEMM for every matrix product the backend does:
// C[m, n] = sum_k A(m, k) * B(k, n), with A, B given as loaders and the result handed to a store
// functor. Linear layers pass plain strided loaders; convolutions pass implicit-im2col loaders (the
// column matrix is never built), so conv forward, backward-input and backward-weight are three
// loader pairs over one kernel. blockIdx.z is the group (times the split-K slice, see
// gemm_tiles): loaders get the group, the store gets blockIdx.z.
//
// A loader L (for A the "row" index i is m, for B it is n):
//   static constexpr bool kFastK;  // memory runs along k (else along the row index)
//   static constexpr bool kVec;    // has at4(); `vec4` (run time) says whether it may be used
//   struct Row; Row row(int g, int64_t i) const;   // per-row state, computed once per kernel
//   struct Kx;  Kx kx(int g, int64_t k) const;     // per-k state, computed once per k tile
//   float at(const Row&, const Kx&) const;          // the element, only called in range
//   float4 at4(const Row&, const Kx&) const;        // 4 consecutive elements along the fast
//                                                   // index from (row, k); only called with all 4
//                                                   // in range and the first a multiple of 4
// The kernel keeps every load in range (M, N, K tails are zero-filled in shared memory) and every
// store in range; loaders never see an out-of-range index.
//
// Two block tiles, 256 threads each, both double-buffered in shared memory (one __syncthreads per
// k tile: the next tile is fetched into registers while the current one is multiplied):
//   128 x 128 x 8: thread (ty, tx) owns the 8 x 8 outputs rows {ty*4 + [0,4), 64 + ty*4 + [0,4)},
//                  columns likewise with tx (float4 shared-memory reads, conflict-free);
//   64 x 64 x 16:  4 x 4 outputs, rows ty*4 + [0,4); for products too small to fill the GPU.
// Each block loads 4 elements of A and 4 of B per k tile per thread: along k (kFastK) thread t
// takes row t / (BK/4) and k (t % (BK/4))*4 + [0,4), else k t / (BR/4) and rows (t % (BR/4))*4 +
// [0,4), so a warp's loads run along the memory's fast direction; with float4 when the loader
// allows it (row stride a multiple of 4, base 16-byte aligned), scalar otherwise.
//
// Math: fp32 FMA, each output accumulated in k order (0, 1, ..., K-1). With TF32 allowed
// (cnncore.backends, see README "CUDA") and a device of compute capability >= 8.0, the same tiles
// run on tensor cores instead: nvcuda::wmma m16n16k8 with precision::tf32 (inputs rounded to TF32
// with __float_to_tf32 when they are put in shared memory, fp32 accumulation); 8 warps in 2 x 4,
// each owning a (BM/2) x (BN/4) sub-tile. The tensor-core code is only compiled for sm_80 and up;
// a pre-Ampere cubin holds the fp32 body under the TF32 kernel's name, and the host never picks it
// on such a device anyway.
#pragma once

#include <mma.h>

#include <algorithm>
#include <cstdint>

#include "common.cuh"

namespace cnncore::cuda {

// a / b for a >= 0, b > 0: 32-bit division when both fit (64-bit division is emulated, slow).
__device__ __forceinline__ int64_t udiv(int64_t a, int64_t b) {
  if (((a | b) >> 31) == 0)
    return static_cast<int64_t>(static_cast<uint32_t>(a) / static_cast<uint32_t>(b));
  return a / b;
}

__device__ __forceinline__ float tf32_round(float v) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  return nvcuda::wmma::__float_to_tf32(v);
#else
  return v;
#endif
}

// True when p is 16-byte aligned (float4 loads).
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- plain strided loaders ------------------------------------------------------------------
// element(g, i, k) = p[(g * group_rows + i) * ld + k]: runs along k.
struct KContig {
  static constexpr bool kFastK = true, kVec = true;
  const float* p;
  int64_t ld, group_rows;
  bool vec4;
  KContig(const float* p_, int64_t ld_, int64_t group_rows_ = 0)
      : p(p_), ld(ld_), group_rows(group_rows_), vec4(ld_ % 4 == 0 && aligned16(p_)) {}
  struct Row { int64_t off; };
  struct Kx { int64_t k; };
  __device__ Row row(int g, int64_t i) const { return {(g * group_rows + i) * ld}; }
  __device__ Kx kx(int, int64_t k) const { return {k}; }
  __device__ float at(const Row& r, const Kx& x) const { return p[r.off + x.k]; }
  __device__ float4 at4(const Row& r, const Kx& x) const {
    return *reinterpret_cast<const float4*>(p + r.off + x.k);
  }
};
// element(i, k) = p[k * ld + i]: runs along the row index (groups unused).
struct RowContig {
  static constexpr bool kFastK = false, kVec = true;
  const float* p;
  int64_t ld;
  bool vec4;
  RowContig(const float* p_, int64_t ld_) : p(p_), ld(ld_), vec4(ld_ % 4 == 0 && aligned16(p_)) {}
  struct Row { int64_t i; };
  struct Kx { int64_t off; };
  __device__ Row row(int, int64_t i) const { return {i}; }
  __device__ Kx kx(int, int64_t k) const { return {k * ld}; }
  __device__ float at(const Row& r, const Kx& x) const { return p[x.off + r.i]; }
  __device__ float4 at4(const Row& r, const Kx& x) const {
    return *reinterpret_cast<const float4*>(p + x.off + r.i);
  }
};

namespace gemm_detail {

constexpr int kGemmThreads = 256;

// One operand's share of a k tile: 4 elements per thread, fetched from global memory into
// registers, then stored into shared memory S[BK][BR + 4] (the + 4 keeps rows 16-byte aligned and
// spreads the k-direction stores over the banks).
template <class L, int BR, int BK>
struct Operand {
  static_assert(BR * BK == 4 * kGemmThreads, "4 elements per thread");
  static constexpr bool kFastK = L::kFastK;
  static constexpr int kRows = kFastK ? 1 : 4;
  typename L::Row rows[kRows];
  bool row_ok[kRows];
  int r_local, kq;
  bool all_rows_ok;
  float v[4];

  __device__ void init(const L& l, int g, int64_t r0, int64_t R, int tid) {
    if (kFastK) {
      r_local = tid / (BK / 4);
      kq = (tid % (BK / 4)) * 4;
    } else {
      kq = tid / (BR / 4);
      r_local = (tid % (BR / 4)) * 4;
    }
    all_rows_ok = true;
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const int64_t r = r0 + r_local + j;
      row_ok[j] = r < R;
      all_rows_ok = all_rows_ok && row_ok[j];
      if (row_ok[j]) rows[j] = l.row(g, r);
    }
  }

  __device__ void fetch(const L& l, int g, int64_t k0, int64_t K) {
    const int64_t k = k0 + kq;
    if (kFastK) {
      if (!row_ok[0]) {
#pragma unroll
        for (int j = 0; j < 4; ++j) v[j] = 0.0f;
        return;
      }
      if constexpr (L::kVec) {
        if (l.vec4 && k + 3 < K) {
          const float4 q = l.at4(rows[0], l.kx(g, k));
          v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
          return;
        }
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) v[j] = k + j < K ? l.at(rows[0], l.kx(g, k + j)) : 0.0f;
    } else {
      if (k >= K) {
#pragma unroll
        for (int j = 0; j < 4; ++j) v[j] = 0.0f;
        return;
      }
      const typename L::Kx x = l.kx(g, k);
      if constexpr (L::kVec) {
        if (l.vec4 && all_rows_ok) {
          const float4 q = l.at4(rows[0], x);
          v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
          return;
        }
      }
#pragma unroll
      for (int j = 0; j < kRows; ++j) v[j] = row_ok[j] ? l.at(rows[j], x) : 0.0f;
    }
  }

  template <bool Tf32>
  __device__ void store(float (*S)[BR + 4]) const {
    float w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) w[j] = Tf32 ? tf32_round(v[j]) : v[j];
    if (kFastK) {
#pragma unroll
      for (int j = 0; j < 4; ++j) S[kq + j][r_local] = w[j];
    } else {
      *reinterpret_cast<float4*>(&S[kq][r_local]) = make_float4(w[0], w[1], w[2], w[3]);
    }
  }
};

// The shared pipeline: fetch tile 0, then for every tile t multiply tile t from buffer t & 1
// while tile t + 1 travels through registers into the other buffer. Buffer t & 1 ^ 1 was last
// read in iteration t - 1, which every thread finished before the barrier ending it, and the
// barrier ending iteration t publishes the new tile before anyone reads it.
// The depth range [kbeg, kend) is this block's: all of K, or its split-K slice (kbeg a multiple
// of BK, so float4 alignment holds); loads see no k outside it.
template <int BM, int BN, int BK, bool Tf32, class LA, class LB, class Mul>
__device__ __forceinline__ void pipeline(int64_t M, int64_t N, int g, int64_t kbeg, int64_t kend,
                                         const LA& la, const LB& lb, float (*As)[BK][BM + 4],
                                         float (*Bs)[BK][BN + 4], Mul mul) {
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  Operand<LA, BM, BK> a;
  Operand<LB, BN, BK> b;
  a.init(la, g, m0, M, tid);
  b.init(lb, g, n0, N, tid);
  const int64_t tiles = kend > kbeg ? (kend - kbeg + BK - 1) / BK : 0;
  if (tiles <= 0) return;
  a.fetch(la, g, kbeg, kend);
  b.fetch(lb, g, kbeg, kend);
  a.template store<Tf32>(As[0]);
  b.template store<Tf32>(Bs[0]);
  __syncthreads();
  for (int64_t t = 0; t < tiles; ++t) {
    const int cur = static_cast<int>(t & 1);
    const bool more = t + 1 < tiles;
    if (more) {
      a.fetch(la, g, kbeg + (t + 1) * BK, kend);
      b.fetch(lb, g, kbeg + (t + 1) * BK, kend);
    }
    mul(As[cur], Bs[cur]);
    if (more) {
      a.template store<Tf32>(As[cur ^ 1]);
      b.template store<Tf32>(Bs[cur ^ 1]);
    }
    __syncthreads();
  }
}

template <int BM, int BN, int BK, class LA, class LB, class St>
__device__ __forceinline__ void fp32_body(int64_t M, int64_t N, int64_t K, int groups,
                                          int64_t k_chunk, const LA& la, const LB& lb,
                                          const St& st) {
  static_assert(BM % 64 == 0 && BN % 64 == 0, "tile shape");
  constexpr int TM = BM / 16, TN = BN / 16;  // outputs per thread in each direction
  __shared__ __align__(32) float As[2][BK][BM + 4];
  __shared__ __align__(32) float Bs[2][BK][BN + 4];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  // blockIdx.z = split * groups + g; the store gets blockIdx.z (g itself without split-K).
  const int z = blockIdx.z, g = z % groups;
  const int64_t kbeg = (z / groups) * k_chunk;
  const int64_t kend = kbeg + k_chunk < K ? kbeg + k_chunk : K;
  pipeline<BM, BN, BK, false>(M, N, g, kbeg, kend, la, lb, As, Bs,
                              [&](float (*A)[BM + 4], float (*B)[BN + 4]) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float ra[TM], rb[TN];
#pragma unroll
      for (int c = 0; c < TM / 4; ++c) {
        const float4 q = *reinterpret_cast<const float4*>(&A[kk][c * 64 + ty * 4]);
        ra[c * 4] = q.x, ra[c * 4 + 1] = q.y, ra[c * 4 + 2] = q.z, ra[c * 4 + 3] = q.w;
      }
#pragma unroll
      for (int c = 0; c < TN / 4; ++c) {
        const float4 q = *reinterpret_cast<const float4*>(&B[kk][c * 64 + tx * 4]);
        rb[c * 4] = q.x, rb[c * 4 + 1] = q.y, rb[c * 4 + 2] = q.z, rb[c * 4 + 3] = q.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
  });
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t m = m0 + (i / 4) * 64 + ty * 4 + i % 4;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t n = n0 + (j / 4) * 64 + tx * 4 + j % 4;
      if (n < N) st(z, m, n, acc[i][j]);
    }
  }
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
template <int BM, int BN, int BK, class LA, class LB, class St>
__device__ __forceinline__ void tf32_body(int64_t M, int64_t N, int64_t K, int groups,
                                          int64_t k_chunk, const LA& la, const LB& lb,
                                          const St& st) {
  namespace wmma = nvcuda::wmma;
  constexpr int WM = BM / 2, WN = BN / 4;    // warp tile (8 warps as 2 x 4)
  constexpr int FM = WM / 16, FN = WN / 16;  // 16 x 16 accumulator fragments per warp
  static_assert(FM >= 1 && FN >= 1 && BK % 8 == 0, "tile shape");
  // load/store_matrix_sync want 32-byte aligned pointers and ldm a multiple of 4: row strides
  // are (BM + 4) * 4 bytes, fragment offsets multiples of 16 floats, k steps multiples of 8 rows,
  // so with BM + 4 a multiple of 4 every fragment pointer is a multiple of 32 bytes.
  static_assert((BM + 4) % 4 == 0 && (BN + 4) % 4 == 0, "ldm");
  __shared__ __align__(32) float As[2][BK][BM + 4];
  __shared__ __align__(32) float Bs[2][BK][BN + 4];
  __shared__ __align__(32) float Cs[kGemmThreads / 32][16 * 16];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / 4, wn = warp % 4;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  const int z = blockIdx.z, g = z % groups;
  const int64_t kbeg = (z / groups) * k_chunk;
  const int64_t kend = kbeg + k_chunk < K ? kbeg + k_chunk : K;
  pipeline<BM, BN, BK, true>(M, N, g, kbeg, kend, la, lb, As, Bs,
                             [&](float (*A)[BM + 4], float (*B)[BN + 4]) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      // A(m, k) sits at A[k][m]: column-major with ldm BM + 4; B(k, n) at B[k][n]: row-major.
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(fa[i], &A[kk][wm * WM + i * 16], BM + 4);
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(fb[j], &B[kk][wn * WN + j * 16], BN + 4);
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
  });
  // The accumulator layout is opaque: each warp puts one fragment at a time into its own 16 x 16
  // scratch and its 32 lanes hand the in-range entries to the store (rows of 16 consecutive n).
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM + wm * WM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN + wn * WN;
  float* scratch = Cs[warp];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int64_t m = m0 + i * 16 + e / 16, n = n0 + j * 16 + e % 16;
        if (m < M && n < N) st(z, m, n, scratch[e]);
      }
      __syncwarp();  // every lane has read the scratch before the next fragment overwrites it
    }
}
#endif

template <int BM, int BN, int BK, class LA, class LB, class St>
__global__ void __launch_bounds__(kGemmThreads)
fp32_kernel(int64_t M, int64_t N, int64_t K, int groups, int64_t k_chunk, LA la, LB lb, St st) {
  fp32_body<BM, BN, BK>(M, N, K, groups, k_chunk, la, lb, st);
}

template <int BM, int BN, int BK, class LA, class LB, class St>
__global__ void __launch_bounds__(kGemmThreads)
tf32_kernel(int64_t M, int64_t N, int64_t K, int groups, int64_t k_chunk, LA la, LB lb, St st) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  fp32_body<BM, BN, BK>(M, N, K, groups, k_chunk, la, lb, st);  // never chosen before Ampere
#else
  tf32_body<BM, BN, BK>(M, N, K, groups, k_chunk, la, lb, st);
#endif
}

// Split-K: slice z = split * groups + g of the partial products goes to ws[z][m][n] ...
struct SliceStore {
  float* ws;
  int64_t M, N;
  __device__ void operator()(int z, int64_t m, int64_t n, float v) const {
    ws[(z * M + m) * N + n] = v;
  }
};
// ... and one thread per output adds the slices in split order (deterministic) for the op's store.
template <class St>
__global__ void split_k_reduce(const float* ws, int splits, int groups, int64_t M, int64_t N,
                               St st) {
  const int64_t MN = M * N;
  CNNCORE_CUDA_LOOP(i, groups * MN) {
    const int64_t g = i / MN, mn = i - g * MN, m = mn / N, n = mn - m * N;
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += ws[(s * groups + g) * MN + mn];
    st(static_cast<int>(g), m, n, sum);
  }
}

template <int BM, int BN, int BK, class LA, class LB, class St>
void launch(bool tf32, dim3 grid, int64_t M, int64_t N, int64_t K, int groups, int64_t k_chunk,
            const LA& a, const LB& b, const St& s) {
  if (tf32)
    tf32_kernel<BM, BN, BK><<<grid, kGemmThreads>>>(M, N, K, groups, k_chunk, a, b, s);
  else
    fp32_kernel<BM, BN, BK><<<grid, kGemmThreads>>>(M, N, K, groups, k_chunk, a, b, s);
}

}  // namespace gemm_detail

// The current device's facts the launcher needs (cudaDeviceGetAttribute; gemm_config.cu).
struct GemmDevice {
  int sm_count = 1;
  int cc_major = 0;
};
GemmDevice gemm_device(const char* op);

// Launches over groups x ceil(M/BM) x ceil(N/BN) blocks on the current device; nothing when the
// product is empty. allow_tf32: the op's cnncore.backends switch; TF32 runs only where the device
// has it (compute capability >= 8.0), fp32 FMA otherwise. When even the 64 x 64 grid leaves SMs
// idle and K is deep (>= 2 x kSplitMinK), K is cut into up to 16 slices of at least kSplitMinK
// whose partial products go to a workspace and are summed in slice order by split_k_reduce.
constexpr int64_t kSplitMinK = 512;
template <class LoadA, class LoadB, class Store>
void gemm_tiles(int64_t groups, int64_t M, int64_t N, int64_t K, LoadA a, LoadB b, Store s,
                const char* op, bool allow_tf32) {
  using namespace gemm_detail;
  if (M <= 0 || N <= 0 || groups <= 0) return;
  const GemmDevice dev = gemm_device(op);
  const bool tf32 = allow_tf32 && dev.cc_major >= 8;
  // The big tile when both sides fill it and there are enough blocks for every SM.
  const int64_t big_blocks = ((M + 127) / 128) * ((N + 127) / 128) * groups;
  const bool big = M > 64 && N > 64 && big_blocks >= dev.sm_count;
  const int tile = big ? 128 : 64;
  const int64_t gx = (N + tile - 1) / tile, gy = (M + tile - 1) / tile;
  CNNCORE_CHECK_VALUE(gy <= 65535 && groups <= 65535 && gx <= 2147483647LL, op,
                      ": the product is too large for one CUDA launch (", M, " x ", N, ")");
  int64_t splits = 1;
  const int64_t blocks = gx * gy * groups;
  if (!big && blocks < dev.sm_count && K >= 2 * kSplitMinK) {
    splits = std::min<int64_t>({(dev.sm_count + blocks - 1) / blocks, K / kSplitMinK, 16,
                                65535 / groups});
  }
  if (splits <= 1) {
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                    static_cast<unsigned>(groups));
    if (big)
      launch<128, 128, 8>(tf32, grid, M, N, K, static_cast<int>(groups), K, a, b, s);
    else
      launch<64, 64, 16>(tf32, grid, M, N, K, static_cast<int>(groups), K, a, b, s);
    check_launch(op);
    return;
  }
  // Slices of k_chunk (a multiple of the 64 x 64 tile's depth 16); no slice is empty.
  const int64_t k_chunk = ((K + splits - 1) / splits + 15) / 16 * 16;
  splits = (K + k_chunk - 1) / k_chunk;
  int device = 0;
  check_cuda(cudaGetDevice(&device), op, "cudaGetDevice");
  Tensor ws = Tensor::empty({splits * groups * M * N}, DType::Float32,
                            Device{DeviceType::CUDA, device});
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                  static_cast<unsigned>(splits * groups));
  launch<64, 64, 16>(tf32, grid, M, N, K, static_cast<int>(groups), k_chunk, a, b,
                     SliceStore{ws.device_data<float>(), M, N});
  check_launch(op);
  split_k_reduce<<<grid_for(groups * M * N), kThreads>>>(ws.device_data<float>(),
                                                          static_cast<int>(splits),
                                                          static_cast<int>(groups), M, N, s);
  check_launch(op);
}

}  // namespace cnncore::cuda
