// Column matrices for GEMM convolution: one image and one group at a time.
//
// For x_g (Cg, H, W) and the conv in p, row (c*R + r)*S + s of the column matrix holds, for every
// output pixel (oh, ow), the input x_g[c, oh*sh - pt + r*dh, ow*sw - pl + s*dw] (0 in the padding).
// So y_g (Kg, OH*OW) = w_g (Kg, Cg*R*S) @ col (Cg*R*S, OH*OW).
#pragma once

#include <cstdint>

#include "cnncore/ops/conv.hpp"

namespace cnncore {

// Output rows [oh0, oh1) only, so the column buffer stays bounded (and nearer the cache) for large
// images: T = (oh1 - oh0) * OW columns.
// x_g (channels, H, W) -> col (channels*R*S, T), overwritten. Threads over rows (serial when
// already inside a parallel region). ld: col's row stride (0: T, rows packed), so a batch's
// columns can be gathered side by side into one matrix.
void im2col(const float* x, const Conv2dParams& p, int64_t channels, int64_t oh0, int64_t oh1,
            float* col, int64_t ld = 0);
// The adjoint: dx_g (channels, H, W) += col's entries at the input pixels they came from.
// Accumulates (the caller zeroes dx_g before the first tile). Threads over channels.
void col2im_add(const float* col, const Conv2dParams& p, int64_t channels, int64_t oh0,
                int64_t oh1, float* dx, int64_t ld = 0);
// Output rows per tile for a column matrix of `rows` rows: enough columns for an efficient GEMM
// (>= 2048 or the whole image), at most about 2 MiB of columns beyond that.
int64_t im2col_tile_rows(const Conv2dParams& p, int64_t rows);

}  // namespace cnncore
