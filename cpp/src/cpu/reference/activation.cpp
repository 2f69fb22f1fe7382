#include "cpu/reference/activation.hpp"

#include <cmath>

namespace cnncore::reference {

namespace {
template <class F>
Tensor map1(const Tensor& x_in, const F& f) {
  check_dtype(x_in, DType::Float32, "reference", "input");
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) yp[i] = f(xp[i]);
  return y;
}
template <class F>
Tensor map2(const Tensor& a_in, const Tensor& b_in, const F& f) {
  check_dtype(a_in, DType::Float32, "reference", "grad_output");
  check_dtype(b_in, DType::Float32, "reference", "saved");
  CNNCORE_CHECK_VALUE(a_in.shape() == b_in.shape(), "reference: shapes ", shape_str(a_in.shape()),
                      " and ", shape_str(b_in.shape()), " differ");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor y = Tensor::empty(a.shape());
  const float *ap = a.data<float>(), *bp = b.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < a.numel(); ++i) yp[i] = f(ap[i], bp[i]);
  return y;
}

struct Dims {
  int64_t outer = 1, C = 1, inner = 1;
};
Dims dims_of(const Tensor& x, int64_t dim) {
  const int64_t nd = x.dim() > 0 ? x.dim() : 1;
  CNNCORE_CHECK_VALUE(dim >= -nd && dim < nd, "softmax: dim must be in [", -nd, ", ", nd - 1,
                      "], but got ", dim);
  if (dim < 0) dim += nd;
  Dims d;
  if (x.dim() == 0) return d;
  for (int64_t k = 0; k < dim; ++k) d.outer *= x.size(k);
  d.C = x.size(dim);
  for (int64_t k = dim + 1; k < x.dim(); ++k) d.inner *= x.size(k);
  return d;
}

Tensor softmax_impl(const Tensor& x_in, int64_t dim, bool log) {
  check_dtype(x_in, DType::Float32, "reference softmax", "input");
  Tensor x = x_in.contiguous();
  const Dims d = dims_of(x, dim);
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t i = 0; i < d.inner; ++i) {
      const int64_t base = o * d.C * d.inner + i;
      double m = -INFINITY;
      for (int64_t c = 0; c < d.C; ++c) m = std::fmax(m, xp[base + c * d.inner]);
      double s = 0.0;
      for (int64_t c = 0; c < d.C; ++c) s += std::exp(xp[base + c * d.inner] - m);
      for (int64_t c = 0; c < d.C; ++c) {
        const double v = xp[base + c * d.inner] - m;
        yp[base + c * d.inner] = static_cast<float>(log ? v - std::log(s) : std::exp(v) / s);
      }
    }
  return y;
}

Tensor softmax_backward_impl(const Tensor& dy_in, const Tensor& y_in, int64_t dim, bool log) {
  Tensor dy = dy_in.contiguous(), y = y_in.contiguous();
  const Dims d = dims_of(y, dim);
  Tensor dx = Tensor::empty(y.shape());
  const float *g = dy.data<float>(), *yp = y.data<float>();
  float* out = dx.data<float>();
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t i = 0; i < d.inner; ++i) {
      const int64_t base = o * d.C * d.inner + i;
      double s = 0.0;
      for (int64_t c = 0; c < d.C; ++c) {
        const int64_t k = base + c * d.inner;
        s += log ? static_cast<double>(g[k]) : static_cast<double>(g[k]) * yp[k];
      }
      for (int64_t c = 0; c < d.C; ++c) {
        const int64_t k = base + c * d.inner;
        out[k] = static_cast<float>(log ? g[k] - std::exp(static_cast<double>(yp[k])) * s
                                        : yp[k] * (g[k] - s));
      }
    }
  return dx;
}
}  // namespace

Tensor relu_forward(const Tensor& x) {
  return map1(x, [](float v) { return v > 0.0f || std::isnan(v) ? v : 0.0f; });
}
Tensor relu_backward(const Tensor& dy, const Tensor& y) {
  return map2(dy, y, [](float g, float v) { return v > 0.0f ? g : 0.0f; });
}
Tensor leaky_relu_forward(const Tensor& x, double a) {
  const float s = static_cast<float>(a);
  return map1(x, [s](float v) { return v > 0.0f ? v : v * s; });
}
Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, double a) {
  const float s = static_cast<float>(a);
  return map2(dy, x, [s](float g, float v) { return v > 0.0f ? g : g * s; });
}
Tensor hardtanh_forward(const Tensor& x, double lo, double hi) {
  const float l = static_cast<float>(lo), h = static_cast<float>(hi);
  return map1(x, [l, h](float v) { return v < l ? l : (v > h ? h : v); });
}
Tensor hardtanh_backward(const Tensor& dy, const Tensor& x, double lo, double hi) {
  const float l = static_cast<float>(lo), h = static_cast<float>(hi);
  return map2(dy, x, [l, h](float g, float v) { return (v > l && v < h) ? g : 0.0f; });
}
Tensor sigmoid_forward(const Tensor& x) {
  return map1(x, [](float v) { return static_cast<float>(1.0 / (1.0 + std::exp(-double(v)))); });
}
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y) {
  return map2(dy, y, [](float g, float v) { return g * v * (1.0f - v); });
}
Tensor tanh_forward(const Tensor& x) {
  return map1(x, [](float v) { return static_cast<float>(std::tanh(double(v))); });
}
Tensor tanh_backward(const Tensor& dy, const Tensor& y) {
  return map2(dy, y, [](float g, float v) { return g * (1.0f - v * v); });
}
Tensor softmax_forward(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim) {
  return softmax_backward_impl(dy, y, dim, false);
}
Tensor log_softmax_forward(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim) {
  return softmax_backward_impl(dy, y, dim, true);
}

}  // namespace cnncore::reference
