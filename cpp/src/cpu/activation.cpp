#include "cnncore/ops/activation.hpp"

#include <algorithm>
#include <cmath>

#include "cpu/activation_kernels.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per thread below which one thread is faster

Tensor float_input(const Tensor& x, const char* op, const char* arg) {
  check_dtype(x, DType::Float32, op, arg);
  return as_nchw(x);
}
void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* an,
                      const char* bn) {
  CNNCORE_CHECK_VALUE(a.shape() == b.shape(), op, ": ", an, " shape ", shape_str(a.shape()),
                      " must match ", bn, " shape ", shape_str(b.shape()));
}
float finite_float(double v, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(!std::isnan(v), op, ": ", arg, " must be a number, but got nan");
  return static_cast<float>(v);
}

// Elementwise y = f(x) over n elements, split across threads in contiguous chunks.
template <class K>
Tensor unary(const Tensor& x_in, const char* op, const K& kernel) {
  Tensor x = float_input(x_in, op, "input");
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) { kernel(xp + b, yp + b, e - b); });
  return y;
}

// dx = f(dy, saved) elementwise; saved is the forward input or output (named `saved_name`).
template <class K>
Tensor unary_backward(const Tensor& dy_in, const Tensor& s_in, const char* op,
                      const char* saved_name, const K& kernel) {
  Tensor dy = float_input(dy_in, op, "grad_output");
  Tensor s = float_input(s_in, op, saved_name);
  check_same_shape(dy, s, op, "grad_output", saved_name);
  Tensor dx = Tensor::empty(s.shape());
  const float *dyp = dy.data<float>(), *sp = s.data<float>();
  float* dxp = dx.data<float>();
  parallel_for(0, s.numel(), kGrain,
               [&](int64_t b, int64_t e) { kernel(dyp + b, sp + b, dxp + b, e - b); });
  return dx;
}

// x viewed as (outer, C, inner) around `dim`; a 0-d tensor is one class.
struct SoftmaxShape {
  int64_t outer = 1, C = 1, inner = 1;
};
SoftmaxShape softmax_shape(const Tensor& x, int64_t dim, const char* op) {
  const int64_t nd = std::max<int64_t>(x.dim(), 1);
  CNNCORE_CHECK_VALUE(dim >= -nd && dim < nd, op, ": dim must be in [", -nd, ", ", nd - 1,
                      "] for input of shape ", shape_str(x.shape()), ", but got ", dim);
  if (dim < 0) dim += nd;
  SoftmaxShape s;
  if (x.dim() == 0) return s;
  for (int64_t d = 0; d < dim; ++d) s.outer *= x.size(d);
  s.C = x.size(dim);
  for (int64_t d = dim + 1; d < x.dim(); ++d) s.inner *= x.size(d);
  return s;
}

// Tasks are (outer index, block of inner positions); each touches a disjoint part of the output.
template <class F>
void softmax_tasks(const SoftmaxShape& s, const F& fn) {
  if (s.outer * s.C * s.inner == 0) return;
  const int64_t nb = (s.inner + kSoftmaxBlock - 1) / kSoftmaxBlock;
  const int64_t per_task = s.C * std::min(s.inner, kSoftmaxBlock);
  parallel_for(0, s.outer * nb, std::max<int64_t>(1, kGrain / per_task), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / nb, blk = t % nb;
      const int64_t i0 = blk * kSoftmaxBlock, i1 = std::min(s.inner, i0 + kSoftmaxBlock);
      fn(o * s.C * s.inner, i0, i1);
    }
  });
}

Tensor softmax_any(const Tensor& x_in, int64_t dim, bool log, const char* op) {
  Tensor x = float_input(x_in, op, "input");
  const SoftmaxShape s = softmax_shape(x, dim, op);
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  softmax_tasks(s, [&](int64_t base, int64_t i0, int64_t i1) {
    CNNCORE_ISA_CALL(softmax_forward(xp + base, yp + base, s.C, s.inner, i0, i1, log));
  });
  return y;
}

Tensor softmax_any_backward(const Tensor& dy_in, const Tensor& y_in, int64_t dim, bool log,
                            const char* op) {
  Tensor dy = float_input(dy_in, op, "grad_output");
  Tensor y = float_input(y_in, op, "output");
  check_same_shape(dy, y, op, "grad_output", "output");
  const SoftmaxShape s = softmax_shape(y, dim, op);
  Tensor dx = Tensor::empty(y.shape());
  const float *dyp = dy.data<float>(), *yp = y.data<float>();
  float* dxp = dx.data<float>();
  softmax_tasks(s, [&](int64_t base, int64_t i0, int64_t i1) {
    CNNCORE_ISA_CALL(
        softmax_backward(dyp + base, yp + base, dxp + base, s.C, s.inner, i0, i1, log));
  });
  return dx;
}
}  // namespace

Tensor relu_forward(const Tensor& x) {
  if (cuda::any_cuda({&x})) return cuda::relu_forward(x);
  return unary(x, "relu", [](const float* a, float* b, int64_t n) {
    CNNCORE_ISA_CALL(relu_forward(a, b, n));
  });
}

