// Per-ISA entry points of the depthwise (groups == C) direct convolution.
//
// One input plane at a time is copied into a padded, stride-phase-split buffer:
//   buf[(ph * Hp + i) * Wj + j] = x[i - pt][j * sw + ph - pl]   (0 outside x)
// so the input of output column ow under tap s sits at column ow + (s*dw)/sw of phase
// (s*dw)%sw: every tap reads a contiguous run of the buffer for consecutive ow, whatever the
// stride, and the SIMD loops need no bounds checks.
#pragma once

#include <cstdint>

#include "cnncore/ops/conv.hpp"
#include "cpu/dispatch.hpp"

namespace cnncore {

struct DwGeom {
  int64_t H, W, OH, OW, R, S;
  int64_t sh, sw, dh, dw, pt, pl;
  int64_t Hp, Wj;        // padded rows, columns per phase
  int64_t tap[64];       // buffer offset of tap (r, s) relative to output row 0, column 0
  bool small_taps;       // R*S <= 64: offsets precomputed in tap[]
  int64_t buf_size() const { return sw * Hp * Wj; }
  int64_t tap_offset(int64_t r, int64_t s) const {
    return ((s * dw) % sw * Hp + r * dh) * Wj + (s * dw) / sw;
  }
  static DwGeom from(const Conv2dParams& p);
};

CNNCORE_DECLARE_ISA_KERNELS(
    // y (OH, OW) = bias + sum over taps of w[r, s] * plane: overwritten.
    void dw_forward_plane(const float* buf, const DwGeom& g, const float* w, float bias, float* y);
    // buf += the adjoint of the above applied to dy (OH, OW): accumulates.
    void dw_backward_input_plane(float* buf, const DwGeom& g, const float* w, const float* dy);
    // dw[r, s] += sum over (oh, ow) of dy * plane: accumulates.
    void dw_backward_weight_plane(const float* buf, const DwGeom& g, const float* dy, float* dw);)

}  // namespace cnncore
