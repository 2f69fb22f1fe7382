#include "cnncore/ops/norm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/norm_kernels.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
constexpr int64_t kGrain = 1 << 15;    // elements per thread below which one thread is faster
constexpr int64_t kLrnBlock = 64;      // positions per LRN task: 2 * C * 64 floats of scratch

void check_finite(double v, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(std::isfinite(v), op, ": ", arg, " must be a finite number, but got ", v);
}

// (N, C, inner) of an (N, C, *) tensor.
struct NCI {
  int64_t N = 1, C = 1, inner = 1;
};
NCI nci_of(const Tensor& x) {
  NCI s;
  s.N = x.size(0);
  s.C = x.size(1);
  for (int64_t d = 2; d < x.dim(); ++d) s.inner *= x.size(d);
  return s;
}

// ---- local response norm ----
Tensor lrn_input(const Tensor& x, const char* op, const char* arg) {
  check_dtype(x, DType::Float32, op, arg);
  CNNCORE_CHECK_VALUE(x.dim() >= 3, op, ": ", arg,
                      " must be 3-D or higher (N, C, *), but got ", x.dim(), "-D with shape ",
                      shape_str(x.shape()));
  return as_nchw(x);
}

LrnArgs lrn_args(const NCI& s, int64_t size, double alpha, double beta, double k,
                 const char* op) {
  CNNCORE_CHECK_VALUE(size >= 1, op, ": size must be >= 1, but got ", size);
  check_finite(alpha, op, "alpha");
  check_finite(beta, op, "beta");
  check_finite(k, op, "k");
  return LrnArgs{s.C, s.inner, 0, size, static_cast<float>(alpha / static_cast<double>(size)),
                 static_cast<float>(beta), static_cast<float>(k)};
}

// Runs fn(offset of (n, 0, i0), args with len set, scratch) over (image, block of positions).
template <class F>
void lrn_tasks(const NCI& s, const LrnArgs& base, const F& fn) {
  const int64_t nb = (s.inner + kLrnBlock - 1) / kLrnBlock;
  const int64_t per = s.C * std::min(s.inner, kLrnBlock);
  parallel_for(0, s.N * nb, std::max<int64_t>(1, kGrain / std::max<int64_t>(per, 1)),
               [&](int64_t b, int64_t e) {
                 std::vector<float> scratch(2 * s.C * kLrnBlock);
                 for (int64_t t = b; t < e; ++t) {
                   const int64_t n = t / nb, i0 = (t % nb) * kLrnBlock;
                   LrnArgs a = base;
                   a.len = std::min(kLrnBlock, s.inner - i0);
                   fn(n * s.C * s.inner + i0, a, scratch.data());
                 }
               });
}

// ---- batch norm helpers (dispatch wrappers) ----
float rsum(const float* x, int64_t n) { CNNCORE_ISA_DISPATCH(row_sum(x, n)); }
float rsqdev(const float* x, int64_t n, float m) { CNNCORE_ISA_DISPATCH(row_sq_dev(x, n, m)); }

// batch norm of an (N, C) matrix: statistics over rows, threads over blocks of channels.
void bn_forward_2d(const float* x, float* y, int64_t N, int64_t C, bool training, double momentum,
                   double eps, float* rm, float* rv, const float* w, const float* b, float* sm,
                   float* si) {
  parallel_for(0, C, 64, [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> mean(nc), sq(nc, 0.0);
    if (training) {
      std::vector<double> sum(nc, 0.0);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < nc; ++c) sum[c] += x[n * C + c0 + c];
      for (int64_t c = 0; c < nc; ++c) mean[c] = sum[c] / static_cast<double>(N);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < nc; ++c) {
          const double d = x[n * C + c0 + c] - mean[c];
          sq[c] += d * d;
        }
    }
    std::vector<float> scale(nc), shift(nc);
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t k = c0 + c;
      double invstd;
      if (training) {
        invstd = 1.0 / std::sqrt(sq[c] / static_cast<double>(N) + eps);
        if (rm) {
          rm[k] = static_cast<float>((1.0 - momentum) * rm[k] + momentum * mean[c]);
          rv[k] = static_cast<float>((1.0 - momentum) * rv[k] +
                                     momentum * sq[c] / static_cast<double>(N - 1));
        }
      } else {
        mean[c] = rm[k];
        invstd = 1.0 / std::sqrt(static_cast<double>(rv[k]) + eps);
      }
      sm[k] = static_cast<float>(mean[c]);
      si[k] = static_cast<float>(invstd);
      const double sc = (w ? w[k] : 1.0) * invstd;
      scale[c] = static_cast<float>(sc);
      shift[c] = static_cast<float>((b ? b[k] : 0.0) - mean[c] * sc);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < nc; ++c)
        y[n * C + c0 + c] = x[n * C + c0 + c] * scale[c] + shift[c];
  });
}

