// Tensor-level matrix products (gemm, linear, matmul) over cnncore::sgemm.
#include "cpu/linalg.hpp"

#include <algorithm>
#include <vector>

#include "cnncore/ops/linalg.hpp"
#include "cpu/gemm.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

// ---- shape checks (shared with the reference twins) -------------------------------------------
Tensor linalg_input(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  check_dtype(t, DType::Float32, op, arg);
  return t.block() ? t.to_strided() : t;
}

MatmulShape matmul_shape(const Tensor& a, const Tensor& b) {
  CNNCORE_CHECK_VALUE(a.dim() >= 1, "matmul: input must be at least 1-D, but got a 0-D tensor");
  CNNCORE_CHECK_VALUE(b.dim() >= 1, "matmul: other must be at least 1-D, but got a 0-D tensor");
  MatmulShape s;
  const int64_t da = a.dim(), db = b.dim();
  s.M = da >= 2 ? a.size(-2) : 1;
  s.K = a.size(-1);
  const int64_t kb = db >= 2 ? b.size(-2) : b.size(0);
  s.N = db >= 2 ? b.size(-1) : 1;
  CNNCORE_CHECK_VALUE(s.K == kb, "matmul: input shape ", shape_str(a.shape()), " and other shape ",
                      shape_str(b.shape()), " cannot be multiplied (", s.K, " != ", kb, ")");
  const int64_t na = std::max<int64_t>(da - 2, 0), nb = std::max<int64_t>(db - 2, 0);
  const int64_t n = std::max(na, nb);
  s.batch.assign(n, 1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ia = i - (n - na), ib = i - (n - nb);
    const int64_t sa = ia >= 0 ? a.shape()[ia] : 1, sb = ib >= 0 ? b.shape()[ib] : 1;
    CNNCORE_CHECK_VALUE(sa == sb || sa == 1 || sb == 1,
                        "matmul: the batch dimensions of input shape ", shape_str(a.shape()), " and other shape ", shape_str(b.shape()),
                        " cannot be broadcast (", sa, " vs ", sb, ")");
    s.batch[i] = sa == 1 ? sb : sa;
  }
  s.out = s.batch;
  if (da >= 2) s.out.push_back(s.M);
  if (db >= 2) s.out.push_back(s.N);
  shape_numel(s.out, "matmul");
  return s;
}

LinearShape linear_shape(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
  CNNCORE_CHECK_VALUE(x.dim() >= 1, "linear: input must be at least 1-D, but got a 0-D tensor");
  CNNCORE_CHECK_VALUE(w.dim() == 2,
                      "linear: weight must be 2-D (out_features, in_features), but got shape ",
                      shape_str(w.shape()));
  LinearShape s;
  s.in = x.size(-1);
  s.out = w.size(0);
  CNNCORE_CHECK_VALUE(w.size(1) == s.in, "linear: input shape ", shape_str(x.shape()), " has ",
                      s.in, " features in its last dim but weight shape ", shape_str(w.shape()),
                      " expects ", w.size(1));
  if (b) {
    CNNCORE_CHECK_VALUE(b->dim() == 1 && b->size(0) == s.out, "linear: bias must have shape (",
                        s.out, ",) to match weight shape ", shape_str(w.shape()),
                        ", but got shape ", shape_str(b->shape()));
  }
  s.y = x.shape();
  s.y.back() = s.out;
  s.rows = s.in ? x.numel() / s.in : shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  return s;
}

int64_t linear_grad_rows(const Tensor& dy, const Tensor& partner, const char* op,
                         const char* partner_name) {
  CNNCORE_CHECK_VALUE(dy.dim() >= 1, op,
                      ": grad_output must be at least 1-D, but got a 0-D tensor");
  CNNCORE_CHECK_VALUE(partner.dim() >= 1, op, ": ", partner_name,
                      " must be at least 1-D, but got a 0-D tensor");
  const Shape lead_dy(dy.shape().begin(), dy.shape().end() - 1);
  const Shape lead_p(partner.shape().begin(), partner.shape().end() - 1);
  CNNCORE_CHECK_VALUE(lead_dy == lead_p, op, ": grad_output shape ", shape_str(dy.shape()), " and ",
                      partner_name, " shape ", shape_str(partner.shape()),
                      " must agree in all but the last dim");
  return shape_numel(lead_dy);
}

