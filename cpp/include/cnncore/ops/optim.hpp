// Fused optimizer updates: one pass over each parameter tensor, in place.
//
// Each step reproduces torch.optim's single-tensor (foreach=False) update, operation by operation
// and in the same order, with every hyperparameter rounded to float32 where torch rounds it, so a
// run matches torch.optim to float32 rounding. Shapes (all arguments): param (*), grad (*) of the
// same shape (any layout), state buffers (*) of the same shape, float32, contiguous.
// param and the state buffers are overwritten in place; grad is only read.
#pragma once

#include "cnncore/tensor.hpp"

namespace cnncore {

// SGD with momentum (torch.optim.SGD).
struct SgdParams {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};
// momentum_buffer: required (defined) when momentum != 0, ignored otherwise. first_step = true
// means the buffer holds no history yet: it is overwritten with the (decayed) gradient, as torch
// does when state['momentum_buffer'] is None.
CNNCORE_API void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                          const SgdParams& p, bool first_step);

// Adam, and AdamW with decoupled_weight_decay = true (torch.optim.Adam / AdamW).
struct AdamParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;
};
// step: the step count *after* this update (1 on the first call), used for bias correction.
// max_exp_avg_sq: required when amsgrad, ignored otherwise.
CNNCORE_API void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                           const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, double step,
                           const AdamParams& p);

// RMSprop (torch.optim.RMSprop).
struct RmspropParams {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;
};
// momentum_buffer: required when momentum > 0; grad_avg: required when centered.
CNNCORE_API void rmsprop_step(const Tensor& param, const Tensor& grad, const Tensor& square_avg,
                              const Tensor& momentum_buffer, const Tensor& grad_avg,
                              const RmspropParams& p);

// Range checks shared by the steps and the Python constructors' messages ("Invalid learning
// rate: -1"); throw ValueError.
CNNCORE_API void validate(const SgdParams& p);
CNNCORE_API void validate(const AdamParams& p);
CNNCORE_API void validate(const RmspropParams& p);

}  // namespace cnncore
