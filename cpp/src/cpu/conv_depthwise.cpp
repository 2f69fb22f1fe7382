// Direct convolution without im2col, for depthwise layers (groups == C, K = C * multiplier) and
// layers with few input channels per group (the RGB stem, LeNet's first layer): per input plane
// a padded, phase-split copy (see conv_depthwise_kernels.hpp), then SIMD loops over output rows,
// one (output channel, input channel) pair at a time.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "cpu/activation_kernels.hpp"
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

bool conv_variant_forced(const char* name) {
  const char* forced = std::getenv("CNNCORE_CONV_ALGO");
  return forced && std::strcmp(forced, name) == 0;
}

bool depthwise_stride2_fits(const Conv2dParams& p) {
  return s2_fits(DwGeom::from(p)) && !conv_variant_forced("depthwise-phase-split");
}

namespace {

// Work items per chunk so that a chunk is worth waking a thread for; `taps` = FMAs per output.
int64_t grain_for(int64_t outputs, int64_t taps) {
  return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, outputs * taps));
}

// The backward-input paths thread over input planes (n, c): a chunk packs the Kg dy planes of an
// (image, group) once with pack(dy plane, dst), plane_floats apart, and reuses them for the
// group's Cg channels: body(n*C + c, group, c within the group, packed planes, next), next being
// the Kg*L dy floats the chunk packs after this item (for prefetching) or nullptr.
template <class Pack, class Body>
void over_input_planes(const Conv2dParams& p, const float* dyp, int64_t grain,
                       int64_t plane_floats, const Pack& pack, const Body& body) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, L = p.OH * p.OW;
  parallel_for(0, p.N * p.C, grain, [&](int64_t b, int64_t e) {
    std::vector<float> buf(static_cast<size_t>(Kg * plane_floats));
    int64_t packed = -1;
    for (int64_t nc = b; nc < e; ++nc) {
      const int64_t n = nc / p.C, ci = nc % p.C, grp = ci / Cg, key = n * p.groups + grp;
      if (key != packed) {
        for (int64_t kk = 0; kk < Kg; ++kk)
          pack(dyp + (n * p.K + grp * Kg + kk) * L, buf.data() + kk * plane_floats);
        packed = key;
      }
      const int64_t nn = (nc + 1) / p.C, ng = (nc + 1) % p.C / Cg;
      const bool more = nc + 1 < e && nn * p.groups + ng != key;
      body(nc, grp, ci % Cg, buf.data(), more ? dyp + (nn * p.K + ng * Kg) * L : nullptr);
    }
  });
}

// The input plane copy the kernels read: stride-2 layout or phase split (see above).
void pack_input_plane(const float* x, const DwGeom& g, bool s2, float* buf) {
  if (s2) {
    CNNCORE_ISA_CALL(dw_pack_plane_s2(x, g, buf));
  } else {
    CNNCORE_ISA_CALL(dw_pack_plane(x, g, buf));
  }
}

}  // namespace

