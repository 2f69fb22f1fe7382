#include "cpu/reference/conv.hpp"

#include <vector>

namespace cnncore::reference {

namespace {

Tensor dense(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  check_dtype(t, DType::Float32, op, arg);
  return t.contiguous();
}

void expect_shape(const Tensor& t, const Shape& s, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(t.shape() == s, op, ": ", arg, " must have shape ", shape_str(s),
                      ", but got ", shape_str(t.shape()));
}

Shape four(const Shape& s, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(s.size() == 4, op, ": ", arg, " must have 4 sizes, but got ", shape_str(s));
  return s;
}

// The input row/column that output (o) reads under tap (t), or -1 when it falls in the padding.
inline int64_t src_index(int64_t o, int64_t t, int64_t stride, int64_t pad, int64_t dil,
                         int64_t n) {
  const int64_t i = o * stride - pad + t * dil;
  return (i >= 0 && i < n) ? i : -1;
}

// y[n,k,oh,ow] = b[k] + sum_{c in group, r, s} w[k,c,r,s] x[n, g*Cg+c, ih, iw]
Tensor forward(const Tensor& x, const Tensor& w, const float* b, const Conv2dParams& p) {
  Tensor y = Tensor::empty(p.output_shape());
  const float* X = x.data<float>();
  const float* Wt = w.data<float>();
  float* Y = y.data<float>();
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          double acc = b ? b[k] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r) {
              const int64_t ih = src_index(oh, r, p.stride_h, p.pad_t, p.dil_h, p.H);
              if (ih < 0) continue;
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t iw = src_index(ow, s, p.stride_w, p.pad_l, p.dil_w, p.W);
                if (iw < 0) continue;
                acc += double(Wt[((k * Cg + c) * p.R + r) * p.S + s]) *
                       double(X[((n * p.C + g * Cg + c) * p.H + ih) * p.W + iw]);
              }
            }
          Y[((n * p.K + k) * p.OH + oh) * p.OW + ow] = static_cast<float>(acc);
        }
    }
  return y;
}

// dx[n,c,ih,iw] = sum over (k in group, r, s, oh, ow) with ih, iw the pixel read: a gather over
// every output pixel that reads (ih, iw), written independently of the forward's loop order.
Tensor backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  const float* DY = dy.data<float>();
  const float* Wt = w.data<float>();
  float* DX = dx.data<float>();
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t ci = 0; ci < p.C; ++ci) {
      const int64_t g = ci / Cg, c = ci % Cg;
      for (int64_t ih = 0; ih < p.H; ++ih)
        for (int64_t iw = 0; iw < p.W; ++iw) {
          double acc = 0.0;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t th = ih + p.pad_t - r * p.dil_h;  // = oh * stride_h
            if (th < 0 || th % p.stride_h) continue;
            const int64_t oh = th / p.stride_h;
            if (oh >= p.OH) continue;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t tw = iw + p.pad_l - s * p.dil_w;
              if (tw < 0 || tw % p.stride_w) continue;
              const int64_t ow = tw / p.stride_w;
              if (ow >= p.OW) continue;
              for (int64_t kk = 0; kk < Kg; ++kk) {
                const int64_t k = g * Kg + kk;
                acc += double(Wt[((k * Cg + c) * p.R + r) * p.S + s]) *
                       double(DY[((n * p.K + k) * p.OH + oh) * p.OW + ow]);
              }
            }
          }
          DX[((n * p.C + ci) * p.H + ih) * p.W + iw] = static_cast<float>(acc);
        }
    }
  return dx;
}

// dw[k,c,r,s] = sum_{n,oh,ow} dy[n,k,oh,ow] x[n, g*Cg+c, ih, iw]
Tensor backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  Tensor dw = Tensor::empty(p.weight_shape());
  const float* DY = dy.data<float>();
  const float* X = x.data<float>();
  float* DW = dw.data<float>();
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t k = 0; k < p.K; ++k) {
    const int64_t g = k / Kg;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s) {
          double acc = 0.0;
          for (int64_t n = 0; n < p.N; ++n)
            for (int64_t oh = 0; oh < p.OH; ++oh) {
              const int64_t ih = src_index(oh, r, p.stride_h, p.pad_t, p.dil_h, p.H);
              if (ih < 0) continue;
              for (int64_t ow = 0; ow < p.OW; ++ow) {
                const int64_t iw = src_index(ow, s, p.stride_w, p.pad_l, p.dil_w, p.W);
                if (iw < 0) continue;
                acc += double(DY[((n * p.K + k) * p.OH + oh) * p.OW + ow]) *
                       double(X[((n * p.C + g * Cg + c) * p.H + ih) * p.W + iw]);
              }
            }
          DW[((k * Cg + c) * p.R + r) * p.S + s] = static_cast<float>(acc);
        }
  }
  return dw;
}

