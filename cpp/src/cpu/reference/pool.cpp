// The pooling oracle: every window walked element by element, sums in double. Validation and
// output sizes come from pool2d_params (the one shape rule), nothing from the fast kernels.
#include "cpu/reference/pool.hpp"

#include <cmath>
#include <limits>

namespace cnncore::reference {

namespace {
void dims(const Shape& s, int64_t& P, int64_t& H, int64_t& W) {
  CNNCORE_CHECK_VALUE(s.size() == 3 || s.size() == 4, "reference pool: expected a 3-D or 4-D shape, got ",
                      shape_str(s));
  H = s[s.size() - 2];
  W = s[s.size() - 1];
  P = 1;
  for (size_t i = 0; i + 2 < s.size(); ++i) P *= s[i];
}
Shape with_spatial(Shape s, int64_t oh, int64_t ow) {
  s[s.size() - 2] = oh;
  s[s.size() - 1] = ow;
  return s;
}
Pool2dOptions no_dilation(Pool2dOptions o) {
  o.dilation_h = o.dilation_w = 1;
  return o;
}
// torch's avg window: bounds clipped to the padded input give the pool size, then to the input.
bool avg_bounds(const Pool2dParams& p, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1,
                int64_t& w0, int64_t& w1, double& div) {
  const int64_t hs = oh * p.SH - p.PH, ws = ow * p.SW - p.PW;
  const int64_t he = std::min(hs + p.KH, p.H + p.PH), we = std::min(ws + p.KW, p.W + p.PW);
  const int64_t pool = (he - hs) * (we - ws);
  h0 = std::max<int64_t>(hs, 0);
  w0 = std::max<int64_t>(ws, 0);
  h1 = std::min(he, p.H);
  w1 = std::min(we, p.W);
  if (h0 >= h1 || w0 >= w1) return false;
  div = p.divisor_override ? double(p.divisor_override)
        : p.count_include_pad ? double(pool)
                              : double((h1 - h0) * (w1 - w0));
  return true;
}
Tensor scatter(const Tensor& dy_in, const Tensor& idx_in, const Shape& x_shape) {
  Tensor dy = dy_in.contiguous(), idx = idx_in.contiguous();
  CNNCORE_CHECK_VALUE(dy.shape() == idx.shape(), "reference pool backward: indices shape ",
                      shape_str(idx.shape()), " != grad_output shape ", shape_str(dy.shape()));
  int64_t P, H, W;
  dims(x_shape, P, H, W);
  const int64_t O = dy.size(-1) * dy.size(-2);
  Tensor dx = Tensor::zeros(x_shape);
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t o = 0; o < O; ++o) {
      const int64_t k = idx.data<int64_t>()[pl * O + o];
      if (k == -1) continue;
      CNNCORE_CHECK_VALUE(k >= 0 && k < H * W, "reference pool backward: index ", k, " outside the plane");
      dx.data<float>()[pl * H * W + k] += dy.data<float>()[pl * O + o];
    }
  return dx;
}
}  // namespace

std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor& x_in, const Pool2dOptions& opt) {
  const Pool2dParams p = pool2d_params(x_in.shape(), opt, "max_pool2d");
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(p.output_shape()), idx = Tensor::empty(p.output_shape(), DType::Int64);
  const float* xp = x.data<float>();
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t besti = -1;
        for (int64_t kh = 0; kh < p.KH; ++kh)
          for (int64_t kw = 0; kw < p.KW; ++kw) {
            const int64_t ih = oh * p.SH - p.PH + kh * p.DH, iw = ow * p.SW - p.PW + kw * p.DW;
            if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
            const float v = xp[pl * p.H * p.W + ih * p.W + iw];
            if (besti == -1) besti = ih * p.W + iw;  // the first element in the window
            if (v > best || std::isnan(v)) {
              best = v;
              besti = ih * p.W + iw;
            }
          }
        const int64_t o = pl * p.OH * p.OW + oh * p.OW + ow;
        y.data<float>()[o] = best;
        idx.data<int64_t>()[o] = besti;
      }
  return {y, idx};
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape) {
  return scatter(dy, indices, x_shape);
}

