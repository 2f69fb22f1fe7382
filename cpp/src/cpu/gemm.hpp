// Internal SGEMM interface: the blocking table and the per-ISA drivers behind cnncore::sgemm.
//
// Scheme (Goto / van de Geijn, "Anatomy of High-Performance Matrix Multiplication"):
//   for jc in N step NC            B block  (KC x NC, cut to kGemmPackedBBytes) in L2
//     for pc in K step KC          packed B: NR-column panels, zero-padded to NR
//       for ic in M step MC        packed A: MR-row panels (MC x KC) lives in L2
//         for jr in NC step NR     one B micro-panel (KC x NR) stays in L1
//           for ir in MC step MR   micro-kernel: MR x NR accumulators in registers
// Variations on that nest, chosen per call in gemm_kernels.inc:
//   - a row-major B is packed a whole block (kGemmPackedBBytes, in L2) at a time, row by row, so
//     its rows stream from memory; the A panels then sweep it;
//   - a transposed B whose rows of one thread fit one A block: each B panel is packed just before
//     its only use (L1); if all of that A (every depth block) fits kGemmResidentABytes, it is
//     packed once and each B panel goes through the full depth, so its C tile stays in L1;
//   - an optional bias per row of C is added in the micro-kernel's store (sgemm_bias_rows);
//   - M == 1 or N == 1: vectorized GEMV, no packing;
//   - edge tiles run a micro-kernel compiled for their own rows and vector count (templates over
//     1..MR rows and 1..NR/W vectors, masked last vector), so a ragged M or N computes what it
//     stores rather than a zero-padded MR x NR tile;
//   - C^T = op(B)^T op(A)^T when that pads the micro-tiles much less (N = 49: 7x7 convs), with
//     the tiles stored transposed.
// Threads split C into a grid of independent blocks (each thread packs what it reads), so no
// barrier is needed and both cores work even when M is one micro-panel tall.
#pragma once

#include <cstdint>

#include "cpu/dispatch.hpp"

namespace cnncore {

// Micro-tile MR x NR (registers), cache blocks MC (rows of A in L2), KC (depth, one B micro-panel
// in L1), NC (columns of B; at most kGemmPackedBBytes per block). MC must be a multiple of MR and
// NC of NR.
struct GemmBlocking {
  int mr, nr, mc, kc, nc;
};

// The one table of blocking constants, indexed by CNNCORE_KERNEL_ISA's path (baseline, avx2,
// avx512). Sizes for: SSE2 16 xmm registers; AVX2 16 ymm (6x16 = 12 accumulators); AVX-512 32 zmm
// (14x32 = 28 accumulators). KC * NR * 4 bytes stays under half of a 32 KiB L1.
inline constexpr GemmBlocking kGemmBlocking[3] = {
    /* baseline */ {4, 8, 128, 256, 2048},
    /* avx2     */ {6, 16, 144, 256, 3072},
    /* avx512   */ {14, 32, 196, 192, 3072},
};

// The packed A of one thread may stay whole (all depth blocks) when it is at most this big: half
// of the smallest L2 we target (512 KiB per core on AMD Zen 2/3, 1-2 MiB on Xeons).
inline constexpr int64_t kGemmResidentABytes = int64_t{256} << 10;

// A packed block of B (KC x NC) is cut to this many bytes so that it stays in L2 (1-2 MiB per
// core on the machines we target) while the A panels sweep it.
inline constexpr int64_t kGemmPackedBBytes = int64_t{512} << 10;

// Below this many multiply-adds one thread is faster than waking the pool.
inline constexpr int64_t kGemmMinFlopsPerThread = int64_t{1} << 17;
// Batched products smaller than this run one per thread rather than each across all threads.
inline constexpr int64_t kGemmBatchParallelFlops = int64_t{1} << 20;

// What the micro-kernel's store adds to a product (a convolution's epilogue), so C is written
// once: C = min(hi, max(lo, alpha * op(A) @ op(B) + bias[i] + beta * C + residual)).
struct GemmEpilogue {
  const float* bias = nullptr;      // M values (row i), or none
  const float* residual = nullptr;  // M x N, row stride ldr, or none
  int64_t ldr = 0;
  bool clamp = false;  // then min(hi, max(lo, v)), hardtanh's order (NaN comes through)
  float lo = 0.0f, hi = 0.0f;
  bool any_after() const { return residual || clamp; }
};

CNNCORE_DECLARE_ISA_KERNELS(
    // Same contract as cnncore::sgemm (arguments already validated, M, N, K > 0, alpha != 0),
    // with the epilogue epi (nullable) applied in the store.
    void sgemm_driver(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc, const GemmEpilogue* epi);
    GemmBlocking gemm_blocking();)

// `batch` independent products C_i = alpha * op(A_i) @ op(B_i) + beta * C_i with A_i = A + i *
// stride_a, B_i = B + i * stride_b, C_i = C + i * stride_c (strides in elements; 0 shares an
// operand, e.g. one weight for every group or image). Same shapes and rules as cnncore::sgemm,
// checked once. Small products run one per thread; large ones one after another, each threaded.
// The C_i must not overlap.
void sgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float* A, int64_t lda, int64_t stride_a, const float* B,
                           int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                           int64_t stride_c, int64_t batch);

// C (M x N, ldc) = op(A) @ op(B) + bias[i] on row i: a convolution's output with its bias added
// in the GEMM's epilogue, so C is written once and never read. Same rules as cnncore::sgemm; bias
// holds M values.
void sgemm_bias_rows(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                     int64_t lda, const float* B, int64_t ldb, const float* bias, float* C,
                     int64_t ldc);
// C (M x N, ldc) = the epilogue of op(A) @ op(B) (GemmEpilogue), in the same pass.
void sgemm_epilogue(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                    int64_t lda, const float* B, int64_t ldb, const GemmEpilogue& epi, float* C,
                    int64_t ldc);

// Blocking of the path active_isa() selects (for tests and benchmarks).
GemmBlocking active_gemm_blocking();

}  // namespace cnncore