void bn_backward_2d(const float* dy, const float* x, float* dx, int64_t N, int64_t C,
                    bool training, const float* w, const float* sm, const float* si, float* dw,
                    float* db) {
  parallel_for(0, C, 64, [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> sdy(nc, 0.0), sdyx(nc, 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < nc; ++c) {
        const double g = dy[n * C + c0 + c];
        sdy[c] += g;
        sdyx[c] += g * (x[n * C + c0 + c] - sm[c0 + c]);
      }
    std::vector<float> a(nc), bb(nc), cc(nc);
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t k = c0 + c;
      const double invstd = si[k], wv = w ? w[k] : 1.0;
      dw[k] = static_cast<float>(sdyx[c] * invstd);
      db[k] = static_cast<float>(sdy[c]);
      a[c] = static_cast<float>(wv * invstd);
      double b2 = 0.0, c2 = 0.0;
      if (training) {
        b2 = -wv * invstd * invstd * invstd * sdyx[c] / static_cast<double>(N);
        c2 = -wv * invstd * sdy[c] / static_cast<double>(N) - b2 * sm[k];
      }
      bb[c] = static_cast<float>(b2);
      cc[c] = static_cast<float>(c2);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < nc; ++c) {
        const int64_t i = n * C + c0 + c;
        dx[i] = dy[i] * a[c] + x[i] * bb[c] + cc[c];
      }
  });
}

Tensor channel_param(const std::optional<Tensor>& t, int64_t C, const char* op, const char* arg) {
  if (!t.has_value() || !t->defined()) return Tensor();
  check_dtype(*t, DType::Float32, op, arg);
  CNNCORE_CHECK_VALUE(t->dim() == 1 && t->size(0) == C, op, ": ", arg,
                      " must be 1-D with one value per channel (", C, "), but got shape ",
                      shape_str(t->shape()));
  return *t;
}
}  // namespace

Tensor local_response_norm_forward(const Tensor& x_in, int64_t size, double alpha, double beta,
                                   double k) {
  if (cuda::any_cuda({&x_in}))
    return cuda::local_response_norm_forward(x_in, size, alpha, beta, k);
  const char* op = "local_response_norm";
  Tensor x = lrn_input(x_in, op, "input");
  const NCI s = nci_of(x);
  const LrnArgs base = lrn_args(s, size, alpha, beta, k, op);
  Tensor y = Tensor::empty(x.shape());
  if (x.numel() == 0) return y;
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  lrn_tasks(s, base, [&](int64_t off, const LrnArgs& a, float* scratch) {
    CNNCORE_ISA_CALL(lrn_forward(xp + off, yp + off, a, scratch));
  });
  return y;
}

