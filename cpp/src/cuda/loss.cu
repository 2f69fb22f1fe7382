// log_softmax and cross_entropy (class-index targets) on CUDA, with the CPU reference's formulas
// (cpu/reference/loss.cpp): per element (n, d...) of target t,
//   loss = -(1 - e) w_t logp[t] + (e / C) sum_c -w_c logp[c]   (0 where t == ignore_index),
// mean divides the sum by total_weight = sum of w_t over the kept elements. Element losses and
// the reduction are summed in double, in a fixed order (one block), as on the CPU.
// nll_loss is cross_entropy with e = 0. Probability targets q (float32, the input's shape):
//   loss = -sum_c w_c ((1 - e) q_c + e / C) logp[c], total_weight = the number of elements.
//
// The elementwise losses (mse, l1, smooth_l1, binary_cross_entropy and its logits form) use the
// CPU's formulas (cpu/loss.cpp) in double per element; sum / mean add per-block partials (a
// warp-shuffle tree per block, a fixed grid for a given size) and then the partials in one block,
// so the result is deterministic.
#include <algorithm>
#include <cmath>
#include <vector>

#include "block_reduce.cuh"
#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
// ---- log_softmax over one dim: rows (outer, inner), C apart by `inner` -----------------------
__global__ void log_softmax_kernel(const float* x, float* y, int64_t outer, int64_t C,
                                   int64_t inner) {
  CNNCORE_CUDA_LOOP(r, outer * inner) {
    const int64_t base = (r / inner) * C * inner + r % inner;
    float mx = -INFINITY;
    for (int64_t c = 0; c < C; ++c) mx = fmaxf(mx, x[base + c * inner]);
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) s += exp(static_cast<double>(x[base + c * inner] - mx));
    const float lse = mx + static_cast<float>(log(s));
    for (int64_t c = 0; c < C; ++c) y[base + c * inner] = x[base + c * inner] - lse;
  }
}
__global__ void log_softmax_backward_kernel(const float* dy, const float* y, float* dx,
                                            int64_t outer, int64_t C, int64_t inner) {
  CNNCORE_CUDA_LOOP(r, outer * inner) {
    const int64_t base = (r / inner) * C * inner + r % inner;
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) s += dy[base + c * inner];
    for (int64_t c = 0; c < C; ++c)
      dx[base + c * inner] =
          dy[base + c * inner] - expf(y[base + c * inner]) * static_cast<float>(s);
  }
}

struct CeDims {
  int64_t N, C, inner;
};
// Class-index targets have the loss's shape `expect` = (N, d1, ...); probability targets
// (float32) the input's, as the CPU's class_args checks.
CeDims ce_dims(const Tensor& logp, const Tensor& target, const char* op, Shape* out_shape = nullptr) {
  CNNCORE_CHECK_VALUE(logp.dim() >= 1, op, ": input must be (C), (N, C) or (N, C, d1, ...)");
  CeDims d{1, logp.size(logp.dim() == 1 ? 0 : 1), 1};
  Shape expect;
  if (logp.dim() > 1) {
    d.N = logp.size(0);
    expect.push_back(d.N);
    for (int64_t i = 2; i < logp.dim(); ++i) {
      d.inner *= logp.size(i);
      expect.push_back(logp.size(i));
    }
  }
  if (target.dtype() == DType::Float32) {
    CNNCORE_CHECK_TYPE(target.shape() != expect, op,
                       ": target must be int64 class indices, but got float32 with shape ",
                       shape_str(target.shape()));
    CNNCORE_CHECK_VALUE(target.shape() == logp.shape(), op,
                        ": target of class probabilities must have the input's shape ",
                        shape_str(logp.shape()), ", but got ", shape_str(target.shape()));
  } else {
    CNNCORE_CHECK_VALUE(target.shape() == expect, op, ": target must have shape ",
                        shape_str(expect), " for input of shape ", shape_str(logp.shape()),
                        ", but got ", shape_str(target.shape()));
  }
  if (out_shape) *out_shape = expect;
  return d;
}

