// Reference twins of cnncore/ops/loss.hpp: same signatures, plain loops in double, no threads.
// They assume valid arguments (the public functions validate); shapes are still checked so a
// test mistake cannot read out of bounds.
#pragma once

#include <optional>
#include <utility>

#include "cnncore/ops/loss.hpp"

namespace cnncore::reference {
std::pair<Tensor, Tensor> nll_loss_forward(const Tensor& logp, const Tensor& target,
                                           const std::optional<Tensor>& weight,
                                           Reduction reduction, int64_t ignore_index);
Tensor nll_loss_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                         const std::optional<Tensor>& weight, Reduction reduction,
                         int64_t ignore_index, const Tensor& total_weight);
std::pair<Tensor, Tensor> cross_entropy_logp_forward(const Tensor& logp, const Tensor& target,
                                                     const std::optional<Tensor>& weight,
                                                     Reduction reduction, int64_t ignore_index,
                                                     double label_smoothing);
Tensor cross_entropy_logp_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                                   const std::optional<Tensor>& weight, Reduction reduction,
                                   int64_t ignore_index, double label_smoothing,
                                   const Tensor& total_weight);
Tensor cross_entropy_logp_backward_target(const Tensor& dloss, const Tensor& logp,
                                          const Tensor& target, const std::optional<Tensor>& weight,
                                          Reduction reduction, double label_smoothing,
                                          const Tensor& total_weight);
Tensor mse_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction,
                        const std::optional<Tensor>& weight = std::nullopt);
Tensor mse_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                         Reduction reduction, const std::optional<Tensor>& weight = std::nullopt);
}  // namespace cnncore::reference
