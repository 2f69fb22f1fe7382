// log_softmax and cross_entropy (class-index targets) on CUDA, with the CPU reference's formulas
// (cpu/reference/loss.cpp): per element (n, d...) of target t,
//   loss = -(1 - e) w_t logp[t] + (e / C) sum_c -w_c logp[c]   (0 where t == ignore_index),
// mean divides the sum by total_weight = sum of w_t over the kept elements. Element losses and
// the reduction are summed in double, in a fixed order (one block), as on the CPU.
// nll_loss is cross_entropy with e = 0. Probability targets are not on CUDA yet.
#include <cmath>
#include <vector>

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
CeDims ce_dims(const Tensor& logp, const Tensor& target, const char* op) {
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
  CNNCORE_CHECK_VALUE(target.shape() == expect, op, ": target must have shape ",
                      shape_str(expect), " for input of shape ", shape_str(logp.shape()),
                      ", but got ", shape_str(target.shape()));
  return d;
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
  const int dev = check_cuda_inputs(op, {{"input", &logp_in}, {"weight", opt_ptr(weight)}});
  if (target.dtype() != DType::Int64)
    throw Error(detail::concat(op, ": probability (float32) targets have no CUDA kernel yet; "
                               "use class indices or move the tensors with .cpu()"));
  CNNCORE_CHECK_VALUE(eps >= 0.0 && eps <= 1.0, op, ": label_smoothing must be in [0, 1], but got ",
                      eps);
  const CeDims d = ce_dims(logp_in, target, op);
  check_targets(target, d.C, ignore_index, op);
  DeviceGuard guard(dev, op);
  Tensor logp = logp_in.contiguous(), t = target.contiguous(), wkeep;
  const float* w = weight_ptr(weight, wkeep, d.C, op);
  const int64_t n = d.N * d.inner;
  const Device where = logp.device();
  Tensor out = Tensor::empty(target.shape(), DType::Float32, where);
  Tensor scratch = Tensor::empty({2 * std::max<int64_t>(n, 1)}, DType::Int64, where);  // doubles
  double* el = reinterpret_cast<double*>(scratch.device_data<int64_t>());
  double* tw = el + std::max<int64_t>(n, 1);
  Tensor loss = Tensor::empty({}, DType::Float32, where);
  Tensor total = Tensor::empty({}, DType::Float32, where);
  if (n) {
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

Tensor cross_entropy_logp_backward(const Tensor& dloss_in, const Tensor& logp_in,
                                   const Tensor& target, const std::optional<Tensor>& weight,
                                   Reduction reduction, int64_t ignore_index, double eps,
                                   const Tensor& total_weight) {
  const char* op = "cross_entropy_backward";
  check_same_device(op, {{"grad_output", &dloss_in}, {"input", &logp_in}, {"target", &target},
                         {"total_weight", &total_weight}});
  const int dev = check_cuda_inputs(op, {{"grad_output", &dloss_in}, {"input", &logp_in},
                                         {"total_weight", &total_weight},
                                         {"weight", opt_ptr(weight)}});
  if (target.dtype() != DType::Int64)
    throw Error(detail::concat(op, ": probability (float32) targets have no CUDA kernel yet"));
  const CeDims d = ce_dims(logp_in, target, op);
  const bool per_element = reduction == Reduction::None;
  CNNCORE_CHECK_VALUE(per_element ? dloss_in.shape() == target.shape() : dloss_in.numel() == 1,
                      op, ": grad_output has shape ", shape_str(dloss_in.shape()),
                      ", which does not fit the reduction");
  DeviceGuard guard(dev, op);
  Tensor logp = logp_in.contiguous(), t = target.contiguous(), g = dloss_in.contiguous(), wkeep;
  Tensor tw = total_weight.contiguous();
  const float* w = weight_ptr(weight, wkeep, d.C, op);
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

}  // namespace cnncore::cuda
