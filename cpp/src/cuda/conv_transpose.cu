// conv_transpose2d on CUDA through the conv2d kernels (conv2d.cu), as the CPU entries do: the
// transposed conv's output is the equivalent conv's input, so
//   forward          = conv2d_backward_input(x, w) (+ bias per output channel),
//   backward input   = conv2d_forward(dy, w),
//   backward weight  = conv2d_backward_weight(grad_output = x, input = dy),
// with the options of conv_transpose2d_params (the same validation, explicit asymmetric
// padding). When output_padding >= stride (allowed below the dilation) the conv over the
// transposed output has more rows/columns than x: x is zero-extended to that size first (the
// extra outputs read nothing) and the backward input cropped back to x's size.
#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {

struct Equivalent {
  Conv2dParams p;     // conv_transpose2d_params: input = the transposed output, output = x
  Conv2dOptions opt;  // the equivalent conv's options
  int64_t qh, qw;     // that conv's own output size (>= x's)
};

Equivalent equivalent(const Shape& x_shape, const Shape& w_shape, const Conv2dOptions& opt,
                      int64_t oph, int64_t opw, const char* op) {
  Equivalent e;
  e.p = conv_transpose2d_params(x_shape, w_shape, opt, oph, opw, op);
  e.opt = opt;
  e.opt.padding = Padding2d::asymmetric(e.p.pad_t, e.p.pad_b, e.p.pad_l, e.p.pad_r);
  const Conv2dParams q = conv2d_params(e.p.input_shape(), w_shape, e.opt, op);
  e.qh = q.OH;
  e.qw = q.OW;
  return e;
}

// x (N, C, H, W) -> (N, C, qh, qw): zero-extended or cropped at the bottom/right.
Tensor resize_br(const Tensor& x, int64_t qh, int64_t qw) {
  if (x.size(2) == qh && x.size(3) == qw) return x;
  return cuda::pad_forward(x, {0, qw - x.size(3), 0, qh - x.size(2)}, PadMode::Constant, 0.0f);
}

__global__ void add_bias_kernel(float* y, const float* b, int64_t K, int64_t L, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) { y[i] += b[(i / L) % K]; }
}

void check_shape(const Tensor& t, const Shape& expected, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(t.shape() == expected, op, ": ", arg, " must have shape ",
                      shape_str(expected), ", but got ", shape_str(t.shape()));
}

Shape checked4(const Shape& s, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(s.size() == 4, op, ": ", arg, " must have 4 sizes (N, C, H, W), but got ",
                      shape_str(s));
  return s;
}
}  // namespace

Tensor conv_transpose2d_forward(const Tensor& x_in, const Tensor& w_in,
                                const std::optional<Tensor>& b, const Conv2dOptions& opt,
                                int64_t oph, int64_t opw) {
  const char* op = "conv_transpose2d";
  const int dev =
      check_cuda_inputs(op, {{"input", &x_in}, {"weight", &w_in}, {"bias", opt_ptr(b)}});
  const Equivalent e = equivalent(x_in.shape(), w_in.shape(), opt, oph, opw, op);
  Tensor bias;
  if (b && b->defined()) {
    CNNCORE_CHECK_VALUE(b->dim() == 1 && b->size(0) == e.p.C, op, ": bias must have shape (",
                        e.p.C, ",), one value per output channel, but got ",
                        shape_str(b->shape()));
    bias = b->contiguous();
  }
  DeviceGuard guard(dev, op);
  Tensor y = cuda::conv2d_backward_input(resize_br(x_in.contiguous(), e.qh, e.qw), w_in,
                                   e.p.input_shape(), e.opt);
  if (bias.defined() && y.numel() > 0) {
    const int64_t K = y.size(1), L = y.size(2) * y.size(3), n = y.numel();
    add_bias_kernel<<<grid_for(n), kThreads>>>(y.device_data<float>(),
                                               bias.device_data<float>(), K, L, n);
    check_launch(op);
  }
  return y;
}

Tensor conv_transpose2d_backward_input(const Tensor& dy_in, const Tensor& w_in,
                                       const Shape& x_shape, const Conv2dOptions& opt,
                                       int64_t oph, int64_t opw) {
  const char* op = "conv_transpose2d_backward_input";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"weight", &w_in}});
  const Equivalent e = equivalent(checked4(x_shape, op, "input_shape"), w_in.shape(), opt, oph,
                                  opw, op);
  check_shape(dy_in, e.p.input_shape(), op, "grad_output");
  DeviceGuard guard(dev, op);
  Tensor dx = cuda::conv2d_forward(dy_in, w_in, std::nullopt, e.opt);
  return resize_br(dx, x_shape[2], x_shape[3]);
}

Tensor conv_transpose2d_backward_weight(const Tensor& dy_in, const Tensor& x_in,
                                        const Shape& w_shape, const Conv2dOptions& opt,
                                        int64_t oph, int64_t opw) {
  const char* op = "conv_transpose2d_backward_weight";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"input", &x_in}});
  const Equivalent e = equivalent(x_in.shape(), checked4(w_shape, op, "weight_shape"), opt, oph,
                                  opw, op);
  check_shape(dy_in, e.p.input_shape(), op, "grad_output");
  DeviceGuard guard(dev, op);
  // The equivalent conv reads dy as its input and x as its output gradient.
  return cuda::conv2d_backward_weight(resize_br(x_in.contiguous(), e.qh, e.qw), dy_in, w_shape,
                                      e.opt);
}

}  // namespace cnncore::cuda