// ---- probability targets ------------------------------------------------------------------------
__global__ void ce_prob_elements_kernel(const float* lp, const float* q, const float* w, CeDims d,
                                        double eps, float* out, double* el, double* tw) {
  CNNCORE_CUDA_LOOP(e, d.N * d.inner) {
    const int64_t n = e / d.inner, i = e % d.inner;
    double v = 0.0;
    for (int64_t c = 0; c < d.C; ++c) {
      const int64_t k = (n * d.C + c) * d.inner + i;
      const double qc = (1.0 - eps) * q[k] + eps / d.C;
      v -= static_cast<double>(w ? w[c] : 1.0f) * qc * lp[k];
    }
    out[e] = static_cast<float>(v);
    el[e] = v;
    tw[e] = 1.0;
  }
}

// d loss / d logp (of_target false) or d loss / d q (true), every element.
__global__ void ce_prob_backward_kernel(const float* dloss, bool per_element, bool mean,
                                        const float* total_weight, const float* lp,
                                        const float* q, const float* w, CeDims d, double eps,
                                        bool of_target, float* out) {
  CNNCORE_CUDA_LOOP(k, d.N * d.C * d.inner) {
    const int64_t i = k % d.inner, c = (k / d.inner) % d.C, n = k / (d.inner * d.C);
    double g = per_element ? static_cast<double>(dloss[n * d.inner + i]) : dloss[0];
    if (mean) g /= static_cast<double>(*total_weight);
    const double wc = w ? w[c] : 1.0f;
    out[k] = of_target ? static_cast<float>(-g * wc * (1.0 - eps) * lp[k])
                       : static_cast<float>(-g * wc * ((1.0 - eps) * q[k] + eps / d.C));
  }
}

__device__ float weight_of(const float* w, int64_t c) { return w ? w[c] : 1.0f; }

__global__ void ce_elements_kernel(const float* lp, const int64_t* target, const float* w,
                                   CeDims d, int64_t ignore, double eps, float* out, double* el,
                                   double* tw) {
  CNNCORE_CUDA_LOOP(e, d.N * d.inner) {
    const int64_t n = e / d.inner, i = e % d.inner, t = target[e];
    double v = 0.0, wt = 0.0;
    if (t != ignore) {
      wt = weight_of(w, t);
      double smooth = 0.0;
      for (int64_t c = 0; c < d.C; ++c)
        smooth -= static_cast<double>(weight_of(w, c)) * lp[(n * d.C + c) * d.inner + i];
      v = -(1.0 - eps) * wt * lp[(n * d.C + t) * d.inner + i] + eps / d.C * smooth;
    }
    out[e] = static_cast<float>(v);
    el[e] = v;
    tw[e] = wt;
  }
}

// One block: totals in double in a fixed order; writes loss (mean / sum) and total_weight.
__global__ void ce_reduce_kernel(const double* el, const double* tw, int64_t n, bool mean,
                                 float* loss, float* total_weight) {
  __shared__ double s_el[kThreads], s_tw[kThreads];
  double a = 0.0, b = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    a += el[i];
    b += tw[i];
  }
  s_el[threadIdx.x] = a;
  s_tw[threadIdx.x] = b;
  __syncthreads();
  for (int h = blockDim.x / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) {
      s_el[threadIdx.x] += s_el[threadIdx.x + h];
      s_tw[threadIdx.x] += s_tw[threadIdx.x + h];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (loss) *loss = static_cast<float>(mean ? s_el[0] / s_tw[0] : s_el[0]);
    *total_weight = static_cast<float>(s_tw[0]);
  }
}

