// The CUDA backend as the rest of the library sees it: plain C++ declarations, no CUDA headers,
// so tensor.cpp and the op entry points compile the same with or without -DCNNCORE_CUDA=ON.
// With CUDA on, cpp/src/cuda/*.cu define these; with it off, cuda_off.cpp defines them to say
// "not compiled" (compiled() is false, everything else throws a cnncore::Error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cnncore/tensor.hpp"

namespace cnncore::cuda {

bool compiled();
// Devices usable now; 0 when the driver is missing or too old, or no GPU is present (never throws).
int device_count();
// Why device_count() is 0: "" when a device exists, else the build's or the driver's reason.
std::string unavailable_reason();
// Throws a cnncore::Error naming op and the reason unless `device` can be used.
void require_device(const Device& device, const char* op);

// ---- memory: the caching allocator (size classes, blocks kept for reuse until empty_cache) ----
void* allocate(size_t bytes, int device, const char* op);
void release(void* ptr, int device);
void empty_cache();
int64_t memory_allocated(int device);
int64_t max_memory_allocated(int device);
int64_t memory_reserved(int device);
void reset_peak_memory_stats(int device);
void synchronize(int device);
int current_device();

// ---- copies (contiguous bytes); host pointers may be pageable: large copies go through pinned
// staging buffers ----
void copy_host_to_device(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_device(void* dst, const void* src, size_t bytes, int device);

// ---- tensor helpers used by tensor.cpp ----
// out (contiguous, same shape) = src (any strides), element size esz (4 or 8).
void gather_strided(const Tensor& src, Tensor& out);
// dst (any strides) = src (contiguous, same shape).
void scatter_strided(const Tensor& src, Tensor& dst);
void fill(Tensor& t, float value);
void zero_bytes(void* ptr, size_t bytes, int device);

// ---- cuda-c: TF32 tensor-core switches (cnncore.backends; both off by default) ----
// The float32 matmul precision as torch.set_float32_matmul_precision: 0 "highest" (fp32 FMA),
// 1 "high", 2 "medium" (both allow TF32 for linear); the convolution switch is
// cnncore.backends.cudnn.allow_tf32. Kept in every build, so the Python flags round-trip without
// CUDA; they only change which kernel runs, on a device of compute capability >= 8.0.
void set_matmul_precision(int precision);
int matmul_precision();
inline bool matmul_allow_tf32() { return matmul_precision() != 0; }
void set_conv_allow_tf32(bool allow);
bool conv_allow_tf32();
// Whether `device` runs the TF32 kernels (compute capability >= 8.0); false without CUDA or GPU.
bool tf32_supported(int device);
// ---- end cuda-c ----

}  // namespace cnncore::cuda
