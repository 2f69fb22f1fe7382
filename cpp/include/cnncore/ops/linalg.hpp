// Matrix products on the packed, cache-blocked SGEMM that the convolutions use too.
#pragma once

#include <optional>

#include "cnncore/tensor.hpp"

namespace cnncore {

// C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major, op = transpose when trans_*.
// lda/ldb/ldc are row strides in elements. beta == 0 overwrites C (NaNs in C are ignored).
CNNCORE_API void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                       float* C, int64_t ldc);

// y = x @ w^T + b.  x (*, in), w (out, in), b (out) or none -> y (*, out).
CNNCORE_API Tensor linear_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b);
// dx = dy @ w  -> (*, in).
CNNCORE_API Tensor linear_backward_input(const Tensor& dy, const Tensor& w);
// dw = dy^T @ x (summed over all leading dims) -> (out, in).
CNNCORE_API Tensor linear_backward_weight(const Tensor& dy, const Tensor& x);
// db = dy summed over all leading dims -> (out).
CNNCORE_API Tensor linear_backward_bias(const Tensor& dy);

// torch.matmul semantics for 1-D and 2-D operands and batched (..., M, K) @ (..., K, N) with
// broadcasting of the batch dimensions.
CNNCORE_API Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace cnncore
