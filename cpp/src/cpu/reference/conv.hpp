// Reference twins of cnncore/ops/conv.hpp: same signatures, direct loops over every index with
// double accumulators, no SIMD, no threads, nothing from the fast kernels (only the params
// functions, which define what the op means).
#pragma once

#include <optional>

#include "cnncore/ops/conv.hpp"

namespace cnncore::reference {
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
                      const Conv2dOptions& opt);
Tensor conv2d_backward_input(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                             const Conv2dOptions& opt);
Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                              const Conv2dOptions& opt);
Tensor conv2d_backward_bias(const Tensor& dy);
Tensor conv_transpose2d_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
                                const Conv2dOptions& opt, int64_t output_padding_h,
                                int64_t output_padding_w);
Tensor conv_transpose2d_backward_input(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                                       const Conv2dOptions& opt, int64_t output_padding_h,
                                       int64_t output_padding_w);
Tensor conv_transpose2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                                        const Conv2dOptions& opt, int64_t output_padding_h,
                                        int64_t output_padding_w);
}  // namespace cnncore::reference
