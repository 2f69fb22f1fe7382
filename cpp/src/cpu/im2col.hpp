// Column matrices for GEMM convolution: one image and one group at a time.
//
// For x_g (Cg, H, W) and the conv in p, row (c*R + r)*S + s of the column matrix holds, for every
// output pixel (oh, ow), the input x_g[c, oh*sh - pt + r*dh, ow*sw - pl + s*dw] (0 in the padding).
// So y_g (Kg, OH*OW) = w_g (Kg, Cg*R*S) @ col (Cg*R*S, OH*OW).
#pragma once

#include <cstdint>

#include "cnncore/ops/conv.hpp"

namespace cnncore {

// x_g (channels, H, W) -> col (channels*R*S, OH*OW), overwritten. Threads over rows (serial when
// already inside a parallel region).
void im2col(const float* x, const Conv2dParams& p, int64_t channels, float* col);
// The adjoint: dx_g (channels, H, W) = sum of col's entries at the input pixels they came from.
// Overwrites dx_g (pixels no output reads get 0). Threads over channels.
void col2im(const float* col, const Conv2dParams& p, int64_t channels, float* dx);

}  // namespace cnncore