std::vector<float> bias_values(const std::optional<Tensor>& b, int64_t K, const char* op) {
  if (!b || !b->defined()) return {};
  Tensor t = dense(*b, op, "bias");
  CNNCORE_CHECK_VALUE(t.dim() == 1 && t.size(0) == K, op, ": bias must have shape (", K,
                      ",), one value per output channel, but got ", shape_str(t.shape()));
  return std::vector<float>(t.data<float>(), t.data<float>() + K);
}

}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w_in, const std::optional<Tensor>& b,
                      const Conv2dOptions& opt) {
  Tensor x = dense(x_in, "conv2d", "input"), w = dense(w_in, "conv2d", "weight");
  const Conv2dParams p = conv2d_params(x.shape(), w.shape(), opt, "conv2d");
  const std::vector<float> bias = bias_values(b, p.K, "conv2d");
  return forward(x, w, bias.empty() ? nullptr : bias.data(), p);
}

Tensor conv2d_backward_input(const Tensor& dy_in, const Tensor& w_in, const Shape& x_shape,
                             const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_input";
  Tensor dy = dense(dy_in, op, "grad_output"), w = dense(w_in, op, "weight");
  const Conv2dParams p = conv2d_params(four(x_shape, op, "input_shape"), w.shape(), opt, op);
  expect_shape(dy, p.output_shape(), op, "grad_output");
  return backward_input(dy, w, p);
}

Tensor conv2d_backward_weight(const Tensor& dy_in, const Tensor& x_in, const Shape& w_shape,
                              const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_weight";
  Tensor dy = dense(dy_in, op, "grad_output"), x = dense(x_in, op, "input");
  const Conv2dParams p = conv2d_params(x.shape(), four(w_shape, op, "weight_shape"), opt, op);
  expect_shape(dy, p.output_shape(), op, "grad_output");
  return backward_weight(dy, x, p);
}

Tensor conv2d_backward_bias(const Tensor& dy_in) {
  const char* op = "conv2d_backward_bias";
  Tensor dy = dense(dy_in, op, "grad_output");
  check_dim(dy, 4, op, "grad_output");
  const int64_t N = dy.size(0), K = dy.size(1), L = dy.size(2) * dy.size(3);
  Tensor db = Tensor::empty({K});
  for (int64_t k = 0; k < K; ++k) {
    double acc = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < L; ++i) acc += dy.data<float>()[(n * K + k) * L + i];
    db.data<float>()[k] = static_cast<float>(acc);
  }
  return db;
}