GemmShape gemm_shape(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                     const std::optional<Tensor>& c) {
  CNNCORE_CHECK_VALUE(a.dim() == 2, "gemm: a must be 2-D, but got shape ", shape_str(a.shape()));
  CNNCORE_CHECK_VALUE(b.dim() == 2, "gemm: b must be 2-D, but got shape ", shape_str(b.shape()));
  GemmShape s;
  s.M = a.size(trans_a ? 1 : 0);
  s.K = a.size(trans_a ? 0 : 1);
  const int64_t kb = b.size(trans_b ? 1 : 0);
  s.N = b.size(trans_b ? 0 : 1);
  CNNCORE_CHECK_VALUE(s.K == kb, "gemm: a shape ", shape_str(a.shape()), " (trans_a=",
                      trans_a ? "True" : "False", ") and b shape ", shape_str(b.shape()),
                      " (trans_b=", trans_b ? "True" : "False", ") disagree on K (", s.K, " != ",
                      kb, ")");
  if (c) {
    CNNCORE_CHECK_VALUE(c->shape() == Shape({s.M, s.N}), "gemm: c must have shape (", s.M, ", ",
                        s.N, "), but got shape ", shape_str(c->shape()));
  }
  return s;
}

namespace {

// How the GEMM reads one matrix operand in place: row-major with row stride ld, or transposed.
struct MatLayout {
  bool trans = false;
  int64_t ld = 1;
};

// rows x cols with element (i, j) at i*rs + j*cs. False when neither dim is unit-stride.
bool gemm_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, MatLayout* out) {
  const int64_t r1 = std::max<int64_t>(rows, 1), c1 = std::max<int64_t>(cols, 1);
  if ((cols == 1 || cs == 1) && (rows == 1 || rs >= c1)) {
    *out = {false, rows == 1 ? c1 : rs};
    return true;
  }
  if ((rows == 1 || rs == 1) && (cols == 1 || cs >= r1)) {
    *out = {true, cols == 1 ? r1 : cs};
    return true;
  }
  return false;
}

// The layout of matmul operand t (a: rows = M, cols = K; b: rows = K, cols = N), copying t once
// when its last two dims are neither row- nor column-major (for instance a stride-0 expand).
MatLayout matmul_operand(Tensor& t, bool is_a, int64_t rows, int64_t cols) {
  for (int attempt = 0;; ++attempt) {
    const int64_t d = t.dim();
    int64_t rs, cs;
    if (d >= 2) {
      rs = t.strides()[d - 2];
      cs = t.strides()[d - 1];
    } else if (is_a) {  // (K) as a row (1, K)
      rs = 0;
      cs = t.strides()[0];
    } else {  // (K) as a column (K, 1)
      rs = t.strides()[0];
      cs = 0;
    }
    MatLayout l;
    if (gemm_layout(rows, cols, rs, cs, &l)) return l;
    t = t.contiguous();  // contiguous always fits the first rule
    if (attempt) return {false, std::max<int64_t>(cols, 1)};
  }
}

// Element offsets of every batch matrix of t within the broadcast batch shape (0 along
// broadcast dims).
std::vector<int64_t> batch_offsets(const Tensor& t, const Shape& batch) {
  const int64_t n = static_cast<int64_t>(batch.size());
  const int64_t nt = std::max<int64_t>(t.dim() - 2, 0);
  Shape st(n, 0);
  for (int64_t i = 0; i < nt; ++i)
    if (t.shape()[i] != 1) st[n - nt + i] = t.strides()[i];
  const int64_t count = shape_numel(batch);
  std::vector<int64_t> off(count, 0);
  for (int64_t b = 0; b < count; ++b) {
    int64_t rem = b, o = 0;
    for (int64_t i = n - 1; i >= 0; --i) {
      o += (rem % batch[i]) * st[i];
      rem /= batch[i];
    }
    off[b] = o;
  }
  return off;
}

}  // namespace

// ---- ops --------------------------------------------------------------------------------------
Tensor gemm(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b, float alpha,
            float beta, const std::optional<Tensor>& c_in) {
  Tensor a = linalg_input(a_in, "gemm", "a").contiguous();
  Tensor b = linalg_input(b_in, "gemm", "b").contiguous();
  std::optional<Tensor> c;
  if (c_in) c = linalg_input(*c_in, "gemm", "c");
  const GemmShape s = gemm_shape(a, b, trans_a, trans_b, c);
  Tensor y = c ? c->clone() : Tensor::empty({s.M, s.N});
  sgemm(trans_a, trans_b, s.M, s.N, s.K, alpha, a.data<float>(), std::max<int64_t>(a.size(1), 1),
        b.data<float>(), std::max<int64_t>(b.size(1), 1), c ? beta : 0.0f, y.data<float>(),
        std::max<int64_t>(s.N, 1));
  return y;
}

