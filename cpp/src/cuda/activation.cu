// Activations on CUDA, forward and backward: leaky_relu, hardtanh (relu6 is hardtanh(0, 6)),
// sigmoid, tanh and softmax (relu is in elementwise.cu, log_softmax in loss.cu). The CPU entries
// check the scalar arguments first; the formulas are the CPU kernels' (activation_kernels.inc).
// Softmax over a dim of stride 1 (the class dim of (N, C)) runs one warp per row with shuffles;
// otherwise one thread per (outer, inner) row, neighbouring threads on neighbouring columns.
#include <algorithm>
#include <cmath>

#include "block_reduce.cuh"
#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
enum class Act { LeakyRelu, Hardtanh, Sigmoid, Tanh };
struct ActArgs {
  float a, b;  // leaky_relu: slope; hardtanh: min, max
};

__device__ float act_forward(Act k, float x, ActArgs p) {
  switch (k) {
    // nan stays nan (fmaxf / fminf alone would drop it), as on the CPU and in torch
    case Act::LeakyRelu: return x != x ? x : fmaxf(x, 0.0f) + p.a * fminf(x, 0.0f);
    case Act::Hardtanh: return x != x ? x : fminf(p.b, fmaxf(p.a, x));
    case Act::Sigmoid: return 1.0f / (1.0f + expf(-x));
    case Act::Tanh: return tanhf(x);
  }
  return 0.0f;
}
// s is the saved forward input (leaky_relu, hardtanh) or output (sigmoid, tanh).
__device__ float act_backward(Act k, float g, float s, ActArgs p) {
  switch (k) {
    case Act::LeakyRelu: return s > 0.0f ? g : g * p.a;
    case Act::Hardtanh: return (s > p.a && s < p.b) ? g : 0.0f;
    case Act::Sigmoid: return g * s * (1.0f - s);
    case Act::Tanh: return g * (1.0f - s * s);
  }
  return 0.0f;
}

__global__ void act_forward_kernel(Act k, const float* x, float* y, ActArgs p, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) y[i] = act_forward(k, x[i], p);
}
__global__ void act_backward_kernel(Act k, const float* g, const float* s, float* d, ActArgs p,
                                    int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) d[i] = act_backward(k, g[i], s[i], p);
}

Tensor forward(Act k, const Tensor& x_in, ActArgs p, const char* op) {
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  if (const int64_t n = x.numel()) {
    act_forward_kernel<<<grid_for(n), kThreads>>>(k, x.device_data<float>(),
                                                  y.device_data<float>(), p, n);
    check_launch(op);
  }
  return y;
}

Tensor backward(Act k, const Tensor& dy_in, const Tensor& s_in, ActArgs p, const char* op,
                const char* saved_name) {
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {saved_name, &s_in}});
  CNNCORE_CHECK_VALUE(dy_in.shape() == s_in.shape(), op, ": grad_output shape ",
                      shape_str(dy_in.shape()), " must match ", saved_name, " shape ",
                      shape_str(s_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor g = dy_in.contiguous(), s = s_in.contiguous();
  Tensor d = Tensor::empty(s.shape(), DType::Float32, s.device());
  if (const int64_t n = s.numel()) {
    act_backward_kernel<<<grid_for(n), kThreads>>>(k, g.device_data<float>(),
                                                   s.device_data<float>(), d.device_data<float>(),
                                                   p, n);
    check_launch(op);
  }
  return d;
}

// ---- softmax -----------------------------------------------------------------------------------
// Rows of C elements `inner` apart: row r starts at (r / inner) * C * inner + r % inner.
__global__ void softmax_rows_kernel(const float* x, float* y, int64_t outer, int64_t C,
                                    int64_t inner) {
  CNNCORE_CUDA_LOOP(r, outer * inner) {
    const int64_t base = (r / inner) * C * inner + r % inner;
    float mx = -INFINITY;
    for (int64_t c = 0; c < C; ++c) mx = fmaxf(mx, x[base + c * inner]);
    float s = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      const float e = expf(x[base + c * inner] - mx);
      y[base + c * inner] = e;
      s += e;
    }
    const float inv = 1.0f / s;
    for (int64_t c = 0; c < C; ++c) y[base + c * inner] *= inv;
  }
}
__global__ void softmax_rows_backward_kernel(const float* dy, const float* y, float* dx,
                                             int64_t outer, int64_t C, int64_t inner) {
  CNNCORE_CUDA_LOOP(r, outer * inner) {
    const int64_t base = (r / inner) * C * inner + r % inner;
    float s = 0.0f;
    for (int64_t c = 0; c < C; ++c) s += dy[base + c * inner] * y[base + c * inner];
    for (int64_t c = 0; c < C; ++c)
      dx[base + c * inner] = y[base + c * inner] * (dy[base + c * inner] - s);
  }
}

