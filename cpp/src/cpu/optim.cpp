#include "cnncore/ops/optim.hpp"

#include <cmath>

#include "cpu/optim_kernels.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per thread below which one thread is faster

// param and state buffers are written through their data pointer, so they must be plain
// contiguous float32 of param's shape; grad is only read and may have any layout.
void check_state(const Tensor& t, const Tensor& param, const char* op, const char* arg) {
  check_defined(t, op, arg);
  check_dtype(t, DType::Float32, op, arg);
  CNNCORE_CHECK_VALUE(t.shape() == param.shape(), op, ": ", arg, " shape ", shape_str(t.shape()),
                      " must match param shape ", shape_str(param.shape()));
  CNNCORE_CHECK_VALUE(t.is_contiguous(), op, ": ", arg,
                      " must be contiguous (it is updated in place), but got strides ",
                      shape_str(t.strides()));
}

Tensor check_step_inputs(const Tensor& param, const Tensor& grad, const char* op) {
  check_defined(param, op, "param");
  check_dtype(param, DType::Float32, op, "param");
  CNNCORE_CHECK_VALUE(param.is_contiguous(), op,
                      ": param must be contiguous (it is updated in place), but got strides ",
                      shape_str(param.strides()));
  check_defined(grad, op, "grad");
  check_dtype(grad, DType::Float32, op, "grad");
  CNNCORE_CHECK_VALUE(grad.shape() == param.shape(), op, ": grad shape ", shape_str(grad.shape()),
                      " must match param shape ", shape_str(param.shape()));
  return as_nchw(grad);
}

float* data_or_null(const Tensor& t, bool used) { return used ? t.data<float>() : nullptr; }

// torch.lerp(a, b, w) on float32: w is rounded to float, then one of two formulas by |w| < 0.5.
LerpWeight lerp_weight(double w) {
  LerpWeight lw;
  lw.w = static_cast<float>(w);
  lw.w1 = 1.0f - lw.w;
  lw.small = std::fabs(lw.w) < 0.5f;
  return lw;
}

// "0.5" for 0.5, as Python prints the value the user passed.
void check_nonneg(double v, const char* what) {
  CNNCORE_CHECK_VALUE(v >= 0.0, "Invalid ", what, ": ", v);
}
}  // namespace

void validate(const SgdParams& p) {
  check_nonneg(p.lr, "learning rate");
  check_nonneg(p.momentum, "momentum value");
  check_nonneg(p.weight_decay, "weight_decay value");
  CNNCORE_CHECK_VALUE(!p.nesterov || (p.momentum > 0.0 && p.dampening == 0.0),
                      "Nesterov momentum requires a momentum and zero dampening");
}

void validate(const AdamParams& p) {
  check_nonneg(p.lr, "learning rate");
  check_nonneg(p.eps, "epsilon value");
  CNNCORE_CHECK_VALUE(p.beta1 >= 0.0 && p.beta1 < 1.0, "Invalid beta parameter at index 0: ",
                      p.beta1);
  CNNCORE_CHECK_VALUE(p.beta2 >= 0.0 && p.beta2 < 1.0, "Invalid beta parameter at index 1: ",
                      p.beta2);
  check_nonneg(p.weight_decay, "weight_decay value");
}

void validate(const RmspropParams& p) {
  check_nonneg(p.lr, "learning rate");
  check_nonneg(p.eps, "epsilon value");
  check_nonneg(p.momentum, "momentum value");
  check_nonneg(p.weight_decay, "weight_decay value");
  check_nonneg(p.alpha, "alpha value");
}

void sgd_step(const Tensor& param, const Tensor& grad_in, const Tensor& momentum_buffer,
              const SgdParams& p, bool first_step) {
  validate(p);
  if (cuda::any_cuda({&param, &grad_in, &momentum_buffer}))
    return cuda::sgd_step(param, grad_in, momentum_buffer, p, first_step);
  const Tensor grad = check_step_inputs(param, grad_in, "sgd_step");
  const bool has_momentum = p.momentum != 0.0;
  if (has_momentum) check_state(momentum_buffer, param, "sgd_step", "momentum_buffer");
  SgdScalars s{};
  s.neg_lr = static_cast<float>(-p.lr);
  s.weight_decay = static_cast<float>(p.weight_decay);
  s.momentum = static_cast<float>(p.momentum);
  s.one_minus_dampening = static_cast<float>(1.0 - p.dampening);
  s.has_weight_decay = p.weight_decay != 0.0;
  s.has_momentum = has_momentum;
  s.nesterov = p.nesterov;
  s.maximize = p.maximize;
  s.first_step = first_step;
  float* pp = param.data<float>();
  const float* gp = grad.data<float>();
  float* bp = data_or_null(momentum_buffer, has_momentum);
  parallel_for(0, param.numel(), kGrain, [&](int64_t b, int64_t e) {
    CNNCORE_ISA_CALL(sgd_update(pp + b, gp + b, bp ? bp + b : nullptr, e - b, s));
  });
}