Tensor linear_forward(const Tensor& x_in, const Tensor& w_in, const std::optional<Tensor>& b_in) {
  if (cuda::any_cuda({&x_in, &w_in, cuda::opt_ptr(b_in)}))
    return cuda::linear_forward(x_in, w_in, b_in);
  Tensor x = linalg_input(x_in, "linear", "input").contiguous();
  Tensor w = linalg_input(w_in, "linear", "weight").contiguous();
  std::optional<Tensor> b;
  if (b_in) b = linalg_input(*b_in, "linear", "bias").contiguous();
  const LinearShape s = linear_shape(x, w, b);
  Tensor y = Tensor::empty(s.y);
  if (s.rows == 0 || s.out == 0) return y;
  float* yp = y.data<float>();
  if (b) {
    // Start every row at the bias and let the GEMM accumulate (beta = 1): no second pass over y.
    const float* bp = b->data<float>();
    parallel_for(0, s.rows, std::max<int64_t>(1, (int64_t{1} << 15) / s.out),
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t r = r0; r < r1; ++r) std::copy(bp, bp + s.out, yp + r * s.out);
                 });
  }
  sgemm(false, true, s.rows, s.out, s.in, 1.0f, x.data<float>(), std::max<int64_t>(s.in, 1),
        w.data<float>(), std::max<int64_t>(s.in, 1), b ? 1.0f : 0.0f, yp, s.out);
  return y;
}

Tensor linear_backward_input(const Tensor& dy_in, const Tensor& w_in) {
  if (cuda::any_cuda({&dy_in, &w_in})) return cuda::linear_backward_input(dy_in, w_in);
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
  const int64_t rows = out ? dy.numel() / out : shape_numel(Shape(xs.begin(), xs.end() - 1));
  sgemm(false, false, rows, in, out, 1.0f, dy.data<float>(), std::max<int64_t>(out, 1),
        w.data<float>(), std::max<int64_t>(in, 1), 0.0f, dx.data<float>(),
        std::max<int64_t>(in, 1));
  return dx;
}

Tensor linear_backward_weight(const Tensor& dy_in, const Tensor& x_in) {
  if (cuda::any_cuda({&dy_in, &x_in})) return cuda::linear_backward_weight(dy_in, x_in);
  Tensor dy = linalg_input(dy_in, "linear_backward_weight", "grad_output").contiguous();
  Tensor x = linalg_input(x_in, "linear_backward_weight", "input").contiguous();
  const int64_t rows = linear_grad_rows(dy, x, "linear_backward_weight", "input");
  const int64_t out = dy.size(-1), in = x.size(-1);
  Tensor dw = Tensor::empty({out, in});
  sgemm(true, false, out, in, rows, 1.0f, dy.data<float>(), std::max<int64_t>(out, 1),
        x.data<float>(), std::max<int64_t>(in, 1), 0.0f, dw.data<float>(),
        std::max<int64_t>(in, 1));
  return dw;
}

Tensor linear_backward_bias(const Tensor& dy_in) {
  if (cuda::any_cuda({&dy_in})) return cuda::linear_backward_bias(dy_in);
  Tensor dy = linalg_input(dy_in, "linear_backward_bias", "grad_output").contiguous();
  CNNCORE_CHECK_VALUE(dy.dim() >= 1, "linear_backward_bias: grad_output must be at least 1-D, ",
                      "but got a 0-D tensor");
  const int64_t out = dy.size(-1);
  const int64_t rows = out ? dy.numel() / out : 0;
  Tensor db = Tensor::empty({out});
  const float* g = dy.data<float>();
  float* dbp = db.data<float>();
  // Threads own disjoint column ranges; rows are summed in double so long batches stay exact.
  parallel_for(0, out, std::max<int64_t>(16, (int64_t{1} << 15) / std::max<int64_t>(rows, 1)),
               [&](int64_t c0, int64_t c1) {
                 std::vector<double> acc(static_cast<size_t>(c1 - c0), 0.0);
                 for (int64_t r = 0; r < rows; ++r) {
                   const float* gr = g + r * out;
                   for (int64_t c = c0; c < c1; ++c) acc[c - c0] += gr[c];
                 }
                 for (int64_t c = c0; c < c1; ++c) dbp[c] = static_cast<float>(acc[c - c0]);
               });
  return db;
}

