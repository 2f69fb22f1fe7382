// Losses. The class losses (nll, cross_entropy) are gathers, not streams, so they are plain loops
// threaded over the batch; the elementwise losses stream through fixed-size blocks. Every
// reduction sums per-row or per-block partials in double and then combines the partials in index
// order, so the result is the same for any thread count.
#include "cnncore/ops/loss.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
constexpr int64_t kGrain = 1 << 14;
constexpr int64_t kBlock = 1 << 14;  // elements per partial sum of the elementwise losses

const char* reduction_name(Reduction r) {
  return r == Reduction::None ? "none" : (r == Reduction::Mean ? "mean" : "sum");
}
void check_reduction(Reduction r, const char* op) {
  const int v = static_cast<int>(r);
  CNNCORE_CHECK_VALUE(v >= 0 && v <= 2, op, ": reduction must be 'none', 'mean' or 'sum', but got ",
                      v);
}

// ---- class losses ------------------------------------------------------------------------------
struct ClassShape {
  int64_t N = 1, C = 1, inner = 1;
  Shape out_shape;  // the shape of the unreduced loss = the shape of class-index targets
};

ClassShape class_shape(const Tensor& logp, const char* op) {
  check_dtype(logp, DType::Float32, op, "input");
  CNNCORE_CHECK_VALUE(logp.dim() >= 1, op,
                      ": input must be (C), (N, C) or (N, C, d1, ...), but got a 0-D tensor");
  ClassShape s;
  if (logp.dim() == 1) {
    s.C = logp.size(0);
    return s;
  }
  s.N = logp.size(0);
  s.C = logp.size(1);
  s.out_shape.push_back(s.N);
  for (int64_t d = 2; d < logp.dim(); ++d) {
    s.inner *= logp.size(d);
    s.out_shape.push_back(logp.size(d));
  }
  return s;
}

struct ClassArgs {
  ClassShape s;
  Tensor logp, target, weight;  // contiguous; weight undefined when none
  bool prob = false;            // target holds class probabilities (float32, logp's shape)
  double eps = 0.0;             // label smoothing
  int64_t ignore = -100;
};

ClassArgs class_args(const Tensor& logp_in, const Tensor& target_in,
                     const std::optional<Tensor>& weight, Reduction reduction,
                     int64_t ignore_index, double label_smoothing, bool allow_prob,
                     const char* op) {
  check_reduction(reduction, op);
  ClassArgs a;
  a.s = class_shape(logp_in, op);
  check_defined(target_in, op, "target");
  if (target_in.dtype() == DType::Float32) {
    // A float target shaped like class indices is a dtype mistake, not probabilities.
    CNNCORE_CHECK_TYPE(allow_prob && target_in.shape() != a.s.out_shape, op,
                       ": target must be int64 class indices, but got float32 with shape ",
                       shape_str(target_in.shape()));
    a.prob = true;
    CNNCORE_CHECK_VALUE(target_in.shape() == logp_in.shape(), op,
                        ": target of class probabilities must have the input's shape ",
                        shape_str(logp_in.shape()), ", but got ", shape_str(target_in.shape()));
  } else {
    CNNCORE_CHECK_VALUE(target_in.shape() == a.s.out_shape, op, ": target must have shape ",
                        shape_str(a.s.out_shape), " for input of shape ",
                        shape_str(logp_in.shape()), ", but got ", shape_str(target_in.shape()));
  }
  CNNCORE_CHECK_VALUE(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
                      ": label_smoothing must be in [0, 1], but got ", label_smoothing);
  a.eps = label_smoothing;
  a.ignore = ignore_index;
  a.logp = as_nchw(logp_in);
  a.target = target_in.contiguous();
  if (weight.has_value() && weight->defined()) {
    check_dtype(*weight, DType::Float32, op, "weight");
    CNNCORE_CHECK_VALUE(weight->dim() == 1 && weight->size(0) == a.s.C, op,
                        ": weight must be 1-D with one value per class (", a.s.C,
                        "), but got shape ", shape_str(weight->shape()));
    a.weight = weight->contiguous();
  }
  if (!a.prob) {
    // One serial pass: an out-of-range class would index past the row.
    const int64_t* t = a.target.data<int64_t>();
    const int64_t n = a.target.numel();
    for (int64_t i = 0; i < n; ++i)
      CNNCORE_CHECK_VALUE(t[i] == ignore_index || (t[i] >= 0 && t[i] < a.s.C), op,
                          ": target value ", t[i], " (element ", i,
                          ") is out of range: expected 0 <= target < ", a.s.C,
                          " (the number of classes) or ignore_index=", ignore_index);
  }
  return a;
}