__global__ void ce_backward_kernel(const float* dloss, bool per_element, bool mean,
                                   const float* total_weight, const int64_t* target,
                                   const float* w, CeDims d, int64_t ignore, double eps,
                                   float* dlp) {
  CNNCORE_CUDA_LOOP(e, d.N * d.inner) {
    const int64_t n = e / d.inner, i = e % d.inner, t = target[e];
    if (t == ignore) continue;  // dlp was zeroed
    double g = per_element ? dloss[e] : dloss[0];
    if (mean) g /= static_cast<double>(*total_weight);
    for (int64_t c = 0; c < d.C; ++c) {
      const double coef =
          (c == t ? (1.0 - eps) * weight_of(w, t) : 0.0) + eps / d.C * weight_of(w, c);
      dlp[(n * d.C + c) * d.inner + i] = static_cast<float>(-g * coef);
    }
  }
}

void check_targets(const Tensor& target, int64_t C, int64_t ignore, const char* op) {
  // A bad class index would read out of bounds on the device: check on the host (one small copy).
  Tensor host = target.to(Device{});
  const int64_t* t = host.data<int64_t>();
  for (int64_t i = 0; i < host.numel(); ++i)
    CNNCORE_CHECK_VALUE(t[i] == ignore || (t[i] >= 0 && t[i] < C), op, ": target ", t[i],
                        " is out of range: expected 0 <= target < ", C,
                        " (the number of classes) or ignore_index=", ignore);
}

int64_t wrap(int64_t dim, int64_t nd, const char* op) {
  const int64_t n = std::max<int64_t>(nd, 1);
  if (dim < -n || dim >= n)
    throw IndexError(detail::concat(op, ": dim must be in [", -n, ", ", n - 1, "], but got ", dim));
  return dim < 0 ? dim + n : dim;
}

void rows_of(const Tensor& t, int64_t dim, int64_t& outer, int64_t& C, int64_t& inner) {
  outer = inner = 1;
  C = t.dim() ? t.size(dim) : 1;
  for (int64_t i = 0; i < dim; ++i) outer *= t.size(i);
  for (int64_t i = dim + 1; i < t.dim(); ++i) inner *= t.size(i);
}

const float* weight_ptr(const std::optional<Tensor>& w, Tensor& keep, int64_t C, const char* op) {
  if (!w || !w->defined()) return nullptr;
  CNNCORE_CHECK_VALUE(w->dim() == 1 && w->size(0) == C, op, ": weight must have shape (", C,
                      ",), but got ", shape_str(w->shape()));
  keep = w->contiguous();
  return keep.device_data<float>();
}
}  // namespace

Tensor log_softmax_forward(const Tensor& x_in, int64_t dim) {
  const char* op = "log_softmax";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  dim = wrap(dim, x_in.dim(), op);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  int64_t outer, C, inner;
  rows_of(x, dim, outer, C, inner);
  if (x.numel()) {
    log_softmax_kernel<<<grid_for(outer * inner), kThreads>>>(
        x.device_data<float>(), y.device_data<float>(), outer, C, inner);
    check_launch(op);
  }
  return y;
}

Tensor log_softmax_backward(const Tensor& dy_in, const Tensor& y_in, int64_t dim) {
  const char* op = "log_softmax_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"output", &y_in}});
  CNNCORE_CHECK_VALUE(dy_in.shape() == y_in.shape(), op, ": grad_output shape ",
                      shape_str(dy_in.shape()), " must match output shape ",
                      shape_str(y_in.shape()));
  dim = wrap(dim, y_in.dim(), op);
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous(), y = y_in.contiguous();
  Tensor dx = Tensor::empty(y.shape(), DType::Float32, y.device());
  int64_t outer, C, inner;
  rows_of(y, dim, outer, C, inner);
  if (y.numel()) {
    log_softmax_backward_kernel<<<grid_for(outer * inner), kThreads>>>(
        dy.device_data<float>(), y.device_data<float>(), dx.device_data<float>(), outer, C,
        inner);
    check_launch(op);
  }
  return dx;
}

