// Reference twins of cnncore/ops/tensor_ops.hpp: same signatures, plain loops over multi-indices,
// double accumulators, no SIMD, no threads.
#pragma once

#include <utility>
#include <vector>

#include "cnncore/ops/tensor_ops.hpp"

namespace cnncore::reference {
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary_scalar(BinaryOp op, const Tensor& a, double scalar, bool scalar_first);
Tensor unary(UnaryOp op, const Tensor& a);
void add_(Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor sum_to_shape(const Tensor& g, const Shape& shape);
std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t dim, bool keepdim);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
Tensor contiguous(const Tensor& x);
}  // namespace cnncore::reference