Tensor relu_backward(const Tensor& dy, const Tensor& y) {
  if (cuda::any_cuda({&dy, &y})) return cuda::relu_backward(dy, y);
  return unary_backward(dy, y, "relu_backward", "output",
                        [](const float* g, const float* s, float* d, int64_t n) {
                          CNNCORE_ISA_CALL(relu_backward(g, s, d, n));
                        });
}

Tensor leaky_relu_forward(const Tensor& x, double negative_slope) {
  const float a = finite_float(negative_slope, "leaky_relu", "negative_slope");
  if (cuda::any_cuda({&x})) return cuda::leaky_relu_forward(x, a);
  return unary(x, "leaky_relu", [a](const float* p, float* q, int64_t n) {
    CNNCORE_ISA_CALL(leaky_relu_forward(p, q, n, a));
  });
}

Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, double negative_slope) {
  const float a = finite_float(negative_slope, "leaky_relu_backward", "negative_slope");
  if (cuda::any_cuda({&dy, &x})) return cuda::leaky_relu_backward(dy, x, a);
  return unary_backward(dy, x, "leaky_relu_backward", "input",
                        [a](const float* g, const float* s, float* d, int64_t n) {
                          CNNCORE_ISA_CALL(leaky_relu_backward(g, s, d, n, a));
                        });
}

namespace {
void check_hardtanh_range(double lo, double hi, const char* op) {
  finite_float(lo, op, "min_val");
  finite_float(hi, op, "max_val");
  CNNCORE_CHECK_VALUE(lo <= hi, op, ": min_val must be <= max_val, but got min_val=", lo,
                      " and max_val=", hi);
}
}  // namespace

Tensor hardtanh_forward(const Tensor& x, double min_val, double max_val) {
  check_hardtanh_range(min_val, max_val, "hardtanh");
  const float lo = static_cast<float>(min_val), hi = static_cast<float>(max_val);
  if (cuda::any_cuda({&x})) return cuda::hardtanh_forward(x, lo, hi);
  return unary(x, "hardtanh", [lo, hi](const float* p, float* q, int64_t n) {
    CNNCORE_ISA_CALL(hardtanh_forward(p, q, n, lo, hi));
  });
}

Tensor hardtanh_backward(const Tensor& dy, const Tensor& x, double min_val, double max_val) {
  check_hardtanh_range(min_val, max_val, "hardtanh_backward");
  const float lo = static_cast<float>(min_val), hi = static_cast<float>(max_val);
  if (cuda::any_cuda({&dy, &x})) return cuda::hardtanh_backward(dy, x, lo, hi);
  return unary_backward(dy, x, "hardtanh_backward", "input",
                        [lo, hi](const float* g, const float* s, float* d, int64_t n) {
                          CNNCORE_ISA_CALL(hardtanh_backward(g, s, d, n, lo, hi));
                        });
}

Tensor sigmoid_forward(const Tensor& x) {
  if (cuda::any_cuda({&x})) return cuda::sigmoid_forward(x);
  return unary(x, "sigmoid", [](const float* p, float* q, int64_t n) {
    CNNCORE_ISA_CALL(sigmoid_forward(p, q, n));
  });
}

Tensor sigmoid_backward(const Tensor& dy, const Tensor& y) {
  if (cuda::any_cuda({&dy, &y})) return cuda::sigmoid_backward(dy, y);
  return unary_backward(dy, y, "sigmoid_backward", "output",
                        [](const float* g, const float* s, float* d, int64_t n) {
                          CNNCORE_ISA_CALL(sigmoid_backward(g, s, d, n));
                        });
}

Tensor tanh_forward(const Tensor& x) {
  if (cuda::any_cuda({&x})) return cuda::tanh_forward(x);
  return unary(x, "tanh", [](const float* p, float* q, int64_t n) {
    CNNCORE_ISA_CALL(tanh_forward(p, q, n));
  });
}

Tensor tanh_backward(const Tensor& dy, const Tensor& y) {
  if (cuda::any_cuda({&dy, &y})) return cuda::tanh_backward(dy, y);
  return unary_backward(dy, y, "tanh_backward", "output",
                        [](const float* g, const float* s, float* d, int64_t n) {
                          CNNCORE_ISA_CALL(tanh_backward(g, s, d, n));
                        });
}

Tensor softmax_forward(const Tensor& x, int64_t dim) {
  if (cuda::any_cuda({&x})) return cuda::softmax_forward(x, dim);
  return softmax_any(x, dim, false, "softmax");
}
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim) {
  if (cuda::any_cuda({&dy, &y})) return cuda::softmax_backward(dy, y, dim);
  return softmax_any_backward(dy, y, dim, false, "softmax_backward");
}
Tensor log_softmax_forward(const Tensor& x, int64_t dim) {
  if (cuda::any_cuda({&x})) return cuda::log_softmax_forward(x, dim);
  return softmax_any(x, dim, true, "log_softmax");
}
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim) {
  if (cuda::any_cuda({&dy, &y})) return cuda::log_softmax_backward(dy, y, dim);
  return softmax_any_backward(dy, y, dim, true, "log_softmax_backward");
}

}  // namespace cnncore
