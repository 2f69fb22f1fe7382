#include "cpu/reference/loss.hpp"

#include <cmath>

namespace cnncore::reference {

namespace {
struct Dims {
  int64_t N = 1, C = 1, inner = 1;
  Shape out;
};
Dims dims_of(const Tensor& logp, const Tensor& target, bool prob) {
  Dims d;
  if (logp.dim() == 1) {
    d.C = logp.size(0);
  } else {
    d.N = logp.size(0);
    d.C = logp.size(1);
    d.out.push_back(d.N);
    for (int64_t k = 2; k < logp.dim(); ++k) {
      d.inner *= logp.size(k);
      d.out.push_back(logp.size(k));
    }
  }
  CNNCORE_CHECK_VALUE(prob ? target.shape() == logp.shape() : target.shape() == d.out,
                      "reference loss: target shape ", shape_str(target.shape()), " mismatch");
  return d;
}

Tensor scalar(double v) {
  Tensor t = Tensor::empty({});
  t.data<float>()[0] = static_cast<float>(v);
  return t;
}

// Element (n, c, i) of a (N, C, inner) tensor.
int64_t at(const Dims& d, int64_t n, int64_t c, int64_t i) { return (n * d.C + c) * d.inner + i; }
}  // namespace

std::pair<Tensor, Tensor> cross_entropy_logp_forward(const Tensor& logp_in, const Tensor& target_in,
                                                     const std::optional<Tensor>& weight,
                                                     Reduction reduction, int64_t ignore_index,
                                                     double eps) {
  Tensor logp = logp_in.contiguous(), target = target_in.contiguous();
  const bool prob = target.dtype() == DType::Float32;
  const Dims d = dims_of(logp, target, prob);
  Tensor w = weight.has_value() && weight->defined() ? weight->contiguous() : Tensor();
  auto wc = [&](int64_t c) { return w.defined() ? static_cast<double>(w.data<float>()[c]) : 1.0; };
  const float* lp = logp.data<float>();
  Tensor out = Tensor::empty(d.out);
  double total = 0.0, tw = 0.0;
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t i = 0; i < d.inner; ++i) {
      double el = 0.0;
      if (prob) {
        for (int64_t c = 0; c < d.C; ++c) {
          const double q = (1.0 - eps) * target.data<float>()[at(d, n, c, i)] + eps / d.C;
          el -= wc(c) * q * lp[at(d, n, c, i)];
        }
        tw += 1.0;
      } else {
        const int64_t t = target.data<int64_t>()[n * d.inner + i];
        if (t != ignore_index) {
          tw += wc(t);
          double smooth = 0.0;
          for (int64_t c = 0; c < d.C; ++c) smooth -= wc(c) * lp[at(d, n, c, i)];
          el = -(1.0 - eps) * wc(t) * lp[at(d, n, t, i)] + eps / d.C * smooth;
        }
      }
      out.data<float>()[n * d.inner + i] = static_cast<float>(el);
      total += el;
    }
  if (reduction == Reduction::None) return {out, scalar(tw)};
  return {scalar(reduction == Reduction::Mean ? total / tw : total), scalar(tw)};
}

Tensor cross_entropy_logp_backward(const Tensor& dloss_in, const Tensor& logp_in,
                                   const Tensor& target_in, const std::optional<Tensor>& weight,
                                   Reduction reduction, int64_t ignore_index, double eps,
                                   const Tensor& total_weight) {
  Tensor logp = logp_in.contiguous(), target = target_in.contiguous(),
         dloss = dloss_in.contiguous();
  const bool prob = target.dtype() == DType::Float32;
  const Dims d = dims_of(logp, target, prob);
  Tensor w = weight.has_value() && weight->defined() ? weight->contiguous() : Tensor();
  auto wc = [&](int64_t c) { return w.defined() ? static_cast<double>(w.data<float>()[c]) : 1.0; };
  const double tw = total_weight.contiguous().data<float>()[0];
  Tensor dl = Tensor::zeros(logp.shape());
  float* dp = dl.data<float>();
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t i = 0; i < d.inner; ++i) {
      double g = reduction == Reduction::None ? dloss.data<float>()[n * d.inner + i]
                                              : dloss.data<float>()[0];
      if (reduction == Reduction::Mean) g /= tw;
      if (prob) {
        for (int64_t c = 0; c < d.C; ++c) {
          const double q = (1.0 - eps) * target.data<float>()[at(d, n, c, i)] + eps / d.C;
          dp[at(d, n, c, i)] = static_cast<float>(-g * wc(c) * q);
        }
        continue;
      }
      const int64_t t = target.data<int64_t>()[n * d.inner + i];
      if (t == ignore_index) continue;
      for (int64_t c = 0; c < d.C; ++c) {
        const double v = -g * (eps / d.C * wc(c) + (c == t ? (1.0 - eps) * wc(t) : 0.0));
        dp[at(d, n, c, i)] = static_cast<float>(v);
      }
    }
  return dl;
}

