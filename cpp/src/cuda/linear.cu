// linear (y = x W^T + b) and its backward on CUDA, through the tiled GEMM of gemm_tile.cuh.
// x (..., in), W (out, in), b (out); leading dimensions of x are rows, as on the CPU.
#include "cuda_ops.hpp"
#include "gemm_tile.cuh"

namespace cnncore::cuda {
namespace {
// The operands are KContig (element (i, k) = p[i ld + k]) and RowContig (p[k ld + i]) loaders of
// gemm_tile.cuh, i being m for A and n for B.
struct StoreRows {
  float* y;
  int64_t ld;
  const float* bias;
  __device__ void operator()(int, int64_t m, int64_t n, float v) const {
    y[m * ld + n] = v + (bias ? bias[n] : 0.0f);
  }
};

__global__ void column_sum_kernel(const float* g, float* out, int64_t rows, int64_t cols) {
  CNNCORE_CUDA_LOOP(c, cols) {
    float s = 0.0f;
    for (int64_t r = 0; r < rows; ++r) s += g[r * cols + c];
    out[c] = s;
  }
}

int64_t leading_rows(const Tensor& t) {  // the product of all but the last dimension
  int64_t r = 1;
  for (int64_t i = 0; i + 1 < t.dim(); ++i) r *= t.size(i);
  return r;
}

void check_rank(const Tensor& t, int64_t min_dim, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(t.dim() >= min_dim, op, ": ", arg, " must be at least ", min_dim,
                      "-D, but got shape ", shape_str(t.shape()));
}
}  // namespace

Tensor linear_forward(const Tensor& x_in, const Tensor& w_in, const std::optional<Tensor>& b) {
  const char* op = "linear";
  const int dev =
      check_cuda_inputs(op, {{"input", &x_in}, {"weight", &w_in}, {"bias", opt_ptr(b)}});
  check_rank(x_in, 1, op, "input");
  CNNCORE_CHECK_VALUE(w_in.dim() == 2 && w_in.size(1) == x_in.size(-1), op,
                      ": weight must have shape (out_features, ", x_in.size(-1),
                      "), but got ", shape_str(w_in.shape()));
  const int64_t out = w_in.size(0), in = w_in.size(1), rows = leading_rows(x_in);
  const bool has_bias = b && b->defined();
  if (has_bias)
    CNNCORE_CHECK_VALUE(b->dim() == 1 && b->size(0) == out, op, ": bias must have shape (", out,
                        ",), but got ", shape_str(b->shape()));
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous(), w = w_in.contiguous();
  Tensor bias = has_bias ? b->contiguous() : Tensor();
  Shape ys = x.shape();
  ys.back() = out;
  Tensor y = Tensor::empty(ys, DType::Float32, x.device());
  gemm_tiles(1, rows, out, in, KContig(x.device_data<float>(), in),
             KContig(w.device_data<float>(), in),  // B(k, n) = W[n, k]
             StoreRows{y.device_data<float>(), out, has_bias ? bias.device_data<float>() : nullptr},
             op, matmul_allow_tf32());
  return y;
}

Tensor linear_backward_input(const Tensor& dy_in, const Tensor& w_in) {
  const char* op = "linear_backward_input";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"weight", &w_in}});
  CNNCORE_CHECK_VALUE(w_in.dim() == 2 && dy_in.dim() >= 1 && dy_in.size(-1) == w_in.size(0), op,
                      ": grad_output shape ", shape_str(dy_in.shape()),
                      " must end in weight.shape[0] (weight shape ", shape_str(w_in.shape()), ")");
  const int64_t out = w_in.size(0), in = w_in.size(1), rows = leading_rows(dy_in);
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous(), w = w_in.contiguous();
  Shape xs = dy.shape();
  xs.back() = in;
  Tensor dx = Tensor::zeros(xs, DType::Float32, dy.device());
  gemm_tiles(1, rows, in, out, KContig(dy.device_data<float>(), out),
             RowContig(w.device_data<float>(), in),  // B(k, n) = W[k, n]
             StoreRows{dx.device_data<float>(), in, nullptr}, op, matmul_allow_tf32());
  return dx;
}

Tensor linear_backward_weight(const Tensor& dy_in, const Tensor& x_in) {
  const char* op = "linear_backward_weight";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"input", &x_in}});
  check_rank(dy_in, 1, op, "grad_output");
  check_rank(x_in, 1, op, "input");
  const int64_t out = dy_in.size(-1), in = x_in.size(-1);
  const int64_t rows = leading_rows(dy_in);
  CNNCORE_CHECK_VALUE(leading_rows(x_in) == rows, op, ": input shape ",
                      shape_str(x_in.shape()), " and grad_output shape ",
                      shape_str(dy_in.shape()), " have different numbers of rows");
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous(), x = x_in.contiguous();
  Tensor dw = Tensor::zeros({out, in}, DType::Float32, dy.device());
  gemm_tiles(1, out, in, rows, RowContig(dy.device_data<float>(), out),  // A(o, r) = dy[r, o]
             RowContig(x.device_data<float>(), in),                     // B(r, i) = x[r, i]
             StoreRows{dw.device_data<float>(), in, nullptr}, op, matmul_allow_tf32());
  return dw;
}

Tensor linear_backward_bias(const Tensor& dy_in) {
  const char* op = "linear_backward_bias";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  check_rank(dy_in, 1, op, "grad_output");
  const int64_t out = dy_in.size(-1), rows = leading_rows(dy_in);
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous();
  Tensor db = Tensor::zeros({out}, DType::Float32, dy.device());
  if (out == 0) return db;
  column_sum_kernel<<<grid_for(out), kThreads>>>(dy.device_data<float>(), db.device_data<float>(),
                                                 rows, out);
  check_launch(op);
  return db;
}

}  // namespace cnncore::cuda