// nll_loss takes class indices only (the CUDA path shares cross_entropy's, which also takes
// probabilities).
void check_class_indices(const Tensor& target, const char* op) {
  check_defined(target, op, "target");
  CNNCORE_CHECK_TYPE(target.dtype() == DType::Int64, op,
                     ": target must be int64 class indices, but got ", dtype_name(target.dtype()),
                     " with shape ", shape_str(target.shape()));
}

// Unreduced losses of batch row n into el[0..inner); returns that row's total weight.
double class_row(const ClassArgs& a, int64_t n, double* el) {
  const int64_t C = a.s.C, inner = a.s.inner;
  const float* lp = a.logp.data<float>() + n * C * inner;
  const float* w = a.weight.defined() ? a.weight.data<float>() : nullptr;
  const double e = a.eps, keep = 1.0 - a.eps;
  if (a.prob) {
    const float* q = a.target.data<float>() + n * C * inner;
    std::fill(el, el + inner, 0.0);
    for (int64_t c = 0; c < C; ++c) {
      const double wc = w ? w[c] : 1.0;
      for (int64_t i = 0; i < inner; ++i) {
        const double qc = keep * q[c * inner + i] + e / C;
        el[i] -= wc * qc * lp[c * inner + i];
      }
    }
    return static_cast<double>(inner);
  }
  const int64_t* t = a.target.data<int64_t>() + n * inner;
  double tw = 0.0;
  for (int64_t i = 0; i < inner; ++i) {
    if (t[i] == a.ignore) {
      el[i] = 0.0;
      continue;
    }
    const double wt = w ? w[t[i]] : 1.0;
    tw += wt;
    el[i] = -keep * wt * lp[t[i] * inner + i];
  }
  if (e > 0.0) {
    std::vector<double> sm(inner, 0.0);
    for (int64_t c = 0; c < C; ++c) {
      const double wc = w ? w[c] : 1.0;
      for (int64_t i = 0; i < inner; ++i) sm[i] += wc * lp[c * inner + i];
    }
    for (int64_t i = 0; i < inner; ++i)
      if (t[i] != a.ignore) el[i] -= e / C * sm[i];
  }
  return tw;
}

std::pair<Tensor, Tensor> class_forward(const ClassArgs& a, Reduction reduction) {
  const int64_t N = a.s.N, inner = a.s.inner;
  std::vector<double> part(N, 0.0), tw(N, 0.0);
  Tensor out = reduction == Reduction::None ? Tensor::empty(a.s.out_shape) : Tensor::empty({});
  float* op = out.data<float>();
  parallel_for(0, N, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, a.s.C * inner)),
               [&](int64_t b, int64_t e) {
                 std::vector<double> el(inner);
                 for (int64_t n = b; n < e; ++n) {
                   tw[n] = class_row(a, n, el.data());
                   double s = 0.0;
                   for (int64_t i = 0; i < inner; ++i) s += el[i];
                   part[n] = s;
                   if (reduction == Reduction::None)
                     for (int64_t i = 0; i < inner; ++i)
                       op[n * inner + i] = static_cast<float>(el[i]);
                 }
               });
  double total = 0.0, weight_sum = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    total += part[n];
    weight_sum += tw[n];
  }
  if (reduction == Reduction::Mean) total /= weight_sum;
  if (reduction != Reduction::None) op[0] = static_cast<float>(total);
  Tensor twt = Tensor::empty({});
  twt.data<float>()[0] = static_cast<float>(weight_sum);
  return {out, twt};
}