Tensor depthwise_forward(const Tensor& x, const Tensor& w, const float* bias,
                         const Conv2dParams& p, const ConvPost* post) {
  const bool after = has_post(post);
  Tensor y = Tensor::empty(p.output_shape());
  const DwGeom g = DwGeom::from(p);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, L = p.OH * p.OW, RS = p.R * p.S;
  // Column stride 2: a plain padded copy whose zero margins, written once per chunk, serve
  // every plane; the kernel deinterleaves in registers (the phase split cost more than the FMAs).
  const bool s2 = depthwise_stride2_fits(p);
  const int64_t bs = s2 ? s2_buf_size(g) : g.buf_size();
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* yp = y.data<float>();
  // Threads over (image, output channel): batch 1 with one group still uses every thread. A
  // chunk packs the Cg input planes of a group once and reuses them for its channels there.
  parallel_for(0, p.N * p.K, grain_for(L, Cg * RS), [&](int64_t b, int64_t e) {
    std::vector<float> buf(static_cast<size_t>(Cg * bs));  // once per chunk
    int64_t packed = -1;                                   // (n, group) in buf
    auto pack = [&](const float* src, float* dst) { pack_input_plane(src, g, s2, dst); };
    for (int64_t nk = b; nk < e; ++nk) {
      const int64_t n = nk / p.K, k = nk % p.K, grp = k / Kg, key = n * p.groups + grp;
      if (key != packed) {
        for (int64_t c = 0; c < Cg; ++c) pack(xp + (n * p.C + grp * Cg + c) * p.H * p.W,
                                              buf.data() + c * bs);
        packed = key;
      }
      for (int64_t c = 0; c < Cg; ++c) {
        const float* wk = wp + (k * Cg + c) * RS;
        const float b = bias ? bias[k] : 0.0f;
        // The input plane the next item packs (another group or image), if any: prefetched
        // while this plane computes, so its pack reads from cache.
        const int64_t nn = (nk + 1) / p.K, ng = (nk + 1) % p.K / Kg;
        const bool more = nk + 1 < e && c + 1 == Cg && nn * p.groups + ng != key;
        const float* next = more ? xp + (nn * p.C + ng * Cg) * p.H * p.W : nullptr;
        if (s2) {
          CNNCORE_ISA_CALL(dw_forward_plane_s2(buf.data() + c * bs, g, wk, b, yp + nk * L, c > 0,
                                               next, Cg * p.H * p.W));
        } else {
          CNNCORE_ISA_CALL(dw_forward_plane(buf.data() + c * bs, g, wk, b, yp + nk * L, c > 0,
                                            next, Cg * p.H * p.W));
        }
      }
      // The epilogue on the finished plane while it is still in L1.
      if (after)
        CNNCORE_ISA_CALL(add_clamp(yp + nk * L, post->residual ? post->residual + nk * L : nullptr,
                                   L, post->low(), post->high()));
    }
  });
  return y;
}

Tensor depthwise_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, L = p.OH * p.OW, RS = p.R * p.S;
  const int64_t HW = p.H * p.W;
  const float* dyp = dy.data<float>();
  const float* wp = w.data<float>();
  float* dxp = dx.data<float>();
  if (!p.is_strided()) {
    // Stride 1: dx is the forward conv of dy with the kernel flipped and padding
    // dil*(k-1) - pad (negative = a crop), so it runs at the forward kernel's speed instead of
    // scattering into overlapping outputs.
    const DwGeom g = DwGeom::make(p.OH, p.OW, p.H, p.W, p.R, p.S, 1, 1, p.dil_h, p.dil_w,
                                  p.dil_h * (p.R - 1) - p.pad_t, p.dil_w * (p.S - 1) - p.pad_l);
    const int64_t bs = g.buf_size();
    std::vector<float> flipped(static_cast<size_t>(p.K * Cg * RS));
    for (int64_t kc = 0; kc < p.K * Cg; ++kc)
      for (int64_t t = 0; t < RS; ++t) flipped[kc * RS + t] = wp[kc * RS + (RS - 1 - t)];
    over_input_planes(p, dyp, grain_for(HW, Kg * RS), bs,
                      [&](const float* src, float* dst) {
                        CNNCORE_ISA_CALL(dw_pack_plane(src, g, dst));
                      },
                      [&](int64_t nc, int64_t grp, int64_t c, const float* buf,
                          const float* next) {
                        for (int64_t kk = 0; kk < Kg; ++kk)
                          CNNCORE_ISA_CALL(dw_forward_plane(
                              buf + kk * bs, g, flipped.data() + ((grp * Kg + kk) * Cg + c) * RS,
                              0.0f, dxp + nc * HW, kk > 0, kk + 1 == Kg ? next : nullptr,
                              Kg * p.OH * p.OW));
                      });
    return dx;
  }
  // Strided: a gather per input row (dw_backward_input_gather). A chunk packs the Kg dy planes
  // of a group once and reuses them for the group's Cg input channels.
  const DwGeom g = DwGeom::from(p);
  const int64_t qs = gather_dy_size(g);
  const bool s2 = depthwise_stride2_fits(p) && Kg * RS <= kS2GatherMaxTaps;
  over_input_planes(p, dyp, grain_for(L, Kg * RS), qs,
                    [&](const float* src, float* dst) {
                      CNNCORE_ISA_CALL(dw_pack_gather_dy(src, g, dst));
                    },
                    [&](int64_t nc, int64_t grp, int64_t c, const float* dyq, const float*) {
                      std::vector<float> row(static_cast<size_t>(g.sw * gather_row_stride(g)));
                      std::vector<float> wc(static_cast<size_t>(Kg * RS));
                      for (int64_t kk = 0; kk < Kg; ++kk)
                        std::copy_n(wp + ((grp * Kg + kk) * Cg + c) * RS, RS,
                                    wc.data() + kk * RS);
                      if (s2) {
                        CNNCORE_ISA_CALL(dw_backward_input_s2(dyq, Kg, wc.data(), g, row.data(),
                                                              dxp + nc * HW));
                      } else {
                        CNNCORE_ISA_CALL(dw_backward_input_gather(dyq, Kg, wc.data(), g,
                                                                  row.data(), dxp + nc * HW));
                      }
                    });
  return dx;
}

