// Per-ISA entry points of the pooling family (bodies in pool_kernels.inc). Each works on one
// contiguous (H, W) plane described by Pool2dParams; the caller threads over the N*C planes.
#pragma once

#include <cstdint>

#include "cnncore/ops/pool.hpp"
#include "cpu/dispatch.hpp"

namespace cnncore {
CNNCORE_DECLARE_ISA_KERNELS(
    // x (H,W) -> y (OH,OW), idx (OH,OW) flat h*W+w; both overwritten.
    void max_pool2d_plane(const float* x, float* y, int64_t* idx, const Pool2dParams& p);
    // x (H,W) -> y (OH,OW), overwritten.
    void avg_pool2d_plane(const float* x, float* y, const Pool2dParams& p);
    // dy (OH,OW) -> dx (H,W), overwritten.
    void avg_pool2d_backward_plane(const float* dy, float* dx, const Pool2dParams& p);
    // x (H,W) -> y (OH,OW), overwritten.
    void adaptive_avg_pool2d_plane(const float* x, float* y, int64_t H, int64_t W, int64_t OH,
                                   int64_t OW);
    // dy (OH,OW) -> dx (H,W), accumulated: the caller zeroes dx.
    void adaptive_avg_pool2d_backward_plane(const float* dy, float* dx, int64_t H, int64_t W,
                                            int64_t OH, int64_t OW);)
}  // namespace cnncore