void adam_step(const Tensor& param, const Tensor& grad_in, const Tensor& exp_avg,
               const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, double step,
               const AdamParams& p) {
  validate(p);
  CNNCORE_CHECK_VALUE(step >= 1.0, "adam_step: step must be >= 1 (the count after this update), "
                      "but got ", step);
  if (cuda::any_cuda({&param, &grad_in, &exp_avg, &exp_avg_sq, &max_exp_avg_sq}))
    return cuda::adam_step(param, grad_in, exp_avg, exp_avg_sq, max_exp_avg_sq, step, p);
  const Tensor grad = check_step_inputs(param, grad_in, "adam_step");
  check_state(exp_avg, param, "adam_step", "exp_avg");
  check_state(exp_avg_sq, param, "adam_step", "exp_avg_sq");
  if (p.amsgrad) check_state(max_exp_avg_sq, param, "adam_step", "max_exp_avg_sq");
  // Scalars in double, as torch computes them in Python, then rounded once to float32.
  const double bias_correction1 = 1.0 - std::pow(p.beta1, step);
  const double bias_correction2 = 1.0 - std::pow(p.beta2, step);
  const double step_size = p.lr / bias_correction1;
  AdamScalars s{};
  s.weight_decay = static_cast<float>(p.weight_decay);
  s.decay_factor = static_cast<float>(1.0 - p.lr * p.weight_decay);
  s.avg_weight = lerp_weight(1.0 - p.beta1);
  s.beta2 = static_cast<float>(p.beta2);
  s.one_minus_beta2 = static_cast<float>(1.0 - p.beta2);
  s.bias_correction2_sqrt = static_cast<float>(std::pow(bias_correction2, 0.5));
  s.eps = static_cast<float>(p.eps);
  s.neg_step_size = static_cast<float>(-step_size);
  s.has_weight_decay = p.weight_decay != 0.0;
  s.decoupled = p.decoupled_weight_decay;
  s.amsgrad = p.amsgrad;
  s.maximize = p.maximize;
  float* pp = param.data<float>();
  const float* gp = grad.data<float>();
  float* mp = exp_avg.data<float>();
  float* vp = exp_avg_sq.data<float>();
  float* vmaxp = data_or_null(max_exp_avg_sq, p.amsgrad);
  parallel_for(0, param.numel(), kGrain, [&](int64_t b, int64_t e) {
    CNNCORE_ISA_CALL(
        adam_update(pp + b, gp + b, mp + b, vp + b, vmaxp ? vmaxp + b : nullptr, e - b, s));
  });
}

void rmsprop_step(const Tensor& param, const Tensor& grad_in, const Tensor& square_avg,
                  const Tensor& momentum_buffer, const Tensor& grad_avg, const RmspropParams& p) {
  validate(p);
  if (cuda::any_cuda({&param, &grad_in, &square_avg, &momentum_buffer, &grad_avg}))
    return cuda::rmsprop_step(param, grad_in, square_avg, momentum_buffer, grad_avg, p);
  const Tensor grad = check_step_inputs(param, grad_in, "rmsprop_step");
  const bool has_momentum = p.momentum > 0.0;
  check_state(square_avg, param, "rmsprop_step", "square_avg");
  if (has_momentum) check_state(momentum_buffer, param, "rmsprop_step", "momentum_buffer");
  if (p.centered) check_state(grad_avg, param, "rmsprop_step", "grad_avg");
  RmspropScalars s{};
  s.weight_decay = static_cast<float>(p.weight_decay);
  s.alpha = static_cast<float>(p.alpha);
  s.one_minus_alpha = static_cast<float>(1.0 - p.alpha);
  s.eps = static_cast<float>(p.eps);
  s.momentum = static_cast<float>(p.momentum);
  s.neg_lr = static_cast<float>(-p.lr);
  s.avg_weight = lerp_weight(1.0 - p.alpha);
  s.has_weight_decay = p.weight_decay != 0.0;
  s.has_momentum = has_momentum;
  s.centered = p.centered;
  s.maximize = p.maximize;
  float* pp = param.data<float>();
  const float* gp = grad.data<float>();
  float* sp = square_avg.data<float>();
  float* bp = data_or_null(momentum_buffer, has_momentum);
  float* ap = data_or_null(grad_avg, p.centered);
  parallel_for(0, param.numel(), kGrain, [&](int64_t b, int64_t e) {
    CNNCORE_ISA_CALL(rmsprop_update(pp + b, gp + b, sp + b, bp ? bp + b : nullptr,
                                    ap ? ap + b : nullptr, e - b, s));
  });
}

}  // namespace cnncore
