// Reference twins of cnncore/ops/resample.hpp: same signatures, plain loops, no SIMD, no threads.
#pragma once

#include <vector>

#include "cnncore/ops/resample.hpp"

namespace cnncore::reference {
Tensor interpolate_forward(const Tensor& x, int64_t out_h, int64_t out_w, InterpMode mode,
                           bool align_corners, double scale_h = 0, double scale_w = 0);
Tensor interpolate_backward(const Tensor& dy, const Shape& x_shape, InterpMode mode,
                            bool align_corners, double scale_h = 0, double scale_w = 0);
Tensor pad_forward(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, float value = 0.0f);
Tensor pad_backward(const Tensor& dy, const Shape& x_shape, const std::vector<int64_t>& pads,
                    PadMode mode);
}  // namespace cnncore::reference
