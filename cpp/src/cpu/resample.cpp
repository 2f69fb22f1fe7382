// interpolate and pad: validation, the source-index tables (computed once per call in torch's
// float arithmetic so results match it bit for bit where it matters: which pixel nearest picks),
// and the threaded plane loops.
#include "cnncore/ops/resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/resample_kernels.hpp"
#include "cpu/resample_tables.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
constexpr int64_t kGrain = 1 << 14;  // output elements per thread chunk
}  // namespace

namespace resample_detail {
void check_interp(const Shape& x, int64_t out_h, int64_t out_w, double sh, double sw,
                  const char* op) {
  CNNCORE_CHECK_VALUE(x.size() == 4, op, ": input must be 4-D (N, C, H, W), but got ", x.size(),
                      "-D with shape ", shape_str(x));
  for (int64_t d : x)
    CNNCORE_CHECK_VALUE(d > 0, op, ": input must not be empty, but got shape ", shape_str(x));
  CNNCORE_CHECK_VALUE(out_h >= 1 && out_w >= 1, op,
                      ": output size must be at least (1, 1), but got (", out_h, ", ", out_w, ")");
  CNNCORE_CHECK_VALUE(std::isfinite(sh) && std::isfinite(sw) && sh >= 0 && sw >= 0, op,
                      ": scale_factor must be positive and finite, but got (", sh, ", ", sw, ")");
}

// torch's compute_scales_value / area_pixel_compute_scale, in float like its CPU kernels.
float nearest_scale(int64_t in, int64_t out, double scale) {
  return scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
}
float linear_scale(int64_t in, int64_t out, bool align_corners, double scale) {
  if (align_corners) return out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
  return nearest_scale(in, out, scale);
}

std::vector<int64_t> nearest_table(int64_t in, int64_t out, double scale) {
  std::vector<int64_t> t(out);
  const float s = nearest_scale(in, out, scale);
  for (int64_t o = 0; o < out; ++o) {
    if (out == in) t[o] = o;
    else if (out == 2 * in) t[o] = o >> 1;
    else t[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * s)), in - 1);
  }
  return t;
}

LinearTable linear_table(int64_t in, int64_t out, bool align_corners, double scale) {
  LinearTable t;
  t.i0.resize(out);
  t.i1.resize(out);
  t.l0.resize(out);
  t.l1.resize(out);
  const float s = linear_scale(in, out, align_corners, scale);
  for (int64_t o = 0; o < out; ++o) {
    if (out == in) {  // torch copies straight through, whatever align_corners says
      t.i0[o] = t.i1[o] = o;
      t.l0[o] = 1.0f;
      t.l1[o] = 0.0f;
      continue;
    }
    float src = align_corners ? s * static_cast<float>(o) : s * (static_cast<float>(o) + 0.5f) - 0.5f;
    if (!align_corners && src < 0) src = 0;
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    const float l1 = std::min(std::max(src - static_cast<float>(i0), 0.0f), 1.0f);
    t.i0[o] = i0;
    t.i1[o] = i0 + (i0 < in - 1 ? 1 : 0);
    t.l1[o] = l1;
    t.l0[o] = 1.0f - l1;
  }
  return t;
}
}  // namespace resample_detail
using namespace resample_detail;

