#include "cpu/reference/norm.hpp"

#include <cmath>

#include "cnncore/runtime.hpp"

namespace cnncore::reference {

namespace {
struct NCI {
  int64_t N, C, inner;
};
NCI nci(const Tensor& x) {
  CNNCORE_CHECK_VALUE(x.dim() >= 2, "reference norm: input must be (N, C, *)");
  NCI s{x.size(0), x.size(1), 1};
  for (int64_t d = 2; d < x.dim(); ++d) s.inner *= x.size(d);
  return s;
}
int64_t at(const NCI& s, int64_t n, int64_t c, int64_t i) { return (n * s.C + c) * s.inner + i; }

// Channel c of an optional (C) parameter, or `none` when it is absent.
double param_at(const std::optional<Tensor>& t, int64_t c, double none) {
  return t.has_value() && t->defined() ? t->contiguous().data<float>()[c] : none;
}

// base(n, c, i) = k + alpha/size * sum over c's window of x^2.
double lrn_base(const float* x, const NCI& s, int64_t n, int64_t c, int64_t i, int64_t size,
                double alpha, double k) {
  double acc = 0.0;
  for (int64_t j = c - size / 2; j <= c + (size - 1) / 2; ++j)
    if (j >= 0 && j < s.C) acc += static_cast<double>(x[at(s, n, j, i)]) * x[at(s, n, j, i)];
  return k + alpha / static_cast<double>(size) * acc;
}
}  // namespace

Tensor local_response_norm_forward(const Tensor& x_in, int64_t size, double alpha, double beta,
                                   double k) {
  Tensor x = x_in.contiguous();
  const NCI s = nci(x);
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.data<float>();
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t i = 0; i < s.inner; ++i)
        y.data<float>()[at(s, n, c, i)] = static_cast<float>(
            xp[at(s, n, c, i)] * std::pow(lrn_base(xp, s, n, c, i, size, alpha, k), -beta));
  return y;
}

