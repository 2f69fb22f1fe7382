// Normalisation and regularisation: local response norm (AlexNet), batch norm, dropout.
#pragma once

#include <optional>
#include <tuple>

#include "cnncore/tensor.hpp"

namespace cnncore {

// PyTorch's local_response_norm: b = x / (k + alpha/size * sum_{window of size over C} x^2)^beta,
// window [c - size/2, c + (size-1)/2]. x (N, C, *).
CNNCORE_API Tensor local_response_norm_forward(const Tensor& x, int64_t size, double alpha,
                                               double beta, double k);
CNNCORE_API Tensor local_response_norm_backward(const Tensor& dy, const Tensor& x, int64_t size,
                                                double alpha, double beta, double k);

// x (N, C, *). In training uses batch statistics and, when running_mean/var are given, updates
// them in place: r = (1 - momentum) r + momentum * stat (variance unbiased). In eval uses the
// running statistics. Returns (y, save_mean (C), save_invstd (C)) for the backward.
CNNCORE_API std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(
    const Tensor& x, const std::optional<Tensor>& running_mean,
    const std::optional<Tensor>& running_var, const std::optional<Tensor>& weight,
    const std::optional<Tensor>& bias, bool training, double momentum, double eps);
// Returns (dx, dweight, dbias); dweight/dbias undefined when weight is none.
CNNCORE_API std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(
    const Tensor& dy, const Tensor& x, const std::optional<Tensor>& weight, const Tensor& save_mean,
    const Tensor& save_invstd, bool training);

// Inverted dropout: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) from the global generator.
// Returns (y, mask) with mask holding 0 or 1/(1-p). channel_wise drops whole (N, C) planes
// (Dropout2d). p in [0, 1].
CNNCORE_API std::pair<Tensor, Tensor> dropout_forward(const Tensor& x, double p, bool channel_wise);

}  // namespace cnncore
