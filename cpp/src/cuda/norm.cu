// Batch norm on CUDA, the CPU reference's formulas (cpu/reference/norm.cpp): one block per channel
// reduces in double (sum, then squared deviations: two passes, as the reference), updates the
// running statistics in place (unbiased variance), and normalises its channel.
#include <cmath>

#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
struct NCI {
  int64_t N, C, inner;
};

__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int h = blockDim.x / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) shared[threadIdx.x] += shared[threadIdx.x + h];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // shared is reused by the next sum
  return total;
}

__device__ float param(const float* p, int64_t c, float dflt) { return p ? p[c] : dflt; }

__global__ void bn_forward_kernel(const float* x, float* y, float* save_mean, float* save_invstd,
                                  float* run_mean, int64_t rm_stride, float* run_var,
                                  int64_t rv_stride, const float* w, const float* b, NCI s,
                                  bool training, double momentum, double eps) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x, M = s.N * s.inner;
  auto at = [&](int64_t e) { return ((e / s.inner) * s.C + c) * s.inner + e % s.inner; };
  double mean, invstd;
  if (training) {
    double sum = 0.0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) sum += x[at(e)];
    mean = block_sum(sum, shared) / M;
    double sq = 0.0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
      const double d = x[at(e)] - mean;
      sq += d * d;
    }
    sq = block_sum(sq, shared);
    invstd = 1.0 / sqrt(sq / M + eps);
    if (run_mean && threadIdx.x == 0) {
      float* rm = run_mean + c * rm_stride;
      float* rv = run_var + c * rv_stride;
      *rm = static_cast<float>((1.0 - momentum) * *rm + momentum * mean);
      *rv = static_cast<float>((1.0 - momentum) * *rv + momentum * sq / (M - 1));
    }
  } else {
    mean = run_mean[c * rm_stride];
    invstd = 1.0 / sqrt(static_cast<double>(run_var[c * rv_stride]) + eps);
  }
  if (threadIdx.x == 0) {
    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = static_cast<float>(invstd);
  }
  const double wc = param(w, c, 1.0f), bc = param(b, c, 0.0f);
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x)
    y[at(e)] = static_cast<float>((x[at(e)] - mean) * invstd * wc + bc);
}

__global__ void bn_backward_kernel(const float* dy, const float* x, const float* w,
                                   const float* save_mean, const float* save_invstd, float* dx,
                                   float* dw, float* db, NCI s, bool training) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x, M = s.N * s.inner;
  auto at = [&](int64_t e) { return ((e / s.inner) * s.C + c) * s.inner + e % s.inner; };
  const double mean = save_mean[c], invstd = save_invstd[c], wc = param(w, c, 1.0f);
  double a = 0.0, bsum = 0.0;
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
    const double g = dy[at(e)];
    a += g;
    bsum += g * (x[at(e)] - mean) * invstd;
  }
  const double sdy = block_sum(a, shared), sdyxh = block_sum(bsum, shared);
  if (threadIdx.x == 0) {
    dw[c] = static_cast<float>(sdyxh);
    db[c] = static_cast<float>(sdy);
  }
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
    const double g = dy[at(e)], xh = (x[at(e)] - mean) * invstd;
    dx[at(e)] = static_cast<float>(training ? wc * invstd / M * (M * g - sdy - xh * sdyxh)
                                            : wc * invstd * g);
  }
}

NCI nci_of(const Tensor& x, const char* op) {
  CNNCORE_CHECK_VALUE(x.dim() >= 2, op, ": input must be (N, C) or (N, C, *), but got shape ",
                      shape_str(x.shape()));
  NCI s{x.size(0), x.size(1), 1};
  for (int64_t i = 2; i < x.dim(); ++i) s.inner *= x.size(i);
  return s;
}

Tensor channel_param(const std::optional<Tensor>& t, int64_t C, const char* op, const char* arg) {
  if (!t || !t->defined()) return Tensor();
  CNNCORE_CHECK_VALUE(t->dim() == 1 && t->size(0) == C, op, ": ", arg, " must have shape (", C,
                      ",), but got ", shape_str(t->shape()));
  return *t;
}
const float* ptr(const Tensor& t) { return t.defined() ? t.device_data<float>() : nullptr; }
}  // namespace

