// Reference twins of cnncore/ops/linalg.hpp: same signatures, naive loops with double
// accumulators, no SIMD, no threads, nothing from the packed GEMM.
#pragma once

#include <optional>

#include "cnncore/tensor.hpp"

namespace cnncore::reference {
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
Tensor gemm(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false,
            float alpha = 1.0f, float beta = 0.0f, const std::optional<Tensor>& c = std::nullopt);
Tensor linear_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b);
Tensor linear_backward_input(const Tensor& dy, const Tensor& w);
Tensor linear_backward_weight(const Tensor& dy, const Tensor& x);
Tensor linear_backward_bias(const Tensor& dy);
Tensor matmul(const Tensor& a, const Tensor& b);
}  // namespace cnncore::reference
