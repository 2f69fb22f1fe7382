// Per-ISA entry points of the optimizer family (bodies in optim_kernels.inc).
// Every array is contiguous float32 of n elements; param and the state arrays are updated in
// place (read, then overwritten), grad is only read. The hyperparameters arrive already rounded to
// float32 the way torch rounds a Python scalar passed to a float tensor op.
#pragma once

#include <cstdint>

#include "cpu/dispatch.hpp"

namespace cnncore {

// torch's lerp(a, b, w) picks one of two formulas by |w| < 0.5; w1 = 1 - w in float32.
struct LerpWeight {
  float w = 0.0f, w1 = 1.0f;
  bool small = true;
};

struct SgdScalars {
  float neg_lr, weight_decay, momentum, one_minus_dampening;
  bool has_weight_decay, has_momentum, nesterov, maximize, first_step;
};

struct AdamScalars {
  float weight_decay, decay_factor;  // decay_factor = 1 - lr * weight_decay (decoupled)
  LerpWeight avg_weight;             // 1 - beta1
  float beta2, one_minus_beta2, bias_correction2_sqrt, eps, neg_step_size;
  bool has_weight_decay, decoupled, amsgrad, maximize;
};

struct RmspropScalars {
  float weight_decay, alpha, one_minus_alpha, eps, momentum, neg_lr;
  LerpWeight avg_weight;  // 1 - alpha
  bool has_weight_decay, has_momentum, centered, maximize;
};

CNNCORE_DECLARE_ISA_KERNELS(
    void sgd_update(float* param, const float* grad, float* buf, int64_t n, const SgdScalars& s);
    void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                     float* max_exp_avg_sq, int64_t n, const AdamScalars& s);
    void rmsprop_update(float* param, const float* grad, float* square_avg, float* buf,
                        float* grad_avg, int64_t n, const RmspropScalars& s);)

}  // namespace cnncore
