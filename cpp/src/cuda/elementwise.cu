// Elementwise ops on CUDA: relu forward/backward and the broadcasting binary ops (add, sub, mul,
// div, pow, maximum, minimum and the comparisons, which give 1.0 / 0.0 as on the CPU). Broadcast
// inputs are expanded views (stride 0), read through their strides: no copies.
#include <cmath>

#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
__global__ void relu_kernel(const float* x, float* y, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
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

}  // namespace cnncore::cuda