// The transposed convolution written from its own definition (a scatter of every input pixel
// through the kernel), not through the conv2d above, so it checks the equivalence the fast path
// relies on. TGeom holds the transposed op's sizes: input (N, Ci, Hi, Wi), output
// (N, Co, Ho, Wo).
namespace {
struct TGeom {
  int64_t N, Ci, Hi, Wi, Co, Ho, Wo, R, S, G, sh, sw, pt, pl, dh, dw;
};
TGeom tgeom(const Shape& x, const Shape& w, const Conv2dOptions& opt, int64_t oph, int64_t opw,
            const char* op) {
  // Validation (and nothing else) from the shared params function.
  const Conv2dParams p = conv_transpose2d_params(x, w, opt, oph, opw, op);
  return {x[0], x[1], x[2], x[3], p.C, p.H, p.W, w[2], w[3], opt.groups, opt.stride_h,
          opt.stride_w, p.pad_t, p.pad_l, opt.dilation_h, opt.dilation_w};
}
// Calls f(x index, w index, y index) for every (input pixel, tap, output channel) that lands in y.
template <class F>
void each_term(const TGeom& t, const F& f) {
  const int64_t Cig = t.Ci / t.G, Cog = t.Co / t.G;
  for (int64_t n = 0; n < t.N; ++n)
    for (int64_t ci = 0; ci < t.Ci; ++ci) {
      const int64_t g = ci / Cig;
      for (int64_t ih = 0; ih < t.Hi; ++ih)
        for (int64_t iw = 0; iw < t.Wi; ++iw)
          for (int64_t co = 0; co < Cog; ++co)
            for (int64_t r = 0; r < t.R; ++r) {
              const int64_t oh = ih * t.sh - t.pt + r * t.dh;
              if (oh < 0 || oh >= t.Ho) continue;
              for (int64_t s = 0; s < t.S; ++s) {
                const int64_t ow = iw * t.sw - t.pl + s * t.dw;
                if (ow < 0 || ow >= t.Wo) continue;
                f(((n * t.Ci + ci) * t.Hi + ih) * t.Wi + iw, ((ci * Cog + co) * t.R + r) * t.S + s,
                  ((n * t.Co + g * Cog + co) * t.Ho + oh) * t.Wo + ow);
              }
            }
    }
}
Tensor to_float(const std::vector<double>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = static_cast<float>(v[i]);
  return t;
}
}  // namespace

Tensor conv_transpose2d_forward(const Tensor& x_in, const Tensor& w_in,
                                const std::optional<Tensor>& b, const Conv2dOptions& opt,
                                int64_t oph, int64_t opw) {
  const char* op = "conv_transpose2d";
  Tensor x = dense(x_in, op, "input"), w = dense(w_in, op, "weight");
  const TGeom t = tgeom(x.shape(), w.shape(), opt, oph, opw, op);
  const std::vector<float> bias = bias_values(b, t.Co, op);
  std::vector<double> y(static_cast<size_t>(t.N * t.Co * t.Ho * t.Wo), 0.0);
  const float* X = x.data<float>();
  const float* Wt = w.data<float>();
  each_term(t, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += double(X[xi]) * Wt[wi]; });
  if (!bias.empty())
    for (size_t i = 0; i < y.size(); ++i) y[i] += bias[(i / (t.Ho * t.Wo)) % t.Co];
  return to_float(y, {t.N, t.Co, t.Ho, t.Wo});
}

Tensor conv_transpose2d_backward_input(const Tensor& dy_in, const Tensor& w_in,
                                       const Shape& x_shape, const Conv2dOptions& opt,
                                       int64_t oph, int64_t opw) {
  const char* op = "conv_transpose2d_backward_input";
  Tensor dy = dense(dy_in, op, "grad_output"), w = dense(w_in, op, "weight");
  const TGeom t = tgeom(four(x_shape, op, "input_shape"), w.shape(), opt, oph, opw, op);
  expect_shape(dy, {t.N, t.Co, t.Ho, t.Wo}, op, "grad_output");
  std::vector<double> dx(static_cast<size_t>(t.N * t.Ci * t.Hi * t.Wi), 0.0);
  const float* DY = dy.data<float>();
  const float* Wt = w.data<float>();
  each_term(t, [&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += double(DY[yi]) * Wt[wi]; });
  return to_float(dx, x_shape);
}

Tensor conv_transpose2d_backward_weight(const Tensor& dy_in, const Tensor& x_in,
                                        const Shape& w_shape, const Conv2dOptions& opt,
                                        int64_t oph, int64_t opw) {
  const char* op = "conv_transpose2d_backward_weight";
  Tensor dy = dense(dy_in, op, "grad_output"), x = dense(x_in, op, "input");
  const TGeom t = tgeom(x.shape(), four(w_shape, op, "weight_shape"), opt, oph, opw, op);
  expect_shape(dy, {t.N, t.Co, t.Ho, t.Wo}, op, "grad_output");
  std::vector<double> dw(static_cast<size_t>(shape_numel(w_shape)), 0.0);
  const float* DY = dy.data<float>();
  const float* X = x.data<float>();
  each_term(t, [&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += double(DY[yi]) * X[xi]; });
  return to_float(dw, w_shape);
}

}  // namespace cnncore::reference
