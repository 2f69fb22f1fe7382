// Placeholder SGEMM (correct, unblocked); replaced by the packed, cache-blocked kernels.
#include <vector>

#include "cnncore/ops/linalg.hpp"
#include "parallel.hpp"

namespace cnncore {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  parallel_for(0, M, 4, [&](int64_t b, int64_t e) {
    std::vector<float> acc(static_cast<size_t>(N));
    for (int64_t i = b; i < e; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        if (trans_b)
          for (int64_t j = 0; j < N; ++j) acc[j] += a * B[j * ldb + k];
        else
          for (int64_t j = 0; j < N; ++j) acc[j] += a * B[k * ldb + j];
      }
      for (int64_t j = 0; j < N; ++j)
        C[i * ldc + j] = alpha * acc[j] + (beta == 0.0f ? 0.0f : beta * C[i * ldc + j]);
    }
  });
}

}  // namespace cnncore
