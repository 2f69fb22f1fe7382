// Losses. reduction: 0 none, 1 mean, 2 sum (Reduction below).
#pragma once

#include <optional>

#include "cnncore/tensor.hpp"

namespace cnncore {

enum class Reduction : int { None = 0, Mean = 1, Sum = 2 };

// nll_loss on log-probabilities. logp (N, C) or (N, C, d1, ...), target int64 (N) or (N, d1, ...)
// with values in [0, C) or == ignore_index; weight (C) or none. Returns (loss, total_weight):
// loss is a scalar (shape ()) for mean/sum or (N, d1, ...) for none; mean divides by total_weight
// (the sum of weight[target] over non-ignored elements).
CNNCORE_API std::pair<Tensor, Tensor> nll_loss_forward(const Tensor& logp, const Tensor& target,
                                                       const std::optional<Tensor>& weight,
                                                       Reduction reduction, int64_t ignore_index);
// dlogp (same shape as logp) from dloss (scalar or (N, d1, ...)).
CNNCORE_API Tensor nll_loss_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                                     const std::optional<Tensor>& weight, Reduction reduction,
                                     int64_t ignore_index, const Tensor& total_weight);

// mse_loss: (x - t)^2 reduced. x and t the same shape.
CNNCORE_API Tensor mse_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction);
// Returns dx (dt = -dx).
CNNCORE_API Tensor mse_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                     Reduction reduction);

}  // namespace cnncore