Tensor class_backward(const Tensor& dloss_in, const ClassArgs& a, Reduction reduction,
                      const Tensor& total_weight, const char* op) {
  check_dtype(dloss_in, DType::Float32, op, "grad_output");
  if (reduction == Reduction::None) {
    CNNCORE_CHECK_VALUE(dloss_in.shape() == a.s.out_shape, op, ": grad_output must have shape ",
                        shape_str(a.s.out_shape), " (reduction='none'), but got ",
                        shape_str(dloss_in.shape()));
  } else {
    CNNCORE_CHECK_VALUE(dloss_in.numel() == 1, op, ": grad_output must be a scalar (reduction='",
                        reduction_name(reduction), "'), but got shape ",
                        shape_str(dloss_in.shape()));
  }
  check_dtype(total_weight, DType::Float32, op, "total_weight");
  CNNCORE_CHECK_VALUE(total_weight.numel() == 1, op, ": total_weight must be a scalar, but got ",
                      shape_str(total_weight.shape()));
  Tensor dloss = dloss_in.contiguous();
  const float* gp = dloss.data<float>();
  double scale = 1.0;
  if (reduction != Reduction::None) scale = gp[0];
  if (reduction == Reduction::Mean) scale /= total_weight.contiguous().data<float>()[0];
  const int64_t C = a.s.C, inner = a.s.inner;
  Tensor dl = Tensor::zeros(a.logp.shape());
  float* dp = dl.data<float>();
  const float* w = a.weight.defined() ? a.weight.data<float>() : nullptr;
  const double e = a.eps, keep = 1.0 - a.eps;
  parallel_for(0, a.s.N, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C * inner)),
               [&](int64_t b, int64_t end) {
                 for (int64_t n = b; n < end; ++n) {
                   float* d = dp + n * C * inner;
                   auto g = [&](int64_t i) {
                     return reduction == Reduction::None ? static_cast<double>(gp[n * inner + i])
                                                         : scale;
                   };
                   if (a.prob) {
                     const float* q = a.target.data<float>() + n * C * inner;
                     for (int64_t c = 0; c < C; ++c) {
                       const double wc = w ? w[c] : 1.0;
                       for (int64_t i = 0; i < inner; ++i)
                         d[c * inner + i] = static_cast<float>(
                             -g(i) * wc * (keep * q[c * inner + i] + e / C));
                     }
                     continue;
                   }
                   const int64_t* t = a.target.data<int64_t>() + n * inner;
                   for (int64_t i = 0; i < inner; ++i) {
                     if (t[i] == a.ignore) continue;
                     const double gi = g(i);
                     if (e > 0.0)
                       for (int64_t c = 0; c < C; ++c)
                         d[c * inner + i] = static_cast<float>(-gi * e / C * (w ? w[c] : 1.0));
                     d[t[i] * inner + i] -= static_cast<float>(gi * keep * (w ? w[t[i]] : 1.0));
                   }
                 }
               });
  return dl;
}

// ---- elementwise losses ------------------------------------------------------------------------
struct PairArgs {
  Tensor x, t, w, pw;
  const float *xp = nullptr, *tp = nullptr, *wp = nullptr, *pwp = nullptr;
  int64_t n = 0;
  double mean_divisor = 0.0;  // numel, or sum(weight) for the weighted mse/l1
};

void check_like(const Tensor& x, const std::optional<Tensor>& o, const char* op, const char* arg) {
  if (!o.has_value() || !o->defined()) return;
  check_dtype(*o, DType::Float32, op, arg);
  CNNCORE_CHECK_VALUE(o->shape() == x.shape(), op, ": ", arg, " must have the input's shape ",
                      shape_str(x.shape()), ", but got ", shape_str(o->shape()));
}

// The device-independent checks of the elementwise losses (the CUDA path runs them too).
void check_pair(const Tensor& x, const Tensor& t, Reduction reduction, const char* op,
                const std::optional<Tensor>& w, const std::optional<Tensor>& pw) {
  check_reduction(reduction, op);
  check_dtype(x, DType::Float32, op, "input");
  check_dtype(t, DType::Float32, op, "target");
  CNNCORE_CHECK_VALUE(x.shape() == t.shape(), op, ": target shape ", shape_str(t.shape()),
                      " must match input shape ", shape_str(x.shape()));
  check_like(x, w, op, "weight");
  check_like(x, pw, op, "pos_weight");
}

