#include "cnncore/ops/activation.hpp"

#include "cpu/activation_kernels.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per thread below which one thread is faster

Tensor float_input(const Tensor& x, const char* op, const char* arg) {
  check_dtype(x, DType::Float32, op, arg);
  return as_nchw(x);
}
void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* an,
                      const char* bn) {
  CNNCORE_CHECK_VALUE(a.shape() == b.shape(), op, ": ", an, " shape ", shape_str(a.shape()),
                      " must match ", bn, " shape ", shape_str(b.shape()));
}
}  // namespace

Tensor relu_forward(const Tensor& x_in) {
  Tensor x = float_input(x_in, "relu", "input");
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    CNNCORE_ISA_CALL(relu_forward(xp + b, yp + b, e - b));
  });
  return y;
}

Tensor relu_backward(const Tensor& dy_in, const Tensor& y_in) {
  Tensor dy = float_input(dy_in, "relu_backward", "grad_output");
  Tensor y = float_input(y_in, "relu_backward", "output");
  check_same_shape(dy, y, "relu_backward", "grad_output", "output");
  Tensor dx = Tensor::empty(y.shape());
  const float *dyp = dy.data<float>(), *yp = y.data<float>();
  float* dxp = dx.data<float>();
  parallel_for(0, y.numel(), kGrain, [&](int64_t b, int64_t e) {
    CNNCORE_ISA_CALL(relu_backward(dyp + b, yp + b, dxp + b, e - b));
  });
  return dx;
}

}  // namespace cnncore
