// Elementwise arithmetic with broadcasting, reductions and shape ops (cat, stack, ...).
#pragma once

#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore {

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Abs, Square, Reciprocal, Sign };

// NumPy/PyTorch broadcasting of two shapes; ValueError names op and both shapes when they clash.
CNNCORE_API Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// out = a (op) b with broadcasting. float32.
CNNCORE_API Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// out = a (op) scalar, or scalar (op) a when scalar_first.
CNNCORE_API Tensor binary_scalar(BinaryOp op, const Tensor& a, double scalar, bool scalar_first);
CNNCORE_API Tensor unary(UnaryOp op, const Tensor& a);
// In place: a += alpha * b (same shape or b broadcast to a). Used by gradient accumulation.
CNNCORE_API void add_(Tensor& a, const Tensor& b, double alpha = 1.0);

// Sum / mean over dims (empty = all). keepdim as PyTorch.
CNNCORE_API Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
CNNCORE_API Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
// Sums a broadcast gradient back to `shape` (the backward of broadcasting).
CNNCORE_API Tensor sum_to_shape(const Tensor& g, const Shape& shape);
// (values, indices int64) of the max along dim.
CNNCORE_API std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t dim, bool keepdim);
CNNCORE_API Tensor argmax(const Tensor& x, int64_t dim, bool keepdim);

CNNCORE_API Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
CNNCORE_API Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);

}  // namespace cnncore
