// dropout / dropout2d on CUDA. The mask is drawn on the device with the CPU generator's counter
// hash (runtime.cpp: rng_uniform(s, i) = the top 24 bits of mix64(mix64(seed + golden) ^
// (offset + i)) / 2^24), reserving the same number of draws from the global stream (one per mask
// element, as rand() does on the CPU): so manual_seed gives the same mask on both devices, bit
// for bit, and the stream advances alike. mask = (u >= p) / (1 - p); p == 1 gives zeros.
// channel_wise: one draw per (n, c), the mask (N, C, 1, ...).
#include "cnncore/runtime.hpp"
#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
__device__ inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct DropDims {
  uint64_t key;     // mix64(seed + golden), the per-stream half of the hash (host-computed)
  uint64_t offset;  // the reserved draws start here
  float p, scale;
  bool all;  // p >= 1: every element dropped
};

__device__ inline float keep_value(const DropDims& d, int64_t i) {
  const uint64_t h = mix64(d.key ^ (d.offset + static_cast<uint64_t>(i)));
  const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
  return d.all ? 0.0f : (u >= d.p ? d.scale : 0.0f);
}

// Element-wise mask: one pass writes the mask and y.
__global__ void dropout_kernel(const float* x, float* y, float* mask, DropDims d, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) {
    const float m = keep_value(d, i);
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

__global__ void mask_kernel(float* mask, DropDims d, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) { mask[i] = keep_value(d, i); }
}

// out[i] = a[i] * m[i / plane] (plane = 1: the same shape).
__global__ void mul_mask_kernel(const float* a, const float* m, float* out, int64_t plane,
                                int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) { out[i] = a[i] * m[i / plane]; }
}

uint64_t host_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

std::pair<Tensor, Tensor> dropout_forward(const Tensor& x_in, double p, bool channel_wise) {
  const char* op = channel_wise ? "dropout2d" : "dropout";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  CNNCORE_CHECK_VALUE(p >= 0.0 && p <= 1.0, op, ": p must be in [0, 1], but got ", p);
  Shape mshape = x_in.shape();
  int64_t plane = 1;
  if (channel_wise) {
    CNNCORE_CHECK_VALUE(x_in.dim() >= 3, op,
                        ": input must be (N, C, *) with at least 3 dims, but got ", x_in.dim(),
                        "-D with shape ", shape_str(x_in.shape()));
    for (int64_t d = 2; d < x_in.dim(); ++d) {
      plane *= x_in.size(d);
      mshape[d] = 1;
    }
  }
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  Tensor mask = Tensor::empty(mshape, DType::Float32, x.device());
  const int64_t nm = mask.numel(), n = x.numel();
  const RngState s = rng_reserve(static_cast<uint64_t>(nm));  // as rand(mshape) on the CPU
  DropDims d;
  d.key = host_mix64(s.seed + 0x9e3779b97f4a7c15ULL);
  d.offset = s.offset;
  d.p = static_cast<float>(p);
  d.scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  d.all = p >= 1.0;
  if (n == 0) return {y, mask};
  if (!channel_wise) {
    dropout_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                              mask.device_data<float>(), d, n);
    check_launch(op);
    return {y, mask};
  }
  mask_kernel<<<grid_for(nm), kThreads>>>(mask.device_data<float>(), d, nm);
  check_launch(op);
  mul_mask_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), mask.device_data<float>(),
                                             y.device_data<float>(), plane, n);
  check_launch(op);
  return {y, mask};
}

Tensor dropout_backward(const Tensor& dy_in, const Tensor& mask_in) {
  const char* op = "dropout_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"mask", &mask_in}});
  int64_t plane = 1;
  if (mask_in.shape() != dy_in.shape()) {
    bool ok = mask_in.dim() == dy_in.dim() && dy_in.dim() >= 3 &&
              mask_in.size(0) == dy_in.size(0) && mask_in.size(1) == dy_in.size(1);
    for (int64_t d = 2; ok && d < dy_in.dim(); ++d) {
      ok = mask_in.size(d) == 1;
      plane *= dy_in.size(d);
    }
    CNNCORE_CHECK_VALUE(ok, op, ": mask shape ", shape_str(mask_in.shape()),
                        " must match grad_output shape ", shape_str(dy_in.shape()),
                        " or be its (N, C, 1, ...) channel mask");
  }
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous(), mask = mask_in.contiguous();
  Tensor dx = Tensor::empty(dy.shape(), DType::Float32, dy.device());
  if (const int64_t n = dy.numel()) {
    mul_mask_kernel<<<grid_for(n), kThreads>>>(dy.device_data<float>(), mask.device_data<float>(),
                                               dx.device_data<float>(), plane, n);
    check_launch(op);
  }
  return dx;
}

}  // namespace cnncore::cuda