Tensor local_response_norm_backward(const Tensor& dy_in, const Tensor& x_in, int64_t size,
                                    double alpha, double beta, double k) {
  if (cuda::any_cuda({&dy_in, &x_in}))
    return cuda::local_response_norm_backward(dy_in, x_in, size, alpha, beta, k);
  const char* op = "local_response_norm_backward";
  Tensor x = lrn_input(x_in, op, "input");
  Tensor dy = lrn_input(dy_in, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy.shape() == x.shape(), op, ": grad_output shape ", shape_str(dy.shape()),
                      " must match input shape ", shape_str(x.shape()));
  const NCI s = nci_of(x);
  const LrnArgs base = lrn_args(s, size, alpha, beta, k, op);
  Tensor dx = Tensor::empty(x.shape());
  if (x.numel() == 0) return dx;
  const float *xp = x.data<float>(), *gp = dy.data<float>();
  float* dp = dx.data<float>();
  lrn_tasks(s, base, [&](int64_t off, const LrnArgs& a, float* scratch) {
    CNNCORE_ISA_CALL(lrn_backward(gp + off, xp + off, dp + off, a, scratch));
  });
  return dx;
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(const Tensor& x_in,
                                                      const std::optional<Tensor>& running_mean,
                                                      const std::optional<Tensor>& running_var,
                                                      const std::optional<Tensor>& weight,
                                                      const std::optional<Tensor>& bias,
                                                      bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  if (cuda::any_cuda({&x_in, cuda::opt_ptr(running_mean), cuda::opt_ptr(running_var),
                      cuda::opt_ptr(weight), cuda::opt_ptr(bias)}))
    return cuda::batch_norm_forward(x_in, running_mean, running_var, weight, bias, training,
                                    momentum, eps);
  check_dtype(x_in, DType::Float32, op, "input");
  CNNCORE_CHECK_VALUE(x_in.dim() >= 2, op, ": input must be (N, C) or (N, C, *), but got ",
                      x_in.dim(), "-D with shape ", shape_str(x_in.shape()));
  check_finite(momentum, op, "momentum");
  check_finite(eps, op, "eps");
  CNNCORE_CHECK_VALUE(eps >= 0.0, op, ": eps must be >= 0, but got ", eps);
  Tensor x = as_nchw(x_in);
  const NCI s = nci_of(x);
  const int64_t M = s.N * s.inner;
  Tensor rm = channel_param(running_mean, s.C, op, "running_mean");
  Tensor rv = channel_param(running_var, s.C, op, "running_var");
  Tensor w = channel_param(weight, s.C, op, "weight");
  Tensor b = channel_param(bias, s.C, op, "bias");
  CNNCORE_CHECK_VALUE(rm.defined() == rv.defined(), op,
                      ": running_mean and running_var must be given together");
  if (training) {
    CNNCORE_CHECK_VALUE(M > 1, op, ": expected more than 1 value per channel when training, "
                        "but got input of shape ", shape_str(x.shape()));
  } else {
    CNNCORE_CHECK_VALUE(rm.defined(), op,
                        ": running_mean and running_var are required when training=False");
  }
  // Running statistics are updated through contiguous copies written back at the end, so any
  // layout the caller holds them in works.
  Tensor rmc = rm.defined() ? rm.contiguous() : Tensor();
  Tensor rvc = rv.defined() ? rv.contiguous() : Tensor();
  Tensor wc = w.defined() ? w.contiguous() : Tensor();
  Tensor bc = b.defined() ? b.contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape());
  Tensor save_mean = Tensor::empty({s.C}), save_invstd = Tensor::empty({s.C});
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  float *smp = save_mean.data<float>(), *sip = save_invstd.data<float>();
  float* rmp = rmc.defined() ? rmc.data<float>() : nullptr;
  float* rvp = rvc.defined() ? rvc.data<float>() : nullptr;
  const float* wp = wc.defined() ? wc.data<float>() : nullptr;
  const float* bp = bc.defined() ? bc.data<float>() : nullptr;
  if (s.inner == 1) {
    // (N, C): a channel's values are strided by C, so walk rows and keep one accumulator per
    // channel instead of calling the row kernels on rows of length 1.
    bn_forward_2d(xp, yp, s.N, s.C, training, momentum, eps, rmp, rvp, wp, bp, smp, sip);
    if (training && rm.defined()) {
      if (!rm.is_contiguous()) rm.copy_(rmc);
      if (!rv.is_contiguous()) rv.copy_(rvc);
    }
    return {y, save_mean, save_invstd};
  }
  parallel_for(0, s.C, std::max<int64_t>(1, kGrain / std::max<int64_t>(M, 1)),
               [&](int64_t c0, int64_t c1) {
                 for (int64_t c = c0; c < c1; ++c) {
                   double mean, invstd;
                   if (training) {
                     // Two passes (mean, then squared deviations): no cancellation.
                     double sum = 0.0;
                     for (int64_t n = 0; n < s.N; ++n)
                       sum += rsum(xp + (n * s.C + c) * s.inner, s.inner);
                     mean = sum / static_cast<double>(M);
                     double sq = 0.0;
                     for (int64_t n = 0; n < s.N; ++n)
                       sq += rsqdev(xp + (n * s.C + c) * s.inner, s.inner,
                                    static_cast<float>(mean));
                     const double var = sq / static_cast<double>(M);
                     invstd = 1.0 / std::sqrt(var + eps);
                     if (rmp) {
                       rmp[c] = static_cast<float>((1.0 - momentum) * rmp[c] + momentum * mean);
                       rvp[c] = static_cast<float>((1.0 - momentum) * rvp[c] +
                                                   momentum * sq / static_cast<double>(M - 1));
                     }
                   } else {
                     mean = rmp[c];
                     invstd = 1.0 / std::sqrt(static_cast<double>(rvp[c]) + eps);
                   }
                   smp[c] = static_cast<float>(mean);
                   sip[c] = static_cast<float>(invstd);
                   const double scale = (wp ? wp[c] : 1.0) * invstd;
                   const double shift = (bp ? bp[c] : 0.0) - mean * scale;
                   for (int64_t n = 0; n < s.N; ++n) {
                     const int64_t off = (n * s.C + c) * s.inner;
                     CNNCORE_ISA_CALL(row_affine(xp + off, yp + off, s.inner,
                                                 static_cast<float>(scale),
                                                 static_cast<float>(shift)));
                   }
                 }
               });
  if (training && rm.defined()) {
    if (!rm.is_contiguous()) rm.copy_(rmc);
    if (!rv.is_contiguous()) rv.copy_(rvc);
  }
  return {y, save_mean, save_invstd};
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& dy_in, const Tensor& x_in,
                                                       const std::optional<Tensor>& weight,
                                                       const Tensor& save_mean,
                                                       const Tensor& save_invstd, bool training) {
  const char* op = "batch_norm_backward";
  if (cuda::any_cuda({&dy_in, &x_in, cuda::opt_ptr(weight), &save_mean, &save_invstd}))
    return cuda::batch_norm_backward(dy_in, x_in, weight, save_mean, save_invstd, training);
  check_dtype(x_in, DType::Float32, op, "input");
  check_dtype(dy_in, DType::Float32, op, "grad_output");
  CNNCORE_CHECK_VALUE(x_in.dim() >= 2, op, ": input must be (N, C) or (N, C, *), but got ",
                      x_in.dim(), "-D with shape ", shape_str(x_in.shape()));
  CNNCORE_CHECK_VALUE(dy_in.shape() == x_in.shape(), op, ": grad_output shape ",
                      shape_str(dy_in.shape()), " must match input shape ",
                      shape_str(x_in.shape()));
  Tensor x = as_nchw(x_in), dy = as_nchw(dy_in);
  const NCI s = nci_of(x);
  const int64_t M = s.N * s.inner;
  Tensor w = channel_param(weight, s.C, op, "weight");
  Tensor sm = channel_param(save_mean, s.C, op, "save_mean").contiguous();
  Tensor si = channel_param(save_invstd, s.C, op, "save_invstd").contiguous();
  Tensor wc = w.defined() ? w.contiguous() : Tensor();
  Tensor dx = Tensor::empty(x.shape());
  Tensor dw = Tensor::empty({s.C}), db = Tensor::empty({s.C});
  const float *xp = x.data<float>(), *gp = dy.data<float>();
  const float *smp = sm.data<float>(), *sip = si.data<float>();
  const float* wp = wc.defined() ? wc.data<float>() : nullptr;
  float *dxp = dx.data<float>(), *dwp = dw.data<float>(), *dbp = db.data<float>();
  if (s.inner == 1) {
    bn_backward_2d(gp, xp, dxp, s.N, s.C, training, wp, smp, sip, dwp, dbp);
    return {dx, dw, db};
  }
  parallel_for(0, s.C, std::max<int64_t>(1, kGrain / std::max<int64_t>(M, 1)),
               [&](int64_t c0, int64_t c1) {
                 for (int64_t c = c0; c < c1; ++c) {
                   const float mean = smp[c];
                   const double invstd = sip[c];
                   double sdy = 0.0, sdyx = 0.0;
                   for (int64_t n = 0; n < s.N; ++n) {
                     const int64_t off = (n * s.C + c) * s.inner;
                     float part[2];
                     CNNCORE_ISA_CALL(row_dy_dot(gp + off, xp + off, s.inner, mean, part));
                     sdy += part[0];
                     sdyx += part[1];
                   }
                   dwp[c] = static_cast<float>(sdyx * invstd);
                   dbp[c] = static_cast<float>(sdy);
                   const double wv = wp ? wp[c] : 1.0;
                   // dx = a dy + b x + c0: the training formula
                   // w invstd / M (M dy - sum dy - xhat sum(dy xhat)) expanded in x.
                   const double a = wv * invstd;
                   double bb = 0.0, cc = 0.0;
                   if (training) {
                     bb = -wv * invstd * invstd * invstd * sdyx / static_cast<double>(M);
                     cc = -wv * invstd * sdy / static_cast<double>(M) - bb * mean;
                   }
                   for (int64_t n = 0; n < s.N; ++n) {
                     const int64_t off = (n * s.C + c) * s.inner;
                     CNNCORE_ISA_CALL(row_bn_backward(gp + off, xp + off, dxp + off, s.inner,
                                                      static_cast<float>(a),
                                                      static_cast<float>(bb),
                                                      static_cast<float>(cc)));
                   }
                 }
               });
  return {dx, dw, db};
}

