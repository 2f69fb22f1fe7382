// Reference twins of cnncore/ops/activation.hpp: same signatures, plain loops, no SIMD, no threads.
#pragma once

#include "cnncore/tensor.hpp"

namespace cnncore::reference {
Tensor relu_forward(const Tensor& x);
Tensor relu_backward(const Tensor& dy, const Tensor& y);
}  // namespace cnncore::reference
