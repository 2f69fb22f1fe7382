// Per-ISA entry points of the activation family (bodies in activation_kernels.inc).
// Elementwise kernels take contiguous float arrays of n elements and overwrite the output.
// The softmax kernels see x as (C, inner) slices: element (c, i) at x[c * inner + i].
#pragma once

#include <cstdint>

#include "cpu/dispatch.hpp"

namespace cnncore {
CNNCORE_DECLARE_ISA_KERNELS(
    void relu_forward(const float* x, float* y, int64_t n);
    void relu_backward(const float* dy, const float* y, float* dx, int64_t n);
    void leaky_relu_forward(const float* x, float* y, int64_t n, float slope);
    void leaky_relu_backward(const float* dy, const float* x, float* dx, int64_t n, float slope);
    void hardtanh_forward(const float* x, float* y, int64_t n, float lo, float hi);
    void hardtanh_backward(const float* dy, const float* x, float* dx, int64_t n, float lo,
                           float hi);
    // y = min(hi, max(lo, y + r)) in place (r may be null: y alone); a conv's fused epilogue.
    void add_clamp(float* y, const float* r, int64_t n, float lo, float hi);
    void sigmoid_forward(const float* x, float* y, int64_t n);
    void sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n);
    void tanh_forward(const float* x, float* y, int64_t n);
    void tanh_backward(const float* dy, const float* y, float* dx, int64_t n);
    // One (C, inner) slice, inner positions [i0, i1) only; i1 - i0 <= kSoftmaxBlock.
    void softmax_forward(const float* x, float* y, int64_t C, int64_t inner, int64_t i0,
                         int64_t i1, bool log);
    // dx from dy and the forward output y (softmax: y; log_softmax: log-probabilities).
    void softmax_backward(const float* dy, const float* y, float* dx, int64_t C, int64_t inner,
                          int64_t i0, int64_t i1, bool log);
    // Vectorised exp for other families (n elements, may alias).
    void exp_array(const float* x, float* y, int64_t n);)

// Inner positions one softmax task handles at once (its scratch lives on the stack).
constexpr int64_t kSoftmaxBlock = 256;
}  // namespace cnncore
