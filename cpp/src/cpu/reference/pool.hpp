// Reference twins of cnncore/ops/pool.hpp: same signatures, plain loops, no SIMD, no threads.
#pragma once

#include <utility>

#include "cnncore/ops/pool.hpp"

namespace cnncore::reference {
std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dOptions& opt);
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);
std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);
}  // namespace cnncore::reference
