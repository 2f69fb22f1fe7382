// Per-ISA row kernels of interpolate (bodies in
// resample_kernels.inc). All take contiguous float rows of n elements.
#pragma once

#include <cstdint>

#include "cpu/dispatch.hpp"

namespace cnncore {
CNNCORE_DECLARE_ISA_KERNELS(
    // y = a0 * t0 + a1 * t1 (overwrites y): the vertical step of separable bilinear.
    void lerp_rows(const float* t0, const float* t1, float a0, float a1, float* y, int64_t n);
    // d0 += a0 * t, then d1 += a1 * t (accumulates; d0 == d1 is allowed).
    void axpy_rows(const float* t, float a0, float a1, float* d0, float* d1, int64_t n);)
}  // namespace cnncore