Tensor depthwise_backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  Tensor dw = Tensor::zeros(p.weight_shape());
  const DwGeom g = DwGeom::from(p);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, L = p.OH * p.OW, RS = p.R * p.S;
  const bool s2 = depthwise_stride2_fits(p);
  const int64_t bs = s2 ? s2_buf_size(g) : g.buf_size();
  const float* dyp = dy.data<float>();
  const float* xp = x.data<float>();
  float* dwp = dw.data<float>();
  // Threads over output channels: dw[k] is written by one thread only. A chunk packs each input
  // plane of a group once per image for all of its channels in that group.
  parallel_for(0, p.K, grain_for(p.N * L, Cg * RS), [&](int64_t b, int64_t e) {
    std::vector<float> buf(static_cast<size_t>(Cg * bs));
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t grp = b / Kg; grp <= (e - 1) / Kg; ++grp) {
        for (int64_t c = 0; c < Cg; ++c)
          pack_input_plane(xp + (n * p.C + grp * Cg + c) * p.H * p.W, g, s2,
                           buf.data() + c * bs);
        const int64_t k0 = std::max(b, grp * Kg), k1 = std::min(e, (grp + 1) * Kg);
        // The input planes the next pack copies (next group, or the next image's first),
        // prefetched during this group's last plane.
        const int64_t gl = (e - 1) / Kg;
        const float* next = grp < gl ? xp + (n * p.C + (grp + 1) * Cg) * p.H * p.W
                            : n + 1 < p.N ? xp + ((n + 1) * p.C + (b / Kg) * Cg) * p.H * p.W
                                          : nullptr;
        for (int64_t k = k0; k < k1; ++k)
          for (int64_t c = 0; c < Cg; ++c) {
            const float* plane = buf.data() + c * bs;
            const float* dyk = dyp + (n * p.K + k) * L;
            float* dwk = dwp + (k * Cg + c) * RS;
            const bool last = k + 1 == k1 && c + 1 == Cg;
            const float* nx = last ? next : nullptr;
            if (s2) {
              CNNCORE_ISA_CALL(dw_backward_weight_plane_s2(plane, g, dyk, dwk, nx, Cg * p.H * p.W));
            } else {
              CNNCORE_ISA_CALL(dw_backward_weight_plane(plane, g, dyk, dwk, nx, Cg * p.H * p.W));
            }
          }
      }
  });
  return dw;
}

