#include "cpu/reference/linalg.hpp"

#include <algorithm>

#include "cpu/linalg.hpp"  // shape checks only, so both reject the same inputs alike

namespace cnncore::reference {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      const double prior = beta == 0.0f ? 0.0 : double(beta) * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(double(alpha) * acc + prior);
    }
}

Tensor gemm(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b, float alpha,
            float beta, const std::optional<Tensor>& c_in) {
  Tensor a = linalg_input(a_in, "gemm", "a").contiguous();
  Tensor b = linalg_input(b_in, "gemm", "b").contiguous();
  std::optional<Tensor> c;
  if (c_in) c = linalg_input(*c_in, "gemm", "c");
  const GemmShape s = gemm_shape(a, b, trans_a, trans_b, c);
  Tensor y = c ? c->clone() : Tensor::empty({s.M, s.N});
  sgemm(trans_a, trans_b, s.M, s.N, s.K, alpha, a.data<float>(), a.size(1), b.data<float>(),
        b.size(1), c ? beta : 0.0f, y.data<float>(), s.N);
  return y;
}

Tensor linear_forward(const Tensor& x_in, const Tensor& w_in, const std::optional<Tensor>& b_in) {
  Tensor x = linalg_input(x_in, "linear", "input").contiguous();
  Tensor w = linalg_input(w_in, "linear", "weight").contiguous();
  std::optional<Tensor> b;
  if (b_in) b = linalg_input(*b_in, "linear", "bias").contiguous();
  const LinearShape s = linear_shape(x, w, b);
  Tensor y = Tensor::empty(s.y);
  const float *xp = x.data<float>(), *wp = w.data<float>();
  float* yp = y.data<float>();
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t o = 0; o < s.out; ++o) {
      double acc = b ? double(b->data<float>()[o]) : 0.0;
      for (int64_t i = 0; i < s.in; ++i) acc += double(xp[r * s.in + i]) * wp[o * s.in + i];
      yp[r * s.out + o] = static_cast<float>(acc);
    }
  return y;
}

Tensor linear_backward_input(const Tensor& dy_in, const Tensor& w_in) {
  Tensor dy = linalg_input(dy_in, "linear_backward_input", "grad_output").contiguous();
  Tensor w = linalg_input(w_in, "linear_backward_input", "weight").contiguous();
  CNNCORE_CHECK_VALUE(w.dim() == 2, "linear_backward_input: weight must be 2-D, but got shape ",
                      shape_str(w.shape()));
  CNNCORE_CHECK_VALUE(dy.dim() >= 1 && dy.size(-1) == w.size(0),
                      "linear_backward_input: grad_output shape ", shape_str(dy.shape()),
                      " must end in weight.shape[0] = ", w.size(0), " (weight shape ",
                      shape_str(w.shape()), ")");
  const int64_t out = w.size(0), in = w.size(1);
  Shape xs = dy.shape();
  xs.back() = in;
  Tensor dx = Tensor::empty(xs);
  const int64_t rows = shape_numel(Shape(xs.begin(), xs.end() - 1));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i) {
      double acc = 0.0;
      for (int64_t o = 0; o < out; ++o)
        acc += double(dy.data<float>()[r * out + o]) * w.data<float>()[o * in + i];
      dx.data<float>()[r * in + i] = static_cast<float>(acc);
    }
  return dx;
}

Tensor linear_backward_weight(const Tensor& dy_in, const Tensor& x_in) {
  Tensor dy = linalg_input(dy_in, "linear_backward_weight", "grad_output").contiguous();
  Tensor x = linalg_input(x_in, "linear_backward_weight", "input").contiguous();
  const int64_t rows = linear_grad_rows(dy, x, "linear_backward_weight", "input");
  const int64_t out = dy.size(-1), in = x.size(-1);
  Tensor dw = Tensor::empty({out, in});
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double acc = 0.0;
      for (int64_t r = 0; r < rows; ++r)
        acc += double(dy.data<float>()[r * out + o]) * x.data<float>()[r * in + i];
      dw.data<float>()[o * in + i] = static_cast<float>(acc);
    }
  return dw;
}

Tensor linear_backward_bias(const Tensor& dy_in) {
  Tensor dy = linalg_input(dy_in, "linear_backward_bias", "grad_output").contiguous();
  CNNCORE_CHECK_VALUE(dy.dim() >= 1, "linear_backward_bias: grad_output must be at least 1-D, ",
                      "but got a 0-D tensor");
  const int64_t out = dy.size(-1);
  const int64_t rows = shape_numel(Shape(dy.shape().begin(), dy.shape().end() - 1));
  Tensor db = Tensor::empty({out});
  for (int64_t o = 0; o < out; ++o) {
    double acc = 0.0;
    for (int64_t r = 0; r < rows; ++r) acc += dy.data<float>()[r * out + o];
    db.data<float>()[o] = static_cast<float>(acc);
  }
  return db;
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = linalg_input(a_in, "matmul", "input").contiguous();
  Tensor b = linalg_input(b_in, "matmul", "other").contiguous();
  const MatmulShape s = matmul_shape(a, b);
  Tensor y = Tensor::empty(s.out);
  const int64_t nb = static_cast<int64_t>(s.batch.size());
  const int64_t count = shape_numel(s.batch);
  const int64_t da = std::max<int64_t>(a.dim() - 2, 0), db = std::max<int64_t>(b.dim() - 2, 0);
  const float *ap = a.data<float>(), *bp = b.data<float>();
  float* yp = y.data<float>();
  for (int64_t bi = 0; bi < count; ++bi) {
    // Index of this batch in a and in b: broadcast dims (size 1) stay at 0.
    int64_t rem = bi, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int64_t d = nb - 1; d >= 0; --d) {
      const int64_t idx = rem % s.batch[d];
      rem /= s.batch[d];
      const int64_t dda = d - (nb - da), ddb = d - (nb - db);
      if (dda >= 0) {
        if (a.shape()[dda] != 1) ia += idx * sa;
        sa *= a.shape()[dda];
      }
      if (ddb >= 0) {
        if (b.shape()[ddb] != 1) ib += idx * sb;
        sb *= b.shape()[ddb];
      }
    }
    const float* am = ap + ia * s.M * s.K;
    const float* bm = bp + ib * s.K * s.N;
    float* ym = yp + bi * s.M * s.N;
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j) {
        double acc = 0.0;
        for (int64_t k = 0; k < s.K; ++k) acc += double(am[i * s.K + k]) * bm[k * s.N + j];
        ym[i * s.N + j] = static_cast<float>(acc);
      }
  }
  return y;
}

}  // namespace cnncore::reference
