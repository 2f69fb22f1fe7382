// The resampling oracle: each output element computes its own source coordinate from torch's
// formulas (written out again here, not shared with the fast tables); padding walks every output
// element and resolves its source by folding the coordinate.
#include "cpu/reference/resample.hpp"

#include <algorithm>
#include <cmath>

namespace cnncore::reference {

namespace {
// torch computes the per-pixel scale in float.
float src_scale(int64_t in, int64_t out, double scale) {
  return scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
}
int64_t nearest_src(int64_t o, int64_t in, int64_t out, double scale) {
  if (out == in) return o;
  if (out == 2 * in) return o / 2;
  const float s = src_scale(in, out, scale);
  const int64_t i = static_cast<int64_t>(std::floor(static_cast<float>(o) * s));
  return i < in - 1 ? i : in - 1;
}
void linear_src(int64_t o, int64_t in, int64_t out, bool ac, double scale, int64_t& i0, int64_t& i1,
                float& l0, float& l1) {
  if (out == in) {  // torch: a straight copy, also with align_corners
    i0 = i1 = o;
    l0 = 1;
    l1 = 0;
    return;
  }
  float src;
  if (ac) {
    const float s = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
    src = s * static_cast<float>(o);
  } else {
    src = src_scale(in, out, scale) * (static_cast<float>(o) + 0.5f) - 0.5f;
    if (src < 0) src = 0;
  }
  i0 = static_cast<int64_t>(std::floor(src));
  if (i0 > in - 1) i0 = in - 1;
  l1 = src - static_cast<float>(i0);
  if (l1 < 0) l1 = 0;
  if (l1 > 1) l1 = 1;
  l0 = 1 - l1;
  i1 = i0 < in - 1 ? i0 + 1 : i0;
}

int64_t fold(int64_t i, int64_t n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  if (mode == PadMode::Constant) return -1;
  if (mode == PadMode::Replicate) return i < 0 ? 0 : n - 1;
  return i < 0 ? -i : 2 * (n - 1) - i;
}

struct Geom {
  int64_t P = 1, H = 1, W = 1, OH = 1, OW = 1, top = 0, left = 0;
  Shape out;
};
Geom geom(const Shape& x, const std::vector<int64_t>& pads, PadMode mode) {
  // the fast path's validation is the shape rule; the reference just reuses its result
  Geom g;
  g.out = pad_output_shape(x, pads, mode);
  const bool two = pads.size() == 4;
  g.W = x.back();
  g.OW = g.out.back();
  g.left = pads[0];
  if (two) {
    g.H = x[x.size() - 2];
    g.OH = g.out[x.size() - 2];
    g.top = pads[2];
  }
  for (size_t i = 0; i + (two ? 2 : 1) < x.size(); ++i) g.P *= x[i];
  return g;
}
}  // namespace

Tensor interpolate_forward(const Tensor& x_in, int64_t OH, int64_t OW, InterpMode mode, bool ac,
                           double sh, double sw) {
  Tensor x = x_in.contiguous();
  CNNCORE_CHECK_VALUE(x.dim() == 4, "reference interpolate: input must be 4-D");
  const int64_t P = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = Tensor::empty({x.size(0), x.size(1), OH, OW});
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float* s = xp + pl * H * W;
        float v;
        if (mode == InterpMode::Nearest) {
          v = s[nearest_src(oh, H, OH, sh) * W + nearest_src(ow, W, OW, sw)];
        } else {
          int64_t h0, h1, w0, w1;
          float a0, a1, b0, b1;
          linear_src(oh, H, OH, ac, sh, h0, h1, a0, a1);
          linear_src(ow, W, OW, ac, sw, w0, w1, b0, b1);
          v = static_cast<float>(double(a0) * (double(b0) * s[h0 * W + w0] + double(b1) * s[h0 * W + w1]) +
                                 double(a1) * (double(b0) * s[h1 * W + w0] + double(b1) * s[h1 * W + w1]));
        }
        yp[(pl * OH + oh) * OW + ow] = v;
      }
  return y;
}

Tensor interpolate_backward(const Tensor& dy_in, const Shape& x_shape, InterpMode mode, bool ac,
                            double sh, double sw) {
  Tensor dy = dy_in.contiguous();
  CNNCORE_CHECK_VALUE(dy.dim() == 4 && x_shape.size() == 4, "reference interpolate_backward: 4-D only");
  const int64_t P = x_shape[0] * x_shape[1], H = x_shape[2], W = x_shape[3];
  const int64_t OH = dy.size(2), OW = dy.size(3);
  std::vector<double> acc(static_cast<size_t>(P * H * W), 0.0);
  const float* g = dy.data<float>();
  for (int64_t pl = 0; pl < P; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double* d = acc.data() + pl * H * W;
        const double gv = g[(pl * OH + oh) * OW + ow];
        if (mode == InterpMode::Nearest) {
          d[nearest_src(oh, H, OH, sh) * W + nearest_src(ow, W, OW, sw)] += gv;
        } else {
          int64_t h0, h1, w0, w1;
          float a0, a1, b0, b1;
          linear_src(oh, H, OH, ac, sh, h0, h1, a0, a1);
          linear_src(ow, W, OW, ac, sw, w0, w1, b0, b1);
          d[h0 * W + w0] += gv * a0 * b0;
          d[h0 * W + w1] += gv * a0 * b1;
          d[h1 * W + w0] += gv * a1 * b0;
          d[h1 * W + w1] += gv * a1 * b1;
        }
      }
  Tensor dx = Tensor::empty(x_shape);
  for (size_t i = 0; i < acc.size(); ++i) dx.data<float>()[i] = static_cast<float>(acc[i]);
  return dx;
}

Tensor pad_forward(const Tensor& x_in, const std::vector<int64_t>& pads, PadMode mode, float value) {
  Tensor x = x_in.contiguous();
  const Geom g = geom(x.shape(), pads, mode);
  Tensor y = Tensor::empty(g.out);
  for (int64_t pl = 0; pl < g.P; ++pl)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t ih = fold(oh - g.top, g.H, mode), iw = fold(ow - g.left, g.W, mode);
        y.data<float>()[(pl * g.OH + oh) * g.OW + ow] =
            (ih < 0 || iw < 0) ? value : x.data<float>()[(pl * g.H + ih) * g.W + iw];
      }
  return y;
}

Tensor pad_backward(const Tensor& dy_in, const Shape& x_shape, const std::vector<int64_t>& pads,
                    PadMode mode) {
  Tensor dy = dy_in.contiguous();
  const Geom g = geom(x_shape, pads, mode);
  CNNCORE_CHECK_VALUE(dy.shape() == g.out, "reference pad_backward: grad_output shape ",
                      shape_str(dy.shape()), " != ", shape_str(g.out));
  std::vector<double> acc(static_cast<size_t>(g.P * g.H * g.W), 0.0);
  for (int64_t pl = 0; pl < g.P; ++pl)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t ih = fold(oh - g.top, g.H, mode), iw = fold(ow - g.left, g.W, mode);
        if (ih >= 0 && iw >= 0)
          acc[(pl * g.H + ih) * g.W + iw] += dy.data<float>()[(pl * g.OH + oh) * g.OW + ow];
      }
  Tensor dx = Tensor::empty(x_shape);
  for (size_t i = 0; i < acc.size(); ++i) dx.data<float>()[i] = static_cast<float>(acc[i]);
  return dx;
}

}  // namespace cnncore::reference
