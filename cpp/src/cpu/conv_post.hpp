// conv2d_forward's epilogue after the bias, as the conv kernels see it (cnncore::Conv2dEpilogue
// resolved): y = min(hi, max(lo, y + residual)), residual in y's (N, K, OH, OW) layout or null,
// the clamp (hardtanh's order: NaN comes through) only when `clamp`.
#pragma once

#include <limits>

namespace cnncore {

struct ConvPost {
  const float* residual = nullptr;
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;

  // Bounds for add_clamp (open without the clamp).
  float low() const { return clamp ? lo : -std::numeric_limits<float>::infinity(); }
  float high() const { return clamp ? hi : std::numeric_limits<float>::infinity(); }
};

// Whether post (nullable) changes y at all.
inline bool has_post(const ConvPost* post) { return post && (post->residual || post->clamp); }

}  // namespace cnncore
