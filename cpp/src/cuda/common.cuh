// Shared by the CUDA kernel files: error checks that turn CUDA failures into cnncore::Error
// (Python RuntimeError) naming the op and CUDA's message, a device guard and launch helpers.
#pragma once

#include <cuda_runtime.h>

#include "cnncore/tensor.hpp"
#include "cuda_api.hpp"

namespace cnncore::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* op, const char* what);

inline void check_cuda(cudaError_t err, const char* op, const char* what) {
  if (err != cudaSuccess) throw_cuda_error(err, op, what);
}
// After a kernel launch: a bad configuration shows up here, faults at the next synchronisation.
inline void check_launch(const char* op) { check_cuda(cudaGetLastError(), op, "kernel launch"); }

// Makes `device` current for the scope (kernels and allocations go to the current device).
class DeviceGuard {
 public:
  DeviceGuard(int device, const char* op);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

constexpr int kThreads = 256;
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 * 32 ? (blocks > 0 ? blocks : 1) : 65535 * 32);
}

// Grid-stride loop over [0, n): correct for any grid size.
#define CNNCORE_CUDA_LOOP(i, n)                                                      \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// A tensor's shape and strides passed by value to a kernel (up to 8 dimensions).
constexpr int kMaxDims = 8;
struct StridedLayout {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];
};
// ValueError naming op beyond kMaxDims.
StridedLayout layout_of(const Tensor& t, const char* op);

// The memory offset (in elements) of the linear-index'th element in row-major order.
__device__ inline int64_t strided_offset(const StridedLayout& l, int64_t linear) {
  int64_t off = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    off += (linear % l.shape[d]) * l.strides[d];
    linear /= l.shape[d];
  }
  return off;
}

// Checks every tensor an op gets is a float32 CUDA tensor on one device, returns that device.
int check_cuda_inputs(const char* op,
                      std::initializer_list<std::pair<const char*, const Tensor*>> tensors);

}  // namespace cnncore::cuda