std::pair<Tensor, Tensor> cross_entropy_logp_forward(const Tensor& logp_in, const Tensor& target,
                                                     const std::optional<Tensor>& weight,
                                                     Reduction reduction, int64_t ignore_index,
                                                     double eps) {
  const char* op = "cross_entropy";
  check_same_device(op, {{"input", &logp_in}, {"target", &target}, {"weight", opt_ptr(weight)}});
  const bool prob = target.dtype() == DType::Float32;
  const int dev = check_cuda_inputs(op, {{"input", &logp_in}, {"target", prob ? &target : nullptr},
                                         {"weight", opt_ptr(weight)}});
  CNNCORE_CHECK_VALUE(eps >= 0.0 && eps <= 1.0, op, ": label_smoothing must be in [0, 1], but got ",
                      eps);
  Shape out_shape;
  const CeDims d = ce_dims(logp_in, target, op, &out_shape);
  if (!prob) check_targets(target, d.C, ignore_index, op);
  DeviceGuard guard(dev, op);
  Tensor logp = logp_in.contiguous(), t = target.contiguous(), wkeep;
  const float* w = weight_ptr(weight, wkeep, d.C, op);
  const int64_t n = d.N * d.inner;
  const Device where = logp.device();
  Tensor out = Tensor::empty(out_shape, DType::Float32, where);
  Tensor scratch = Tensor::empty({2 * std::max<int64_t>(n, 1)}, DType::Int64, where);  // doubles
  double* el = reinterpret_cast<double*>(scratch.device_data<int64_t>());
  double* tw = el + std::max<int64_t>(n, 1);
  Tensor loss = Tensor::empty({}, DType::Float32, where);
  Tensor total = Tensor::empty({}, DType::Float32, where);
  if (n) {
    if (prob)
      ce_prob_elements_kernel<<<grid_for(n), kThreads>>>(logp.device_data<float>(),
                                                         t.device_data<float>(), w, d, eps,
                                                         out.device_data<float>(), el, tw);
    else
      ce_elements_kernel<<<grid_for(n), kThreads>>>(logp.device_data<float>(),
                                                    t.device_data<int64_t>(), w, d, ignore_index,
                                                    eps, out.device_data<float>(), el, tw);
    check_launch(op);
  }
  ce_reduce_kernel<<<1, kThreads>>>(el, tw, n, reduction == Reduction::Mean,
                                    reduction == Reduction::None ? nullptr
                                                                 : loss.device_data<float>(),
                                    total.device_data<float>());
  check_launch(op);
  return {reduction == Reduction::None ? out : loss, total};
}

namespace {
// The checks both backward entries share; returns the dims.
CeDims ce_backward_checks(const Tensor& dloss_in, const Tensor& logp_in, const Tensor& target,
                          Reduction reduction, const Tensor& total_weight, const char* op) {
  Shape out_shape;
  const CeDims d = ce_dims(logp_in, target, op, &out_shape);
  const bool per_element = reduction == Reduction::None;
  CNNCORE_CHECK_VALUE(per_element ? dloss_in.shape() == out_shape : dloss_in.numel() == 1,
                      op, ": grad_output has shape ", shape_str(dloss_in.shape()),
                      ", which does not fit the reduction");
  CNNCORE_CHECK_VALUE(total_weight.numel() == 1, op, ": total_weight must be a scalar, but got ",
                      shape_str(total_weight.shape()));
  return d;
}
}  // namespace

