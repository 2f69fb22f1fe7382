// Pooling, NCHW float32: max, average, adaptive max and adaptive average.
//
//   x (N, C, H, W) -> y (N, C, OH, OW);  indices (N, C, OH, OW) int64, the flat index h*W + w of
//   the chosen element within its (H, W) plane, as PyTorch returns them.
//
// Every function also takes an unbatched (C, H, W) input and then returns (C, OH, OW) outputs;
// backward functions take x_shape of either rank and return a gradient of that shape.
// Inputs may be any layout (strided views, blocked NCHWc); outputs are contiguous NCHW.
// Forward functions overwrite fresh outputs; backward functions return a fresh dx (zeroed, then
// the scatter-add of dy), never accumulating into a caller's buffer.
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
  bool batched = true;  // false: the input was (C, H, W) and N == 1
  Shape output_shape() const {
    return batched ? Shape{N, C, OH, OW} : Shape{C, OH, OW};
  }
  Shape input_shape() const { return batched ? Shape{N, C, H, W} : Shape{C, H, W}; }
  int64_t planes() const { return N * C; }
};

// Validates (kernel > 0, stride > 0, dilation >= 1, 0 <= padding <= kernel/2, output >= 1, input
// 3-D or 4-D with non-empty spatial dims) and computes the output size with ceil_mode as PyTorch
// does. op names the caller in messages ("max_pool2d", "avg_pool2d").
CNNCORE_API Pool2dParams pool2d_params(const Shape& input, const Pool2dOptions& opt, const char* op);
// PyTorch's pooling output size (the one place it is computed): floor or ceil of
// (n + 2p - d(k-1) - 1)/s + 1, minus one when ceil_mode lets the last window start in the right
// padding (the last window must start inside the input or the left padding). May return <= 0;
// pool2d_params rejects that.
CNNCORE_API int64_t pool_output_size(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d,
                                     bool ceil_mode);

// x (N,C,H,W) -> (y (N,C,OH,OW) float32, indices (N,C,OH,OW) int64). NaN wins a window (the last
// NaN in row-major order, as torch); among equal maxima the first one. A dilated window that
// misses the input entirely gives -inf and index -1 (torch gives an index outside the plane
// there, which its own backward then writes through); backward skips -1.
CNNCORE_API std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
// dy (N,C,OH,OW), indices (N,C,OH,OW) int64 -> dx x_shape: dx[n,c,idx] += dy[n,c,o].
CNNCORE_API Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);

// x (N,C,H,W) -> y (N,C,OH,OW): window sum / divisor (divisor_override, else the window size
// clipped to the padded input, or to the input when count_include_pad is false).
CNNCORE_API Tensor avg_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
// dy (N,C,OH,OW) -> dx x_shape: each dy spread evenly (dy / divisor) over its window.
CNNCORE_API Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape,
                                       const Pool2dOptions& opt);

// Adaptive pooling to (out_h, out_w) >= 1: window i spans [floor(i*H/OH), ceil((i+1)*H/OH)).
// x (N,C,H,W) -> y (N,C,out_h,out_w); backward dy (N,C,out_h,out_w) -> dx x_shape.
CNNCORE_API Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
CNNCORE_API Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);
CNNCORE_API std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor& x, int64_t out_h,
                                                                  int64_t out_w);
CNNCORE_API Tensor adaptive_max_pool2d_backward(const Tensor& dy, const Tensor& indices,
                                                const Shape& x_shape);

// Adaptive window bounds (shared by every backend): [start, end) along one dim.
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

}  // namespace cnncore
