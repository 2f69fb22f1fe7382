// Per-ISA entry points of the register-blocked direct convolution for layers with few input
// channels per group (LeNet, the RGB first layers): KB output channels x PB vectors of output
// pixels are accumulated in registers over every (input channel, tap), so each input vector
// loaded serves KB FMAs and each broadcast weight PB. Input planes come padded and
// stride-phase-split by dw_pack_plane (conv_depthwise_kernels.hpp), so no load is bounds-checked.
#pragma once

#include <cstdint>

#include "cpu/conv_depthwise_kernels.hpp"

namespace cnncore {

CNNCORE_DECLARE_ISA_KERNELS(
    // Output channels per register block for kout of them and output planes of oh rows of ow
    // pixels: weights come packed in blocks of this many.
    int64_t direct_block_channels(int64_t kout, int64_t ow, int64_t oh);
    // Output rows [oh0, oh1) of y (kout planes, g.OH*g.OW floats apart) = bias + the conv of the
    // cin planes in buf (g.buf_size() floats apart; readable for 16 floats past the last) with
    // weights packed as [kout block][cin][R][S][direct_block_channels(kout, g.OW, g.OH)]
    // (zeros past kout). Overwritten. bias: kout floats or null.
    void direct_forward_rows(const float* buf, int64_t cin, const DwGeom& g, const float* wpk,
                             int64_t kout, const float* bias, float* y, int64_t oh0, int64_t oh1);
    // Whether direct_forward_image_rows takes kout output channels over rows of ow pixels:
    // the channels per packed weight block it reads (direct_forward_rows' layout for
    // block_channels_for(kout)), or 0 where direct_forward_rows would take another layout.
    int64_t direct_image_rows_block(int64_t kout, int64_t ow);
    // Images per register block of direct_forward_image_rows (one output row's vectors each):
    // image counts that are multiples of it leave no item empty.
    int64_t direct_image_rows_images(int64_t kout);
    // Every output row of `images` images (packed planes bstride floats apart in buf, outputs
    // ystride apart in y) without bias, each row summing only the kernel rows that read inside
    // the plane; weights packed as for direct_forward_rows with direct_image_rows_block(kout,
    // g.OW) channels per block. Overwritten.
    void direct_forward_image_rows(const float* buf, int64_t cin, const DwGeom& g,
                                   const float* wpk, int64_t kout, float* y, int64_t images,
                                   int64_t bstride, int64_t ystride);
    // dw (kout, cin, R, S) += sum over pixels of dy (kout planes, OH*OW apart) times the packed
    // cin planes in buf, for output rows [oh0, oh1) of `images` images (packed planes
    // cin * g.buf_size() floats apart, dy images dy_stride apart). Accumulates.
    void direct_backward_weight_rows(const float* buf, int64_t cin, const DwGeom& g,
                                     const float* dy, int64_t kout, float* dw, int64_t oh0,
                                     int64_t oh1, int64_t images, int64_t dy_stride);
    // dst[q * kpad + k] = src[k * ld + q] for k < kout and q < L: kout planes of L floats to
    // pixel-major rows of kpad (a multiple of 16, >= kout) channel lanes; lanes past kout (up
    // to the next multiple of the vector width) get zeros.
    void direct_transpose_planes(const float* src, int64_t kout, int64_t L, int64_t ld,
                                 float* dst, int64_t kpad);
    // Whether direct_backward_weight_channels takes this geometry (column stride and dilation
    // 1, at most 7 kernel columns, output channels filling the lanes better than pixels).
    bool direct_weight_channels_fit(const DwGeom& g, int64_t kout);
    // The same sum with output channels as the lanes, over every output pixel of `images`
    // images: dyt holds dy transposed, [image][OH*OW][kpad] with kpad = kout rounded up to 16
    // (zeros past kout); packed planes as above, cin * g.buf_size() floats per image.
    void direct_backward_weight_channels(const float* buf, int64_t cin, const DwGeom& g,
                                         const float* dyt, int64_t kout, float* dw,
                                         int64_t images);
    // Images as the lanes: V = direct_lanes_width() images per block, planes transposed to
    // [channel][row][column][V] (direct_to_lanes), output channels in blocks of
    // direct_lanes_block_channels(kout) (weights packed as for direct_forward_rows with that
    // many channels per block).
    int64_t direct_lanes_width();
    int64_t direct_lanes_block_channels(int64_t kout);
    // Items [item0, item1) of the block's output, item = channel block * g.OH + output row:
    // out [kout][OH][OW][V] = bias + the conv of in [cin][H][W][V] (unpadded; each pixel sums
    // only the taps that read inside the plane). Overwritten; bias: kout floats or null.
    void direct_forward_lanes(const float* in, int64_t cin, const DwGeom& g, const float* wpk,
                              int64_t kout, const float* bias, float* out, int64_t item0,
                              int64_t item1);
    // dst[q * V + i] = src[i * ld + q] for q < L, i < nb (nb <= V images; lanes past nb get 0).
    void direct_to_lanes(const float* src, int64_t nb, int64_t ld, int64_t L, float* dst);
    // The inverse for the first nb lanes: dst[i * ld + q] = src[q * V + i].
    void direct_from_lanes(const float* src, int64_t nb, int64_t L, float* dst, int64_t ld);)

}  // namespace cnncore
