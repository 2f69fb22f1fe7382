// Resampling and padding, NCHW float32: interpolate (nearest, bilinear) and pad.
#pragma once

#include <string>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore {

enum class InterpMode { Nearest, Bilinear };
enum class PadMode { Constant, Reflect, Replicate };

// x (N,C,H,W) -> y (N,C,out_h,out_w), a fresh tensor (overwritten). scale_h/scale_w > 0 are the
// user's scale_factor, used for the source-coordinate mapping as PyTorch does when
// recompute_scale_factor is not True (src = dst / scale); 0 = derive from the sizes (in / out).
// Nearest: src = min(floor(dst * in/out), in - 1) in float, as torch's 'nearest'.
// A dim whose size is unchanged is copied straight through (torch does so even with
// align_corners, which matters only for NaN/inf). Bilinear: align_corners maps corner pixel centres onto each other (scale (in-1)/(out-1), the
// scale factor ignored); otherwise src = (dst + 0.5) * scale - 0.5 clamped at 0.
CNNCORE_API Tensor interpolate_forward(const Tensor& x, int64_t out_h, int64_t out_w, InterpMode mode,
                                       bool align_corners, double scale_h = 0, double scale_w = 0);
// dy (N,C,out_h,out_w) -> dx x_shape (N,C,H,W), fresh: each dy added into the inputs it came from
// with the forward's weights.
CNNCORE_API Tensor interpolate_backward(const Tensor& dy, const Shape& x_shape, InterpMode mode,
                                        bool align_corners, double scale_h = 0, double scale_w = 0);

// x (..., H, W) of rank >= 1 -> y (..., H + top + bottom, W + left + right), fresh. pads as
// torch.nn.functional.pad: (left, right) or (left, right, top, bottom), last dim first (rank >= 2
// for four). Negative pads crop (every mode); reflect needs each pad < the size of its dim; every
// output dim must stay >= 1. value fills the constant mode.
CNNCORE_API Tensor pad_forward(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode,
                               float value = 0.0f);
// dy (shape of pad_forward's output) -> dx x_shape, fresh: every dy element added to the input
// element it was copied from (constant fill drops its gradient).
CNNCORE_API Tensor pad_backward(const Tensor& dy, const Shape& x_shape,
                                const std::vector<int64_t>& pads, PadMode mode);

// The output shape pad_forward gives, after the same validation (for shape inference).
CNNCORE_API Shape pad_output_shape(const Shape& x_shape, const std::vector<int64_t>& pads,
                                   PadMode mode);

}  // namespace cnncore
