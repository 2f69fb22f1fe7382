// Pooling, NCHW float32: max, average, adaptive max and adaptive average.
//
//   x (N, C, H, W) -> y (N, C, OH, OW);  indices (N, C, OH, OW) int64, the flat index h*W + w of
//   the chosen element within its (H, W) plane, as PyTorch returns them.
#pragma once

#include <utility>

#include "cnncore/tensor.hpp"

namespace cnncore {

struct Pool2dOptions {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 0, stride_w = 0;  // 0 = kernel size (PyTorch's default)
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
  int64_t divisor_override = 0;   // average pooling only; 0 = none
};

struct CNNCORE_API Pool2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t KH = 1, KW = 1, SH = 1, SW = 1, PH = 0, PW = 0, DH = 1, DW = 1;
  int64_t OH = 0, OW = 0;
  bool ceil_mode = false, count_include_pad = true;
  int64_t divisor_override = 0;
  Shape output_shape() const { return {N, C, OH, OW}; }
};

// Validates (kernel > 0, stride > 0, 0 <= padding <= kernel/2, the window fits) and computes the
// output size with ceil_mode as PyTorch does (the last window must start inside the input or the
// left padding). op names the caller in messages.
CNNCORE_API Pool2dParams pool2d_params(const Shape& input, const Pool2dOptions& opt, const char* op);
// PyTorch's pooling output size (one place): floor or ceil of (n + 2p - d(k-1) - 1)/s + 1, minus
// one when ceil_mode lets the last window start in the right padding.
CNNCORE_API int64_t pool_output_size(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d,
                                     bool ceil_mode);

// (y, indices). y overwritten; indices int64.
CNNCORE_API std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
// dx (N,C,H,W) = scatter-add of dy at indices.
CNNCORE_API Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);

CNNCORE_API Tensor avg_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
CNNCORE_API Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape,
                                       const Pool2dOptions& opt);

// Adaptive pooling: window i spans [floor(i*H/OH), ceil((i+1)*H/OH)).
CNNCORE_API Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
CNNCORE_API Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);
CNNCORE_API std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor& x, int64_t out_h,
                                                                  int64_t out_w);
CNNCORE_API Tensor adaptive_max_pool2d_backward(const Tensor& dy, const Tensor& indices,
                                                const Shape& x_shape);

}  // namespace cnncore
