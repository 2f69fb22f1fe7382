// Reference twins of cnncore/ops/optim.hpp: same signatures, one scalar loop each written straight
// from torch's _single_tensor_* formulas, no SIMD, no threads, nothing shared with optim_kernels.
#pragma once

#include "cnncore/ops/optim.hpp"

namespace cnncore::reference {
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
              const SgdParams& p, bool first_step);
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
               const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, double step,
               const AdamParams& p);
void rmsprop_step(const Tensor& param, const Tensor& grad, const Tensor& square_avg,
                  const Tensor& momentum_buffer, const Tensor& grad_avg, const RmspropParams& p);
}  // namespace cnncore::reference
