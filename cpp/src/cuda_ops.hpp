// The ops the CUDA backend implements, called from the CPU op entry points (the one dispatch
// hook each entry has: `if (cuda::any_cuda({...})) return cuda::<op>(...)`), so the Python
// autograd code is the same for both devices. Same arguments, same validation (the shared params
// functions), same result layout (contiguous NCHW) as the CPU entries.
#pragma once

#include <initializer_list>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "cnncore/ops.hpp"
#include "cnncore/tensor.hpp"

namespace cnncore::cuda {

inline bool any_cuda(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t && t->defined() && t->is_cuda()) return true;
  return false;
}
inline const Tensor* opt_ptr(const std::optional<Tensor>& t) { return t ? &*t : nullptr; }

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
                      const Conv2dOptions& opt);
Tensor conv2d_backward_input(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                             const Conv2dOptions& opt);
Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                              const Conv2dOptions& opt);
Tensor conv2d_backward_bias(const Tensor& dy);

Tensor linear_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b);
Tensor linear_backward_input(const Tensor& dy, const Tensor& w);
Tensor linear_backward_weight(const Tensor& dy, const Tensor& x);
Tensor linear_backward_bias(const Tensor& dy);

Tensor relu_forward(const Tensor& x);
Tensor relu_backward(const Tensor& dy, const Tensor& y);

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);

std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dOptions& opt);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dOptions& opt);
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);

Tensor log_softmax_forward(const Tensor& x, int64_t dim);
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);
// Class-index or probability targets (nll_loss: class indices, label_smoothing = 0).
std::pair<Tensor, Tensor> cross_entropy_logp_forward(const Tensor& logp, const Tensor& target,
                                                     const std::optional<Tensor>& weight,
                                                     Reduction reduction, int64_t ignore_index,
                                                     double label_smoothing);
Tensor cross_entropy_logp_backward(const Tensor& dloss, const Tensor& logp, const Tensor& target,
                                   const std::optional<Tensor>& weight, Reduction reduction,
                                   int64_t ignore_index, double label_smoothing,
                                   const Tensor& total_weight);

std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(
    const Tensor& x, const std::optional<Tensor>& running_mean,
    const std::optional<Tensor>& running_var, const std::optional<Tensor>& weight,
    const std::optional<Tensor>& bias, bool training, double momentum, double eps);
std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(
    const Tensor& dy, const Tensor& x, const std::optional<Tensor>& weight, const Tensor& save_mean,
    const Tensor& save_invstd, bool training);

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
              const SgdParams& p, bool first_step);
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
               const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, double step,
               const AdamParams& p);

// ---- cuda-b: reductions, scalar/unary ops, add_, cat, activations, losses, RMSprop ----
// Reductions take the CPU entry's validated arguments: `reduced` marks the dims to reduce (one
// entry per dim, at least one), `dim` is wrapped; results are contiguous.
Tensor reduce_sum(const Tensor& x, const std::vector<bool>& reduced, bool keepdim, bool mean,
                  const char* op);
// The shape a reduction over the `red` dims leaves (size-1 dims kept when keepdim): one rule
// for the CPU entry and the CUDA kernels.
inline Shape reduced_shape(const Shape& s, const std::vector<bool>& red, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < s.size(); ++d) {
    if (!red[d]) out.push_back(s[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}
std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t dim, bool keepdim);

Tensor binary_scalar(BinaryOp op, const Tensor& a, double scalar, bool scalar_first);
Tensor unary(UnaryOp op, const Tensor& a);
void add_(Tensor& a, const Tensor& b, double alpha);
// parts: the validated inputs (already contiguous), out_shape: the result's shape.
Tensor cat(const std::vector<Tensor>& parts, int64_t dim, const Shape& out_shape);

Tensor leaky_relu_forward(const Tensor& x, float negative_slope);
Tensor leaky_relu_backward(const Tensor& dy, const Tensor& x, float negative_slope);
Tensor hardtanh_forward(const Tensor& x, float min_val, float max_val);
Tensor hardtanh_backward(const Tensor& dy, const Tensor& x, float min_val, float max_val);
Tensor sigmoid_forward(const Tensor& x);
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y);
Tensor tanh_forward(const Tensor& x);
Tensor tanh_backward(const Tensor& dy, const Tensor& y);
Tensor softmax_forward(const Tensor& x, int64_t dim);
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim);

// The elementwise losses (shapes, reduction and beta validated by the CPU entry); weight and
// pos_weight have the input's shape when given. `wrt` picks the gradient: of the input, or of the
// target (binary_cross_entropy and its logits form only).
enum class PairLoss { Mse, L1, SmoothL1, BinaryCrossEntropy, BceWithLogits };
Tensor pair_loss_forward(PairLoss kind, const Tensor& x, const Tensor& t,
                         const std::optional<Tensor>& weight,
                         const std::optional<Tensor>& pos_weight, Reduction reduction,
                         double beta);
Tensor pair_loss_backward(PairLoss kind, bool wrt_target, const Tensor& dloss, const Tensor& x,
                          const Tensor& t, const std::optional<Tensor>& weight,
                          const std::optional<Tensor>& pos_weight, Reduction reduction,
                          double beta);
// Probability targets only.
Tensor cross_entropy_logp_backward_target(const Tensor& dloss, const Tensor& logp,
                                          const Tensor& target,
                                          const std::optional<Tensor>& weight,
                                          Reduction reduction, double label_smoothing,
                                          const Tensor& total_weight);

void rmsprop_step(const Tensor& param, const Tensor& grad, const Tensor& square_avg,
                  const Tensor& momentum_buffer, const Tensor& grad_avg, const RmspropParams& p);
// ---- end cuda-b ----
// ---- cuda-a: conv_transpose2d, interpolate, pad, local_response_norm, dropout,
// adaptive_max_pool2d ----
Tensor conv_transpose2d_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
                                const Conv2dOptions& opt, int64_t output_padding_h,
                                int64_t output_padding_w);
Tensor conv_transpose2d_backward_input(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                                       const Conv2dOptions& opt, int64_t output_padding_h,
                                       int64_t output_padding_w);
Tensor conv_transpose2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                                        const Conv2dOptions& opt, int64_t output_padding_h,
                                        int64_t output_padding_w);

Tensor interpolate_forward(const Tensor& x, int64_t out_h, int64_t out_w, InterpMode mode,
                           bool align_corners, double scale_h, double scale_w);
Tensor interpolate_backward(const Tensor& dy, const Shape& x_shape, InterpMode mode,
                            bool align_corners, double scale_h, double scale_w);
Tensor pad_forward(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, float value);
Tensor pad_backward(const Tensor& dy, const Shape& x_shape, const std::vector<int64_t>& pads,
                    PadMode mode);

Tensor local_response_norm_forward(const Tensor& x, int64_t size, double alpha, double beta,
                                   double k);
Tensor local_response_norm_backward(const Tensor& dy, const Tensor& x, int64_t size, double alpha,
                                    double beta, double k);
// The mask is drawn on the device from the global generator with the CPU's counter hash
// (rng_reserve + rng_uniform), so a seed gives the same mask on both devices.
std::pair<Tensor, Tensor> dropout_forward(const Tensor& x, double p, bool channel_wise);
Tensor dropout_backward(const Tensor& dy, const Tensor& mask);

std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor& x, int64_t out_h,
                                                      int64_t out_w);
Tensor adaptive_max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);
// ---- end cuda-a ----

}  // namespace cnncore::cuda