Tensor interpolate_forward(const Tensor& x_in, int64_t OH, int64_t OW, InterpMode mode,
                           bool align_corners, double sh, double sw) {
  if (cuda::any_cuda({&x_in}))
    return cuda::interpolate_forward(x_in, OH, OW, mode, align_corners, sh, sw);
  const char* op = "interpolate";
  check_defined(x_in, op, "input");
  check_dtype(x_in, DType::Float32, op, "input");
  check_interp(x_in.shape(), OH, OW, sh, sw, op);
  Tensor x = as_nchw(x_in);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = Tensor::empty({N, C, OH, OW});
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const int64_t rows = N * C * OH;
  const int64_t grain = std::max<int64_t>(1, kGrain / OW);
  if (mode == InterpMode::Nearest) {
    const auto th = nearest_table(H, OH, sh), tw = nearest_table(W, OW, sw);
    const bool twice = OW == 2 * W;  // tw[ow] == ow / 2: no table lookups
    parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t pl = r / OH, oh = r % OH;
        float* yr = yp + r * OW;
        if (r > b && oh > 0 && th[oh] == th[oh - 1]) {  // upsampling repeats rows: copy the last
          std::memcpy(yr, yr - OW, sizeof(float) * OW);
          continue;
        }
        const float* xr = xp + pl * H * W + th[oh] * W;
        if (twice) {
          for (int64_t iw = 0; iw < W; ++iw) yr[2 * iw] = yr[2 * iw + 1] = xr[iw];
        } else {
          for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = xr[tw[ow]];
        }
      }
    });
  } else {
    const auto th = linear_table(H, OH, align_corners, sh), tw = linear_table(W, OW, align_corners, sw);
    // Separable: each input row used is interpolated horizontally once into a cached buffer
    // (t = b0*x[w0] + b1*x[w1]), then every output row is a0*t0 + a1*t1, vectorised. The same
    // expression torch evaluates, with a quarter of the gathers.
    parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
      std::vector<float> buf(static_cast<size_t>(2 * OW));
      int64_t tag[2] = {-1, -1};  // cached input row per slot, as pl * H + ih
      auto hrow = [&](int64_t key, int64_t avoid) -> const float* {
        for (int s = 0; s < 2; ++s)
          if (tag[s] == key) return buf.data() + s * OW;
        // rows only move forward, so the smaller key is the one not needed again
        const int s = tag[0] == avoid ? 1 : tag[1] == avoid ? 0 : (tag[0] < tag[1] ? 0 : 1);
        tag[s] = key;
        float* t = buf.data() + s * OW;
        const float* xr = xp + key * W;
        for (int64_t ow = 0; ow < OW; ++ow)
          t[ow] = tw.l0[ow] * xr[tw.i0[ow]] + tw.l1[ow] * xr[tw.i1[ow]];
        return t;
      };
      for (int64_t r = b; r < e; ++r) {
        const int64_t pl = r / OH, oh = r % OH;
        const int64_t k0 = pl * H + th.i0[oh], k1 = pl * H + th.i1[oh];
        const float* t0 = hrow(k0, -1);
        const float* t1 = hrow(k1, k0);
        CNNCORE_ISA_CALL(lerp_rows(t0, t1, th.l0[oh], th.l1[oh], yp + r * OW, OW));
      }
    });
  }
  return y;
}

Tensor interpolate_backward(const Tensor& dy_in, const Shape& x_shape, InterpMode mode,
                            bool align_corners, double sh, double sw) {
  if (cuda::any_cuda({&dy_in}))
    return cuda::interpolate_backward(dy_in, x_shape, mode, align_corners, sh, sw);
  const char* op = "interpolate_backward";
  check_defined(dy_in, op, "grad_output");
  check_dtype(dy_in, DType::Float32, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy_in.dim() == 4, op, ": grad_output must be 4-D, but got shape ",
                      shape_str(dy_in.shape()));
  check_interp(x_shape, dy_in.size(2), dy_in.size(3), sh, sw, op);
  CNNCORE_CHECK_VALUE(dy_in.size(0) == x_shape[0] && dy_in.size(1) == x_shape[1], op,
                      ": grad_output must have the batch and channels of input_shape ",
                      shape_str(x_shape), ", but got ", shape_str(dy_in.shape()));
  Tensor dy = dy_in.contiguous();
  const int64_t N = x_shape[0], C = x_shape[1], H = x_shape[2], W = x_shape[3];
  const int64_t OH = dy.size(2), OW = dy.size(3);
  Tensor dx = Tensor::empty(x_shape);  // each plane zeroed by its thread, in cache
  const float* gp = dy.data<float>();
  float* dp = dx.data<float>();
  // Several outputs feed one input, so threads split planes, never rows of one plane.
  const int64_t grain = std::max<int64_t>(1, kGrain / (OH * OW));
  if (mode == InterpMode::Nearest) {
    const auto th = nearest_table(H, OH, sh), tw = nearest_table(W, OW, sw);
    const bool twice = OW == 2 * W;
    parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        std::fill(dp + pl * H * W, dp + (pl + 1) * H * W, 0.0f);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const float* g = gp + (pl * OH + oh) * OW;
          float* d = dp + pl * H * W + th[oh] * W;
          if (twice) {
            for (int64_t iw = 0; iw < W; ++iw) d[iw] += g[2 * iw] + g[2 * iw + 1];
          } else {
            for (int64_t ow = 0; ow < OW; ++ow) d[tw[ow]] += g[ow];
          }
        }
      }
    });
  } else {
    const auto th = linear_table(H, OH, align_corners, sh), tw = linear_table(W, OW, align_corners, sw);
    // Separable, the forward transposed: fold a dy row horizontally into t (W wide), then add
    // a0*t and a1*t to the two input rows, vectorised.
    parallel_for(0, N * C, grain, [&](int64_t b, int64_t e) {
      std::vector<float> t(static_cast<size_t>(W));
      for (int64_t pl = b; pl < e; ++pl) {
        std::fill(dp + pl * H * W, dp + (pl + 1) * H * W, 0.0f);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const float* g = gp + (pl * OH + oh) * OW;
          std::fill(t.begin(), t.end(), 0.0f);
          for (int64_t ow = 0; ow < OW; ++ow) {
            t[tw.i0[ow]] += tw.l0[ow] * g[ow];
            t[tw.i1[ow]] += tw.l1[ow] * g[ow];
          }
          float* d0 = dp + pl * H * W + th.i0[oh] * W;
          float* d1 = dp + pl * H * W + th.i1[oh] * W;
          CNNCORE_ISA_CALL(axpy_rows(t.data(), th.l0[oh], th.l1[oh], d0, d1, W));
        }
      }
    });
  }
  return dx;
}

