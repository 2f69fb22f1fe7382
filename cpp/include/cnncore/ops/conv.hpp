// Convolution and transposed convolution, NCHW float32.
//
// Shapes (letters used in every doc line below):
//   x  (N, C, H, W)            input
//   w  (K, C/groups, R, S)     conv2d weight: K output channels, R x S taps
//   y  (N, K, OH, OW)          output,  OH = conv_output_size(H, R, stride_h, pad_t + pad_b, dil_h)
// conv_transpose2d is the backward-input of the conv2d that maps its output back to its input, so
// both share Conv2dParams and the same kernels.
#pragma once

#include <array>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "cnncore/tensor.hpp"

namespace cnncore {

// The one output-size formula: floor((n + pad_total - dilation*(k-1) - 1) / stride) + 1.
// Returns <= 0 when the (dilated) kernel does not fit in the padded input.
inline int64_t conv_output_size(int64_t n, int64_t k, int64_t stride, int64_t pad_total,
                                int64_t dilation) {
  const int64_t span = dilation * (k - 1) + 1;
  if (n + pad_total < span) return 0;
  return (n + pad_total - span) / stride + 1;
}
// The input size a transposed convolution produces (the inverse of the above, which loses the
// remainder of the division: output_padding adds it back).
inline int64_t conv_transpose_output_size(int64_t n, int64_t k, int64_t stride, int64_t pad_total,
                                          int64_t dilation, int64_t output_padding) {
  return (n - 1) * stride - pad_total + dilation * (k - 1) + output_padding + 1;
}

// Padding as the user gives it: explicit (symmetric or asymmetric), 'valid' (none) or 'same'
// (output = ceil(input / stride); the odd pixel goes to the bottom/right, TensorFlow's rule,
// which for stride 1 is also PyTorch's).
struct Padding2d {
  enum class Mode { Explicit, Valid, Same };
  Mode mode = Mode::Explicit;
  int64_t top = 0, bottom = 0, left = 0, right = 0;

  static Padding2d symmetric(int64_t ph, int64_t pw) { return {Mode::Explicit, ph, ph, pw, pw}; }
  static Padding2d asymmetric(int64_t t, int64_t b, int64_t l, int64_t r) {
    return {Mode::Explicit, t, b, l, r};
  }
  static Padding2d valid() { return {Mode::Valid, 0, 0, 0, 0}; }
  static Padding2d same() { return {Mode::Same, 0, 0, 0, 0}; }
};

struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  Padding2d padding;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// Everything a conv kernel needs, resolved and validated once.
struct CNNCORE_API Conv2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // output channels, kernel height, width
  int64_t OH = 0, OW = 0;              // output
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_t = 0, pad_b = 0, pad_l = 0, pad_r = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;

  int64_t C_per_group() const { return C / groups; }
  int64_t K_per_group() const { return K / groups; }
  bool is_depthwise() const { return groups == C && groups > 1 && K % C == 0; }
  bool is_1x1() const { return R == 1 && S == 1; }
  bool is_strided() const { return stride_h != 1 || stride_w != 1; }
  bool is_dilated() const { return dil_h != 1 || dil_w != 1; }
  bool is_padded() const { return pad_t || pad_b || pad_l || pad_r; }
  Shape input_shape() const { return {N, C, H, W}; }
  Shape weight_shape() const { return {K, C / groups, R, S}; }
  Shape output_shape() const { return {N, K, OH, OW}; }
  double flops() const;  // forward multiply-adds x 2
};

// The algorithms conv2d (and, through it, conv_transpose2d) can take. One selector picks per
// shape, so new paths (Winograd, direct NCHWc) slot in as new enumerators and new rules.
enum class ConvAlgo {
  Im2colGemm,       // per image and group: columns (C/g*R*S, rows of OH x OW), one SGEMM per tile
  Gemm1x1,          // 1x1, stride 1, unpadded: the input already is the column matrix
  DepthwiseDirect,  // groups == C: a direct SIMD kernel over output rows, no im2col
  Direct,           // register-blocked direct kernel (output channels x pixel vectors); valid
                    // for every shape, chosen for few input channels per group
  Winograd,         // 3x3 stride 1, groups 1: F(4x4, 3x3) tiles, 36 GEMMs (cpu/winograd.hpp)
};
CNNCORE_API const char* conv_algo_name(ConvAlgo a);
// Deterministic for given params and environment: the choice depends on the shape only, unless
// CNNCORE_CONV_ALGO names an algorithm (im2col+gemm, gemm-1x1, direct, winograd; tests use it to cover
// every path). A forced algorithm that cannot run the shape (gemm-1x1 on a 3x3) is ignored.
CNNCORE_API ConvAlgo select_conv_algo(const Conv2dParams& p);

// Validates shapes and options for conv2d and resolves the padding. `op` names the caller in
// error messages. Throws ValueError naming the argument, the expected and the given values.
CNNCORE_API Conv2dParams conv2d_params(const Shape& input, const Shape& weight,
                                       const Conv2dOptions& opt, const char* op = "conv2d");
// The conv2d whose backward-input is conv_transpose2d(input, weight). weight (C_in, C_out/groups,
// R, S); output_padding must be smaller than stride or dilation (PyTorch's rule). In the result
// the roles swap: N, C = C_out, H, W = the transposed output's size; K = C_in; OH, OW = the
// transposed input's size. When output_padding >= stride (allowed for dilation > stride) the
// conv over (H, W) would give more than OH rows: OH is the one kernels use, never recomputed.
CNNCORE_API Conv2dParams conv_transpose2d_params(const Shape& input, const Shape& weight,
                                                 const Conv2dOptions& opt, int64_t output_padding_h,
                                                 int64_t output_padding_w,
                                                 const char* op = "conv_transpose2d");

