// Resampling and padding, NCHW float32: interpolate (nearest, bilinear) and pad.
#pragma once

#include <string>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore {

enum class InterpMode { Nearest, Bilinear };
enum class PadMode { Constant, Reflect, Replicate };

// x (N,C,H,W) -> y (N,C,out_h,out_w). scale_h/scale_w > 0 are the user's scale_factor, used
// for the source-coordinate mapping as PyTorch does (recompute_scale_factor=None); 0 = derive
// from the sizes. align_corners only for bilinear.
CNNCORE_API Tensor interpolate_forward(const Tensor& x, int64_t out_h, int64_t out_w, InterpMode mode,
                                       bool align_corners, double scale_h = 0, double scale_w = 0);
CNNCORE_API Tensor interpolate_backward(const Tensor& dy, const Shape& x_shape, InterpMode mode,
                                        bool align_corners, double scale_h = 0, double scale_w = 0);

// pads as torch.nn.functional.pad: (left, right[, top, bottom]) for the last dims, last dim first.
// Negative constant padding crops. Reflect needs pad < size of that dim.
CNNCORE_API Tensor pad_forward(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode,
                               float value = 0.0f);
CNNCORE_API Tensor pad_backward(const Tensor& dy, const Shape& x_shape,
                                const std::vector<int64_t>& pads, PadMode mode);

}  // namespace cnncore