void check_grad_output(const Tensor& dloss_in, const Shape& shape, Reduction reduction,
                       const char* op) {
  check_dtype(dloss_in, DType::Float32, op, "grad_output");
  if (reduction == Reduction::None) {
    CNNCORE_CHECK_VALUE(dloss_in.shape() == shape, op, ": grad_output must have shape ",
                        shape_str(shape), " (reduction='none'), but got ",
                        shape_str(dloss_in.shape()));
  } else {
    CNNCORE_CHECK_VALUE(dloss_in.numel() == 1, op, ": grad_output must be a scalar (reduction='",
                        reduction_name(reduction), "'), but got shape ",
                        shape_str(dloss_in.shape()));
  }
}

// The CUDA hooks of the elementwise losses: the CPU's checks, then the device kernels.
bool pair_on_cuda(const Tensor* g, const Tensor& x, const Tensor& t,
                  const std::optional<Tensor>& w = std::nullopt,
                  const std::optional<Tensor>& pw = std::nullopt) {
  return cuda::any_cuda({g, &x, &t, cuda::opt_ptr(w), cuda::opt_ptr(pw)});
}
Tensor cuda_pair_forward(cuda::PairLoss k, const Tensor& x, const Tensor& t,
                         const std::optional<Tensor>& w, const std::optional<Tensor>& pw,
                         Reduction reduction, double beta, const char* op) {
  check_pair(x, t, reduction, op, w, pw);
  return cuda::pair_loss_forward(k, x, t, w, pw, reduction, beta);
}
Tensor cuda_pair_backward(cuda::PairLoss k, bool wrt_target, const Tensor& dloss, const Tensor& x,
                          const Tensor& t, const std::optional<Tensor>& w,
                          const std::optional<Tensor>& pw, Reduction reduction, double beta,
                          const char* op) {
  check_pair(x, t, reduction, op, w, pw);
  check_grad_output(dloss, x.shape(), reduction, op);
  return cuda::pair_loss_backward(k, wrt_target, dloss, x, t, w, pw, reduction, beta);
}

PairArgs pair_args(const Tensor& x, const Tensor& t, Reduction reduction, const char* op,
                   const std::optional<Tensor>& w = std::nullopt,
                   const std::optional<Tensor>& pw = std::nullopt) {
  check_pair(x, t, reduction, op, w, pw);
  PairArgs a;
  a.x = as_nchw(x);
  a.t = as_nchw(t);
  a.xp = a.x.data<float>();
  a.tp = a.t.data<float>();
  if (w.has_value() && w->defined()) {
    a.w = as_nchw(*w);
    a.wp = a.w.data<float>();
  }
  if (pw.has_value() && pw->defined()) {
    a.pw = as_nchw(*pw);
    a.pwp = a.pw.data<float>();
  }
  a.n = a.x.numel();
  a.mean_divisor = static_cast<double>(a.n);
  return a;
}

// mse/l1 with a weight: mean divides by the total weight, not by numel.
PairArgs weighted_pair_args(const Tensor& x, const Tensor& t, Reduction reduction, const char* op,
                            const std::optional<Tensor>& w) {
  PairArgs a = pair_args(x, t, reduction, op, w);
  if (a.wp) {
    double s = 0.0;
    for (int64_t i = 0; i < a.n; ++i) s += a.wp[i];
    a.mean_divisor = s;
  }
  return a;
}

// f(i) is element i's loss (double).
template <class F>
Tensor reduce_elementwise(const PairArgs& a, Reduction reduction, const F& f) {
  if (reduction == Reduction::None) {
    Tensor out = Tensor::empty(a.x.shape());
    float* op = out.data<float>();
    parallel_for(0, a.n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) op[i] = static_cast<float>(f(i));
    });
    return out;
  }
  const int64_t nb = (a.n + kBlock - 1) / kBlock;
  std::vector<double> part(nb, 0.0);
  parallel_for(0, nb, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      double s = 0.0;
      for (int64_t i = k * kBlock, end = std::min(a.n, i + kBlock); i < end; ++i) s += f(i);
      part[k] = s;
    }
  });
  double total = 0.0;
  for (double p : part) total += p;
  if (reduction == Reduction::Mean) total /= a.mean_divisor;  // 0/0 = nan, as torch
  Tensor out = Tensor::empty({});
  out.data<float>()[0] = static_cast<float>(total);
  return out;
}

