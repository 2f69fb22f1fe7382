// Reference twins of cnncore/ops/norm.hpp: same signatures, plain loops in double, no SIMD, no
// threads. dropout_forward draws from the same generator in the same order (draw i -> mask
// element i), so for a given RNG state it must produce the same mask as the fast kernel.
#pragma once

#include <optional>
#include <tuple>
#include <utility>

#include "cnncore/tensor.hpp"

namespace cnncore::reference {
Tensor local_response_norm_forward(const Tensor& x, int64_t size, double alpha, double beta,
                                   double k);
Tensor local_response_norm_backward(const Tensor& dy, const Tensor& x, int64_t size, double alpha,
                                    double beta, double k);
std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(const Tensor& x,
                                                      const std::optional<Tensor>& running_mean,
                                                      const std::optional<Tensor>& running_var,
                                                      const std::optional<Tensor>& weight,
                                                      const std::optional<Tensor>& bias,
                                                      bool training, double momentum, double eps);
std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& dy, const Tensor& x,
                                                       const std::optional<Tensor>& weight,
                                                       const Tensor& save_mean,
                                                       const Tensor& save_invstd, bool training);
std::pair<Tensor, Tensor> dropout_forward(const Tensor& x, double p, bool channel_wise);
Tensor dropout_backward(const Tensor& dy, const Tensor& mask);
}  // namespace cnncore::reference