// All functions below accept any memory format (strided views, NCHWc blocked) and any thread
// count, validate through the params functions above (ValueError / TypeError naming the op and
// argument) and return a new contiguous NCHW tensor: nothing is accumulated into caller memory.

// y = conv2d(x, w) + b.  x (N,C,H,W), w (K,C/g,R,S), b (K) or none -> y (N,K,OH,OW), a new tensor.
CNNCORE_API Tensor conv2d_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
                                  const Conv2dOptions& opt);
// What conv2d_forward can apply to its output in the same call, for inference (a folded
// BatchNorm goes into w and b; this is what follows it):
//   y = min(max_value, max(min_value, conv2d(x, w) + b + residual))
// residual: the output's shape (N,K,OH,OW) exactly, float32, or none; the bounds clamp as
// hardtanh does (NaN comes through): ReLU is {0, +inf}, ReLU6 {0, 6}, none {-inf, +inf}.
struct Conv2dEpilogue {
  std::optional<Tensor> residual;
  double min_value = -std::numeric_limits<double>::infinity();
  double max_value = std::numeric_limits<double>::infinity();
};
// y = the epilogue of conv2d(x, w) + b: one call, no intermediate tensors. ValueError for a
// residual of another shape or device, NaN bounds or min_value > max_value; TypeError for a
// residual that is not float32.
CNNCORE_API Tensor conv2d_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
                                  const Conv2dOptions& opt, const Conv2dEpilogue& epilogue);
// dx from dy.  dy (N,K,OH,OW), w (K,C/g,R,S) -> dx (N,C,H,W), a new tensor (overwritten).
// x_shape is the forward input's shape (the output size alone cannot tell H and W).
CNNCORE_API Tensor conv2d_backward_input(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                                         const Conv2dOptions& opt);
// dw from dy and x.  dy (N,K,OH,OW), x (N,C,H,W) -> dw (K,C/g,R,S), a new tensor, summed over N.
CNNCORE_API Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                                          const Conv2dOptions& opt);
// {dx, dw} at once: the same results, shapes and checks as conv2d_backward_input(dy, w, x.shape())
// and conv2d_backward_weight(dy, x, w.shape()), with dy and x read once where a kernel computes
// both (depthwise layers on the CPU, outside deterministic mode).
CNNCORE_API std::pair<Tensor, Tensor> conv2d_backward_input_weight(const Tensor& dy,
                                                                   const Tensor& x,
                                                                   const Tensor& w,
                                                                   const Conv2dOptions& opt);
// db = sum of dy over N, OH, OW.  dy (N,K,OH,OW) -> db (K), a new tensor. Also the bias
// gradient of conv_transpose2d (dy (N,C_out,OH,OW) -> (C_out)).
CNNCORE_API Tensor conv2d_backward_bias(const Tensor& dy);
// The three gradients in one call, as torch's convolution_backward: {dx, dw, db} where
// output_mask asks for them (an undefined Tensor where it does not), the same shapes, checks
// and values (up to float rounding) as conv2d_backward_input / _weight / _bias. dy and x are
// read once where a kernel computes several (depthwise dx and dw; db summed in the direct weight
// gradient's pass over dy).
struct Conv2dGrads {
  Tensor input, weight, bias;
};
CNNCORE_API Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                        const Conv2dOptions& opt,
                                        const std::array<bool, 3>& output_mask);

// Transposed convolution. x (N,C_in,H,W), w (C_in,C_out/g,R,S), b (C_out) or none
//   -> y (N,C_out,OH,OW), a new tensor, OH = conv_transpose_output_size(H, R, ...).
// Padding must be explicit (or 'valid'); 'same' has no transposed meaning and is rejected.
CNNCORE_API Tensor conv_transpose2d_forward(const Tensor& x, const Tensor& w,
                                            const std::optional<Tensor>& b,
                                            const Conv2dOptions& opt, int64_t output_padding_h,
                                            int64_t output_padding_w);
// dx = conv2d_forward(dy, w) of the equivalent conv.  dy (N,C_out,OH,OW) -> dx (N,C_in,H,W), new.
// x_shape is the forward input's shape; the bias gradient is conv2d_backward_bias(dy).
CNNCORE_API Tensor conv_transpose2d_backward_input(const Tensor& dy, const Tensor& w,
                                                   const Shape& x_shape, const Conv2dOptions& opt,
                                                   int64_t output_padding_h,
                                                   int64_t output_padding_w);
// dw.  dy (N,C_out,OH,OW), x (N,C_in,H,W) -> dw (C_in,C_out/g,R,S), a new tensor, summed over N.
CNNCORE_API Tensor conv_transpose2d_backward_weight(const Tensor& dy, const Tensor& x,
                                                    const Shape& w_shape, const Conv2dOptions& opt,
                                                    int64_t output_padding_h,
                                                    int64_t output_padding_w);

// Which algorithm conv2d_forward takes for these params on the active ISA, and why
// (e.g. "im2col+gemm: general case"): "<conv_algo_name>: <reason>". The name before the colon is
// stable (tests assert it); the reason is prose. Deterministic; tests and explain_conv() read it.
CNNCORE_API std::string conv2d_algorithm(const Conv2dParams& p);

}  // namespace cnncore
