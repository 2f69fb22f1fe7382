// The CUDA backend in a build without it (-DCNNCORE_CUDA=OFF): nothing CUDA is compiled or
// linked; every entry says so, and device_count() is 0 as the Python API expects.
#if !defined(CNNCORE_WITH_CUDA)
#include <atomic>

#include "cuda_api.hpp"

namespace cnncore::cuda {
namespace {
[[noreturn]] void not_compiled(const char* op) {
  throw Error(detail::concat(op, ": ", unavailable_reason()));
}
}  // namespace
[[noreturn]] void not_compiled_op(const char* op) { not_compiled(op); }

bool compiled() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() {
  return "cnncore was built without CUDA (rebuild with -DCNNCORE_CUDA=ON, e.g. "
         "CMAKE_ARGS=-DCNNCORE_CUDA=ON pip install .)";
}
void require_device(const Device&, const char* op) { not_compiled(op); }
void* allocate(size_t, int, const char* op) { not_compiled(op); }
void release(void*, int) {}
void empty_cache() {}
int64_t memory_allocated(int) { return 0; }
int64_t max_memory_allocated(int) { return 0; }
int64_t memory_reserved(int) { return 0; }
void reset_peak_memory_stats(int) {}
void synchronize(int) { not_compiled("synchronize"); }
int current_device() { not_compiled("current_device"); }
void copy_host_to_device(void*, const void*, size_t, int) { not_compiled("to"); }
void copy_device_to_host(void*, const void*, size_t, int) { not_compiled("to"); }
void copy_device_to_device(void*, const void*, size_t, int) { not_compiled("to"); }
void gather_strided(const Tensor&, Tensor&) { not_compiled("contiguous"); }
void scatter_strided(const Tensor&, Tensor&) { not_compiled("copy_"); }
void fill(Tensor&, float) { not_compiled("fill_"); }
void zero_bytes(void*, size_t, int) { not_compiled("zero_"); }

// ---- cuda-c: TF32 switches (stored so the Python flags round-trip; no kernel reads them) ----
namespace {
std::atomic<int> g_matmul_precision{0};
std::atomic<bool> g_conv_allow_tf32{false};
}  // namespace
void set_matmul_precision(int precision) { g_matmul_precision = precision; }
int matmul_precision() { return g_matmul_precision; }
void set_conv_allow_tf32(bool allow) { g_conv_allow_tf32 = allow; }
bool conv_allow_tf32() { return g_conv_allow_tf32; }
bool tf32_supported(int) { return false; }
// ---- end cuda-c ----

}  // namespace cnncore::cuda
#endif

#if !defined(CNNCORE_WITH_CUDA)
#include "cuda_ops.hpp"