// ---- pad ---------------------------------------------------------------------------------------
namespace resample_detail {
const char* pad_mode_name(PadMode m) {
  return m == PadMode::Constant ? "constant" : m == PadMode::Reflect ? "reflect" : "replicate";
}

PadGeom pad_geom(const Shape& x, const std::vector<int64_t>& pads, PadMode mode, const char* op) {
  CNNCORE_CHECK_VALUE(pads.size() == 2 || pads.size() == 4, op,
                      ": pad must have 2 (left, right) or 4 (left, right, top, bottom) entries, but got ",
                      pads.size());
  const size_t dims = pads.size() / 2;
  CNNCORE_CHECK_VALUE(x.size() >= dims, op, ": a pad of ", pads.size(), " entries needs an input of at least ",
                      dims, " dims, but got shape ", shape_str(x));
  for (int64_t d : x)
    CNNCORE_CHECK_VALUE(d > 0, op, ": input must not be empty, but got shape ", shape_str(x));
  constexpr int64_t kMax = int64_t{1} << 40;
  for (int64_t p : pads)
    CNNCORE_CHECK_VALUE(p > -kMax && p < kMax, op, ": pad entries must be below 2^40 in size, but got ", p);
  PadGeom g;
  g.W = x.back();
  g.left = pads[0];
  g.right = pads[1];
  if (dims == 2) {
    g.H = x[x.size() - 2];
    g.top = pads[2];
    g.bottom = pads[3];
  }
  for (size_t i = 0; i + dims < x.size(); ++i) g.P *= x[i];
  g.OW = g.W + g.left + g.right;
  g.OH = g.H + g.top + g.bottom;
  if (mode == PadMode::Reflect) {
    CNNCORE_CHECK_VALUE(g.left < g.W && g.right < g.W && g.top < g.H && g.bottom < g.H, op,
                        ": padding size should be less than the corresponding input dimension for mode "
                        "'reflect', but got pad ", shape_str(pads), " for input shape ", shape_str(x));
  }
  g.out = x;
  g.out.back() = g.OW;
  if (dims == 2) g.out[x.size() - 2] = g.OH;
  CNNCORE_CHECK_VALUE(g.OW >= 1 && g.OH >= 1, op, ": padding ", shape_str(pads), " (mode '",
                      pad_mode_name(mode), "') would give output shape ", shape_str(g.out),
                      " from input ", shape_str(x), "; every size must stay >= 1");
  return g;
}
}  // namespace resample_detail

namespace {
// Source index along one dim for an output index, -1 where the constant fills.
int64_t pad_src(int64_t o, int64_t before, int64_t n, PadMode mode) {
  int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::Constant: return -1;
    case PadMode::Replicate: return i < 0 ? 0 : n - 1;
    case PadMode::Reflect: return i < 0 ? -i : 2 * (n - 1) - i;
  }
  return -1;
}

std::vector<int64_t> pad_table(int64_t out, int64_t before, int64_t n, PadMode mode) {
  std::vector<int64_t> t(out);
  for (int64_t o = 0; o < out; ++o) t[o] = pad_src(o, before, n, mode);
  return t;
}
}  // namespace

Shape pad_output_shape(const Shape& x_shape, const std::vector<int64_t>& pads, PadMode mode) {
  return pad_geom(x_shape, pads, mode, "pad").out;
}

