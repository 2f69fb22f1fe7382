// Elementwise ops on CUDA: relu forward/backward, the broadcasting binary ops (add, sub, mul,
// div, pow, maximum, minimum and the comparisons, which give 1.0 / 0.0 as on the CPU), the same
// ops with a scalar on either side, the unary ops, add_ (in place, alpha) and cat (stack is cat
// of unsqueezed views). Broadcast inputs are expanded views (stride 0), read through their
// strides: no copies.
#include <cmath>

#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
__global__ void relu_kernel(const float* x, float* y, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) y[i] = (x[i] > 0.0f || x[i] != x[i]) ? x[i] : 0.0f;  // nan stays
}
__global__ void relu_backward_kernel(const float* g, const float* y, float* d, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) d[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

__device__ float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return powf(a, b);
    case BinaryOp::Maximum: return (a != a || b != b) ? NAN : fmaxf(a, b);  // NaN wins, as torch
    case BinaryOp::Minimum: return (a != a || b != b) ? NAN : fminf(a, b);
    case BinaryOp::Eq: return a == b ? 1.0f : 0.0f;
    case BinaryOp::Ne: return a != b ? 1.0f : 0.0f;
    case BinaryOp::Lt: return a < b ? 1.0f : 0.0f;
    case BinaryOp::Le: return a <= b ? 1.0f : 0.0f;
    case BinaryOp::Gt: return a > b ? 1.0f : 0.0f;
    case BinaryOp::Ge: return a >= b ? 1.0f : 0.0f;
  }
  return 0.0f;
}

__global__ void binary_kernel(BinaryOp op, const float* a, StridedLayout la, const float* b,
                              StridedLayout lb, float* y, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) y[i] = apply(op, a[strided_offset(la, i)], b[strided_offset(lb, i)]);
}

// One scalar operand: the CPU's special case x ** 2 = x * x (exact) included.
__global__ void binary_scalar_kernel(BinaryOp op, const float* a, StridedLayout la, bool contig,
                                     float s, bool scalar_first, float* y, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) {
    const float v = a[contig ? i : strided_offset(la, i)];
    if (!scalar_first && op == BinaryOp::Pow && s == 2.0f) y[i] = v * v;
    else y[i] = scalar_first ? apply(op, s, v) : apply(op, v, s);
  }
}

__device__ float apply_unary(UnaryOp op, float v) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Exp: return expf(v);
    case UnaryOp::Log: return logf(v);
    case UnaryOp::Sqrt: return sqrtf(v);
    case UnaryOp::Abs: return fabsf(v);
    case UnaryOp::Square: return v * v;
    case UnaryOp::Reciprocal: return 1.0f / v;
    case UnaryOp::Sign: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);  // keeps 0, -0, nan
  }
  return 0.0f;
}

__global__ void unary_kernel(UnaryOp op, const float* a, StridedLayout la, bool contig, float* y,
                             int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) y[i] = apply_unary(op, a[contig ? i : strided_offset(la, i)]);
}

// a (contiguous) += alpha * b (b expanded to a's shape); alpha == 1 is a plain add, as the CPU.
__global__ void add_inplace_kernel(float* a, const float* b, StridedLayout lb, bool contig,
                                   float alpha, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) {
    const float v = b[contig ? i : strided_offset(lb, i)];
    a[i] = alpha == 1.0f ? a[i] + v : a[i] + alpha * v;
  }
}

// One input of cat: rows of `row` elements (outer of them) into rows of `out_row` at column col0.
template <class T>
__global__ void cat_kernel(const T* src, T* dst, int64_t outer, int64_t row, int64_t out_row,
                           int64_t col0) {
  CNNCORE_CUDA_LOOP(i, outer * row) dst[(i / row) * out_row + col0 + i % row] = src[i];
}

Tensor unary_out(const Tensor& x, const char* op) {
  return Tensor::empty(x.shape(), DType::Float32, x.device());
}
}  // namespace

Tensor relu_forward(const Tensor& x_in) {
  const char* op = "relu";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous(), y = unary_out(x, op);
  if (const int64_t n = x.numel()) {
    relu_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(), n);
    check_launch(op);
  }
  return y;
}

