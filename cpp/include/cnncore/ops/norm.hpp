// Normalisation and regularisation: local response norm (AlexNet), batch norm, dropout.
// Every function returns fresh tensors (contiguous NCHW); the only in-place effect is batch_norm's
// update of the running statistics, stated below. Inputs may have any layout.
#pragma once

#include <optional>
#include <tuple>
#include <utility>

#include "cnncore/tensor.hpp"

namespace cnncore {

// PyTorch's local_response_norm: b = x / (k + alpha/size * sum_{window over C} x^2)^beta, the
// window [c - size/2, c + (size-1)/2] zero-padded at the ends. x (N, C, *) with at least 3 dims,
// y the same shape. size >= 1, k > 0 (so the base stays positive), beta any finite number.
CNNCORE_API Tensor local_response_norm_forward(const Tensor& x, int64_t size, double alpha,
                                               double beta, double k);
// dx (N, C, *) from dy and the forward input x.
CNNCORE_API Tensor local_response_norm_backward(const Tensor& dy, const Tensor& x, int64_t size,
                                                double alpha, double beta, double k);

// x (N, C) or (N, C, *); running_mean/var, weight, bias (C) or none.
// training: normalises with the batch statistics (biased variance) and, when running_mean/var
// are given, updates them IN PLACE: r = (1 - momentum) r + momentum * stat, with the unbiased
// variance (needs N * prod(*) > 1). eval: normalises with the running statistics (required).
// Returns (y (x's shape), save_mean (C), save_invstd (C)) for the backward.
CNNCORE_API std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(
    const Tensor& x, const std::optional<Tensor>& running_mean,
    const std::optional<Tensor>& running_var, const std::optional<Tensor>& weight,
    const std::optional<Tensor>& bias, bool training, double momentum, double eps);
// Returns (dx (x's shape), dweight (C), dbias (C)); dweight/dbias are computed even when weight
// is none (weight then counts as ones), so a caller may ignore them. training selects the
// batch-statistics formula (the mean and variance depend on x) or the eval formula (constants).
CNNCORE_API std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(
    const Tensor& dy, const Tensor& x, const std::optional<Tensor>& weight, const Tensor& save_mean,
    const Tensor& save_invstd, bool training);

// Inverted dropout: y = x * mask, mask = 1/(1-p) with probability 1-p, else 0, drawn from the
// global counter-based generator (one draw per mask element, reserved up front, so the mask
// depends on the seed only, never on the thread count). Returns (y, mask). Elementwise mask has
// x's shape; channel_wise (Dropout2d) drops whole planes: x (N, C, *) with at least 3 dims, mask
// (N, C, 1, ...). p in [0, 1]; p == 1 gives zeros.
CNNCORE_API std::pair<Tensor, Tensor> dropout_forward(const Tensor& x, double p, bool channel_wise);
// dx = dy * mask (mask broadcast over the planes when channel-wise).
CNNCORE_API Tensor dropout_backward(const Tensor& dy, const Tensor& mask);

}  // namespace cnncore
