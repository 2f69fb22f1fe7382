#include "cpu/im2col.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "parallel.hpp"

namespace cnncore {

namespace {

// Output columns [lo, hi) whose input column ow*stride + off lies inside [0, W): computed once
// per (s, row) so the copy loops below carry no bounds checks.
inline void valid_cols(int64_t off, int64_t stride, int64_t W, int64_t OW, int64_t& lo,
                       int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = (W - 1 - off) < 0 ? 0 : (W - 1 - off) / stride + 1;
  lo = std::min(lo, OW);
  hi = std::max(std::min(hi, OW), lo);
}

constexpr int64_t kGrainElems = 1 << 14;  // below this many floats per chunk one thread is faster

}  // namespace

int64_t im2col_tile_rows(const Conv2dParams& p, int64_t rows) {
  const int64_t cols = std::max<int64_t>(2048, (int64_t{1} << 19) / std::max<int64_t>(rows, 1));
  return std::min(p.OH, std::max<int64_t>(1, (cols + p.OW - 1) / p.OW));
}

namespace {

// Maps of at most this many output pixels per tile (ResNet's last stages on 32x32 inputs: 16,
// 4, 1) take a gather table: the row-segment copies below would be memset/memcpy calls of a
// few bytes each, 73,728 per image for 256 -> 256 3x3 on 2x2 (most of that conv's time).
constexpr int64_t kTableMaxPixels = 64;

void im2col_small(const float* x, const Conv2dParams& p, int64_t channels, int64_t oh0,
                  int64_t oh1, float* col, int64_t ld) {
  const int64_t R = p.R, S = p.S, OW = p.OW, H = p.H, W = p.W, RS = R * S;
  const int64_t L = (oh1 - oh0) * OW;
  // Planes of fewer than kPlaneMax floats are copied next to a zero (index HW) that the padding
  // entries then name: a branch-free gather. Larger planes (strided layers) mark the padding -1
  // and test each entry.
  constexpr int64_t kPlaneMax = 4096;
  const int64_t HW = H * W;
  const int32_t pad = HW < kPlaneMax ? static_cast<int32_t>(HW) : -1;
  // table[t * L + l]: where tap t of output pixel l reads in a channel plane, or pad (on the
  // stack up to 64 taps x 64 pixels).
  constexpr int64_t kStackEntries = kTableMaxPixels * 64;
  int32_t stack_table[kStackEntries];
  std::vector<int32_t> heap_table(static_cast<size_t>(RS * L > kStackEntries ? RS * L : 0));
  int32_t* table = RS * L > kStackEntries ? heap_table.data() : stack_table;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t oh = oh0 + l / OW, ow = l % OW;
        const int64_t ih = oh * p.stride_h - p.pad_t + r * p.dil_h;
        const int64_t iw = ow * p.stride_w - p.pad_l + s * p.dil_w;
        table[(r * S + s) * L + l] =
            ih >= 0 && ih < H && iw >= 0 && iw < W ? static_cast<int32_t>(ih * W + iw) : pad;
      }
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(L * RS, 1));
  parallel_for(0, channels, grain, [&](int64_t b, int64_t e) {
    float plane[kPlaneMax];
    for (int64_t c = b; c < e; ++c) {
      const float* xc = x + c * HW;
      if (HW < kPlaneMax) {
        std::copy(xc, xc + HW, plane);
        plane[HW] = 0.0f;
        for (int64_t t = 0; t < RS; ++t) {
          const int32_t* tt = table + t * L;
          float* dst = col + (c * RS + t) * ld;
          for (int64_t l = 0; l < L; ++l) dst[l] = plane[tt[l]];
        }
        continue;
      }
      for (int64_t t = 0; t < RS; ++t) {
        const int32_t* tt = table + t * L;
        float* dst = col + (c * RS + t) * ld;
        for (int64_t l = 0; l < L; ++l) dst[l] = tt[l] >= 0 ? xc[tt[l]] : 0.0f;
      }
    }
  });
}

}  // namespace

void im2col(const float* x, const Conv2dParams& p, int64_t channels, int64_t oh0, int64_t oh1,
            float* col, int64_t ld) {
  const int64_t R = p.R, S = p.S, OW = p.OW, H = p.H, W = p.W;
  const int64_t L = (oh1 - oh0) * OW, rows = channels * R * S;
  if (ld == 0) ld = L;
  if (L <= kTableMaxPixels && H * W < (int64_t{1} << 31))
    return im2col_small(x, p, channels, oh0, oh1, col, ld);
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(L, 1));
  parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t c = row / (R * S), r = (row / S) % R, s = row % S;
      const float* xc = x + c * H * W;
      float* dst = col + row * ld;
      const int64_t off = s * p.dil_w - p.pad_l;
      int64_t lo, hi;
      valid_cols(off, p.stride_w, W, OW, lo, hi);
      for (int64_t oh = oh0; oh < oh1; ++oh, dst += OW) {
        const int64_t ih = oh * p.stride_h - p.pad_t + r * p.dil_h;
        if (ih < 0 || ih >= H) {
          std::memset(dst, 0, sizeof(float) * OW);
          continue;
        }
        // Index from the row start: off may be negative, so no pointer is formed before it.
        const float* src = xc + ih * W;
        for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = 0.0f;
        if (p.stride_w == 1) {
          if (hi > lo) std::memcpy(dst + lo, src + lo + off, sizeof(float) * (hi - lo));
        } else {
          const int64_t sw = p.stride_w;
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * sw + off];
        }
        for (int64_t ow = hi; ow < OW; ++ow) dst[ow] = 0.0f;
      }
    }
  });
}

void col2im_add(const float* col, const Conv2dParams& p, int64_t channels, int64_t oh0,
                int64_t oh1, float* dx, int64_t ld) {
  const int64_t R = p.R, S = p.S, OW = p.OW, H = p.H, W = p.W;
  const int64_t L = (oh1 - oh0) * OW;
  if (ld == 0) ld = L;
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(L * R * S, 1));
  // Threads over channels: every write of channel c lands in dx[c], so chunks never collide.
  parallel_for(0, channels, grain, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      float* dc = dx + c * H * W;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s) {
          const float* src = col + ((c * R + r) * S + s) * ld;
          const int64_t off = s * p.dil_w - p.pad_l;
          int64_t lo, hi;
          valid_cols(off, p.stride_w, W, OW, lo, hi);
          for (int64_t oh = oh0; oh < oh1; ++oh, src += OW) {
            const int64_t ih = oh * p.stride_h - p.pad_t + r * p.dil_h;
            if (ih < 0 || ih >= H) continue;
            float* d = dc + ih * W;
            if (p.stride_w == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) d[ow + off] += src[ow];
            } else {
              const int64_t sw = p.stride_w;
              for (int64_t ow = lo; ow < hi; ++ow) d[ow * sw + off] += src[ow];
            }
          }
        }
    }
  });
}

}  // namespace cnncore