Tensor pad_forward(const Tensor& x_in, const std::vector<int64_t>& pads, PadMode mode, float value) {
  if (cuda::any_cuda({&x_in})) return cuda::pad_forward(x_in, pads, mode, value);
  const char* op = "pad";
  check_defined(x_in, op, "input");
  check_dtype(x_in, DType::Float32, op, "input");
  CNNCORE_CHECK_VALUE(x_in.dim() >= 1, op, ": input must have at least 1 dim, but got a scalar");
  const PadGeom g = pad_geom(x_in.shape(), pads, mode, op);
  Tensor x = as_nchw(x_in);
  Tensor y = Tensor::empty(g.out);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const auto th = pad_table(g.OH, g.top, g.H, mode), tw = pad_table(g.OW, g.left, g.W, mode);
  // Output columns copied straight from the same input row: [c0, c1).
  const int64_t c0 = std::clamp<int64_t>(g.left, 0, g.OW), c1 = std::clamp<int64_t>(g.left + g.W, 0, g.OW);
  parallel_for(0, g.P * g.OH, std::max<int64_t>(1, kGrain / g.OW), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t pl = r / g.OH, oh = r % g.OH;
      float* yr = yp + r * g.OW;
      if (th[oh] < 0) {
        std::fill(yr, yr + g.OW, value);
        continue;
      }
      const float* xr = xp + (pl * g.H + th[oh]) * g.W;
      for (int64_t ow = 0; ow < c0; ++ow) yr[ow] = tw[ow] < 0 ? value : xr[tw[ow]];
      if (c1 > c0) std::memcpy(yr + c0, xr + (c0 - g.left), sizeof(float) * (c1 - c0));
      for (int64_t ow = std::max(c0, c1); ow < g.OW; ++ow) yr[ow] = tw[ow] < 0 ? value : xr[tw[ow]];
    }
  });
  return y;
}

Tensor pad_backward(const Tensor& dy_in, const Shape& x_shape, const std::vector<int64_t>& pads,
                    PadMode mode) {
  if (cuda::any_cuda({&dy_in})) return cuda::pad_backward(dy_in, x_shape, pads, mode);
  const char* op = "pad_backward";
  CNNCORE_CHECK_VALUE(!x_shape.empty(), op, ": input_shape must have at least 1 dim");
  const PadGeom g = pad_geom(x_shape, pads, mode, op);
  check_defined(dy_in, op, "grad_output");
  check_dtype(dy_in, DType::Float32, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy_in.shape() == g.out, op, ": grad_output must have shape ", shape_str(g.out),
                      ", but got ", shape_str(dy_in.shape()));
  Tensor dy = dy_in.contiguous();
  const float* gp = dy.data<float>();
  if (mode == PadMode::Constant) {
    // Each input element went to at most one output: copy its gradient back row by row (the
    // cropped parts get zero), no zero-fill plus scatter.
    Tensor dx = Tensor::empty(x_shape);
    float* dp = dx.data<float>();
    const int64_t i0 = std::clamp<int64_t>(-g.left, 0, g.W), i1 = std::clamp<int64_t>(g.OW - g.left, 0, g.W);
    parallel_for(0, g.P * g.H, std::max<int64_t>(1, kGrain / g.W), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t pl = r / g.H, oh = r % g.H + g.top;
        float* dr = dp + r * g.W;
        if (oh < 0 || oh >= g.OH || i1 <= i0) {
          std::fill(dr, dr + g.W, 0.0f);
          continue;
        }
        std::fill(dr, dr + i0, 0.0f);
        std::memcpy(dr + i0, gp + (pl * g.OH + oh) * g.OW + i0 + g.left, sizeof(float) * (i1 - i0));
        std::fill(dr + i1, dr + g.W, 0.0f);
      }
    });
    return dx;
  }
  Tensor dx = Tensor::empty(x_shape);  // each plane zeroed by its thread, in cache
  float* dp = dx.data<float>();
  const auto th = pad_table(g.OH, g.top, g.H, mode), tw = pad_table(g.OW, g.left, g.W, mode);
  const int64_t c0 = std::clamp<int64_t>(g.left, 0, g.OW), c1 = std::clamp<int64_t>(g.left + g.W, 0, g.OW);
  // Reflect/replicate fold several output rows onto one input row: threads split planes.
  parallel_for(0, g.P, std::max<int64_t>(1, kGrain / (g.OH * g.OW)), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      std::fill(dp + pl * g.H * g.W, dp + (pl + 1) * g.H * g.W, 0.0f);
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        if (th[oh] < 0) continue;
        const float* gr = gp + (pl * g.OH + oh) * g.OW;
        float* dr = dp + (pl * g.H + th[oh]) * g.W;
        for (int64_t ow = 0; ow < c0; ++ow)
          if (tw[ow] >= 0) dr[tw[ow]] += gr[ow];
        for (int64_t ow = c0; ow < c1; ++ow) dr[ow - g.left] += gr[ow];
        for (int64_t ow = std::max(c0, c1); ow < g.OW; ++ow)
          if (tw[ow] >= 0) dr[tw[ow]] += gr[ow];
      }
    }
  });
  return dx;
}

}  // namespace cnncore