Tensor relu_backward(const Tensor& dy_in, const Tensor& y_in) {
  const char* op = "relu_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"output", &y_in}});
  CNNCORE_CHECK_VALUE(dy_in.shape() == y_in.shape(), op, ": grad_output shape ",
                      shape_str(dy_in.shape()), " must match output shape ",
                      shape_str(y_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor g = dy_in.contiguous(), y = y_in.contiguous(), d = unary_out(g, op);
  if (const int64_t n = g.numel()) {
    relu_backward_kernel<<<grid_for(n), kThreads>>>(g.device_data<float>(), y.device_data<float>(),
                                                    d.device_data<float>(), n);
    check_launch(op);
  }
  return d;
}

Tensor binary(BinaryOp bop, const Tensor& a_in, const Tensor& b_in) {
  const char* op = binary_op_name(bop);
  const int dev = check_cuda_inputs(op, {{"input", &a_in}, {"other", &b_in}});
  const Shape os = broadcast_shapes(a_in.shape(), b_in.shape(), op);
  DeviceGuard guard(dev, op);
  Tensor a = a_in.expand(os), b = b_in.expand(os);
  Tensor y = Tensor::empty(os, DType::Float32, a.device());
  if (const int64_t n = y.numel()) {
    binary_kernel<<<grid_for(n), kThreads>>>(bop, a.device_data<float>(), layout_of(a, op),
                                             b.device_data<float>(), layout_of(b, op),
                                             y.device_data<float>(), n);
    check_launch(op);
  }
  return y;
}

Tensor binary_scalar(BinaryOp bop, const Tensor& a_in, double scalar, bool scalar_first) {
  const char* op = binary_op_name(bop);
  const int dev = check_cuda_inputs(op, {{"input", &a_in}});
  DeviceGuard guard(dev, op);
  Tensor y = Tensor::empty(a_in.shape(), DType::Float32, a_in.device());
  if (const int64_t n = y.numel()) {
    const bool contig = a_in.is_contiguous();
    binary_scalar_kernel<<<grid_for(n), kThreads>>>(
        bop, a_in.device_data<float>(), contig ? StridedLayout{} : layout_of(a_in, op), contig,
        static_cast<float>(scalar), scalar_first, y.device_data<float>(), n);
    check_launch(op);
  }
  return y;
}

Tensor unary(UnaryOp uop, const Tensor& a_in) {
  const char* op = unary_op_name(uop);
  const int dev = check_cuda_inputs(op, {{"input", &a_in}});
  DeviceGuard guard(dev, op);
  Tensor y = Tensor::empty(a_in.shape(), DType::Float32, a_in.device());
  if (const int64_t n = y.numel()) {
    const bool contig = a_in.is_contiguous();
    unary_kernel<<<grid_for(n), kThreads>>>(uop, a_in.device_data<float>(),
                                            contig ? StridedLayout{} : layout_of(a_in, op),
                                            contig, y.device_data<float>(), n);
    check_launch(op);
  }
  return y;
}

void add_(Tensor& a, const Tensor& b_in, double alpha) {
  const char* op = "add_";
  const int dev = check_cuda_inputs(op, {{"self", &a}, {"other", &b_in}});
  DeviceGuard guard(dev, op);
  const Tensor b = b_in.expand(a.shape());  // shapes checked by the CPU entry
  if (const int64_t n = a.numel()) {
    const bool contig = b.is_contiguous();
    add_inplace_kernel<<<grid_for(n), kThreads>>>(a.device_data<float>(), b.device_data<float>(),
                                                  contig ? StridedLayout{} : layout_of(b, op),
                                                  contig, static_cast<float>(alpha), n);
    check_launch(op);
  }
}

Tensor cat(const std::vector<Tensor>& parts, int64_t d, const Shape& out) {
  const char* op = "cat";
  int dev = -1;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& t = parts[i];
    const Tensor& t0 = parts[0];
    if (!t.is_cuda() || t.device().index != t0.device().index || !t0.is_cuda())
      throw Error(detail::concat(op, ": expected all tensors on the same device, but tensor 0 is "
                                 "on ", t0.device().str(), " and tensor ", i, " is on ",
                                 t.device().str()));
    dev = t.device().index;
  }
  DeviceGuard guard(dev, op);
  const DType dt = parts[0].dtype();
  Tensor y = Tensor::empty(out, dt, parts[0].device());
  if (y.numel() == 0) return y;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < static_cast<int64_t>(out.size()); ++k) {
    if (k < d) outer *= out[k];
    if (k > d) inner *= out[k];
  }
  const int64_t out_row = out[d] * inner;
  int64_t col0 = 0;
  for (const Tensor& t : parts) {
    const int64_t row = t.shape()[d] * inner;
    if (row > 0 && outer > 0) {
      const unsigned grid = grid_for(outer * row);
      if (dt == DType::Float32)
        cat_kernel<<<grid, kThreads>>>(t.device_data<float>(), y.device_data<float>(), outer, row,
                                       out_row, col0);
      else
        cat_kernel<<<grid, kThreads>>>(t.device_data<int64_t>(), y.device_data<int64_t>(), outer,
                                       row, out_row, col0);
      check_launch(op);
    }
    col0 += row;
  }
  return y;
}

}  // namespace cnncore::cuda
