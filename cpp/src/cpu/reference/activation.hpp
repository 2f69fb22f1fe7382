// Reference twins of cnncore/ops/activation.hpp: same signatures, plain loops, no SIMD, no threads.
#pragma once

#include "cnncore/tensor.hpp"

namespace cnncore::reference {
Tensor relu_forward(const Tensor& x);
Tensor relu_backward(const Tensor& dy, const Tensor& y);
Tensor leaky_relu_forward(const Tensor& x, double negative_slope);
Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, double negative_slope);
Tensor hardtanh_forward(const Tensor& x, double min_val, double max_val);
Tensor hardtanh_backward(const Tensor& dy, const Tensor& x, double min_val, double max_val);
Tensor sigmoid_forward(const Tensor& x);
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y);
Tensor tanh_forward(const Tensor& x);
Tensor tanh_backward(const Tensor& dy, const Tensor& y);
Tensor softmax_forward(const Tensor& x, int64_t dim);
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);
Tensor log_softmax_forward(const Tensor& x, int64_t dim);
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);
}  // namespace cnncore::reference
