// Fused optimizer updates on CUDA, in place, one thread per element: the same operation order
// and float32 roundings as the CPU reference (cpu/reference/optim.cpp), hence as torch.optim's
// single-tensor update.
#include <cmath>

#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
struct SgdArgs {
  float wd, mom, damp1, neg_lr;
  bool decay, nesterov, maximize, first;
};
__global__ void sgd_kernel(float* w, const float* grad, float* buf, SgdArgs a, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) {
    float g = a.maximize ? -grad[i] : grad[i];
    if (a.decay) g = g + a.wd * w[i];
    if (buf) {
      buf[i] = a.first ? g : buf[i] * a.mom + a.damp1 * g;
      g = a.nesterov ? g + a.mom * buf[i] : buf[i];
    }
    w[i] = w[i] + a.neg_lr * g;
  }
}

struct AdamArgs {
  float neg_step_size, bc2_sqrt, wd, decay, w1, b2, one_minus_b2, eps;
  bool has_wd, decoupled, maximize;
};
__device__ float lerp_f(float a, float b, float w) {  // torch's lerp: exact at both ends
  return fabsf(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}
__global__ void adam_kernel(float* w, const float* grad, float* m, float* v, float* vmax,
                            AdamArgs a, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) {
    float g = a.maximize ? -grad[i] : grad[i];
    if (a.has_wd) {
      if (a.decoupled)
        w[i] = w[i] * a.decay;
      else
        g = g + a.wd * w[i];
    }
    m[i] = lerp_f(m[i], g, a.w1);
    v[i] = v[i] * a.b2 + a.one_minus_b2 * g * g;
    float vhat = v[i];
    if (vmax) vhat = vmax[i] = fmaxf(vmax[i], v[i]);
    const float denom = sqrtf(vhat) / a.bc2_sqrt + a.eps;
    w[i] = w[i] + a.neg_step_size * m[i] / denom;
  }
}

struct RmspropArgs {
  float wd, alpha, one_minus_alpha, eps, mom, neg_lr, w;  // w: the lerp weight 1 - alpha
  bool has_wd, centered, maximize;
};
// The CPU kernel's order (cpu/optim_kernels.inc rmsprop_update), one element per thread.
__global__ void rmsprop_kernel(float* w, const float* grad, float* sq, float* buf, float* gavg,
                               RmspropArgs a, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) {
    const float p = w[i];
    float g = a.maximize ? -grad[i] : grad[i];
    if (a.has_wd) g = g + a.wd * p;
    const float s = sq[i] * a.alpha + a.one_minus_alpha * g * g;
    sq[i] = s;
    float avg;
    if (gavg) {
      const float ga = lerp_f(gavg[i], g, a.w);
      gavg[i] = ga;
      avg = sqrtf(s + -1.0f * ga * ga);
    } else {
      avg = sqrtf(s);
    }
    avg = avg + a.eps;
    if (buf) {
      const float b = buf[i] * a.mom + g / avg;
      buf[i] = b;
      w[i] = p + a.neg_lr * b;
    } else {
      w[i] = p + a.neg_lr * g / avg;
    }
  }
}

void check_state(const Tensor& t, const Tensor& param, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(t.shape() == param.shape() && t.is_contiguous(), op, ": ", arg,
                      " must be contiguous with the parameter's shape ", shape_str(param.shape()),
                      ", but got ", shape_str(t.shape()));
}
}  // namespace

void sgd_step(const Tensor& param, const Tensor& grad_in, const Tensor& buf, const SgdParams& p,
              bool first_step) {
  const char* op = "sgd_step";
  const bool use_buf = p.momentum != 0.0;
  const int dev = check_cuda_inputs(op, {{"param", &param}, {"grad", &grad_in},
                                         {"momentum_buffer", use_buf ? &buf : nullptr}});
  check_state(param, param, op, "param");
  CNNCORE_CHECK_VALUE(grad_in.shape() == param.shape(), op, ": grad must have shape ",
                      shape_str(param.shape()), ", but got ", shape_str(grad_in.shape()));
  if (use_buf) {
    CNNCORE_CHECK_VALUE(buf.defined(), op, ": momentum_buffer is required when momentum != 0");
    check_state(buf, param, op, "momentum_buffer");
  }
  DeviceGuard guard(dev, op);
  const Tensor grad = grad_in.contiguous();
  const SgdArgs a{static_cast<float>(p.weight_decay), static_cast<float>(p.momentum),
                  static_cast<float>(1.0 - p.dampening), static_cast<float>(-p.lr),
                  p.weight_decay != 0.0, p.nesterov, p.maximize, first_step};
  if (const int64_t n = param.numel()) {
    sgd_kernel<<<grid_for(n), kThreads>>>(param.device_data<float>(), grad.device_data<float>(),
                                          use_buf ? buf.device_data<float>() : nullptr, a, n);
    check_launch(op);
  }
}

