// local_response_norm on CUDA (AlexNet's, across channels), the CPU's formula
// (cpu/norm_kernels.inc): with h1 = size / 2, h2 = (size - 1) / 2 and channel c's window
// [c - h1, c + h2] clipped to [0, C),
//   b_c = k + alpha / size * sum_{j in window(c)} x_j^2,   y_c = x_c * b_c^-beta,
//   dx_j = dy_j b_j^-beta
//          - 2 alpha beta / size * x_j * sum_{c : j in window(c)} dy_c x_c b_c^(-beta-1).
// Input (N, C, *) flattened to (N, C, inner). One thread per element; the backward first stores
// b^-beta and t_c = dy_c x_c b_c^(-beta-1) per element, then gathers t over the windows.
#include <cmath>

#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
struct LrnDims {
  int64_t N, C, inner, size;
  float alpha_over_size, beta, k;
};

// b_c at (n, c, i): the window sum of squares.
__device__ float lrn_base(const float* x, const LrnDims& d, int64_t n, int64_t c, int64_t i) {
  const int64_t h1 = d.size / 2, h2 = (d.size - 1) / 2;
  const int64_t lo = c - h1 < 0 ? 0 : c - h1, hi = c + h2 >= d.C ? d.C - 1 : c + h2;
  const float* col = x + n * d.C * d.inner + i;
  float acc = 0.0f;
  for (int64_t j = lo; j <= hi; ++j) {
    const float v = col[j * d.inner];
    acc += v * v;
  }
  return fmaf(d.alpha_over_size, acc, d.k);
}

__global__ void lrn_forward_kernel(const float* x, float* y, LrnDims d) {
  CNNCORE_CUDA_LOOP(e, d.N * d.C * d.inner) {
    const int64_t i = e % d.inner, c = (e / d.inner) % d.C, n = e / (d.inner * d.C);
    y[e] = x[e] * powf(lrn_base(x, d, n, c, i), -d.beta);
  }
}

// p = b^-beta, t = dy x p / b, per element.
__global__ void lrn_backward_prep_kernel(const float* dy, const float* x, float* p, float* t,
                                         LrnDims d) {
  CNNCORE_CUDA_LOOP(e, d.N * d.C * d.inner) {
    const int64_t i = e % d.inner, c = (e / d.inner) % d.C, n = e / (d.inner * d.C);
    const float b = lrn_base(x, d, n, c, i);
    const float pw = powf(b, -d.beta);
    p[e] = pw;
    t[e] = dy[e] * x[e] * pw / b;
  }
}

__global__ void lrn_backward_kernel(const float* dy, const float* x, const float* p,
                                    const float* t, float* dx, LrnDims d) {
  const float coef = -2.0f * d.alpha_over_size * d.beta;
  const int64_t h1 = d.size / 2, h2 = (d.size - 1) / 2;
  CNNCORE_CUDA_LOOP(e, d.N * d.C * d.inner) {
    const int64_t i = e % d.inner, j = (e / d.inner) % d.C, n = e / (d.inner * d.C);
    // c's window holds j exactly when c is in [j - h2, j + h1].
    const int64_t lo = j - h2 < 0 ? 0 : j - h2, hi = j + h1 >= d.C ? d.C - 1 : j + h1;
    const float* col = t + n * d.C * d.inner + i;
    float acc = 0.0f;
    for (int64_t c = lo; c <= hi; ++c) acc += col[c * d.inner];
    dx[e] = fmaf(coef * x[e], acc, dy[e] * p[e]);
  }
}

void check_lrn_input(const Tensor& x, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(x.dim() >= 3, op, ": ", arg, " must be 3-D or higher (N, C, *), but got ",
                      x.dim(), "-D with shape ", shape_str(x.shape()));
}

LrnDims lrn_dims(const Tensor& x, int64_t size, double alpha, double beta, double k,
                 const char* op) {
  CNNCORE_CHECK_VALUE(size >= 1, op, ": size must be >= 1, but got ", size);
  CNNCORE_CHECK_VALUE(std::isfinite(alpha), op, ": alpha must be a finite number, but got ",
                      alpha);
  CNNCORE_CHECK_VALUE(std::isfinite(beta), op, ": beta must be a finite number, but got ", beta);
  CNNCORE_CHECK_VALUE(std::isfinite(k), op, ": k must be a finite number, but got ", k);
  int64_t inner = 1;
  for (int64_t d = 2; d < x.dim(); ++d) inner *= x.size(d);
  return {x.size(0), x.size(1), inner, size, static_cast<float>(alpha / static_cast<double>(size)),
          static_cast<float>(beta), static_cast<float>(k)};
}
}  // namespace

Tensor local_response_norm_forward(const Tensor& x_in, int64_t size, double alpha, double beta,
                                   double k) {
  const char* op = "local_response_norm";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  check_lrn_input(x_in, op, "input");
  const LrnDims d = lrn_dims(x_in, size, alpha, beta, k, op);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  if (const int64_t n = x.numel()) {
    lrn_forward_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                                  d);
    check_launch(op);
  }
  return y;
}

Tensor local_response_norm_backward(const Tensor& dy_in, const Tensor& x_in, int64_t size,
                                    double alpha, double beta, double k) {
  const char* op = "local_response_norm_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"input", &x_in}});
  check_lrn_input(x_in, op, "input");
  check_lrn_input(dy_in, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy_in.shape() == x_in.shape(), op, ": grad_output shape ",
                      shape_str(dy_in.shape()), " must match input shape ",
                      shape_str(x_in.shape()));
  const LrnDims d = lrn_dims(x_in, size, alpha, beta, k, op);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
  const int64_t n = x.numel();
  if (n == 0) return dx;
  Tensor p = Tensor::empty(x.shape(), DType::Float32, x.device());
  Tensor t = Tensor::empty(x.shape(), DType::Float32, x.device());
  lrn_backward_prep_kernel<<<grid_for(n), kThreads>>>(dy.device_data<float>(),
                                                      x.device_data<float>(),
                                                      p.device_data<float>(),
                                                      t.device_data<float>(), d);
  check_launch(op);
  lrn_backward_kernel<<<grid_for(n), kThreads>>>(dy.device_data<float>(), x.device_data<float>(),
                                                 p.device_data<float>(), t.device_data<float>(),
                                                 dx.device_data<float>(), d);
  check_launch(op);
  return dx;
}

}  // namespace cnncore::cuda
