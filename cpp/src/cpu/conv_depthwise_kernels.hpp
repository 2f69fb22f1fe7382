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
  // Geometry of one plane: input (H, W) -> output (OH, OW). pt/pl may be negative (a crop):
  // the stride-1 backward-input runs the forward kernel on dy with pt = dh*(R-1) - pad_t.
  static DwGeom make(int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t R, int64_t S,
                     int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl);
  static DwGeom from(const Conv2dParams& p);
};

CNNCORE_DECLARE_ISA_KERNELS(
    // x plane (H, W) -> buf (sw, Hp, Wj), overwritten (zeros in the padding).
    void dw_pack_plane(const float* x, const DwGeom& g, float* buf);
    // The adjoint: dx plane (H, W) from buf, overwritten; pixels no output reads get 0.
    void dw_unpack_plane(const float* buf, const DwGeom& g, float* dx);
    // y (OH, OW) = bias + sum over taps of w[r, s] * plane: overwritten, or added to y when
    // accumulate (bias ignored then).
    void dw_forward_plane(const float* buf, const DwGeom& g, const float* w, float bias, float* y,
                          bool accumulate);
    // buf += the adjoint of the forward applied to dy (OH, OW): accumulates.
    void dw_backward_input_plane(float* buf, const DwGeom& g, const float* w, const float* dy);
    // dw[r, s] += sum over (oh, ow) of dy * plane: accumulates.
    void dw_backward_weight_plane(const float* buf, const DwGeom& g, const float* dy, float* dw);)

}  // namespace cnncore
