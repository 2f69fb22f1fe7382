// Depthwise convolution (groups == C, K = C * multiplier) without im2col: per input plane a
// padded, phase-split copy (see conv_depthwise_kernels.hpp), then SIMD loops over output rows.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/conv2d.hpp"
#include "cpu/conv_depthwise_kernels.hpp"
#include "parallel.hpp"

namespace cnncore {

DwGeom DwGeom::make(int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t R, int64_t S,
                    int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl) {
  DwGeom g{};
  g.H = H, g.W = W, g.OH = OH, g.OW = OW, g.R = R, g.S = S;
  g.sh = sh, g.sw = sw, g.dh = dh, g.dw = dw, g.pt = pt, g.pl = pl;
  g.Hp = (OH - 1) * sh + (R - 1) * dh + 1;
  const int64_t Wp = (OW - 1) * sw + (S - 1) * dw + 1;
  g.Wj = (Wp + sw - 1) / sw;
  g.small_taps = R * S <= 64;
  if (g.small_taps)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) g.tap[r * S + s] = g.tap_offset(r, s);
  return g;
}

DwGeom DwGeom::from(const Conv2dParams& p) {
  return make(p.H, p.W, p.OH, p.OW, p.R, p.S, p.stride_h, p.stride_w, p.dil_h, p.dil_w, p.pad_t,
              p.pad_l);
}

namespace conv_impl {

namespace {

// Planes per chunk so that a chunk is worth waking a thread for.
int64_t plane_grain(const Conv2dParams& p) {
  const int64_t work = std::max<int64_t>(1, p.OH * p.OW * p.R * p.S * (p.K / p.C));
  return std::max<int64_t>(1, (int64_t{1} << 15) / work);
}

}  // namespace

Tensor depthwise_forward(const Tensor& x, const Tensor& w, const float* bias, const Conv2dParams& p) {
  Tensor y = Tensor::empty(p.output_shape());
  const DwGeom g = DwGeom::from(p);
  const int64_t M = p.K / p.C, L = p.OH * p.OW, RS = p.R * p.S;
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* yp = y.data<float>();
  parallel_for(0, p.N * p.C, plane_grain(p), [&](int64_t b, int64_t e) {
    std::vector<float> buf(static_cast<size_t>(g.buf_size()));  // once per chunk, not per plane
    for (int64_t nc = b; nc < e; ++nc) {
      const int64_t n = nc / p.C, c = nc % p.C;
      CNNCORE_ISA_CALL(dw_pack_plane(xp + nc * p.H * p.W, g, buf.data()));
      for (int64_t m = 0; m < M; ++m) {
        const int64_t k = c * M + m;
        CNNCORE_ISA_CALL(dw_forward_plane(buf.data(), g, wp + k * RS, bias ? bias[k] : 0.0f,
                                          yp + (n * p.K + k) * L, false));
      }
    }
  });
  return y;
}

Tensor depthwise_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  const int64_t M = p.K / p.C, L = p.OH * p.OW, RS = p.R * p.S;
  const float* dyp = dy.data<float>();
  const float* wp = w.data<float>();
  float* dxp = dx.data<float>();
  if (!p.is_strided()) {
    // Stride 1: dx is the forward conv of dy with the kernel flipped and padding
    // dil*(k-1) - pad (negative = a crop), so it runs at the forward kernel's speed instead of
    // scattering into overlapping outputs.
    const DwGeom g = DwGeom::make(p.OH, p.OW, p.H, p.W, p.R, p.S, 1, 1, p.dil_h, p.dil_w,
                                  p.dil_h * (p.R - 1) - p.pad_t, p.dil_w * (p.S - 1) - p.pad_l);
    std::vector<float> flipped(static_cast<size_t>(p.K * RS));
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t t = 0; t < RS; ++t) flipped[k * RS + t] = wp[k * RS + (RS - 1 - t)];
    parallel_for(0, p.N * p.C, plane_grain(p), [&](int64_t b, int64_t e) {
      std::vector<float> buf(static_cast<size_t>(g.buf_size()));
      for (int64_t nc = b; nc < e; ++nc) {
        const int64_t n = nc / p.C, c = nc % p.C;
        for (int64_t m = 0; m < M; ++m) {
          const int64_t k = c * M + m;
          CNNCORE_ISA_CALL(dw_pack_plane(dyp + (n * p.K + k) * L, g, buf.data()));
          CNNCORE_ISA_CALL(dw_forward_plane(buf.data(), g, flipped.data() + k * RS, 0.0f,
                                            dxp + nc * p.H * p.W, m > 0));
        }
      }
    });
    return dx;
  }
  const DwGeom g = DwGeom::from(p);
  parallel_for(0, p.N * p.C, plane_grain(p), [&](int64_t b, int64_t e) {
    std::vector<float> buf(static_cast<size_t>(g.buf_size()));
    for (int64_t nc = b; nc < e; ++nc) {
      const int64_t n = nc / p.C, c = nc % p.C;
      std::fill(buf.begin(), buf.end(), 0.0f);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t k = c * M + m;
        CNNCORE_ISA_CALL(dw_backward_input_plane(buf.data(), g, wp + k * RS,
                                                 dyp + (n * p.K + k) * L));
      }
      CNNCORE_ISA_CALL(dw_unpack_plane(buf.data(), g, dxp + nc * p.H * p.W));
    }
  });
  return dx;
}

Tensor depthwise_backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  Tensor dw = Tensor::zeros(p.weight_shape());
  const DwGeom g = DwGeom::from(p);
  const int64_t M = p.K / p.C, L = p.OH * p.OW, RS = p.R * p.S;
  const float* dyp = dy.data<float>();
  const float* xp = x.data<float>();
  float* dwp = dw.data<float>();
  // Threads over channels: the weights of channel c's outputs are written by one thread only.
  const int64_t grain = std::max<int64_t>(1, plane_grain(p) / std::max<int64_t>(p.N, 1));
  parallel_for(0, p.C, grain, [&](int64_t b, int64_t e) {
    std::vector<float> buf(static_cast<size_t>(g.buf_size()));
    for (int64_t c = b; c < e; ++c)
      for (int64_t n = 0; n < p.N; ++n) {
        CNNCORE_ISA_CALL(dw_pack_plane(xp + (n * p.C + c) * p.H * p.W, g, buf.data()));
        for (int64_t m = 0; m < M; ++m) {
          const int64_t k = c * M + m;
          CNNCORE_ISA_CALL(dw_backward_weight_plane(buf.data(), g, dyp + (n * p.K + k) * L,
                                                    dwp + k * RS));
        }
      }
  });
  return dw;
}

}  // namespace conv_impl
}  // namespace cnncore