Tensor cross_entropy_logp_backward(const Tensor& dloss_in, const Tensor& logp_in,
                                   const Tensor& target, const std::optional<Tensor>& weight,
                                   Reduction reduction, int64_t ignore_index, double eps,
                                   const Tensor& total_weight) {
  const char* op = "cross_entropy_backward";
  check_same_device(op, {{"grad_output", &dloss_in}, {"input", &logp_in}, {"target", &target},
                         {"total_weight", &total_weight}});
  const bool prob = target.dtype() == DType::Float32;
  const int dev = check_cuda_inputs(op, {{"grad_output", &dloss_in}, {"input", &logp_in},
                                         {"target", prob ? &target : nullptr},
                                         {"total_weight", &total_weight},
                                         {"weight", opt_ptr(weight)}});
  const CeDims d = ce_backward_checks(dloss_in, logp_in, target, reduction, total_weight, op);
  const bool per_element = reduction == Reduction::None;
  DeviceGuard guard(dev, op);
  Tensor logp = logp_in.contiguous(), t = target.contiguous(), g = dloss_in.contiguous(), wkeep;
  Tensor tw = total_weight.contiguous();
  const float* w = weight_ptr(weight, wkeep, d.C, op);
  if (prob) {
    Tensor dlp = Tensor::empty(logp.shape(), DType::Float32, logp.device());
    if (const int64_t n = logp.numel()) {
      ce_prob_backward_kernel<<<grid_for(n), kThreads>>>(
          g.device_data<float>(), per_element, reduction == Reduction::Mean,
          tw.device_data<float>(), logp.device_data<float>(), t.device_data<float>(), w, d, eps,
          false, dlp.device_data<float>());
      check_launch(op);
    }
    return dlp;
  }
  Tensor dlp = Tensor::zeros(logp.shape(), DType::Float32, logp.device());
  if (const int64_t n = d.N * d.inner) {
    ce_backward_kernel<<<grid_for(n), kThreads>>>(
        g.device_data<float>(), per_element, reduction == Reduction::Mean,
        tw.device_data<float>(), t.device_data<int64_t>(), w, d, ignore_index, eps,
        dlp.device_data<float>());
    check_launch(op);
  }
  return dlp;
}

Tensor cross_entropy_logp_backward_target(const Tensor& dloss_in, const Tensor& logp_in,
                                          const Tensor& target,
                                          const std::optional<Tensor>& weight,
                                          Reduction reduction, double eps,
                                          const Tensor& total_weight) {
  const char* op = "cross_entropy_backward_target";
  check_same_device(op, {{"grad_output", &dloss_in}, {"input", &logp_in}, {"target", &target},
                         {"total_weight", &total_weight}, {"weight", opt_ptr(weight)}});
  CNNCORE_CHECK_VALUE(target.dtype() == DType::Float32, op,
                      ": only probability targets (float32) have a gradient");
  const int dev = check_cuda_inputs(op, {{"grad_output", &dloss_in}, {"input", &logp_in},
                                         {"target", &target}, {"total_weight", &total_weight},
                                         {"weight", opt_ptr(weight)}});
  CNNCORE_CHECK_VALUE(eps >= 0.0 && eps <= 1.0, op, ": label_smoothing must be in [0, 1], but got ",
                      eps);
  const CeDims d = ce_backward_checks(dloss_in, logp_in, target, reduction, total_weight, op);
  DeviceGuard guard(dev, op);
  Tensor logp = logp_in.contiguous(), t = target.contiguous(), g = dloss_in.contiguous(), wkeep;
  Tensor tw = total_weight.contiguous();
  const float* w = weight_ptr(weight, wkeep, d.C, op);
  Tensor dt = Tensor::empty(logp.shape(), DType::Float32, logp.device());
  if (const int64_t n = logp.numel()) {
    ce_prob_backward_kernel<<<grid_for(n), kThreads>>>(
        g.device_data<float>(), reduction == Reduction::None, reduction == Reduction::Mean,
        tw.device_data<float>(), logp.device_data<float>(), t.device_data<float>(), w, d, eps,
        true, dt.device_data<float>());
    check_launch(op);
  }
  return dt;
}

// ---- the elementwise losses ---------------------------------------------------------------------
namespace {
struct PairPtrs {
  const float *x, *t, *w, *pw;  // w, pw null when absent
  double beta;
};

__device__ double dsign(double v) { return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0); }
// -log sigmoid(x) = log(1 + exp(-|x|)) + max(-x, 0): never exponentiates a large number.
__device__ double neg_log_sigmoid(double x) { return log1p(exp(-fabs(x))) + fmax(-x, 0.0); }

