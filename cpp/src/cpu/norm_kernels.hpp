// Per-ISA entry points of the norm family (bodies in norm_kernels.inc).
#pragma once

#include <cstdint>

#include "cpu/dispatch.hpp"

namespace cnncore {
// The LRN kernels work on one (C, len) block of positions out of a (C, inner) image slice:
// element (c, i) at p[c * inner + i]; scratch holds 2 * C * len floats.
struct LrnArgs {
  int64_t C, inner, len, size;
  float alpha_over_size, beta, k;
};
CNNCORE_DECLARE_ISA_KERNELS(
    void lrn_forward(const float* x, float* y, const LrnArgs& a, float* scratch);
    void lrn_backward(const float* dy, const float* x, float* dx, const LrnArgs& a,
                      float* scratch);
    // Sums of n contiguous floats (float lanes; callers add rows into double).
    float row_sum(const float* x, int64_t n);
    // sum (x - m)^2
    float row_sq_dev(const float* x, int64_t n, float m);
    // sum dy and sum dy * (x - m), into out[0], out[1]
    void row_dy_dot(const float* dy, const float* x, int64_t n, float m, float* out);
    // y = x * a + b
    void row_affine(const float* x, float* y, int64_t n, float a, float b);
    // dx = dy * a + x * b + c
    void row_bn_backward(const float* dy, const float* x, float* dx, int64_t n, float a, float b,
                         float c);)
}  // namespace cnncore
