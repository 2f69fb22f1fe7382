// Winograd F(4x4, 3x3) convolution for 3x3, stride-1, undilated, ungrouped layers: forward and
// backward-input (the backward-input of such a conv is one too, with the weights flipped and
// transposed). Kernels and layouts: winograd_kernels.hpp. Same contracts as conv2d.hpp.
#pragma once

#include <string>

#include "cnncore/ops/conv.hpp"
#include "cpu/conv_post.hpp"

namespace cnncore::conv_impl {

// Shapes the Winograd path can compute at all (any padding, any H and W).
bool winograd_fits(const Conv2dParams& p);
// Shapes where it is also chosen by default (measured faster than im2col + GEMM); `why` gets
// the reason either way, for conv2d_algorithm().
bool winograd_preferred(const Conv2dParams& p, std::string* why);

// x (N,C,H,W), w (K,C,3,3), bias K floats or null -> y (N,K,OH,OW), new; post (or null): the
// epilogue, applied as the output transform stores y.
Tensor winograd_forward(const Tensor& x, const Tensor& w, const float* bias,
                        const Conv2dParams& p, const ConvPost* post = nullptr);
// dy (N,K,OH,OW), w (K,C,3,3) -> dx (N,C,H,W), new.
Tensor winograd_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p);

}  // namespace cnncore::conv_impl
