// cnncore::sgemm: argument checks and the degenerate cases, then the per-ISA packed driver.
#include "cpu/gemm.hpp"

#include <algorithm>

#include "cnncore/ops/linalg.hpp"
#include "parallel.hpp"

namespace cnncore {

GemmBlocking active_gemm_blocking() { CNNCORE_ISA_DISPATCH(gemm_blocking()); }

namespace {
void check_ld(int64_t ld, int64_t cols, const char* name, const char* what) {
  CNNCORE_CHECK_VALUE(ld >= std::max<int64_t>(1, cols), "sgemm: ", name, " must be >= ",
                      std::max<int64_t>(1, cols), " (", what, "), but got ", ld);
}

// C = beta * C, where beta == 0 overwrites (NaN in C ignored), as BLAS does when K == 0 or
// alpha == 0.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.0f) return;
  parallel_for(0, M, std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(N, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t i = b; i < e; ++i) {
                   float* c = C + i * ldc;
                   if (beta == 0.0f)
                     std::fill(c, c + N, 0.0f);
                   else
                     for (int64_t j = 0; j < N; ++j) c[j] *= beta;
                 }
               });
}
}  // namespace

namespace {
// Shapes and leading dimensions; the rest of the contract is sgemm's doc comment.
void check_args(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                int64_t lda, const float* B, int64_t ldb, const float* C, int64_t ldc) {
  CNNCORE_CHECK_VALUE(M >= 0 && N >= 0 && K >= 0, "sgemm: M, N, K must be >= 0, but got M=", M,
                      ", N=", N, ", K=", K);
  check_ld(lda, trans_a ? M : K, "lda", trans_a ? "A is K x M, trans_a=true" : "A is M x K");
  check_ld(ldb, trans_b ? K : N, "ldb", trans_b ? "B is N x K, trans_b=true" : "B is K x N");
  check_ld(ldc, N, "ldc", "C is M x N");
  if (M == 0 || N == 0) return;
  CNNCORE_CHECK_VALUE(C != nullptr, "sgemm: C must not be null");
  if (K > 0) CNNCORE_CHECK_VALUE(A != nullptr && B != nullptr, "sgemm: A and B must not be null");
}

// sgemm after check_args.
void sgemm_checked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  CNNCORE_ISA_CALL(
      sgemm_driver(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr));
}
}  // namespace

void sgemm_epilogue(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                    int64_t lda, const float* B, int64_t ldb, const GemmEpilogue& epi, float* C,
                    int64_t ldc) {
  check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  if (epi.residual) check_ld(epi.ldr, N, "ldr", "the residual is M x N");
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) {
      float* c = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) {
        float v = epi.bias ? epi.bias[i] : 0.0f;
        if (epi.residual) v += epi.residual[i * epi.ldr + j];
        // hardtanh's min(hi, max(lo, v)) of the vector path: NaN comes through.
        if (epi.clamp) v = epi.hi < v ? epi.hi : (epi.lo > v ? epi.lo : v);
        c[j] = v;
      }
    }
    return;
  }
  CNNCORE_ISA_CALL(
      sgemm_driver(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, &epi));
}

void sgemm_bias_rows(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                     int64_t lda, const float* B, int64_t ldb, const float* bias, float* C,
                     int64_t ldc) {
  CNNCORE_CHECK_VALUE(bias != nullptr, "sgemm_bias_rows: bias must not be null");
  GemmEpilogue epi;
  epi.bias = bias;
  sgemm_epilogue(trans_a, trans_b, M, N, K, A, lda, B, ldb, epi, C, ldc);
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  sgemm_checked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                           const float* A, int64_t lda, int64_t stride_a, const float* B,
                           int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                           int64_t stride_c, int64_t batch) {
  CNNCORE_CHECK_VALUE(batch >= 0, "sgemm_strided_batched: batch must be >= 0, but got ", batch);
  if (batch == 0) return;
  check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  auto one = [&](int64_t i) {
    sgemm_checked(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb,
                  beta, C + i * stride_c, ldc);
  };
  if (batch > 1 && double(M) * double(N) * double(K) < double(kGemmBatchParallelFlops)) {
    // Inside the region each product runs serially (parallel_region does not nest).
    parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}

}  // namespace cnncore
