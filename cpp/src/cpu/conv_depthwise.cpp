// Depthwise convolution (groups == C, K = C * multiplier) without im2col: per input plane a
// padded, phase-split copy (see conv_depthwise_kernels.hpp), then SIMD loops over output rows.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/conv2d.hpp"
#include "cpu/conv_depthwise_kernels.hpp"
#include "parallel.hpp"

namespace cnncore {

DwGeom DwGeom::from(const Conv2dParams& p) {
  DwGeom g{};
  g.H = p.H, g.W = p.W, g.OH = p.OH, g.OW = p.OW, g.R = p.R, g.S = p.S;
  g.sh = p.stride_h, g.sw = p.stride_w, g.dh = p.dil_h, g.dw = p.dil_w;
  g.pt = p.pad_t, g.pl = p.pad_l;
  g.Hp = (p.OH - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
  const int64_t Wp = (p.OW - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1;
  g.Wj = (Wp + p.stride_w - 1) / p.stride_w;
  g.small_taps = p.R * p.S <= 64;
  if (g.small_taps)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) g.tap[r * p.S + s] = g.tap_offset(r, s);
  return g;
}

namespace conv_impl {

namespace {

// x plane (H, W) -> buf (sw, Hp, Wj): padded and split by column phase, overwritten.
void pack_plane(const float* x, const DwGeom& g, float* buf) {
  for (int64_t ph = 0; ph < g.sw; ++ph)
    for (int64_t i = 0; i < g.Hp; ++i) {
      float* dst = buf + (ph * g.Hp + i) * g.Wj;
      const int64_t ih = i - g.pt;
      if (ih < 0 || ih >= g.H) {
        std::memset(dst, 0, sizeof(float) * g.Wj);
        continue;
      }
      const float* src = x + ih * g.W;
      for (int64_t j = 0; j < g.Wj; ++j) {
        const int64_t iw = j * g.sw + ph - g.pl;
        dst[j] = (iw >= 0 && iw < g.W) ? src[iw] : 0.0f;
      }
    }
}

// The adjoint of pack_plane: dx plane (H, W) from buf, overwritten; pixels outside the buffer
// (never read by the forward) get 0.
void unpack_plane(const float* buf, const DwGeom& g, float* dx) {
  const int64_t Wp = g.Wj * g.sw;
  for (int64_t ih = 0; ih < g.H; ++ih) {
    float* dst = dx + ih * g.W;
    const int64_t i = ih + g.pt;
    if (i >= g.Hp) {
      std::memset(dst, 0, sizeof(float) * g.W);
      continue;
    }
    for (int64_t iw = 0; iw < g.W; ++iw) {
      const int64_t c = iw + g.pl;
      dst[iw] = c < Wp ? buf[((c % g.sw) * g.Hp + i) * g.Wj + c / g.sw] : 0.0f;
    }
  }
}

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
      pack_plane(xp + nc * p.H * p.W, g, buf.data());
      for (int64_t m = 0; m < M; ++m) {
        const int64_t k = c * M + m;
        CNNCORE_ISA_CALL(dw_forward_plane(buf.data(), g, wp + k * RS, bias ? bias[k] : 0.0f,
                                          yp + (n * p.K + k) * L));
      }
    }
  });
  return y;
}

Tensor depthwise_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  const DwGeom g = DwGeom::from(p);
  const int64_t M = p.K / p.C, L = p.OH * p.OW, RS = p.R * p.S;
  const float* dyp = dy.data<float>();
  const float* wp = w.data<float>();
  float* dxp = dx.data<float>();
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
      unpack_plane(buf.data(), g, dxp + nc * p.H * p.W);
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
        pack_plane(xp + (n * p.C + c) * p.H * p.W, g, buf.data());
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