__device__ double pair_loss(PairLoss k, const PairPtrs& p, int64_t i) {
  const double x = p.x[i], t = p.t[i], w = p.w ? p.w[i] : 1.0;
  switch (k) {
    case PairLoss::Mse: return w * (x - t) * (x - t);
    case PairLoss::L1: return w * fabs(x - t);
    case PairLoss::SmoothL1: {
      const double d = fabs(x - t);
      return d < p.beta ? 0.5 * d * d / p.beta : d - 0.5 * p.beta;
    }
    case PairLoss::BinaryCrossEntropy: {
      // PyTorch clamps each log at -100 so that x = 0 or 1 gives a finite loss.
      const double lx = fmax(log(x), -100.0), l1x = fmax(log1p(-x), -100.0);
      return -w * (t * lx + (1.0 - t) * l1x);
    }
    case PairLoss::BceWithLogits: {
      const double pw = p.pw ? p.pw[i] : 1.0;
      return w * ((1.0 - t) * x + (1.0 + (pw - 1.0) * t) * neg_log_sigmoid(x));
    }
  }
  return 0.0;
}

// d loss_i / d x_i, or / d t_i.
__device__ double pair_grad(PairLoss k, bool wrt_target, const PairPtrs& p, int64_t i) {
  const double x = p.x[i], t = p.t[i], w = p.w ? p.w[i] : 1.0;
  const double s = wrt_target ? -1.0 : 1.0;  // the symmetric losses: d/dt = -d/dx
  switch (k) {
    case PairLoss::Mse: return s * w * 2.0 * (x - t);
    case PairLoss::L1: return s * w * dsign(x - t);
    case PairLoss::SmoothL1: {
      const double d = x - t;
      return s * (fabs(d) < p.beta ? d / p.beta : dsign(d));
    }
    case PairLoss::BinaryCrossEntropy:
      // d/dx with PyTorch's epsilon (finite at x = 0 or 1); d/dt unclamped (+-inf there).
      if (wrt_target) return -w * (log(x) - log1p(-x));
      return w * (x - t) / fmax((1.0 - x) * x, 1e-12);
    case PairLoss::BceWithLogits: {
      const double pw = p.pw ? p.pw[i] : 1.0;
      if (wrt_target) return w * ((pw - 1.0) * neg_log_sigmoid(x) - x);
      const double sg = x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
      return w * (sg * (pw * t + 1.0 - t) - pw * t);
    }
  }
  return 0.0;
}

__global__ void pair_none_kernel(PairLoss k, PairPtrs p, int64_t n, float* out) {
  CNNCORE_CUDA_LOOP(i, n) out[i] = static_cast<float>(pair_loss(k, p, i));
}

// Per-block partial sums of the losses (when `losses`) and of the weights (when p.w): a fixed
// grid for a given n, so the same elements meet in the same order every run.
__global__ void pair_partial_kernel(PairLoss k, PairPtrs p, int64_t n, bool losses,
                                    double* part_loss, double* part_w) {
  double a = 0.0, b = 0.0;
  CNNCORE_CUDA_LOOP(i, n) {
    if (losses) a += pair_loss(k, p, i);
    if (p.w) b += p.w[i];
  }
  block_sum2(a, b);
  if (threadIdx.x == 0) {
    part_loss[blockIdx.x] = a;
    part_w[blockIdx.x] = b;
  }
}