std::pair<Tensor, Tensor> dropout_forward(const Tensor& x_in, double p, bool channel_wise) {
  if (cuda::any_cuda({&x_in})) return cuda::dropout_forward(x_in, p, channel_wise);
  const char* op = channel_wise ? "dropout2d" : "dropout";
  check_dtype(x_in, DType::Float32, op, "input");
  CNNCORE_CHECK_VALUE(p >= 0.0 && p <= 1.0, op, ": p must be in [0, 1], but got ", p);
  Tensor x = as_nchw(x_in);
  Shape mshape = x.shape();
  int64_t plane = 1;
  if (channel_wise) {
    CNNCORE_CHECK_VALUE(x.dim() >= 3, op,
                        ": input must be (N, C, *) with at least 3 dims, but got ", x.dim(), "-D with shape ", shape_str(x.shape()));
    for (int64_t d = 2; d < x.dim(); ++d) {
      plane *= x.size(d);
      mshape[d] = 1;
    }
  }
  // rand() reserves one draw per mask element from the global stream and fills element i with
  // draw i (the same draws as rng_reserve + rng_uniform, generated where they inline).
  Tensor mask = rand(mshape);
  Tensor y = Tensor::empty(x.shape());
  const int64_t nm = mask.numel();
  const float scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  const float pf = static_cast<float>(p);
  float* mp = mask.data<float>();
  parallel_for(0, nm, kGrain, [&](int64_t b, int64_t e) {
    // Branch-free: keep/drop is a coin flip, so a branch would mispredict half the time.
    for (int64_t i = b; i < e; ++i) mp[i] = static_cast<float>(mp[i] >= pf) * scale;
  });
  // p == 1 must give zeros even where rounding would let u >= p through.
  if (p >= 1.0) std::fill(mp, mp + nm, 0.0f);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (plane == 1) {
      for (int64_t i = b; i < e; ++i) yp[i] = xp[i] * mp[i];
    } else {
      for (int64_t i = b; i < e; ++i) yp[i] = xp[i] * mp[i / plane];
    }
  });
  return {y, mask};
}