// inner == 1: one warp per contiguous row. The loop over rows is warp-uniform (it depends on the
// warp's index only), so every lane reaches the shuffles.
constexpr int kWarpsPerBlock = kThreads / 32;
__global__ void softmax_warp_kernel(const float* x, float* y, int64_t rows, int64_t C) {
  const int lane = threadIdx.x & 31;
  const int64_t first = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + (threadIdx.x >> 5);
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = first; r < rows; r += step) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    float mx = -INFINITY;
    for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, xr[c]);
    mx = warp_allmax(mx);
    float s = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
      const float e = expf(xr[c] - mx);
      yr[c] = e;
      s += e;
    }
    const float inv = 1.0f / warp_allsum(s);
    for (int64_t c = lane; c < C; c += 32) yr[c] *= inv;
  }
}
__global__ void softmax_warp_backward_kernel(const float* dy, const float* y, float* dx,
                                             int64_t rows, int64_t C) {
  const int lane = threadIdx.x & 31;
  const int64_t first = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + (threadIdx.x >> 5);
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = first; r < rows; r += step) {
    const float *gr = dy + r * C, *yr = y + r * C;
    float* dr = dx + r * C;
    float s = 0.0f;
    for (int64_t c = lane; c < C; c += 32) s += gr[c] * yr[c];
    s = warp_allsum(s);
    for (int64_t c = lane; c < C; c += 32) dr[c] = yr[c] * (gr[c] - s);
  }
}

// The CPU's softmax_shape: x as (outer, C, inner) around dim; a 0-d tensor is one class.
void softmax_dims(const Tensor& x, int64_t dim, const char* op, int64_t& outer, int64_t& C,
                  int64_t& inner) {
  const int64_t nd = std::max<int64_t>(x.dim(), 1);
  CNNCORE_CHECK_VALUE(dim >= -nd && dim < nd, op, ": dim must be in [", -nd, ", ", nd - 1,
                      "] for input of shape ", shape_str(x.shape()), ", but got ", dim);
  if (dim < 0) dim += nd;
  outer = C = inner = 1;
  if (x.dim() == 0) return;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  C = x.size(dim);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
}

unsigned warp_grid(int64_t rows) {
  const int64_t blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, 1 << 20)));
}
}  // namespace

Tensor leaky_relu_forward(const Tensor& x, float slope) {
  return forward(Act::LeakyRelu, x, ActArgs{slope, 0.0f}, "leaky_relu");
}
Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, float slope) {
  return backward(Act::LeakyRelu, dy, x, ActArgs{slope, 0.0f}, "leaky_relu_backward", "input");
}
Tensor hardtanh_forward(const Tensor& x, float lo, float hi) {
  return forward(Act::Hardtanh, x, ActArgs{lo, hi}, "hardtanh");
}
Tensor hardtanh_backward(const Tensor& dy, const Tensor& x, float lo, float hi) {
  return backward(Act::Hardtanh, dy, x, ActArgs{lo, hi}, "hardtanh_backward", "input");
}
Tensor sigmoid_forward(const Tensor& x) {
  return forward(Act::Sigmoid, x, ActArgs{0.0f, 0.0f}, "sigmoid");
}
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y) {
  return backward(Act::Sigmoid, dy, y, ActArgs{0.0f, 0.0f}, "sigmoid_backward", "output");
}
Tensor tanh_forward(const Tensor& x) { return forward(Act::Tanh, x, ActArgs{0.0f, 0.0f}, "tanh"); }
Tensor tanh_backward(const Tensor& dy, const Tensor& y) {
  return backward(Act::Tanh, dy, y, ActArgs{0.0f, 0.0f}, "tanh_backward", "output");
}

Tensor softmax_forward(const Tensor& x_in, int64_t dim) {
  const char* op = "softmax";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  int64_t outer, C, inner;
  softmax_dims(x_in, dim, op, outer, C, inner);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  if (x.numel() == 0) return y;
  if (inner == 1) {
    softmax_warp_kernel<<<warp_grid(outer), kThreads>>>(x.device_data<float>(),
                                                        y.device_data<float>(), outer, C);
  } else {
    softmax_rows_kernel<<<grid_for(outer * inner), kThreads>>>(
        x.device_data<float>(), y.device_data<float>(), outer, C, inner);
  }
  check_launch(op);
  return y;
}

Tensor softmax_backward(const Tensor& dy_in, const Tensor& y_in, int64_t dim) {
  const char* op = "softmax_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"output", &y_in}});
  CNNCORE_CHECK_VALUE(dy_in.shape() == y_in.shape(), op, ": grad_output shape ",
                      shape_str(dy_in.shape()), " must match output shape ",
                      shape_str(y_in.shape()));
  int64_t outer, C, inner;
  softmax_dims(y_in, dim, op, outer, C, inner);
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous(), y = y_in.contiguous();
  Tensor dx = Tensor::empty(y.shape(), DType::Float32, y.device());
  if (y.numel() == 0) return dx;
  if (inner == 1) {
    softmax_warp_backward_kernel<<<warp_grid(outer), kThreads>>>(
        dy.device_data<float>(), y.device_data<float>(), dx.device_data<float>(), outer, C);
  } else {
    softmax_rows_backward_kernel<<<grid_for(outer * inner), kThreads>>>(
        dy.device_data<float>(), y.device_data<float>(), dx.device_data<float>(), outer, C,
        inner);
  }
  check_launch(op);
  return dx;
}

}  // namespace cnncore::cuda
