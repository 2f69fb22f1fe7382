// Activations and (log-)softmax. Every function returns a fresh float32 tensor of its input's
// shape (any shape, any layout in; contiguous NCHW out); nothing is overwritten or accumulated.
// Backward functions take what the forward returned where that is enough (y for relu, sigmoid,
// tanh, softmax, log_softmax), so the input can be freed; grad_output must have y's shape.
#pragma once

#include "cnncore/tensor.hpp"

namespace cnncore {

CNNCORE_API Tensor relu_forward(const Tensor& x);
CNNCORE_API Tensor relu_backward(const Tensor& dy, const Tensor& y);
CNNCORE_API Tensor leaky_relu_forward(const Tensor& x, double negative_slope);
CNNCORE_API Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, double negative_slope);
// clamp to [min_val, max_val] (ReLU6 = hardtanh(0, 6)); gradient 0 outside.
CNNCORE_API Tensor hardtanh_forward(const Tensor& x, double min_val, double max_val);
CNNCORE_API Tensor hardtanh_backward(const Tensor& dy, const Tensor& x, double min_val,
                                     double max_val);
CNNCORE_API Tensor sigmoid_forward(const Tensor& x);
CNNCORE_API Tensor sigmoid_backward(const Tensor& dy, const Tensor& y);
CNNCORE_API Tensor tanh_forward(const Tensor& x);
CNNCORE_API Tensor tanh_backward(const Tensor& dy, const Tensor& y);
// Along dim (negative counts from the end; a 0-D tensor is one class). Stable: the max along
// dim is subtracted first. log_softmax_backward takes the log-probabilities it returned.
CNNCORE_API Tensor softmax_forward(const Tensor& x, int64_t dim);
CNNCORE_API Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);
CNNCORE_API Tensor log_softmax_forward(const Tensor& x, int64_t dim);
CNNCORE_API Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);

}  // namespace cnncore