// Unreachable in practice (no tensor can be on a GPU in this build), but defined so the dispatch
// hooks link.
namespace cnncore::cuda {
[[noreturn]] void not_compiled_op(const char* op);
namespace {
[[noreturn]] void no_backend(const char* op) { not_compiled_op(op); }
}  // namespace
Tensor conv2d_forward(const Tensor&, const Tensor&, const std::optional<Tensor>&,
                      const Conv2dOptions&) { no_backend("conv2d"); }
Tensor conv2d_backward_input(const Tensor&, const Tensor&, const Shape&, const Conv2dOptions&) {
  no_backend("conv2d_backward_input");
}
Tensor conv2d_backward_weight(const Tensor&, const Tensor&, const Shape&, const Conv2dOptions&) {
  no_backend("conv2d_backward_weight");
}
Tensor conv2d_backward_bias(const Tensor&) { no_backend("conv2d_backward_bias"); }
Tensor linear_forward(const Tensor&, const Tensor&, const std::optional<Tensor>&) {
  no_backend("linear");
}
Tensor linear_backward_input(const Tensor&, const Tensor&) { no_backend("linear_backward_input"); }
Tensor linear_backward_weight(const Tensor&, const Tensor&) {
  no_backend("linear_backward_weight");
}
Tensor linear_backward_bias(const Tensor&) { no_backend("linear_backward_bias"); }
Tensor relu_forward(const Tensor&) { no_backend("relu"); }
Tensor relu_backward(const Tensor&, const Tensor&) { no_backend("relu_backward"); }
Tensor binary(BinaryOp op, const Tensor&, const Tensor&) { no_backend(binary_op_name(op)); }
std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor&, const Pool2dOptions&) {
  no_backend("max_pool2d");
}
Tensor max_pool2d_backward(const Tensor&, const Tensor&, const Shape&) {
  no_backend("max_pool2d_backward");
}
Tensor avg_pool2d_forward(const Tensor&, const Pool2dOptions&) { no_backend("avg_pool2d"); }
Tensor avg_pool2d_backward(const Tensor&, const Shape&, const Pool2dOptions&) {
  no_backend("avg_pool2d_backward");
}
Tensor adaptive_avg_pool2d_forward(const Tensor&, int64_t, int64_t) {
  no_backend("adaptive_avg_pool2d");
}
Tensor adaptive_avg_pool2d_backward(const Tensor&, const Shape&) {
  no_backend("adaptive_avg_pool2d_backward");
}
Tensor log_softmax_forward(const Tensor&, int64_t) { no_backend("log_softmax"); }
Tensor log_softmax_backward(const Tensor&, const Tensor&, int64_t) {
  no_backend("log_softmax_backward");
}
std::pair<Tensor, Tensor> cross_entropy_logp_forward(const Tensor&, const Tensor&,
                                                     const std::optional<Tensor>&, Reduction,
                                                     int64_t, double) {
  no_backend("cross_entropy");
}
Tensor cross_entropy_logp_backward(const Tensor&, const Tensor&, const Tensor&,
                                   const std::optional<Tensor>&, Reduction, int64_t, double,
                                   const Tensor&) {
  no_backend("cross_entropy_backward");
}
std::tuple<Tensor, Tensor, Tensor> batch_norm_forward(
    const Tensor&, const std::optional<Tensor>&, const std::optional<Tensor>&,
    const std::optional<Tensor>&, const std::optional<Tensor>&, bool, double, double) {
  no_backend("batch_norm");
}
std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor&, const Tensor&,
                                                       const std::optional<Tensor>&,
                                                       const Tensor&, const Tensor&, bool) {
  no_backend("batch_norm_backward");
}
void sgd_step(const Tensor&, const Tensor&, const Tensor&, const SgdParams&, bool) {
  no_backend("sgd_step");
}
void adam_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double,
               const AdamParams&) {
  no_backend("adam_step");
}
// ---- cuda-b: reductions, scalar/unary ops, add_, cat, activations, losses, RMSprop ----
Tensor reduce_sum(const Tensor&, const std::vector<bool>&, bool, bool, const char* op) {
  no_backend(op);
}
std::pair<Tensor, Tensor> max_dim(const Tensor&, int64_t, bool) { no_backend("max"); }
Tensor binary_scalar(BinaryOp op, const Tensor&, double, bool) { no_backend(binary_op_name(op)); }
Tensor unary(UnaryOp op, const Tensor&) { no_backend(unary_op_name(op)); }
void add_(Tensor&, const Tensor&, double) { no_backend("add_"); }
Tensor cat(const std::vector<Tensor>&, int64_t, const Shape&) { no_backend("cat"); }
Tensor leaky_relu_forward(const Tensor&, float) { no_backend("leaky_relu"); }
Tensor leaky_relu_backward(const Tensor&, const Tensor&, float) {
  no_backend("leaky_relu_backward");
}
Tensor hardtanh_forward(const Tensor&, float, float) { no_backend("hardtanh"); }
Tensor hardtanh_backward(const Tensor&, const Tensor&, float, float) {
  no_backend("hardtanh_backward");
}
Tensor sigmoid_forward(const Tensor&) { no_backend("sigmoid"); }
Tensor sigmoid_backward(const Tensor&, const Tensor&) { no_backend("sigmoid_backward"); }
Tensor tanh_forward(const Tensor&) { no_backend("tanh"); }
Tensor tanh_backward(const Tensor&, const Tensor&) { no_backend("tanh_backward"); }
Tensor softmax_forward(const Tensor&, int64_t) { no_backend("softmax"); }
Tensor softmax_backward(const Tensor&, const Tensor&, int64_t) { no_backend("softmax_backward"); }
Tensor pair_loss_forward(PairLoss, const Tensor&, const Tensor&, const std::optional<Tensor>&,
                         const std::optional<Tensor>&, Reduction, double) {
  no_backend("loss");
}
Tensor pair_loss_backward(PairLoss, bool, const Tensor&, const Tensor&, const Tensor&,
                          const std::optional<Tensor>&, const std::optional<Tensor>&, Reduction,
                          double) {
  no_backend("loss_backward");
}
Tensor cross_entropy_logp_backward_target(const Tensor&, const Tensor&, const Tensor&,
                                          const std::optional<Tensor>&, Reduction, double,
                                          const Tensor&) {
  no_backend("cross_entropy_backward_target");
}
void rmsprop_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                  const RmspropParams&) {
  no_backend("rmsprop_step");
}
// ---- end cuda-b ----
// ---- cuda-a: conv_transpose2d, interpolate, pad, local_response_norm, dropout,
// adaptive_max_pool2d ----
Tensor conv_transpose2d_forward(const Tensor&, const Tensor&, const std::optional<Tensor>&,
                                const Conv2dOptions&, int64_t, int64_t) {
  no_backend("conv_transpose2d");
}
Tensor conv_transpose2d_backward_input(const Tensor&, const Tensor&, const Shape&,
                                       const Conv2dOptions&, int64_t, int64_t) {
  no_backend("conv_transpose2d_backward_input");
}
Tensor conv_transpose2d_backward_weight(const Tensor&, const Tensor&, const Shape&,
                                        const Conv2dOptions&, int64_t, int64_t) {
  no_backend("conv_transpose2d_backward_weight");
}
Tensor interpolate_forward(const Tensor&, int64_t, int64_t, InterpMode, bool, double, double) {
  no_backend("interpolate");
}
Tensor interpolate_backward(const Tensor&, const Shape&, InterpMode, bool, double, double) {
  no_backend("interpolate_backward");
}
Tensor pad_forward(const Tensor&, const std::vector<int64_t>&, PadMode, float) {
  no_backend("pad");
}
Tensor pad_backward(const Tensor&, const Shape&, const std::vector<int64_t>&, PadMode) {
  no_backend("pad_backward");
}
Tensor local_response_norm_forward(const Tensor&, int64_t, double, double, double) {
  no_backend("local_response_norm");
}
Tensor local_response_norm_backward(const Tensor&, const Tensor&, int64_t, double, double,
                                    double) {
  no_backend("local_response_norm_backward");
}
std::pair<Tensor, Tensor> dropout_forward(const Tensor&, double, bool channel_wise) {
  no_backend(channel_wise ? "dropout2d" : "dropout");
}
Tensor dropout_backward(const Tensor&, const Tensor&) { no_backend("dropout_backward"); }
std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor&, int64_t, int64_t) {
  no_backend("adaptive_max_pool2d");
}
Tensor adaptive_max_pool2d_backward(const Tensor&, const Tensor&, const Shape&) {
  no_backend("adaptive_max_pool2d_backward");
}
// ---- end cuda-a ----
}  // namespace cnncore::cuda
#endif
