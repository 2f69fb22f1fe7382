// Per-ISA body of the Winograd F(4x4, 3x3) convolution (3x3, stride 1, dilation 1, groups 1).
//
// Output tiles of 4x4 read 6x6 input patches. With the transforms of Lavin & Gray (points 0,
// +-1, +-2 and infinity): U = G g G^T per (output, input) channel pair, V = B^T d B per tile and
// input channel, y_tile = A^T (sum over c of U .* V) A. The sum over c is, for each of the 36
// transform points xi, one GEMM  M_xi (tiles x K) = V_xi (tiles x C) @ U_xi^T.
//
// Layouts (floats; Cs = C rounded up to the vector width, so a transform reads whole vectors):
//   U   (36, K, C)                 transformed weights, B operand of the GEMMs (transposed)
//   Xh  (N, 4*th + 2, 4*tw + 2, Cs) input zero-padded and channels innermost, so one pixel of
//                                   a patch is contiguous vectors over channels
//   per thread, for a block of TB tiles and a range of output channels:
//   V   (36, TB, Cs)  M (36, TB, Ks)
// Tiles are numbered over (n, tile row, tile column) together, so a block spans images when
// they are small (7x7 at batch 8 is 4 tiles an image) and the GEMMs keep a useful height.
#pragma once

#include <cstdint>

#include "cpu/conv_post.hpp"
#include "cpu/dispatch.hpp"

namespace cnncore {

// A 3x3 stride-1 convolution as the Winograd kernels see it: input (N, C, H, W) -> output
// (N, K, OH, OW); input pixel (oh + r - pad_t, ow + s - pad_l) feeds output (oh, ow) through tap
// (r, s). pad_t / pad_l may be negative (a crop): the backward-input conv has pad 2 - pad.
struct WinoGeom {
  int64_t N, C, K, H, W, OH, OW, pad_t, pad_l;
  int64_t tiles_h() const { return (OH + 3) / 4; }
  int64_t tiles_w() const { return (OW + 3) / 4; }
};

CNNCORE_DECLARE_ISA_KERNELS(
    // y (N, K, OH, OW), overwritten, = the conv of x (N, C, H, W) with weights w plus bias (K
    // floats, or null). flip_transpose = false: w is (K, C, 3, 3), a forward conv. true: w is
    // (C, K, 3, 3) read as w'[k][c][r][s] = w[c][k][2-r][2-s], the conv that computes a
    // backward-input (there K and C are the forward conv's C and K). Threads inside. post (or
    // null): the forward's epilogue, applied as the output transform stores y.
    void winograd_conv(const WinoGeom& g, const float* x, const float* w, bool flip_transpose,
                       const float* bias, float* y, const ConvPost* post);)

}  // namespace cnncore
