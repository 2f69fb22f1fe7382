// Losses. Every forward returns a fresh tensor: a scalar (shape ()) for Reduction::Mean/Sum, or the
// per-element losses for Reduction::None. Every backward returns a fresh gradient of the input's
// shape (it overwrites nothing and accumulates nothing). Sums are taken in double, in a fixed
// order, so results do not depend on the thread count.
#pragma once

#include <optional>
#include <utility>

#include "cnncore/tensor.hpp"

namespace cnncore {

enum class Reduction : int { None = 0, Mean = 1, Sum = 2 };

// nll_loss on log-probabilities. logp (N, C) or (N, C, d1, ...) or (C); target int64 (N) or
// (N, d1, ...) or () with values in [0, C) or == ignore_index; weight (C) or none.
// Returns (loss, total_weight): loss () for mean/sum or target's shape for none; total_weight ()
// is the sum of weight[target] over non-ignored elements, the divisor of mean (0/0 = nan when
// every target is ignored, as in PyTorch).
CNNCORE_API std::pair<Tensor, Tensor> nll_loss_forward(const Tensor& logp, const Tensor& target,
                                                       const std::optional<Tensor>& weight,
                                                       Reduction reduction, int64_t ignore_index);
// dlogp (logp's shape) from dloss (() for mean/sum, target's shape for none).
CNNCORE_API Tensor nll_loss_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                                     const std::optional<Tensor>& weight, Reduction reduction,
                                     int64_t ignore_index, const Tensor& total_weight);

// cross_entropy after log_softmax, PyTorch's formula. logp as in nll_loss. target is either
// int64 class indices (as nll_loss; label smoothing e mixes (1 - e) * nll with e / C times the
// weighted sum -sum_c w_c logp_c, zero at ignored elements, divided by total_weight for mean) or
// float32 class probabilities of logp's shape (loss = -sum_c w_c q_c logp_c with
// q = (1 - e) target + e / C; mean divides by N * d1 * ...; ignore_index unused).
// Returns (loss, total_weight) as nll_loss.
CNNCORE_API std::pair<Tensor, Tensor> cross_entropy_logp_forward(
    const Tensor& logp, const Tensor& target, const std::optional<Tensor>& weight,
    Reduction reduction, int64_t ignore_index, double label_smoothing);
CNNCORE_API Tensor cross_entropy_logp_backward(const Tensor& dloss, const Tensor& logp,
                                               const Tensor& target,
                                               const std::optional<Tensor>& weight,
                                               Reduction reduction, int64_t ignore_index,
                                               double label_smoothing, const Tensor& total_weight);

// Gradient with respect to float32 probability targets (target's shape):
// dtarget = -g w_c (1 - e) logp_c, g the incoming gradient of the element (divided by
// total_weight for mean). ValueError for class-index targets (they have no gradient).
CNNCORE_API Tensor cross_entropy_logp_backward_target(const Tensor& dloss, const Tensor& logp,
                                                      const Tensor& target,
                                                      const std::optional<Tensor>& weight,
                                                      Reduction reduction, double label_smoothing,
                                                      const Tensor& total_weight);

// mse_loss: (x - t)^2 reduced; mean divides by numel. x and t the same shape. With a weight
// (x's shape) each term is multiplied by it and mean divides by sum(weight), as PyTorch's
// weighted mse_loss/l1_loss do.
CNNCORE_API Tensor mse_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction,
                                    const std::optional<Tensor>& weight = std::nullopt);
// Returns dx (x's shape); dt = -dx.
CNNCORE_API Tensor mse_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                     Reduction reduction,
                                     const std::optional<Tensor>& weight = std::nullopt);

// l1_loss: |x - t| reduced (weight as mse_loss). Backward returns dx = sign(x - t) * dloss
// (dt = -dx).
CNNCORE_API Tensor l1_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction,
                                   const std::optional<Tensor>& weight = std::nullopt);
CNNCORE_API Tensor l1_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                    Reduction reduction,
                                    const std::optional<Tensor>& weight = std::nullopt);

// smooth_l1_loss: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = x - t; beta >= 0,
// beta == 0 is l1). Backward returns dx (dt = -dx).
CNNCORE_API Tensor smooth_l1_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction,
                                          double beta);
CNNCORE_API Tensor smooth_l1_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                           Reduction reduction, double beta);

// binary_cross_entropy on probabilities x in [0, 1]: -w (t log x + (1 - t) log(1 - x)) with the
// logs clamped at -100 as PyTorch does. weight (x's shape, already broadcast) or none.
CNNCORE_API Tensor binary_cross_entropy_forward(const Tensor& x, const Tensor& t,
                                                const std::optional<Tensor>& weight,
                                                Reduction reduction);
CNNCORE_API Tensor binary_cross_entropy_backward(const Tensor& dloss, const Tensor& x,
                                                 const Tensor& t,
                                                 const std::optional<Tensor>& weight,
                                                 Reduction reduction);

// d loss / d target (x's shape): -w (log x - log(1 - x)), not clamped (+-inf at x = 0 or 1, as
// PyTorch).
CNNCORE_API Tensor binary_cross_entropy_backward_target(const Tensor& dloss, const Tensor& x,
                                                        const Tensor& t,
                                                        const std::optional<Tensor>& weight,
                                                        Reduction reduction);

// binary_cross_entropy_with_logits: -w (p t log s(x) + (1 - t) log(1 - s(x))), s = sigmoid, in
// the stable form. weight and pos_weight (p) already broadcast to x's shape, or none.
CNNCORE_API Tensor bce_with_logits_forward(const Tensor& x, const Tensor& t,
                                           const std::optional<Tensor>& weight,
                                           const std::optional<Tensor>& pos_weight,
                                           Reduction reduction);
// Returns dx (x's shape).
CNNCORE_API Tensor bce_with_logits_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                            const std::optional<Tensor>& weight,
                                            const std::optional<Tensor>& pos_weight,
                                            Reduction reduction);

// d loss / d target (x's shape): w ((p - 1) (-log sigmoid(x)) - x).
CNNCORE_API Tensor bce_with_logits_backward_target(const Tensor& dloss, const Tensor& x,
                                                   const Tensor& t,
                                                   const std::optional<Tensor>& weight,
                                                   const std::optional<Tensor>& pos_weight,
                                                   Reduction reduction);

}  // namespace cnncore
