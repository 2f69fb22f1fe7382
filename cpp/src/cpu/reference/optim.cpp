#include "cpu/reference/optim.hpp"

#include <cmath>

namespace cnncore::reference {

namespace {
// Plain contiguous float32 of param's shape, or a ValueError/TypeError naming the argument.
float* buffer(const Tensor& t, const Tensor& param, const char* op, const char* arg) {
  check_defined(t, op, arg);
  check_dtype(t, DType::Float32, op, arg);
  CNNCORE_CHECK_VALUE(t.shape() == param.shape() && t.is_contiguous(), op, ": ", arg,
                      " must be contiguous with shape ", shape_str(param.shape()), ", but got ",
                      shape_str(t.shape()));
  return t.data<float>();
}

// torch.lerp on float32: |w| < 0.5 ? a + w (b - a) : b - (b - a) (1 - w).
float lerp(float a, float b, float w) {
  return std::fabs(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}
}  // namespace

void sgd_step(const Tensor& param, const Tensor& grad_in, const Tensor& momentum_buffer,
              const SgdParams& p, bool first_step) {
  const char* op = "reference::sgd_step";
  float* w = buffer(param, param, op, "param");
  const Tensor grad = grad_in.contiguous();
  const float* g_in = buffer(grad, param, op, "grad");
  float* buf = p.momentum != 0.0 ? buffer(momentum_buffer, param, op, "momentum_buffer") : nullptr;
  const float wd = static_cast<float>(p.weight_decay), mom = static_cast<float>(p.momentum);
  const float damp1 = static_cast<float>(1.0 - p.dampening), neg_lr = static_cast<float>(-p.lr);
  for (int64_t i = 0; i < param.numel(); ++i) {
    float g = p.maximize ? -g_in[i] : g_in[i];
    if (p.weight_decay != 0.0) g = g + wd * w[i];
    if (buf) {
      buf[i] = first_step ? g : buf[i] * mom + damp1 * g;
      g = p.nesterov ? g + mom * buf[i] : buf[i];
    }
    w[i] = w[i] + neg_lr * g;
  }
}

void adam_step(const Tensor& param, const Tensor& grad_in, const Tensor& exp_avg,
               const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, double step,
               const AdamParams& p) {
  const char* op = "reference::adam_step";
  float* w = buffer(param, param, op, "param");
  const Tensor grad = grad_in.contiguous();
  const float* g_in = buffer(grad, param, op, "grad");
  float* m = buffer(exp_avg, param, op, "exp_avg");
  float* v = buffer(exp_avg_sq, param, op, "exp_avg_sq");
  float* vmax = p.amsgrad ? buffer(max_exp_avg_sq, param, op, "max_exp_avg_sq") : nullptr;
  const double bc1 = 1.0 - std::pow(p.beta1, step), bc2 = 1.0 - std::pow(p.beta2, step);
  const float neg_step_size = static_cast<float>(-(p.lr / bc1));
  const float bc2_sqrt = static_cast<float>(std::pow(bc2, 0.5));
  const float wd = static_cast<float>(p.weight_decay);
  const float decay = static_cast<float>(1.0 - p.lr * p.weight_decay);
  const float w1 = static_cast<float>(1.0 - p.beta1), b2 = static_cast<float>(p.beta2);
  const float one_minus_b2 = static_cast<float>(1.0 - p.beta2), eps = static_cast<float>(p.eps);
  for (int64_t i = 0; i < param.numel(); ++i) {
    float g = p.maximize ? -g_in[i] : g_in[i];
    if (p.weight_decay != 0.0) {
      if (p.decoupled_weight_decay)
        w[i] = w[i] * decay;
      else
        g = g + wd * w[i];
    }
    m[i] = lerp(m[i], g, w1);
    v[i] = v[i] * b2 + one_minus_b2 * g * g;
    float vhat = v[i];
    if (vmax) vhat = vmax[i] = std::fmax(vmax[i], v[i]);
    const float denom = std::sqrt(vhat) / bc2_sqrt + eps;
    w[i] = w[i] + neg_step_size * m[i] / denom;
  }
}

void rmsprop_step(const Tensor& param, const Tensor& grad_in, const Tensor& square_avg,
                  const Tensor& momentum_buffer, const Tensor& grad_avg, const RmspropParams& p) {
  const char* op = "reference::rmsprop_step";
  float* w = buffer(param, param, op, "param");
  const Tensor grad = grad_in.contiguous();
  const float* g_in = buffer(grad, param, op, "grad");
  float* sq = buffer(square_avg, param, op, "square_avg");
  float* buf = p.momentum > 0.0 ? buffer(momentum_buffer, param, op, "momentum_buffer") : nullptr;
  float* ga = p.centered ? buffer(grad_avg, param, op, "grad_avg") : nullptr;
  const float wd = static_cast<float>(p.weight_decay), alpha = static_cast<float>(p.alpha);
  const float one_minus_alpha = static_cast<float>(1.0 - p.alpha);
  const float eps = static_cast<float>(p.eps), mom = static_cast<float>(p.momentum);
  const float neg_lr = static_cast<float>(-p.lr);
  for (int64_t i = 0; i < param.numel(); ++i) {
    float g = p.maximize ? -g_in[i] : g_in[i];
    if (p.weight_decay != 0.0) g = g + wd * w[i];
    sq[i] = sq[i] * alpha + one_minus_alpha * g * g;
    float avg;
    if (ga) {
      ga[i] = lerp(ga[i], g, one_minus_alpha);
      avg = std::sqrt(sq[i] + -1.0f * ga[i] * ga[i]);
    } else {
      avg = std::sqrt(sq[i]);
    }
    avg = avg + eps;
    if (buf) {
      buf[i] = buf[i] * mom + g / avg;
      w[i] = w[i] + neg_lr * buf[i];
    } else {
      w[i] = w[i] + neg_lr * g / avg;
    }
  }
}

}  // namespace cnncore::reference