// d(i) is d loss_i / d x_i; the result is d(i) times the incoming gradient of element i.
template <class D>
Tensor grad_elementwise(const Tensor& dloss_in, const PairArgs& a, Reduction reduction,
                        const char* op, const D& d) {
  check_grad_output(dloss_in, a.x.shape(), reduction, op);
  Tensor dloss = dloss_in.contiguous();
  const float* gp = dloss.data<float>();
  double scale = reduction == Reduction::None ? 1.0 : gp[0];
  if (reduction == Reduction::Mean) scale /= a.mean_divisor;
  Tensor dx = Tensor::empty(a.x.shape());
  float* dp = dx.data<float>();
  parallel_for(0, a.n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      dp[i] = static_cast<float>(d(i) * (reduction == Reduction::None ? gp[i] : scale));
  });
  return dx;
}

double sign(double v) { return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0); }

double check_beta(double beta, const char* op) {
  CNNCORE_CHECK_VALUE(beta >= 0.0, op, ": beta must be >= 0, but got ", beta);
  return beta;
}
}  // namespace

std::pair<Tensor, Tensor> nll_loss_forward(const Tensor& logp, const Tensor& target,
                                           const std::optional<Tensor>& weight,
                                           Reduction reduction, int64_t ignore_index) {
  if (cuda::any_cuda({&logp, &target, cuda::opt_ptr(weight)})) {
    check_reduction(reduction, "nll_loss");
    check_class_indices(target, "nll_loss");
    return cuda::cross_entropy_logp_forward(logp, target, weight, reduction, ignore_index, 0.0);
  }
  return class_forward(
      class_args(logp, target, weight, reduction, ignore_index, 0.0, false, "nll_loss"),
      reduction);
}

Tensor nll_loss_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                         const std::optional<Tensor>& weight, Reduction reduction,
                         int64_t ignore_index, const Tensor& total_weight) {
  const char* op = "nll_loss_backward";
  if (cuda::any_cuda({&dloss, &logp, &target, cuda::opt_ptr(weight)})) {
    check_reduction(reduction, op);
    check_class_indices(target, op);
    return cuda::cross_entropy_logp_backward(dloss, logp, target, weight, reduction,
                                             ignore_index, 0.0, total_weight);
  }
  return class_backward(dloss,
                        class_args(logp, target, weight, reduction, ignore_index, 0.0, false, op),
                        reduction, total_weight, op);
}

std::pair<Tensor, Tensor> cross_entropy_logp_forward(const Tensor& logp, const Tensor& target,
                                                     const std::optional<Tensor>& weight,
                                                     Reduction reduction, int64_t ignore_index,
                                                     double label_smoothing) {
  if (cuda::any_cuda({&logp, &target, cuda::opt_ptr(weight)})) {
    check_reduction(reduction, "cross_entropy");
    return cuda::cross_entropy_logp_forward(logp, target, weight, reduction, ignore_index,
                                            label_smoothing);
  }
  return class_forward(class_args(logp, target, weight, reduction, ignore_index, label_smoothing,
                                  true, "cross_entropy"),
                       reduction);
}

Tensor cross_entropy_logp_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                                   const std::optional<Tensor>& weight, Reduction reduction,
                                   int64_t ignore_index, double label_smoothing,
                                   const Tensor& total_weight) {
  const char* op = "cross_entropy_backward";
  if (cuda::any_cuda({&dloss, &logp, &target, cuda::opt_ptr(weight)})) {
    check_reduction(reduction, op);
    return cuda::cross_entropy_logp_backward(dloss, logp, target, weight, reduction,
                                             ignore_index, label_smoothing, total_weight);
  }
  return class_backward(
      dloss, class_args(logp, target, weight, reduction, ignore_index, label_smoothing, true, op),
      reduction, total_weight, op);
}