Tensor cross_entropy_logp_backward_target(const Tensor& dloss_in, const Tensor& logp_in,
                                          const Tensor& target_in,
                                          const std::optional<Tensor>& weight, Reduction reduction,
                                          double eps, const Tensor& total_weight) {
  Tensor logp = logp_in.contiguous(), dloss = dloss_in.contiguous();
  const Dims d = dims_of(logp, target_in, true);
  Tensor w = weight.has_value() && weight->defined() ? weight->contiguous() : Tensor();
  const double tw = total_weight.contiguous().data<float>()[0];
  Tensor dt = Tensor::empty(logp.shape());
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t i = 0; i < d.inner; ++i) {
      double g = reduction == Reduction::None ? dloss.data<float>()[n * d.inner + i]
                                              : dloss.data<float>()[0];
      if (reduction == Reduction::Mean) g /= tw;
      for (int64_t c = 0; c < d.C; ++c) {
        const double wc = w.defined() ? w.data<float>()[c] : 1.0;
        dt.data<float>()[at(d, n, c, i)] =
            static_cast<float>(-g * wc * (1.0 - eps) * logp.data<float>()[at(d, n, c, i)]);
      }
    }
  return dt;
}

std::pair<Tensor, Tensor> nll_loss_forward(const Tensor& logp, const Tensor& target,
                                           const std::optional<Tensor>& weight,
                                           Reduction reduction, int64_t ignore_index) {
  return reference::cross_entropy_logp_forward(logp, target, weight, reduction, ignore_index, 0.0);
}

Tensor nll_loss_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                         const std::optional<Tensor>& weight, Reduction reduction,
                         int64_t ignore_index, const Tensor& total_weight) {
  return reference::cross_entropy_logp_backward(dloss, logp, target, weight, reduction,
                                                ignore_index, 0.0, total_weight);
}

Tensor mse_loss_forward(const Tensor& x_in, const Tensor& t_in, Reduction reduction,
                        const std::optional<Tensor>& weight) {
  Tensor x = x_in.contiguous(), t = t_in.contiguous();
  CNNCORE_CHECK_VALUE(x.shape() == t.shape(), "reference mse_loss: shape mismatch");
  const bool weighted = weight.has_value() && weight->defined();
  Tensor w = weighted ? weight->contiguous() : Tensor();
  Tensor out = Tensor::empty(x.shape());
  double total = 0.0, wsum = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double dd = static_cast<double>(x.data<float>()[i]) - t.data<float>()[i];
    const double wi = weighted ? w.data<float>()[i] : 1.0;
    out.data<float>()[i] = static_cast<float>(wi * dd * dd);
    total += wi * dd * dd;
    wsum += wi;
  }
  if (reduction == Reduction::None) return out;
  return scalar(reduction == Reduction::Mean ? total / wsum : total);
}

Tensor mse_loss_backward(const Tensor& dloss_in, const Tensor& x_in, const Tensor& t_in,
                         Reduction reduction, const std::optional<Tensor>& weight) {
  Tensor x = x_in.contiguous(), t = t_in.contiguous(), dloss = dloss_in.contiguous();
  CNNCORE_CHECK_VALUE(x.shape() == t.shape(), "reference mse_loss: shape mismatch");
  const bool weighted = weight.has_value() && weight->defined();
  Tensor w = weighted ? weight->contiguous() : Tensor();
  double wsum = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i) wsum += weighted ? w.data<float>()[i] : 1.0;
  Tensor dx = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    double g = reduction == Reduction::None ? dloss.data<float>()[i] : dloss.data<float>()[0];
    if (reduction == Reduction::Mean) g /= wsum;
    const double wi = weighted ? w.data<float>()[i] : 1.0;
    dx.data<float>()[i] = static_cast<float>(
        wi * 2.0 * (static_cast<double>(x.data<float>()[i]) - t.data<float>()[i]) * g);
  }
  return dx;
}

}  // namespace cnncore::reference