// One block: the partials in a fixed order. Writes the loss (out) or the gradient scale
// (dloss[0], divided by the mean's divisor) as a double.
__global__ void pair_finish_kernel(const double* part_loss, const double* part_w, int64_t parts,
                                   bool mean, bool weight_divisor, double count,
                                   const float* dloss, float* out, double* scale) {
  double a = 0.0, b = 0.0;
  for (int64_t i = threadIdx.x; i < parts; i += blockDim.x) {
    a += part_loss[i];
    b += part_w[i];
  }
  block_sum2(a, b);
  if (threadIdx.x == 0) {
    const double divisor = mean ? (weight_divisor ? b : count) : 1.0;  // 0 / 0 = nan, as torch
    if (out) *out = static_cast<float>(a / divisor);
    if (scale) *scale = static_cast<double>(dloss[0]) / divisor;
  }
}

__global__ void pair_grad_kernel(PairLoss k, bool wrt_target, PairPtrs p, int64_t n,
                                 const float* dloss, bool per_element, const double* scale,
                                 float* dx) {
  CNNCORE_CUDA_LOOP(i, n) {
    const double g = per_element ? static_cast<double>(dloss[i]) : *scale;
    dx[i] = static_cast<float>(pair_grad(k, wrt_target, p, i) * g);
  }
}