Tensor cross_entropy_logp_backward_target(const Tensor& dloss_in, const Tensor& logp,
                                          const Tensor& target, const std::optional<Tensor>& weight,
                                          Reduction reduction, double label_smoothing,
                                          const Tensor& total_weight) {
  const char* op = "cross_entropy_backward_target";
  if (cuda::any_cuda({&dloss_in, &logp, &target, cuda::opt_ptr(weight), &total_weight})) {
    check_reduction(reduction, op);
    return cuda::cross_entropy_logp_backward_target(dloss_in, logp, target, weight, reduction,
                                                    label_smoothing, total_weight);
  }
  const ClassArgs a =
      class_args(logp, target, weight, reduction, -100, label_smoothing, true, op);
  CNNCORE_CHECK_VALUE(a.prob, op, ": only probability targets (float32) have a gradient");
  check_dtype(dloss_in, DType::Float32, op, "grad_output");
  if (reduction == Reduction::None) {
    CNNCORE_CHECK_VALUE(dloss_in.shape() == a.s.out_shape, op, ": grad_output must have shape ",
                        shape_str(a.s.out_shape), " (reduction='none'), but got ",
                        shape_str(dloss_in.shape()));
  } else {
    CNNCORE_CHECK_VALUE(dloss_in.numel() == 1, op, ": grad_output must be a scalar (reduction='",
                        reduction_name(reduction), "'), but got shape ",
                        shape_str(dloss_in.shape()));
  }
  check_dtype(total_weight, DType::Float32, op, "total_weight");
  CNNCORE_CHECK_VALUE(total_weight.numel() == 1, op, ": total_weight must be a scalar, but got ",
                      shape_str(total_weight.shape()));
  Tensor dloss = dloss_in.contiguous();
  const float* gp = dloss.data<float>();
  double scale = reduction == Reduction::None ? 1.0 : gp[0];
  if (reduction == Reduction::Mean) scale /= total_weight.contiguous().data<float>()[0];
  const int64_t C = a.s.C, inner = a.s.inner;
  const float* w = a.weight.defined() ? a.weight.data<float>() : nullptr;
  const float* lp = a.logp.data<float>();
  const double keep = 1.0 - a.eps;
  Tensor dt = Tensor::empty(a.logp.shape());
  float* dp = dt.data<float>();
  parallel_for(0, a.s.N, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C * inner)),
               [&](int64_t b, int64_t e) {
                 for (int64_t n = b; n < e; ++n)
                   for (int64_t c = 0; c < C; ++c)
                     for (int64_t i = 0; i < inner; ++i) {
                       const double g =
                           reduction == Reduction::None ? gp[n * inner + i] : scale;
                       const int64_t k = (n * C + c) * inner + i;
                       dp[k] = static_cast<float>(-g * (w ? w[c] : 1.0) * keep * lp[k]);
                     }
               });
  return dt;
}

Tensor mse_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction,
                        const std::optional<Tensor>& weight) {
  if (pair_on_cuda(nullptr, x, t, weight))
    return cuda_pair_forward(cuda::PairLoss::Mse, x, t, weight, std::nullopt, reduction, 0.0, "mse_loss");
  const PairArgs a = weighted_pair_args(x, t, reduction, "mse_loss", weight);
  return reduce_elementwise(a, reduction, [&](int64_t i) {
    const double d = static_cast<double>(a.xp[i]) - a.tp[i];
    return (a.wp ? a.wp[i] : 1.0) * d * d;
  });
}

Tensor mse_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                         Reduction reduction, const std::optional<Tensor>& weight) {
  if (pair_on_cuda(&dloss, x, t, weight))
    return cuda_pair_backward(cuda::PairLoss::Mse, false, dloss, x, t, weight, std::nullopt, reduction, 0.0,
                              "mse_loss_backward");
  const char* op = "mse_loss_backward";
  const PairArgs a = weighted_pair_args(x, t, reduction, op, weight);
  return grad_elementwise(dloss, a, reduction, op, [&](int64_t i) {
    return (a.wp ? a.wp[i] : 1.0) * 2.0 * (static_cast<double>(a.xp[i]) - a.tp[i]);
  });
}