void adam_step(const Tensor& param, const Tensor& grad_in, const Tensor& exp_avg,
               const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, double step,
               const AdamParams& p) {
  const char* op = "adam_step";
  const int dev = check_cuda_inputs(
      op, {{"param", &param}, {"grad", &grad_in}, {"exp_avg", &exp_avg},
           {"exp_avg_sq", &exp_avg_sq}, {"max_exp_avg_sq", p.amsgrad ? &max_exp_avg_sq : nullptr}});
  check_state(param, param, op, "param");
  CNNCORE_CHECK_VALUE(grad_in.shape() == param.shape(), op, ": grad must have shape ",
                      shape_str(param.shape()), ", but got ", shape_str(grad_in.shape()));
  check_state(exp_avg, param, op, "exp_avg");
  check_state(exp_avg_sq, param, op, "exp_avg_sq");
  if (p.amsgrad) check_state(max_exp_avg_sq, param, op, "max_exp_avg_sq");
  DeviceGuard guard(dev, op);
  const Tensor grad = grad_in.contiguous();
  const double bc1 = 1.0 - std::pow(p.beta1, step), bc2 = 1.0 - std::pow(p.beta2, step);
  const AdamArgs a{static_cast<float>(-(p.lr / bc1)), static_cast<float>(std::pow(bc2, 0.5)),
                   static_cast<float>(p.weight_decay),
                   static_cast<float>(1.0 - p.lr * p.weight_decay),
                   static_cast<float>(1.0 - p.beta1), static_cast<float>(p.beta2),
                   static_cast<float>(1.0 - p.beta2), static_cast<float>(p.eps),
                   p.weight_decay != 0.0, p.decoupled_weight_decay, p.maximize};
  if (const int64_t n = param.numel()) {
    adam_kernel<<<grid_for(n), kThreads>>>(
        param.device_data<float>(), grad.device_data<float>(), exp_avg.device_data<float>(),
        exp_avg_sq.device_data<float>(),
        p.amsgrad ? max_exp_avg_sq.device_data<float>() : nullptr, a, n);
    check_launch(op);
  }
}

void rmsprop_step(const Tensor& param, const Tensor& grad_in, const Tensor& square_avg,
                  const Tensor& momentum_buffer, const Tensor& grad_avg, const RmspropParams& p) {
  const char* op = "rmsprop_step";
  const bool has_momentum = p.momentum > 0.0;
  const int dev = check_cuda_inputs(
      op, {{"param", &param}, {"grad", &grad_in}, {"square_avg", &square_avg},
           {"momentum_buffer", has_momentum ? &momentum_buffer : nullptr},
           {"grad_avg", p.centered ? &grad_avg : nullptr}});
  check_state(param, param, op, "param");
  CNNCORE_CHECK_VALUE(grad_in.shape() == param.shape(), op, ": grad must have shape ",
                      shape_str(param.shape()), ", but got ", shape_str(grad_in.shape()));
  CNNCORE_CHECK_VALUE(square_avg.defined(), op, ": square_avg is required");
  check_state(square_avg, param, op, "square_avg");
  if (has_momentum) {
    CNNCORE_CHECK_VALUE(momentum_buffer.defined(), op,
                        ": momentum_buffer is required when momentum > 0");
    check_state(momentum_buffer, param, op, "momentum_buffer");
  }
  if (p.centered) {
    CNNCORE_CHECK_VALUE(grad_avg.defined(), op, ": grad_avg is required when centered");
    check_state(grad_avg, param, op, "grad_avg");
  }
  DeviceGuard guard(dev, op);
  const Tensor grad = grad_in.contiguous();
  // torch.lerp's weight rounds to float first, then picks a formula by |w| < 0.5 (lerp_f does).
  const float lw = static_cast<float>(1.0 - p.alpha);
  const RmspropArgs a{static_cast<float>(p.weight_decay), static_cast<float>(p.alpha),
                      static_cast<float>(1.0 - p.alpha), static_cast<float>(p.eps),
                      static_cast<float>(p.momentum), static_cast<float>(-p.lr), lw,
                      p.weight_decay != 0.0, p.centered, p.maximize};
  if (const int64_t n = param.numel()) {
    rmsprop_kernel<<<grid_for(n), kThreads>>>(
        param.device_data<float>(), grad.device_data<float>(), square_avg.device_data<float>(),
        has_momentum ? momentum_buffer.device_data<float>() : nullptr,
        p.centered ? grad_avg.device_data<float>() : nullptr, a, n);
    check_launch(op);
  }
}

}  // namespace cnncore::cuda
