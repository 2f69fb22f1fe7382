// Shape checks of the linalg family, shared by the fast ops (linalg.cpp) and their reference twins
// so both reject the same inputs with the same messages. Validation only, no math.
#pragma once

#include <optional>

#include "cnncore/tensor.hpp"

namespace cnncore {

// A float32 operand in strided layout (blocked tensors converted); TypeError for int64.
Tensor linalg_input(const Tensor& t, const char* op, const char* arg);

// matmul(a, b) with torch.matmul's rules: a 1-D a is (1, K) and loses M in the output, a 1-D b is
// (K, 1) and loses N; batch dims broadcast.
struct MatmulShape {
  int64_t M = 0, N = 0, K = 0;
  Shape batch;  // broadcast batch shape
  Shape out;    // batch + (M if a.dim() > 1) + (N if b.dim() > 1)
};
MatmulShape matmul_shape(const Tensor& a, const Tensor& b);

// linear: x (*, in), w (out, in), b (out) -> rows = prod(*), y = (*, out).
struct LinearShape {
  int64_t rows = 0, in = 0, out = 0;
  Shape y;
};
LinearShape linear_shape(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b);
// dy (*, out) must match a partner (*, features) in its leading dims; returns rows = prod(*).
int64_t linear_grad_rows(const Tensor& dy, const Tensor& partner, const char* op,
                         const char* partner_name);

// gemm(a, b, ...): (M, N, K) of op(a) @ op(b); c, when given, must be (M, N).
struct GemmShape {
  int64_t M = 0, N = 0, K = 0;
};
GemmShape gemm_shape(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                     const std::optional<Tensor>& c);

}  // namespace cnncore
