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
    // y (OH, OW) = bias + sum over taps of w[r, s] * plane: overwritten, or added to y when
    // accumulate (bias ignored then). next: next_floats floats (the input the caller packs
    // next), prefetched a slice per output row, or nullptr.
    void dw_forward_plane(const float* buf, const DwGeom& g, const float* w, float bias, float* y,
                          bool accumulate, const float* next = nullptr, int64_t next_floats = 0);
    // dw[r, s] += sum over (oh, ow) of dy * plane: accumulates.
    // next: as dw_forward_plane's (prefetched a slice per row).
    void dw_backward_weight_plane(const float* buf, const DwGeom& g, const float* dy, float* dw,
                                  const float* next = nullptr, int64_t next_floats = 0);
    // Backward-input (any stride) as a gather: dx plane (H, W) = sum over i < n of the adjoint
    // of dw_forward_plane with weights w + i*R*S applied to dy plane i, overwritten (pixels no
    // output reads get 0). The dy planes come packed by dw_pack_gather_dy, gather_dy_size(g)
    // floats apart; row is scratch of g.sw * gather_row_stride(g) floats.
    void dw_pack_gather_dy(const float* dy, const DwGeom& g, float* dyq);
    // Column stride 2 (g.sw == 2, g.pt, g.pl >= 0): the plane copied into buf (g.Hp rows of
    // s2_row_stride(g)) at row g.pt, column g.pl; the rest of buf is never written, so it must
    // hold zeros already (a buffer zeroed once serves every plane of one geometry). The kernels
    // then pick even and odd columns in registers: no phase-split copy.
    void dw_pack_plane_s2(const float* x, const DwGeom& g, float* buf);
    // dw_forward_plane and dw_backward_weight_plane on such a buffer. next: next_floats
    // floats the caller reads after this call (the next plane), fetched into cache meanwhile so
    // that its copy does not wait on memory; null for none.
    void dw_forward_plane_s2(const float* buf, const DwGeom& g, const float* w, float bias,
                             float* y, bool accumulate, const float* next, int64_t next_floats);
    void dw_backward_weight_plane_s2(const float* buf, const DwGeom& g, const float* dy,
                                     float* dw, const float* next, int64_t next_floats);
    // dw_backward_input_gather for g.sw == 2 and n * R * S <= kS2GatherMaxTaps: both phases of
    // a row at once, interleaved in registers and copied into dx whole (no scalar unpack).
    void dw_backward_input_s2(const float* dyq, int64_t n, const float* w, const DwGeom& g,
                              float* row, float* dx);
    void dw_backward_input_gather(const float* dyq, int64_t n, const float* w, const DwGeom& g,
                                  float* row, float* dx);)

// The padded dy copy the gather reads: row oh at dyq + oh * gather_dy_stride(g), dy's column
// ow at offset gather_dy_lead(g) + ow, zeros around, so that every tap's shifted read of a buffer
// row (rounded up to whole vectors of 16 lanes) stays inside.
inline int64_t gather_row_stride(const DwGeom& g) { return (g.Wj + 15) / 16 * 16; }
inline int64_t gather_dy_lead(const DwGeom& g) { return ((g.S - 1) * g.dw) / g.sw; }
inline int64_t gather_dy_stride(const DwGeom& g) {
  return gather_dy_lead(g) + gather_row_stride(g);
}
inline int64_t gather_dy_size(const DwGeom& g) { return g.OH * gather_dy_stride(g); }

// Row stride of the stride-2 buffer: the padded row, and room for a full 16-lane vector of
// outputs (32 input columns) past the last output under the last tap, whatever the ISA.
inline int64_t s2_row_stride(const DwGeom& g) {
  const int64_t reads = 2 * (g.OW - 1) + (g.S - 1) * g.dw + 32, row = g.pl + g.W;
  return (reads > row ? reads : row);
}
inline int64_t s2_buf_size(const DwGeom& g) { return g.Hp * s2_row_stride(g) + 32; }
inline bool s2_fits(const DwGeom& g) { return g.sw == 2 && g.pt >= 0 && g.pl >= 0; }
inline constexpr int64_t kS2GatherMaxTaps = 128;

}  // namespace cnncore
