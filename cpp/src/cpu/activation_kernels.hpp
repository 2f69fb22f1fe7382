// Per-ISA entry points of the activation family (bodies in activation_kernels.inc).
// All take contiguous float arrays of n elements and overwrite the output.
#pragma once

#include <cstdint>

#include "cpu/dispatch.hpp"

namespace cnncore {
CNNCORE_DECLARE_ISA_KERNELS(
    void relu_forward(const float* x, float* y, int64_t n);
    void relu_backward(const float* dy, const float* y, float* dx, int64_t n);)
}  // namespace cnncore