Tensor l1_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction,
                       const std::optional<Tensor>& weight) {
  if (pair_on_cuda(nullptr, x, t, weight))
    return cuda_pair_forward(cuda::PairLoss::L1, x, t, weight, std::nullopt, reduction, 0.0, "l1_loss");
  const PairArgs a = weighted_pair_args(x, t, reduction, "l1_loss", weight);
  return reduce_elementwise(a, reduction, [&](int64_t i) {
    return (a.wp ? a.wp[i] : 1.0) * std::fabs(static_cast<double>(a.xp[i]) - a.tp[i]);
  });
}

Tensor l1_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                        Reduction reduction, const std::optional<Tensor>& weight) {
  if (pair_on_cuda(&dloss, x, t, weight))
    return cuda_pair_backward(cuda::PairLoss::L1, false, dloss, x, t, weight, std::nullopt, reduction, 0.0,
                              "l1_loss_backward");
  const char* op = "l1_loss_backward";
  const PairArgs a = weighted_pair_args(x, t, reduction, op, weight);
  return grad_elementwise(dloss, a, reduction, op, [&](int64_t i) {
    return (a.wp ? a.wp[i] : 1.0) * sign(static_cast<double>(a.xp[i]) - a.tp[i]);
  });
}

Tensor smooth_l1_loss_forward(const Tensor& x, const Tensor& t, Reduction reduction, double beta) {
  const char* op = "smooth_l1_loss";
  check_beta(beta, op);
  if (pair_on_cuda(nullptr, x, t))
    return cuda_pair_forward(cuda::PairLoss::SmoothL1, x, t, std::nullopt, std::nullopt, reduction, beta, op);
  const PairArgs a = pair_args(x, t, reduction, op);
  return reduce_elementwise(a, reduction, [&](int64_t i) {
    const double d = std::fabs(static_cast<double>(a.xp[i]) - a.tp[i]);
    return d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
  });
}

Tensor smooth_l1_loss_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                               Reduction reduction, double beta) {
  const char* op = "smooth_l1_loss_backward";
  check_beta(beta, op);
  if (pair_on_cuda(&dloss, x, t))
    return cuda_pair_backward(cuda::PairLoss::SmoothL1, false, dloss, x, t, std::nullopt, std::nullopt,
                              reduction, beta, op);
  const PairArgs a = pair_args(x, t, reduction, op);
  return grad_elementwise(dloss, a, reduction, op, [&](int64_t i) {
    const double d = static_cast<double>(a.xp[i]) - a.tp[i];
    return std::fabs(d) < beta ? d / beta : sign(d);
  });
}

Tensor binary_cross_entropy_forward(const Tensor& x, const Tensor& t,
                                    const std::optional<Tensor>& weight, Reduction reduction) {
  const char* op = "binary_cross_entropy";
  if (pair_on_cuda(nullptr, x, t, weight, std::nullopt))
    return cuda_pair_forward(cuda::PairLoss::BinaryCrossEntropy, x, t, weight, std::nullopt, reduction, 0.0, op);
  const PairArgs a = pair_args(x, t, reduction, op, weight);
  for (int64_t i = 0; i < a.n; ++i)
    CNNCORE_CHECK_VALUE(a.xp[i] >= 0.0f && a.xp[i] <= 1.0f, op,
                        ": input must hold probabilities in [0, 1], but element ", i, " is ",
                        a.xp[i]);
  return reduce_elementwise(a, reduction, [&](int64_t i) {
    // PyTorch clamps each log at -100 so that x = 0 or 1 gives a finite loss.
    const double lx = std::max(std::log(static_cast<double>(a.xp[i])), -100.0);
    const double l1x = std::max(std::log1p(-static_cast<double>(a.xp[i])), -100.0);
    const double w = a.wp ? a.wp[i] : 1.0;
    return -w * (a.tp[i] * lx + (1.0 - a.tp[i]) * l1x);
  });
}

Tensor binary_cross_entropy_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                     const std::optional<Tensor>& weight, Reduction reduction) {
  const char* op = "binary_cross_entropy_backward";
  if (pair_on_cuda(&dloss, x, t, weight, std::nullopt))
    return cuda_pair_backward(cuda::PairLoss::BinaryCrossEntropy, false, dloss, x, t, weight, std::nullopt, reduction, 0.0, op);
  const PairArgs a = pair_args(x, t, reduction, op, weight);
  return grad_elementwise(dloss, a, reduction, op, [&](int64_t i) {
    const double xv = a.xp[i];
    const double w = a.wp ? a.wp[i] : 1.0;
    // PyTorch's epsilon keeps the gradient finite at x = 0 or 1.
    return w * (xv - a.tp[i]) / std::max((1.0 - xv) * xv, 1e-12);
  });
}