std::pair<Tensor, Tensor> depthwise_backward_input_weight(const Tensor& dy, const Tensor& x,
                                                          const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  Tensor dw = Tensor::zeros(p.weight_shape());
  // Depthwise: one input channel per group, Kg = channel multiplier output planes per group.
  const int64_t Kg = p.K / p.groups, L = p.OH * p.OW, RS = p.R * p.S, HW = p.H * p.W;
  const int64_t planes = p.N * p.C, wsize = p.K * RS;
  const DwGeom g = DwGeom::from(p);
  const bool strided = p.is_strided();
  // Input gradient: at stride 1 the forward kernel on dy (flipped kernel, padding
  // dil*(k-1) - pad); strided, the gather. The same kernels as depthwise_backward_input.
  const DwGeom gb = strided ? g
                            : DwGeom::make(p.OH, p.OW, p.H, p.W, p.R, p.S, 1, 1, p.dil_h, p.dil_w,
                                           p.dil_h * (p.R - 1) - p.pad_t,
                                           p.dil_w * (p.S - 1) - p.pad_l);
  const int64_t dys = strided ? gather_dy_size(g) : gb.buf_size();
  const bool s2x = depthwise_stride2_fits(p);
  const bool s2g = strided && s2x && Kg * RS <= kS2GatherMaxTaps;
  const int64_t xbs = s2x ? s2_buf_size(g) : g.buf_size();
  const float* dyp = dy.data<float>();
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* dxp = dx.data<float>();
  float* dwp = dw.data<float>();
  std::vector<float> flipped;
  if (!strided) {
    flipped.resize(static_cast<size_t>(wsize));
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t t = 0; t < RS; ++t) flipped[k * RS + t] = wp[k * RS + (RS - 1 - t)];
  }
  // Threads take contiguous ranges of the (image, channel) planes, each summing its dw into a
  // copy of its own (slot 0 into dw itself), added up in slot order: deterministic for a given
  // thread count. Ranges are worth waking a thread for (grain_for's 32K multiply-adds, twice).
  const int64_t useful = std::max<int64_t>(1, planes / grain_for(HW, 2 * Kg * RS));
  const int64_t slots = std::min<int64_t>({static_cast<int64_t>(get_num_threads()), planes, useful});
  std::vector<float> extra(static_cast<size_t>((slots - 1) * wsize), 0.0f);
  parallel_region(slots, [&](int64_t tid, int64_t nt) {
    float* acc = tid == 0 ? dwp : extra.data() + (tid - 1) * wsize;
    std::vector<float> dybuf(static_cast<size_t>(Kg * dys));
    std::vector<float> xbuf(static_cast<size_t>(xbs));  // zeros: the s2 pack writes the inside
    std::vector<float> row(static_cast<size_t>(strided ? g.sw * gather_row_stride(g) : 0));
    const int64_t b = planes * tid / nt, e = planes * (tid + 1) / nt;
    for (int64_t nc = b; nc < e; ++nc) {
      const int64_t n = nc / p.C, c = nc % p.C;
      const float* dyg = dyp + (n * p.K + c * Kg) * L;  // the group's Kg dy planes
      const bool more = nc + 1 < e;
      for (int64_t kk = 0; kk < Kg; ++kk) {
        if (strided) {
          CNNCORE_ISA_CALL(dw_pack_gather_dy(dyg + kk * L, g, dybuf.data() + kk * dys));
        } else {
          CNNCORE_ISA_CALL(dw_pack_plane(dyg + kk * L, gb, dybuf.data() + kk * dys));
        }
      }
      // dx plane, while the next plane's dy (Kg planes, after this group's) is fetched.
      if (strided) {
        if (s2g) {
          CNNCORE_ISA_CALL(dw_backward_input_s2(dybuf.data(), Kg, wp + c * Kg * RS, g, row.data(),
                                                dxp + nc * HW));
        } else {
          CNNCORE_ISA_CALL(dw_backward_input_gather(dybuf.data(), Kg, wp + c * Kg * RS, g,
                                                    row.data(), dxp + nc * HW));
        }
      } else {
        for (int64_t kk = 0; kk < Kg; ++kk)
          CNNCORE_ISA_CALL(dw_forward_plane(dybuf.data() + kk * dys, gb,
                                            flipped.data() + (c * Kg + kk) * RS, 0.0f,
                                            dxp + nc * HW, kk > 0,
                                            more && kk + 1 == Kg ? dyg + Kg * L : nullptr,
                                            Kg * L));
      }
      // dw of the group's channels: dy planes straight from cache now, the input plane packed.
      pack_input_plane(xp + nc * HW, g, s2x, xbuf.data());
      for (int64_t kk = 0; kk < Kg; ++kk) {
        const float* next = more && kk + 1 == Kg ? xp + (nc + 1) * HW : nullptr;
        float* dwk = acc + (c * Kg + kk) * RS;
        if (s2x) {
          CNNCORE_ISA_CALL(dw_backward_weight_plane_s2(xbuf.data(), g, dyg + kk * L, dwk, next, HW));
        } else {
          CNNCORE_ISA_CALL(dw_backward_weight_plane(xbuf.data(), g, dyg + kk * L, dwk, next, HW));
        }
      }
    }
  });
  for (int64_t s = 1; s < slots; ++s) {
    const float* src = extra.data() + (s - 1) * wsize;
    for (int64_t i = 0; i < wsize; ++i) dwp[i] += src[i];
  }
  return {std::move(dx), std::move(dw)};
}

}  // namespace conv_impl
}  // namespace cnncore