Tensor local_response_norm_backward(const Tensor& dy_in, const Tensor& x_in, int64_t size,
                                    double alpha, double beta, double k) {
  Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  const NCI s = nci(x);
  Tensor dx = Tensor::empty(x.shape());
  const float *xp = x.data<float>(), *gp = dy.data<float>();
  // d y_c / d x_j = [c == j] b_c^-beta - 2 alpha beta / size x_c x_j b_c^(-beta-1) for j in
  // window(c); summed over c with dy_c.
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t j = 0; j < s.C; ++j)
      for (int64_t i = 0; i < s.inner; ++i) {
        double g = gp[at(s, n, j, i)] * std::pow(lrn_base(xp, s, n, j, i, size, alpha, k), -beta);
        for (int64_t c = 0; c < s.C; ++c) {
          if (j < c - size / 2 || j > c + (size - 1) / 2) continue;
          const double b = lrn_base(xp, s, n, c, i, size, alpha, k);
          g -= 2.0 * alpha * beta / static_cast<double>(size) * gp[at(s, n, c, i)] *
               xp[at(s, n, c, i)] * xp[at(s, n, j, i)] * std::pow(b, -beta - 1.0);
        }
        dx.data<float>()[at(s, n, j, i)] = static_cast<float>(g);
      }
  return dx;
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(const Tensor& x_in,
                                                      const std::optional<Tensor>& running_mean,
                                                      const std::optional<Tensor>& running_var,
                                                      const std::optional<Tensor>& weight,
                                                      const std::optional<Tensor>& bias,
                                                      bool training, double momentum, double eps) {
  Tensor x = x_in.contiguous();
  const NCI s = nci(x);
  const int64_t M = s.N * s.inner;
  const bool has_running = running_mean.has_value() && running_mean->defined();
  Tensor y = Tensor::empty(x.shape());
  Tensor sm = Tensor::empty({s.C}), si = Tensor::empty({s.C});
  const float* xp = x.data<float>();
  for (int64_t c = 0; c < s.C; ++c) {
    double mean, invstd;
    if (training) {
      double sum = 0.0;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t i = 0; i < s.inner; ++i) sum += xp[at(s, n, c, i)];
      mean = sum / M;
      double sq = 0.0;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t i = 0; i < s.inner; ++i) {
          const double d = xp[at(s, n, c, i)] - mean;
          sq += d * d;
        }
      invstd = 1.0 / std::sqrt(sq / M + eps);
      if (has_running) {
        float* rm = running_mean->data<float>() + c * running_mean->strides()[0];
        float* rv = running_var->data<float>() + c * running_var->strides()[0];
        *rm = static_cast<float>((1.0 - momentum) * *rm + momentum * mean);
        *rv = static_cast<float>((1.0 - momentum) * *rv + momentum * sq / (M - 1));
      }
    } else {
      mean = running_mean->contiguous().data<float>()[c];
      const double var = running_var->contiguous().data<float>()[c];
      invstd = 1.0 / std::sqrt(var + eps);
    }
    sm.data<float>()[c] = static_cast<float>(mean);
    si.data<float>()[c] = static_cast<float>(invstd);
    const double w = param_at(weight, c, 1.0);
    const double b = param_at(bias, c, 0.0);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i)
        y.data<float>()[at(s, n, c, i)] =
            static_cast<float>((xp[at(s, n, c, i)] - mean) * invstd * w + b);
  }
  return {y, sm, si};
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& dy_in, const Tensor& x_in,
                                                       const std::optional<Tensor>& weight,
                                                       const Tensor& save_mean,
                                                       const Tensor& save_invstd, bool training) {
  Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  const NCI s = nci(x);
  const int64_t M = s.N * s.inner;
  Tensor dx = Tensor::empty(x.shape()), dw = Tensor::empty({s.C}), db = Tensor::empty({s.C});
  const float *xp = x.data<float>(), *gp = dy.data<float>();
  for (int64_t c = 0; c < s.C; ++c) {
    const double mean = save_mean.contiguous().data<float>()[c];
    const double invstd = save_invstd.contiguous().data<float>()[c];
    const double w = param_at(weight, c, 1.0);
    double sdy = 0.0, sdyxh = 0.0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i) {
        sdy += gp[at(s, n, c, i)];
        sdyxh += gp[at(s, n, c, i)] * (xp[at(s, n, c, i)] - mean) * invstd;
      }
    dw.data<float>()[c] = static_cast<float>(sdyxh);
    db.data<float>()[c] = static_cast<float>(sdy);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i) {
        const double g = gp[at(s, n, c, i)];
        const double xh = (xp[at(s, n, c, i)] - mean) * invstd;
        const double v = training ? w * invstd / M * (M * g - sdy - xh * sdyxh) : w * invstd * g;
        dx.data<float>()[at(s, n, c, i)] = static_cast<float>(v);
      }
  }
  return {dx, dw, db};
}

std::pair<Tensor, Tensor> dropout_forward(const Tensor& x_in, double p, bool channel_wise) {
  Tensor x = x_in.contiguous();
  Shape ms = x.shape();
  int64_t plane = 1;
  if (channel_wise)
    for (int64_t d = 2; d < x.dim(); ++d) {
      plane *= x.size(d);
      ms[d] = 1;
    }
  Tensor mask = Tensor::empty(ms), y = Tensor::empty(x.shape());
  const RngState st = rng_reserve(static_cast<uint64_t>(mask.numel()));
  for (int64_t i = 0; i < mask.numel(); ++i) {
    const bool keep = p < 1.0 && rng_uniform(st, static_cast<uint64_t>(i)) >= static_cast<float>(p);
    mask.data<float>()[i] = keep ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  }
  for (int64_t i = 0; i < x.numel(); ++i)
    y.data<float>()[i] = x.data<float>()[i] * mask.data<float>()[i / plane];
  return {y, mask};
}

Tensor dropout_backward(const Tensor& dy_in, const Tensor& mask_in) {
  Tensor dy = dy_in.contiguous(), mask = mask_in.contiguous();
  const int64_t plane = dy.numel() / (mask.numel() > 0 ? mask.numel() : 1);
  Tensor dx = Tensor::empty(dy.shape());
  for (int64_t i = 0; i < dy.numel(); ++i)
    dx.data<float>()[i] = dy.data<float>()[i] * mask.data<float>()[i / (plane > 0 ? plane : 1)];
  return dx;
}

}  // namespace cnncore::reference