namespace {
// matmul on a CUDA device through its linear kernel (y = x @ w^T): each batch item's A (M, K)
// and B^T (N, K) made contiguous on the device, one linear call per item, copied into y.
Tensor matmul_through_linear(const Tensor& a, const Tensor& b, const MatmulShape& s) {
  CNNCORE_CHECK_VALUE(a.device() == b.device(), "matmul: expected all tensors on the same device, "
                      "but input is on ", a.device().str(), " and other is on ", b.device().str());
  Shape ab = s.batch, bb = s.batch;
  ab.push_back(s.M);
  ab.push_back(s.K);
  bb.push_back(s.K);
  bb.push_back(s.N);
  Tensor a2 = a.dim() >= 2 ? a : a.reshape({1, s.K});
  Tensor b2 = b.dim() >= 2 ? b : b.reshape({s.K, 1});
  int64_t items = 1;
  for (int64_t d : s.batch) items *= d;
  const Tensor a3 = a2.expand(ab).contiguous().reshape({items, s.M, s.K});
  std::vector<int64_t> swap(bb.size());
  for (size_t i = 0; i < swap.size(); ++i) swap[i] = static_cast<int64_t>(i);
  std::swap(swap[swap.size() - 1], swap[swap.size() - 2]);
  const Tensor bt3 = b2.expand(bb).permute(swap).contiguous().reshape({items, s.N, s.K});
  Tensor y = Tensor::empty({items, s.M, s.N}, DType::Float32, a.device());
  for (int64_t i = 0; i < items; ++i) {
    const Tensor yi = cuda::linear_forward(a3.narrow(0, i, 1).reshape({s.M, s.K}),
                                           bt3.narrow(0, i, 1).reshape({s.N, s.K}), std::nullopt);
    Tensor dst = y.narrow(0, i, 1).reshape({s.M, s.N});
    dst.copy_(yi);
  }
  return y.reshape(s.out);
}
}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = linalg_input(a_in, "matmul", "input");
  Tensor b = linalg_input(b_in, "matmul", "other");
  const MatmulShape s = matmul_shape(a, b);
  if (cuda::any_cuda({&a, &b})) {
    if (s.K == 0 || shape_numel(s.out, "matmul") == 0) {
      Tensor y = Tensor::zeros(s.out, DType::Float32, a.is_cuda() ? a.device() : b.device());
      return y;
    }
    return matmul_through_linear(a, b, s);
  }
  Tensor y = Tensor::empty(s.out);
  if (y.numel() == 0) return y;
  if (s.K == 0) {
    y.zero_();
    return y;
  }
  const MatLayout la = matmul_operand(a, true, s.M, s.K);
  const MatLayout lb = matmul_operand(b, false, s.K, s.N);
  const std::vector<int64_t> off_a = batch_offsets(a, s.batch), off_b = batch_offsets(b, s.batch);
  const int64_t nbatch = static_cast<int64_t>(off_a.size());
  const float *ap = a.data<float>(), *bp = b.data<float>();
  float* yp = y.data<float>();
  const int64_t mn = s.M * s.N;

  // One shared B and row-major A with batches stacked back to back: a single tall GEMM
  // ((batch*M, K) @ (K, N)), the shape of a linear layer over a sequence.
  bool b_shared = true, a_stacked = !la.trans && a.dim() >= 2;
  for (int64_t i = 0; i < nbatch; ++i) {
    b_shared = b_shared && off_b[i] == off_b[0];
    a_stacked = a_stacked && off_a[i] == off_a[0] + i * s.M * la.ld;
  }
  if (nbatch == 1 || (b_shared && a_stacked)) {
    sgemm(la.trans, lb.trans, nbatch * s.M, s.N, s.K, 1.0f, ap + off_a[0], la.ld, bp + off_b[0],
          lb.ld, 0.0f, yp, std::max<int64_t>(s.N, 1));
    return y;
  }
  auto one = [&](int64_t i) {
    sgemm(la.trans, lb.trans, s.M, s.N, s.K, 1.0f, ap + off_a[i], la.ld, bp + off_b[i], lb.ld, 0.0f,
          yp + i * mn, std::max<int64_t>(s.N, 1));
  };
  if (double(s.M) * double(s.N) * double(s.K) < double(kGemmBatchParallelFlops)) {
    // Small matrices: one thread per batch range (sgemm runs serially inside a parallel region).
    parallel_for(0, nbatch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < nbatch; ++i) one(i);
  }
  return y;
}

}  // namespace cnncore