Tensor binary_cross_entropy_backward_target(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                            const std::optional<Tensor>& weight,
                                            Reduction reduction) {
  const char* op = "binary_cross_entropy_backward_target";
  if (pair_on_cuda(&dloss, x, t, weight, std::nullopt))
    return cuda_pair_backward(cuda::PairLoss::BinaryCrossEntropy, true, dloss, x, t, weight, std::nullopt, reduction, 0.0, op);
  const PairArgs a = pair_args(x, t, reduction, op, weight);
  return grad_elementwise(dloss, a, reduction, op, [&](int64_t i) {
    // Unclamped, as PyTorch: +-inf at x = 0 or 1 (the loss is flat there only after clamping).
    const double xv = a.xp[i];
    return -(a.wp ? a.wp[i] : 1.0) * (std::log(xv) - std::log1p(-xv));
  });
}

Tensor bce_with_logits_forward(const Tensor& x, const Tensor& t,
                               const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& pos_weight, Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  if (pair_on_cuda(nullptr, x, t, weight, pos_weight))
    return cuda_pair_forward(cuda::PairLoss::BceWithLogits, x, t, weight, pos_weight, reduction,
                             0.0, op);
  const PairArgs a = pair_args(x, t, reduction, op, weight, pos_weight);
  return reduce_elementwise(a, reduction, [&](int64_t i) {
    const double xv = a.xp[i], tv = a.tp[i];
    const double pw = a.pwp ? a.pwp[i] : 1.0;
    const double w = a.wp ? a.wp[i] : 1.0;
    // -log sigmoid(x) = log(1 + exp(-|x|)) + max(-x, 0): never exponentiates a large number.
    const double nls = std::log1p(std::exp(-std::fabs(xv))) + std::max(-xv, 0.0);
    return w * ((1.0 - tv) * xv + (1.0 + (pw - 1.0) * tv) * nls);
  });
}

Tensor bce_with_logits_backward(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                const std::optional<Tensor>& weight,
                                const std::optional<Tensor>& pos_weight, Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits_backward";
  if (pair_on_cuda(&dloss, x, t, weight, pos_weight))
    return cuda_pair_backward(cuda::PairLoss::BceWithLogits, false, dloss, x, t, weight, pos_weight, reduction, 0.0, op);
  const PairArgs a = pair_args(x, t, reduction, op, weight, pos_weight);
  return grad_elementwise(dloss, a, reduction, op, [&](int64_t i) {
    const double xv = a.xp[i], tv = a.tp[i];
    const double pw = a.pwp ? a.pwp[i] : 1.0;
    const double w = a.wp ? a.wp[i] : 1.0;
    const double s = xv >= 0 ? 1.0 / (1.0 + std::exp(-xv)) : std::exp(xv) / (1.0 + std::exp(xv));
    return w * (s * (pw * tv + 1.0 - tv) - pw * tv);
  });
}

Tensor bce_with_logits_backward_target(const Tensor& dloss, const Tensor& x, const Tensor& t,
                                       const std::optional<Tensor>& weight,
                                       const std::optional<Tensor>& pos_weight,
                                       Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits_backward_target";
  if (pair_on_cuda(&dloss, x, t, weight, pos_weight))
    return cuda_pair_backward(cuda::PairLoss::BceWithLogits, true, dloss, x, t, weight, pos_weight, reduction, 0.0, op);
  const PairArgs a = pair_args(x, t, reduction, op, weight, pos_weight);
  return grad_elementwise(dloss, a, reduction, op, [&](int64_t i) {
    const double xv = a.xp[i];
    const double pw = a.pwp ? a.pwp[i] : 1.0;
    const double nls = std::log1p(std::exp(-std::fabs(xv))) + std::max(-xv, 0.0);
    return (a.wp ? a.wp[i] : 1.0) * ((pw - 1.0) * nls - xv);
  });
}

}  // namespace cnncore