Tensor dropout_backward(const Tensor& dy_in, const Tensor& mask_in) {
  if (cuda::any_cuda({&dy_in, &mask_in})) return cuda::dropout_backward(dy_in, mask_in);
  const char* op = "dropout_backward";
  check_dtype(dy_in, DType::Float32, op, "grad_output");
  check_dtype(mask_in, DType::Float32, op, "mask");
  Tensor dy = as_nchw(dy_in), mask = as_nchw(mask_in);
  int64_t plane = 1;
  if (mask.shape() != dy.shape()) {
    bool ok = mask.dim() == dy.dim() && dy.dim() >= 3 && mask.size(0) == dy.size(0) &&
              mask.size(1) == dy.size(1);
    for (int64_t d = 2; ok && d < dy.dim(); ++d) {
      ok = mask.size(d) == 1;
      plane *= dy.size(d);
    }
    CNNCORE_CHECK_VALUE(ok, op, ": mask shape ", shape_str(mask.shape()),
                        " must match grad_output shape ", shape_str(dy.shape()),
                        " or be its (N, C, 1, ...) channel mask");
  }
  Tensor dx = Tensor::empty(dy.shape());
  const float *gp = dy.data<float>(), *mp = mask.data<float>();
  float* dp = dx.data<float>();
  parallel_for(0, dy.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (plane == 1) {
      for (int64_t i = b; i < e; ++i) dp[i] = gp[i] * mp[i];
    } else {
      for (int64_t i = b; i < e; ++i) dp[i] = gp[i] * mp[i / plane];
    }
  });
  return dx;
}

}  // namespace cnncore
