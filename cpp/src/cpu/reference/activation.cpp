#include "cpu/reference/activation.hpp"

namespace cnncore::reference {

Tensor relu_forward(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) yp[i] = xp[i] > 0.0f ? xp[i] : 0.0f;
  return y;
}

Tensor relu_backward(const Tensor& dy_in, const Tensor& y_in) {
  Tensor dy = dy_in.contiguous(), y = y_in.contiguous();
  Tensor dx = Tensor::empty(y.shape());
  for (int64_t i = 0; i < y.numel(); ++i)
    dx.data<float>()[i] = y.data<float>()[i] > 0.0f ? dy.data<float>()[i] : 0.0f;
  return dx;
}

}  // namespace cnncore::reference