Tensor avg_pool2d_forward(const Tensor& x_in, const Pool2dOptions& opt) {
  const Pool2dParams p = pool2d_params(x_in.shape(), no_dilation(opt), "avg_pool2d");
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(p.output_shape());
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        int64_t h0, h1, w0, w1;
        double div, s = 0.0;
        if (avg_bounds(p, oh, ow, h0, h1, w0, w1, div)) {
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) s += x.data<float>()[pl * p.H * p.W + ih * p.W + iw];
          s /= div;
        }
        y.data<float>()[pl * p.OH * p.OW + oh * p.OW + ow] = static_cast<float>(s);
      }
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy_in, const Shape& x_shape, const Pool2dOptions& opt) {
  const Pool2dParams p = pool2d_params(x_shape, no_dilation(opt), "avg_pool2d_backward");
  Tensor dy = dy_in.contiguous();
  CNNCORE_CHECK_VALUE(dy.shape() == p.output_shape(), "avg_pool2d_backward: grad_output shape ",
                      shape_str(dy.shape()), " != ", shape_str(p.output_shape()));
  Tensor dx = Tensor::zeros(x_shape);
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        int64_t h0, h1, w0, w1;
        double div;
        if (!avg_bounds(p, oh, ow, h0, h1, w0, w1, div)) continue;
        const double g = dy.data<float>()[pl * p.OH * p.OW + oh * p.OW + ow] / div;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw)
            dx.data<float>()[pl * p.H * p.W + ih * p.W + iw] += static_cast<float>(g);
      }
  return dx;
}

Tensor adaptive_avg_pool2d_forward(const Tensor& x_in, int64_t OH, int64_t OW) {
  Tensor x = x_in.contiguous();
  int64_t P, H, W;
  dims(x.shape(), P, H, W);
  Tensor y = Tensor::empty(with_spatial(x.shape(), OH, OW));
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        double s = 0.0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += x.data<float>()[pl * H * W + ih * W + iw];
        y.data<float>()[pl * OH * OW + oh * OW + ow] = static_cast<float>(s / double((h1 - h0) * (w1 - w0)));
      }
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dy_in, const Shape& x_shape) {
  Tensor dy = dy_in.contiguous();
  int64_t P, H, W;
  dims(x_shape, P, H, W);
  const int64_t OH = dy.size(-2), OW = dy.size(-1);
  Tensor dx = Tensor::zeros(x_shape);
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        const double g = dy.data<float>()[pl * OH * OW + oh * OW + ow] / double((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw)
            dx.data<float>()[pl * H * W + ih * W + iw] += static_cast<float>(g);
      }
  return dx;
}

std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor& x_in, int64_t OH, int64_t OW) {
  Tensor x = x_in.contiguous();
  int64_t P, H, W;
  dims(x.shape(), P, H, W);
  Tensor y = Tensor::empty(with_spatial(x.shape(), OH, OW));
  Tensor idx = Tensor::empty(with_spatial(x.shape(), OH, OW), DType::Int64);
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        float best = -std::numeric_limits<float>::infinity();
        int64_t besti = h0 * W + w0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const float v = x.data<float>()[pl * H * W + ih * W + iw];
            if (v > best || std::isnan(v)) {
              best = v;
              besti = ih * W + iw;
            }
          }
        y.data<float>()[pl * OH * OW + oh * OW + ow] = best;
        idx.data<int64_t>()[pl * OH * OW + oh * OW + ow] = besti;
      }
  return {y, idx};
}

Tensor adaptive_max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape) {
  return scatter(dy, indices, x_shape);
}

}  // namespace cnncore::reference