// Elements outside [0, 1] (nan included): the first one's index, by atomicMin.
__global__ void unit_range_kernel(const float* x, int64_t n, unsigned long long* first_bad) {
  CNNCORE_CUDA_LOOP(i, n) {
    const float v = x[i];
    if (!(v >= 0.0f && v <= 1.0f)) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

const char* pair_name(PairLoss k) {
  switch (k) {
    case PairLoss::Mse: return "mse_loss";
    case PairLoss::L1: return "l1_loss";
    case PairLoss::SmoothL1: return "smooth_l1_loss";
    case PairLoss::BinaryCrossEntropy: return "binary_cross_entropy";
    case PairLoss::BceWithLogits: return "binary_cross_entropy_with_logits";
  }
  return "loss";
}

// The operands, contiguous, kept alive by the Tensors.
struct PairOperands {
  Tensor x, t, w, pw;
  PairPtrs p{};
  int64_t n = 0;
};
PairOperands pair_operands(const Tensor& x, const Tensor& t, const std::optional<Tensor>& w,
                           const std::optional<Tensor>& pw, double beta) {
  PairOperands o;
  o.x = x.contiguous();
  o.t = t.contiguous();
  o.p.x = o.x.device_data<float>();
  o.p.t = o.t.device_data<float>();
  if (w && w->defined()) {
    o.w = w->contiguous();
    o.p.w = o.w.device_data<float>();
  }
  if (pw && pw->defined()) {
    o.pw = pw->contiguous();
    o.p.pw = o.pw.device_data<float>();
  }
  o.p.beta = beta;
  o.n = o.x.numel();
  return o;
}

constexpr int64_t kPairPerThread = 8;
constexpr int64_t kPairMaxBlocks = 1024;
int64_t pair_blocks(int64_t n) {
  return std::max<int64_t>(
      1, std::min(kPairMaxBlocks, (n + kThreads * kPairPerThread - 1) / (kThreads * kPairPerThread)));
}
bool weight_divides(PairLoss k, const PairPtrs& p) {  // mse / l1: mean over sum(weight)
  return p.w && (k == PairLoss::Mse || k == PairLoss::L1);
}

// Partials (losses when `losses`) then the finish kernel into out / scale.
void pair_reduce(PairLoss k, const PairOperands& o, bool losses, Reduction reduction,
                 const float* dloss, float* out, double* scale, const Device& where,
                 const char* op) {
  const int64_t blocks = pair_blocks(o.n);
  Tensor scratch = Tensor::empty({2 * blocks}, DType::Int64, where);  // doubles
  double* part_loss = reinterpret_cast<double*>(scratch.device_data<int64_t>());
  double* part_w = part_loss + blocks;
  pair_partial_kernel<<<static_cast<unsigned>(blocks), kThreads>>>(k, o.p, o.n, losses,
                                                                    part_loss, part_w);
  check_launch(op);
  pair_finish_kernel<<<1, kThreads>>>(part_loss, part_w, blocks, reduction == Reduction::Mean,
                                      weight_divides(k, o.p), static_cast<double>(o.n), dloss,
                                      out, scale);
  check_launch(op);
}
}  // namespace

Tensor pair_loss_forward(PairLoss kind, const Tensor& x, const Tensor& t,
                         const std::optional<Tensor>& weight,
                         const std::optional<Tensor>& pos_weight, Reduction reduction,
                         double beta) {
  const char* op = pair_name(kind);
  const int dev = check_cuda_inputs(op, {{"input", &x}, {"target", &t},
                                         {"weight", opt_ptr(weight)},
                                         {"pos_weight", opt_ptr(pos_weight)}});
  DeviceGuard guard(dev, op);
  const PairOperands o = pair_operands(x, t, weight, pos_weight, beta);
  if (kind == PairLoss::BinaryCrossEntropy && o.n) {
    Tensor flag = Tensor::empty({1}, DType::Int64, x.device());
    const unsigned long long none = static_cast<unsigned long long>(o.n);
    copy_host_to_device(flag.device_data<int64_t>(), &none, sizeof none, dev);
    unit_range_kernel<<<grid_for(o.n), kThreads>>>(
        o.p.x, o.n, reinterpret_cast<unsigned long long*>(flag.device_data<int64_t>()));
    check_launch(op);
    unsigned long long bad = 0;
    copy_device_to_host(&bad, flag.device_data<int64_t>(), sizeof bad, dev);
    if (bad < none) {
      float v = 0.0f;
      copy_device_to_host(&v, o.p.x + bad, sizeof v, dev);
      CNNCORE_CHECK_VALUE(false, op, ": input must hold probabilities in [0, 1], but element ",
                          bad, " is ", v);
    }
  }
  if (reduction == Reduction::None) {
    Tensor out = Tensor::empty(o.x.shape(), DType::Float32, x.device());
    if (o.n) {
      pair_none_kernel<<<grid_for(o.n), kThreads>>>(kind, o.p, o.n, out.device_data<float>());
      check_launch(op);
    }
    return out;
  }
  Tensor out = Tensor::empty({}, DType::Float32, x.device());
  pair_reduce(kind, o, true, reduction, nullptr, out.device_data<float>(), nullptr, x.device(),
              op);
  return out;
}

Tensor pair_loss_backward(PairLoss kind, bool wrt_target, const Tensor& dloss_in, const Tensor& x,
                          const Tensor& t, const std::optional<Tensor>& weight,
                          const std::optional<Tensor>& pos_weight, Reduction reduction,
                          double beta) {
  const char* op = pair_name(kind);
  const int dev = check_cuda_inputs(op, {{"grad_output", &dloss_in}, {"input", &x},
                                         {"target", &t}, {"weight", opt_ptr(weight)},
                                         {"pos_weight", opt_ptr(pos_weight)}});
  DeviceGuard guard(dev, op);
  const PairOperands o = pair_operands(x, t, weight, pos_weight, beta);
  const Tensor dloss = dloss_in.contiguous();
  Tensor dx = Tensor::empty(o.x.shape(), DType::Float32, x.device());
  if (o.n == 0) return dx;
  const bool per_element = reduction == Reduction::None;
  Tensor scale_keep;
  double* scale = nullptr;
  if (!per_element) {  // dloss[0] over the mean's divisor, on the device (no synchronisation)
    scale_keep = Tensor::empty({1}, DType::Int64, x.device());
    scale = reinterpret_cast<double*>(scale_keep.device_data<int64_t>());
    pair_reduce(kind, o, false, reduction, dloss.device_data<float>(), nullptr, scale,
                x.device(), op);
  }
  pair_grad_kernel<<<grid_for(o.n), kThreads>>>(kind, wrt_target, o.p, o.n,
                                                dloss.device_data<float>(), per_element, scale,
                                                dx.device_data<float>());
  check_launch(op);
  return dx;
}

}  // namespace cnncore::cuda
