// Matrix products on the packed, cache-blocked SGEMM that the convolutions use too.
#pragma once

#include <optional>

#include "cnncore/tensor.hpp"

namespace cnncore {

// C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major, op = transpose when trans_*.
// op(A) is (M,K): A is (M,K) with row stride lda, or (K,M) when trans_a. op(B) is (K,N): B is (K,N)
// with row stride ldb, or (N,K) when trans_b. Overwrites C when beta == 0 (NaNs in C are ignored),
// otherwise accumulates onto beta * C. C must not overlap A or B. Threads over C blocks; serial
// when called inside a parallel region. ValueError on negative sizes or leading dimensions
// smaller than a row.
CNNCORE_API void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                       float* C, int64_t ldc);

// Tensor-level sgemm for tests and tools: a (M,K) or (K,M) when trans_a, b (K,N) or (N,K) when
// trans_b, c (M,N) or none (then beta is ignored) -> a new (M,N) tensor; c is not modified.
CNNCORE_API Tensor gemm(const Tensor& a, const Tensor& b, bool trans_a = false,
                        bool trans_b = false, float alpha = 1.0f, float beta = 0.0f,
                        const std::optional<Tensor>& c = std::nullopt);

// y = x @ w^T + b.  x (*, in), w (out, in), b (out) or none -> new y (*, out).
CNNCORE_API Tensor linear_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b);
// dx = dy @ w: dy (*, out), w (out, in) -> new dx (*, in).
CNNCORE_API Tensor linear_backward_input(const Tensor& dy, const Tensor& w);
// dw = dy^T @ x summed over all leading dims: dy (*, out), x (*, in) -> new dw (out, in).
CNNCORE_API Tensor linear_backward_weight(const Tensor& dy, const Tensor& x);
// db = dy summed over all leading dims: dy (*, out) -> new db (out).
CNNCORE_API Tensor linear_backward_bias(const Tensor& dy);

// torch.matmul semantics -> a new contiguous tensor: (K)@(K) -> (); (M,K)@(K) -> (M);
// (K)@(K,N) -> (N); (M,K)@(K,N) -> (M,N); batched (..., M, K) @ (..., K, N) -> (..., M, N) with
// the batch dims broadcast (a 1-D operand gains and then loses its matrix dim). Operands may be
// any strided view: transposed last two dims go to the GEMM as trans flags, not copies.
CNNCORE_API Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace cnncore
