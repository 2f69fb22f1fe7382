// The conv kernels behind the public functions, on already validated params. conv_transpose2d
// calls them with the params of its equivalent conv (conv_transpose2d_params), so the same code
// serves both ops and no shape is ever recomputed here.
#pragma once

#include <utility>

#include "cnncore/ops/conv.hpp"
#include "cpu/conv_post.hpp"

namespace cnncore::conv_impl {

// GEMM paths: whole images per thread when they divide evenly (or there are many), with no
// synchronisation at all; otherwise (batch 1, 3 images on 2 threads) the GEMM splits each image.
bool split_batch(const Conv2dParams& p);
// im2col / 1x1 paths: gather the columns of the whole batch into one GEMM per group (small
// outputs, see conv2d.cpp); CNNCORE_CONV_ALGO=im2col-per-image turns it off.
bool batch_columns(const Conv2dParams& p);
// Kernel taps that read only padding for every output pixel (a 3x3 over a 1x1 map: 8 of 9)
// contribute nothing. When dropping them leaves a smaller rectangle [r0, r0 + R') x
// [s0, s0 + S') with non-negative padding, crop_taps returns true and the equivalent params
// (never while CNNCORE_CONV_ALGO forces an algorithm).
bool crop_taps(const Conv2dParams& p, Conv2dParams* cropped, int64_t* r0, int64_t* s0);

// x (N,C,H,W), w (K,C/g,R,S) contiguous NCHW, bias K floats or null -> y (N,K,OH,OW), new;
// then post (or null; cpu/conv_post.hpp): in the store of the GEMM and Winograd paths, one
// pass over y on the others.
Tensor forward(const Tensor& x, const Tensor& w, const float* bias, const Conv2dParams& p,
               const ConvPost* post = nullptr);
// dy (N,K,OH,OW), w -> dx (N,C,H,W), new.
Tensor backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p);
// dy (N,K,OH,OW), x (N,C,H,W) -> dw (K,C/g,R,S), new, summed over N.
// db: when not null, also the bias gradient (in the same pass over dy where the kernel can).
Tensor backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p,
                       Tensor* db = nullptr);
// db (K) = dy summed over N and the pixels.
Tensor backward_bias(const Tensor& dy);
// The sum of n floats: float partial sums (vectorisable), added in double. backward_bias and the
// direct weight gradient's fused bias sum both use it.
double sum_floats(const float* v, int64_t n);
// Both: {backward_input, backward_weight}, in one pass where a kernel does both (depthwise);
// db as backward_weight's (the fused depthwise pass leaves it undefined).
std::pair<Tensor, Tensor> backward_input_weight(const Tensor& dy, const Tensor& x, const Tensor& w,
                                                const Conv2dParams& p, Tensor* db = nullptr);

// The depthwise path (select_conv_algo == DepthwiseDirect; valid for any groups, depthwise is
// C/g == 1); same contracts as above (post applied to each output plane as it is finished).
Tensor depthwise_forward(const Tensor& x, const Tensor& w, const float* bias,
                         const Conv2dParams& p, const ConvPost* post = nullptr);
Tensor depthwise_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p);
Tensor depthwise_backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p);
// Both gradients in one pass over the planes: each (image, channel)'s dy planes and input plane
// are read from memory once for dx and dw (separately, dy is read twice). Returns {dx, dw}.
std::pair<Tensor, Tensor> depthwise_backward_input_weight(const Tensor& dy, const Tensor& x,
                                                          const Tensor& w, const Conv2dParams& p);

// The register-blocked direct path (ConvAlgo::Direct, conv_direct.cpp); same contracts. Its
// backward passes are taken where they win (the *_fits rules: backward-input at stride 1 with
// dy's packed planes of a group within kDirectCacheBytes, backward-weight on planes of at most
// 1024 output pixels); elsewhere the im2col ones run.
inline constexpr int64_t kDirectCacheBytes = int64_t{256} << 10;
Tensor direct_forward(const Tensor& x, const Tensor& w, const float* bias, const Conv2dParams& p,
                      const ConvPost* post = nullptr);
bool direct_backward_input_fits(const Conv2dParams& p);
bool direct_backward_weight_fits(const Conv2dParams& p);
// Many input channels, strided (ResNet's 3x3/2 downsampling): the direct forward with output
// channel vectors as lanes where pixel vectors (and the GEMM's 32-column panels) pad a short
// row. AVX-512 only; batch >= 2 x threads.
inline constexpr int64_t kDirectMaxChannels = 8;
bool direct_many_channels_fits(const Conv2dParams& p);
Tensor direct_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p);
// db: when not null, also the bias gradient (summed from dy in the same pass).
Tensor direct_backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p,
                              Tensor* db = nullptr);

// The variants inside those paths, named by conv2d_algorithm; CNNCORE_CONV_ALGO set to the
// older variant's name (direct-pixel-lanes, direct-forward-pixel-lanes, direct-image-rows,
// direct-rows, depthwise-phase-split) forces that one instead.
// Direct backward-input as blocks of one row across images, kernel rows that read only
// padding skipped (LeNet2: dy padded by 4 rows each side of 10); direct-rows forces the
// single-image blocks.
bool direct_backward_input_by_rows(const Conv2dParams& p);
// Direct backward-input with images as the vector lanes and only the taps that read inside dy
// (LeNet2 at batch 32); direct-image-rows forces the rows-across-images blocks (direct-rows
// both older ones).
bool direct_backward_input_by_lanes(const Conv2dParams& p);
// Direct weight gradient with output channels as the lanes (LeNet2: 16 channels, 10-pixel rows).
bool direct_weight_by_channels(const Conv2dParams& p);
// Output channels per register block of the direct forward (32 or more: channels as the lanes,
// several vectors of them, times a few pixels of one row; AVX-512 only, where that pads much
// less than pixel vectors: AlexNet's 96 channels on 55-pixel rows).
int64_t direct_forward_block_channels(const Conv2dParams& p);
// Depthwise stride 2 from a plain padded copy, even/odd columns picked in registers.
bool depthwise_stride2_fits(const Conv2dParams& p);
// Whether CNNCORE_CONV_ALGO names this variant.
bool conv_variant_forced(const char* name);
// Stride-1 weight gradient as one GEMM per kernel tap over a padded copy of the input, no im2col
// (>= 32 channels in and out per group; CNNCORE_CONV_ALGO=backward-weight-im2col forces im2col).
bool tap_gemm_weight_fits(const Conv2dParams& p);

}  // namespace cnncore::conv_impl
