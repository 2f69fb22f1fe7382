// Elementwise arithmetic with broadcasting, reductions and shape ops (cat, stack, ...).
//
// Every function here accepts any strided layout (views from permute/expand/narrow, numpy arrays
// with odd strides) and blocked NCHWc tensors (converted at entry), and returns a fresh
// contiguous NCHW tensor unless it says otherwise. Elementwise ops and reductions take float32;
// cat, stack and contiguous also take int64.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore {

// Eq..Ge compare and give 1.0f / 0.0f (float32); they have no gradient.
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Abs, Square, Reciprocal, Sign };

// "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge".
CNNCORE_API const char* binary_op_name(BinaryOp op);
CNNCORE_API BinaryOp binary_op_from_name(const std::string& name);  // ValueError if unknown
// "neg", "exp", "log", "sqrt", "abs", "square", "reciprocal", "sign".
CNNCORE_API const char* unary_op_name(UnaryOp op);
CNNCORE_API UnaryOp unary_op_from_name(const std::string& name);  // ValueError if unknown

// NumPy/PyTorch broadcasting of two shapes: aligned from the right, each pair equal or one of
// them 1. ValueError "<op>: shapes (2, 3) and (4,) cannot be broadcast" when they clash.
CNNCORE_API Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

// y = a (op) b with broadcasting. a, b: float32, shapes broadcastable; y: the broadcast shape,
// new. maximum/minimum propagate NaN; pow is powf; comparisons give 1/0.
CNNCORE_API Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// y = a (op) s, or s (op) a when scalar_first. a: float32 any shape; y: a's shape, new.
// The scalar is rounded to float32 first, as PyTorch does for a float32 tensor.
CNNCORE_API Tensor binary_scalar(BinaryOp op, const Tensor& a, double scalar, bool scalar_first);
// y = op(a). a: float32 any shape; y: same shape, new. sign(0) = 0, sign(nan) = nan.
CNNCORE_API Tensor unary(UnaryOp op, const Tensor& a);
// Accumulates in place: a += alpha * b. a: float32, contiguous (ValueError otherwise);
// b: float32, broadcastable to a's shape. Used by gradient accumulation.
CNNCORE_API void add_(Tensor& a, const Tensor& b, double alpha = 1.0);

// Sum / mean over dims (empty = all dims; negative dims count from the end; repeats are an
// error). x: float32 (d0, ..., dn-1); y: x's shape without the reduced dims (keepdim: with them
// as 1), new. Accumulates in double (float lanes over short blocks), so long sums stay accurate;
// the summation order depends on the shape only, never on the thread count.
// The mean of zero elements is nan, as in PyTorch.
CNNCORE_API Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
CNNCORE_API Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
// The backward of broadcasting: sums g (broadcast shape) down to `shape`, which must broadcast
// to g's shape. Returns a tensor of `shape` (g itself, reshaped, when nothing needs summing).
CNNCORE_API Tensor sum_to_shape(const Tensor& g, const Shape& shape);
// Max along dim: (values float32, indices int64), shapes as sum over {dim}. The first index
// wins ties; nan wins over numbers (as torch.max). ValueError when dim has size 0.
CNNCORE_API std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t dim, bool keepdim);
// Indices (int64) of max_dim.
CNNCORE_API Tensor argmax(const Tensor& x, int64_t dim, bool keepdim);

// Joins tensors (same dtype, same rank, same sizes except along dim) along dim; new tensor.
// As in PyTorch, 1-D tensors of shape (0,) are skipped whatever the others' rank.
CNNCORE_API Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
// Joins same-shape tensors along a new dim (0 <= dim <= rank); new tensor.
CNNCORE_API Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// A contiguous NCHW copy of any view (x itself when already contiguous).
CNNCORE_API Tensor contiguous(const Tensor& x);

}  // namespace cnncore