std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(
    const Tensor& x_in, const std::optional<Tensor>& running_mean,
    const std::optional<Tensor>& running_var, const std::optional<Tensor>& weight,
    const std::optional<Tensor>& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  const int dev = check_cuda_inputs(
      op, {{"input", &x_in}, {"running_mean", opt_ptr(running_mean)},
           {"running_var", opt_ptr(running_var)}, {"weight", opt_ptr(weight)},
           {"bias", opt_ptr(bias)}});
  const NCI s = nci_of(x_in, op);
  Tensor rm = channel_param(running_mean, s.C, op, "running_mean");
  Tensor rv = channel_param(running_var, s.C, op, "running_var");
  CNNCORE_CHECK_VALUE(rm.defined() == rv.defined(), op,
                      ": running_mean and running_var must be given together");
  CNNCORE_CHECK_VALUE(training || rm.defined(), op,
                      ": running_mean and running_var are required in eval mode");
  if (training && rm.defined())
    CNNCORE_CHECK_VALUE(s.N * s.inner > 1, op, ": expected more than 1 value per channel when "
                        "training, but got input of shape ", shape_str(x_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor w = channel_param(weight, s.C, op, "weight"), b = channel_param(bias, s.C, op, "bias");
  if (w.defined()) w = w.contiguous();
  if (b.defined()) b = b.contiguous();
  const Device where = x.device();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, where);
  Tensor sm = Tensor::empty({s.C}, DType::Float32, where);
  Tensor si = Tensor::empty({s.C}, DType::Float32, where);
  if (s.C) {
    bn_forward_kernel<<<static_cast<unsigned>(s.C), kThreads>>>(
        x.device_data<float>(), y.device_data<float>(), sm.device_data<float>(),
        si.device_data<float>(), rm.defined() ? rm.device_data<float>() : nullptr,
        rm.defined() ? rm.strides()[0] : 0, rv.defined() ? rv.device_data<float>() : nullptr,
        rv.defined() ? rv.strides()[0] : 0, ptr(w), ptr(b), s, training, momentum, eps);
    check_launch(op);
  }
  return {y, sm, si};
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& dy_in, const Tensor& x_in,
                                                       const std::optional<Tensor>& weight,
                                                       const Tensor& save_mean,
                                                       const Tensor& save_invstd, bool training) {
  const char* op = "batch_norm_backward";
  const int dev = check_cuda_inputs(
      op, {{"grad_output", &dy_in}, {"input", &x_in}, {"weight", opt_ptr(weight)},
           {"save_mean", &save_mean}, {"save_invstd", &save_invstd}});
  CNNCORE_CHECK_VALUE(dy_in.shape() == x_in.shape(), op, ": grad_output shape ",
                      shape_str(dy_in.shape()), " must match input shape ",
                      shape_str(x_in.shape()));
  const NCI s = nci_of(x_in, op);
  CNNCORE_CHECK_VALUE(save_mean.numel() == s.C && save_invstd.numel() == s.C, op,
                      ": save_mean and save_invstd must have ", s.C, " values");
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  Tensor w = channel_param(weight, s.C, op, "weight");
  if (w.defined()) w = w.contiguous();
  Tensor sm = save_mean.contiguous(), si = save_invstd.contiguous();
  const Device where = x.device();
  Tensor dx = Tensor::empty(x.shape(), DType::Float32, where);
  Tensor dw = Tensor::empty({s.C}, DType::Float32, where);
  Tensor db = Tensor::empty({s.C}, DType::Float32, where);
  if (s.C) {
    bn_backward_kernel<<<static_cast<unsigned>(s.C), kThreads>>>(
        dy.device_data<float>(), x.device_data<float>(), ptr(w), sm.device_data<float>(),
        si.device_data<float>(), dx.device_data<float>(), dw.device_data<float>(),
        db.device_data<float>(), s, training);
    check_launch(op);
  }
  return {dx, dw, db};
}

}  // namespace cnncore::cuda
