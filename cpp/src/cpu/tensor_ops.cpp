#include "cnncore/ops/tensor_ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/tensor_ops_kernels.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per thread below which one thread is faster
constexpr int64_t kBuf = 256;        // floats gathered per block from a strided row

const char* const kBinaryNames[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                    "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
const char* const kUnaryNames[] = {"neg", "exp", "log", "sqrt", "abs", "square", "reciprocal",
                                   "sign"};

// A float32 strided view of t (blocked tensors converted once).
Tensor float_strided(const Tensor& t, const char* op, const char* arg) {
  check_dtype(t, DType::Float32, op, arg);
  return t.block() ? t.to_strided() : t;
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* op, const char* arg = "dim") {
  const int64_t n = std::max<int64_t>(ndim, 1);
  if (d < -n || d >= n)
    throw IndexError(detail::concat(op, ": ", arg, " must be in [", -n, ", ", n - 1,
                                    "], but got ", d));
  return d < 0 ? d + n : d;
}

// True when `from` broadcasts to exactly `to` (only size-1 or missing dims stretched).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[lead + i]) return false;
  return true;
}

// Strides of t seen through the broadcast shape `out` (0 on broadcast dims).
Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape st(out.size(), 0);
  const size_t lead = out.size() - t.shape().size();
  for (size_t i = lead; i < out.size(); ++i) {
    const int64_t s = t.shape()[i - lead];
    st[i] = (s == 1 && out[i] != 1) ? 0 : t.strides()[i - lead];
  }
  return st;
}

// A loop nest over `shape` with up to 3 operands' strides, with size-1 dims dropped and
// neighbouring dims merged wherever every operand steps through them as one, so a same-shape op
// becomes one flat loop and a channel broadcast becomes rows of a contiguous kernel.
struct Nest {
  Shape shape;
  std::vector<Shape> strides;  // per operand, aligned with shape
};

Nest coalesce(const Shape& shape, const std::vector<Shape>& strides) {
  Nest n;
  n.strides.resize(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !n.shape.empty();
    for (size_t k = 0; merge && k < strides.size(); ++k)
      merge = n.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      n.shape.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) n.strides[k].back() = strides[k][d];
    } else {
      n.shape.push_back(shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) n.strides[k].push_back(strides[k][d]);
    }
  }
  if (n.shape.empty()) {  // a single element
    n.shape.push_back(1);
    for (auto& s : n.strides) s.push_back(0);
  }
  return n;
}

// Offsets of operand k for row `row` of the nest's outer dims (all but the last).
inline void row_offsets(const Nest& n, int64_t row, int64_t* off, size_t nops) {
  for (size_t k = 0; k < nops; ++k) off[k] = 0;
  for (int64_t d = static_cast<int64_t>(n.shape.size()) - 2; d >= 0; --d) {
    const int64_t i = row % n.shape[d];
    row /= n.shape[d];
    for (size_t k = 0; k < nops; ++k) off[k] += i * n.strides[k][d];
  }
}

// Walks a set of dims (sizes, strides) in row-major order, keeping the running offset.
struct Odometer {
  const int64_t* size;
  const int64_t* stride;
  int n;
  std::vector<int64_t> idx;
  int64_t off = 0;
  Odometer(const Shape& sz, const Shape& st)
      : size(sz.data()), stride(st.data()), n(static_cast<int>(sz.size())), idx(sz.size(), 0) {}
  void seek(int64_t flat) {
    off = 0;
    for (int d = n - 1; d >= 0; --d) {
      idx[d] = flat % size[d];
      flat /= size[d];
      off += idx[d] * stride[d];
    }
  }
  void next() {
    for (int d = n - 1; d >= 0; --d) {
      off += stride[d];
      if (++idx[d] < size[d]) return;
      off -= stride[d] * size[d];
      idx[d] = 0;
    }
  }
};

double dispatch_sum_contig(const float* x, int64_t n) { CNNCORE_ISA_DISPATCH(sum_contig(x, n)); }

float scalar_apply(BinaryOp op, float a, float b) {
  float y;
  CNNCORE_ISA_CALL(binary_vv(op, &a, &b, &y, 1));
  return y;
}

std::vector<bool> reduced_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  const int64_t nd = x.dim();
  std::vector<bool> red(static_cast<size_t>(std::max<int64_t>(nd, 1)), dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, nd, op);
    CNNCORE_CHECK_VALUE(!red[w], op, ": dim ", w, " appears more than once in dims");
    red[w] = true;
  }
  return red;
}

// sum (scale = 1) or mean (scale = 1 / count) over the dims marked in red.
Tensor reduce_sum(const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim, bool mean,
                  const char* op) {
  Tensor xs = float_strided(x_in, op, "input");
  const std::vector<bool> red = reduced_mask(xs, dims, op);
  if (cuda::any_cuda({&xs})) return cuda::reduce_sum(xs, red, keepdim, mean, op);
  Tensor x = xs.contiguous();
  const Shape& s = x.shape();
  Tensor y = Tensor::empty(cuda::reduced_shape(s, red, keepdim));
  float* yp = y.data<float>();
  const int64_t n_out = y.numel();
  int64_t n_red = 1;
  for (size_t d = 0; d < s.size(); ++d)
    if (red[d]) n_red *= s[d];
  const double scale = mean ? (n_red ? 1.0 / static_cast<double>(n_red)
                                     : std::numeric_limits<double>::quiet_NaN())
                            : 1.0;
  if (n_out == 0) return y;
  const float* xp = x.data<float>();
  if (n_red == 0) {
    std::fill(yp, yp + n_out, static_cast<float>(mean ? scale : 0.0));
    return y;
  }
  // Groups of neighbouring dims of one kind (kept / reduced); x is contiguous, so each group is
  // one dim of stride = product of the sizes after it.
  Shape gsize, gstride;
  std::vector<bool> gred;
  {
    int64_t stride = 1;
    for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
      if (s[d] == 1) continue;
      if (!gsize.empty() && gred.back() == red[d]) {
        gsize.back() *= s[d];  // the group keeps its innermost dim's stride
      } else {
        gsize.push_back(s[d]);
        gstride.push_back(stride);
        gred.push_back(red[d]);
      }
      stride *= s[d];
    }
    std::reverse(gsize.begin(), gsize.end());
    std::reverse(gstride.begin(), gstride.end());
    std::reverse(gred.begin(), gred.end());
  }
  if (gsize.empty() || n_red == 1) {  // nothing to add up: a copy (times scale)
    for (int64_t i = 0; i < n_out; ++i) yp[i] = static_cast<float>(xp[i] * scale);
    return y;
  }
  const bool inner_reduced = gred.back();
  Shape ksz, kst, rsz, rst;  // kept groups, reduced groups (excluding the inner one)
  for (size_t g = 0; g + 1 < gsize.size(); ++g) {
    (gred[g] ? rsz : ksz).push_back(gsize[g]);
    (gred[g] ? rst : kst).push_back(gstride[g]);
  }
  // Few outputs and much to add (x.sum(), a per-channel sum of 3 channels, a column sum of a
  // tall matrix): each output's reduction is split into `pieces` fixed by the shape alone, whose
  // partial sums are added in order, so the result does not depend on the thread count.
  constexpr int64_t kFewOutputs = 8, kMaxPieces = 64;
  if (inner_reduced) {
    // Each output adds up contiguous runs of length L, one per outer reduced index.
    const int64_t L = gsize.back(), n_runs = n_red / L;
    int64_t pieces = 1, runs_per_piece = n_runs, len_per_piece = L;
    if (n_out <= kFewOutputs && n_red >= 2 * kGrain) {
      if (n_runs > 1) {
        pieces = std::min(kMaxPieces, (n_runs * L + kGrain - 1) / kGrain);
        pieces = std::min(pieces, n_runs);
        runs_per_piece = (n_runs + pieces - 1) / pieces;
        pieces = (n_runs + runs_per_piece - 1) / runs_per_piece;
      } else {
        pieces = std::min(kMaxPieces, (L + kGrain - 1) / kGrain);
        len_per_piece = (L + pieces - 1) / pieces;
        pieces = (L + len_per_piece - 1) / len_per_piece;
      }
    }
    std::vector<double> part(static_cast<size_t>(n_out * pieces), 0.0);
    const int64_t work = n_red / pieces;
    parallel_for(0, n_out * pieces, std::max<int64_t>(1, kGrain / std::max<int64_t>(work, 1)),
                 [&](int64_t b, int64_t e) {
                   Odometer ko(ksz, kst), ro(rsz, rst);
                   for (int64_t t = b; t < e; ++t) {
                     const int64_t o = t / pieces, pc = t % pieces;
                     ko.seek(o);
                     double acc = 0.0;
                     if (n_runs > 1 || pieces == 1) {
                       const int64_t r0 = pc * runs_per_piece;
                       const int64_t r1 = std::min(n_runs, r0 + runs_per_piece);
                       ro.seek(r0);
                       for (int64_t r = r0; r < r1; ++r, ro.next())
                         acc += dispatch_sum_contig(xp + ko.off + ro.off, L);
                     } else {
                       const int64_t lo = pc * len_per_piece;
                       const int64_t len = std::min(L, lo + len_per_piece) - lo;
                       acc = dispatch_sum_contig(xp + ko.off + lo, len);
                     }
                     part[t] = acc;
                   }
                 });
    for (int64_t o = 0; o < n_out; ++o) {
      double t = 0.0;
      for (int64_t pc = 0; pc < pieces; ++pc) t += part[o * pieces + pc];
      yp[o] = static_cast<float>(t * scale);
    }
    return y;
  }
  // Inner dim kept: rows of length I are added into double accumulators, column block by column
  // block, kRows rows at a time in float lanes.
  const int64_t I = gsize.back(), n_rows = n_out / I;
  constexpr int64_t kCols = 512, kRows = 32;
  const int64_t cblocks = (I + kCols - 1) / kCols;
  int64_t pieces = 1, rows_per_piece = n_red;
  if (n_rows * cblocks <= kFewOutputs && n_red * I >= 2 * kGrain && n_red >= 2 * kRows) {
    pieces = std::min(kMaxPieces, (n_red * I + kGrain - 1) / kGrain);
    pieces = std::min(pieces, n_red / kRows);
    rows_per_piece = (n_red + pieces - 1) / pieces;
    pieces = (n_red + rows_per_piece - 1) / rows_per_piece;
  }
  std::vector<double> part(pieces > 1 ? static_cast<size_t>(n_out * pieces) : 0, 0.0);
  const int64_t ntasks = n_rows * cblocks * pieces;
  parallel_for(0, ntasks, std::max<int64_t>(1, kGrain / (rows_per_piece * std::min(I, kCols))),
               [&](int64_t b, int64_t e) {
                 Odometer ko(ksz, kst), ro(rsz, rst);
                 double acc[kCols];
                 const float* rows[kRows];
                 for (int64_t t = b; t < e; ++t) {
                   const int64_t pc = t % pieces, blk = t / pieces;
                   const int64_t row = blk / cblocks, c0 = (blk % cblocks) * kCols;
                   const int64_t len = std::min(I, c0 + kCols) - c0;
                   const int64_t r0 = pc * rows_per_piece;
                   const int64_t r1 = std::min(n_red, r0 + rows_per_piece);
                   ko.seek(row);
                   std::fill(acc, acc + len, 0.0);
                   ro.seek(r0);
                   for (int64_t rb = r0; rb < r1; rb += kRows) {
                     const int64_t nr = std::min(kRows, r1 - rb);
                     for (int64_t r = 0; r < nr; ++r, ro.next())
                       rows[r] = xp + ko.off + ro.off + c0;
                     CNNCORE_ISA_CALL(accumulate_rows(rows, nr, acc, len));
                   }
                   if (pieces == 1) {
                     float* out = yp + row * I + c0;
                     for (int64_t j = 0; j < len; ++j)
                       out[j] = static_cast<float>(acc[j] * scale);
                   } else {
                     double* dst = part.data() + pc * n_out + row * I + c0;
                     std::copy(acc, acc + len, dst);
                   }
                 }
               });
  if (pieces > 1)
    for (int64_t j = 0; j < n_out; ++j) {
      double t = 0.0;
      for (int64_t pc = 0; pc < pieces; ++pc) t += part[pc * n_out + j];
      yp[j] = static_cast<float>(t * scale);
    }
  return y;
}

}  // namespace

const char* binary_op_name(BinaryOp op) { return kBinaryNames[static_cast<int>(op)]; }
BinaryOp binary_op_from_name(const std::string& name) {
  for (int i = 0; i < static_cast<int>(sizeof(kBinaryNames) / sizeof(*kBinaryNames)); ++i)
    if (name == kBinaryNames[i]) return static_cast<BinaryOp>(i);
  throw ValueError(detail::concat("binary: op must be one of add, sub, mul, div, pow, maximum, "
                                  "minimum, eq, ne, lt, le, gt, ge, but got '", name, "'"));
}
const char* unary_op_name(UnaryOp op) { return kUnaryNames[static_cast<int>(op)]; }
UnaryOp unary_op_from_name(const std::string& name) {
  for (int i = 0; i < static_cast<int>(sizeof(kUnaryNames) / sizeof(*kUnaryNames)); ++i)
    if (name == kUnaryNames[i]) return static_cast<UnaryOp>(i);
  throw ValueError(detail::concat("unary: op must be one of neg, exp, log, sqrt, abs, square, "
                                  "reciprocal, sign, but got '", name, "'"));
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    CNNCORE_CHECK_VALUE(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                        shape_str(b), " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  if (cuda::any_cuda({&a_in, &b_in})) return cuda::binary(op, a_in, b_in);
  const char* name = binary_op_name(op);
  Tensor a = float_strided(a_in, name, "input"), b = float_strided(b_in, name, "other");
  const Shape os = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = Tensor::empty(os);
  const int64_t n = y.numel();
  if (n == 0) return y;
  const Nest nest = coalesce(os, {contiguous_strides(os), broadcast_strides(a, os),
                                  broadcast_strides(b, os)});
  const int64_t inner = nest.shape.back(), rows = n / inner;
  const int64_t sa = nest.strides[1].back(), sb = nest.strides[2].back();
  const float *ap = a.data<float>(), *bp = b.data<float>();
  float* yp = y.data<float>();
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t lo, int64_t hi) {
    int64_t off[3];
    for (int64_t r = lo; r < hi; ++r) {
      row_offsets(nest, r, off, 3);
      const float *pa = ap + off[1], *pb = bp + off[2];
      float* py = yp + r * inner;
      if (sa == 1 && sb == 1) {
        CNNCORE_ISA_CALL(binary_vv(op, pa, pb, py, inner));
      } else if (sa == 1 && sb == 0) {
        CNNCORE_ISA_CALL(binary_vs(op, pa, *pb, py, inner));
      } else if (sa == 0 && sb == 1) {
        CNNCORE_ISA_CALL(binary_sv(op, *pa, pb, py, inner));
      } else {
        // Strided rows (transposed views): gather a block into a buffer, then the same vector
        // kernels as the contiguous case.
        float buf_a[kBuf], buf_b[kBuf];
        for (int64_t i0 = 0; i0 < inner; i0 += kBuf) {
          const int64_t len = std::min(kBuf, inner - i0);
          const float* qa = pa + i0 * sa;
          const float* qb = pb + i0 * sb;
          if (sa != 0 && sa != 1) {
            for (int64_t i = 0; i < len; ++i) buf_a[i] = qa[i * sa];
            qa = buf_a;
          }
          if (sb != 0 && sb != 1) {
            for (int64_t i = 0; i < len; ++i) buf_b[i] = qb[i * sb];
            qb = buf_b;
          }
          const bool va = qa == buf_a || sa == 1, vb = qb == buf_b || sb == 1;
          if (va && vb) {
            CNNCORE_ISA_CALL(binary_vv(op, qa, qb, py + i0, len));
          } else if (va) {
            CNNCORE_ISA_CALL(binary_vs(op, qa, *qb, py + i0, len));
          } else if (vb) {
            CNNCORE_ISA_CALL(binary_sv(op, *qa, qb, py + i0, len));
          } else {
            std::fill(py + i0, py + i0 + len, scalar_apply(op, *qa, *qb));
          }
        }
      }
    }
  });
  return y;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a_in, double scalar, bool scalar_first) {
  if (cuda::any_cuda({&a_in})) return cuda::binary_scalar(op, a_in, scalar, scalar_first);
  Tensor a = float_strided(a_in, binary_op_name(op), "input").contiguous();
  Tensor y = Tensor::empty(a.shape());
  const float s = static_cast<float>(scalar);
  const float* ap = a.data<float>();
  float* yp = y.data<float>();
  parallel_for(0, a.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (scalar_first) {
      CNNCORE_ISA_CALL(binary_sv(op, s, ap + b, yp + b, e - b));
    } else {
      CNNCORE_ISA_CALL(binary_vs(op, ap + b, s, yp + b, e - b));
    }
  });
  return y;
}

Tensor unary(UnaryOp op, const Tensor& a_in) {
  if (cuda::any_cuda({&a_in})) return cuda::unary(op, a_in);
  Tensor a = float_strided(a_in, unary_op_name(op), "input").contiguous();
  Tensor y = Tensor::empty(a.shape());
  const float* ap = a.data<float>();
  float* yp = y.data<float>();
  // exp/log cost ~10x an add: smaller chunks still pay for a thread.
  const int64_t grain = (op == UnaryOp::Exp || op == UnaryOp::Log) ? kGrain / 8 : kGrain;
  parallel_for(0, a.numel(), grain, [&](int64_t b, int64_t e) {
    CNNCORE_ISA_CALL(unary(op, ap + b, yp + b, e - b));
  });
  return y;
}

void add_(Tensor& a, const Tensor& b_in, double alpha) {
  check_dtype(a, DType::Float32, "add_", "self");
  CNNCORE_CHECK_VALUE(a.is_contiguous(), "add_: self must be contiguous, but got shape ",
                      shape_str(a.shape()), " with strides ", shape_str(a.strides()));
  Tensor b = float_strided(b_in, "add_", "other");
  CNNCORE_CHECK_VALUE(broadcasts_to(b.shape(), a.shape()), "add_: other shape ",
                      shape_str(b.shape()), " cannot be broadcast to self shape ",
                      shape_str(a.shape()));
  if (cuda::any_cuda({&a, &b})) return cuda::add_(a, b, alpha);
  const int64_t n = a.numel();
  if (n == 0) return;
  const float al = static_cast<float>(alpha);
  const Shape& os = a.shape();
  const Nest nest = coalesce(os, {contiguous_strides(os), broadcast_strides(b, os)});
  const int64_t inner = nest.shape.back(), rows = n / inner, sb = nest.strides[1].back();
  const float* bp = b.data<float>();
  float* ap = a.data<float>();
  if (rows == 1 && sb == 1) {  // the gradient-accumulation case: same shape, one flat loop
    parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
      CNNCORE_ISA_CALL(axpy(al, bp + lo, ap + lo, hi - lo));
    });
    return;
  }
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t lo, int64_t hi) {
    int64_t off[2];
    for (int64_t r = lo; r < hi; ++r) {
      row_offsets(nest, r, off, 2);
      const float* pb = bp + off[1];
      float* pa = ap + r * inner;
      if (sb == 1) {
        CNNCORE_ISA_CALL(axpy(al, pb, pa, inner));
      } else if (sb == 0) {
        CNNCORE_ISA_CALL(add_scalar_inplace(al * *pb, pa, inner));
      } else {
        for (int64_t i = 0; i < inner; ++i) pa[i] += al * pb[i * sb];
      }
    }
  });
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_sum(x, dims, keepdim, false, "sum");
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_sum(x, dims, keepdim, true, "mean");
}

Tensor sum_to_shape(const Tensor& g_in, const Shape& shape) {
  Tensor g = float_strided(g_in, "sum_to_shape", "grad");
  const Shape& gs = g.shape();
  CNNCORE_CHECK_VALUE(broadcasts_to(shape, gs), "sum_to_shape: gradient of shape ", shape_str(gs),
                      " cannot be summed to shape ", shape_str(shape));
  const size_t lead = gs.size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < gs.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) dims.push_back(static_cast<int64_t>(i));
  if (dims.empty()) return g.reshape(shape);
  return reduce_sum(g, dims, true, false, "sum_to_shape").view(shape);
}

std::pair<Tensor, Tensor> max_dim(const Tensor& x_in, int64_t dim, bool keepdim) {
  Tensor xs = float_strided(x_in, "max", "input");
  const int64_t d = wrap_dim(dim, xs.dim(), "max");
  CNNCORE_CHECK_VALUE(xs.dim() == 0 || xs.shape()[d] > 0, "max: cannot reduce over dim ", d,
                      " of size 0 (input shape ", shape_str(xs.shape()), ")");
  if (cuda::any_cuda({&xs})) return cuda::max_dim(xs, d, keepdim);
  Tensor x = xs.contiguous();
  const Shape& s = x.shape();
  const int64_t D = x.dim() ? s[d] : 1;
  std::vector<bool> red(static_cast<size_t>(std::max<int64_t>(x.dim(), 1)), false);
  red[d] = true;
  const Shape os = cuda::reduced_shape(s, red, keepdim);
  Tensor vals = Tensor::empty(os), idx = Tensor::empty(os, DType::Int64);
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k < d) outer *= s[k];
    if (k > d) inner *= s[k];
  }
  if (outer * inner == 0) return {vals, idx};
  const float* xp = x.data<float>();
  float* vp = vals.data<float>();
  int64_t* ip = idx.data<int64_t>();
  if (D >= (int64_t{1} << 31)) {  // beyond the kernels' int32 indices: a plain scan
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j) {
        const float* p = xp + o * D * inner + j;
        float best = p[0];
        int64_t bi = 0;
        for (int64_t k = 1; k < D; ++k) {
          const float v = p[k * inner];
          if (best == best && (v > best || v != v)) {
            best = v;
            bi = k;
          }
        }
        vp[o * inner + j] = best;
        ip[o * inner + j] = bi;
      }
    return {vals, idx};
  }
  if (inner == 1) {  // argmax over the last dim (classes): one contiguous row per output
    parallel_for(0, outer, std::max<int64_t>(1, kGrain / D), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) CNNCORE_ISA_CALL(max_row(xp + o * D, D, vp + o, ip + o));
    });
    return {vals, idx};
  }
  // Otherwise a running max down the rows of each column block (int32 indices vectorise).
  constexpr int64_t kCols = 256;
  const int64_t cblocks = (inner + kCols - 1) / kCols;
  parallel_for(0, outer * cblocks, std::max<int64_t>(1, kGrain / (D * std::min(inner, kCols))),
               [&](int64_t b, int64_t e) {
                 int32_t bk[kCols];
                 for (int64_t t = b; t < e; ++t) {
                   const int64_t o = t / cblocks, c0 = (t % cblocks) * kCols;
                   const int64_t len = std::min(inner, c0 + kCols) - c0;
                   const float* base = xp + o * D * inner + c0;
                   float* bv = vp + o * inner + c0;
                   std::copy(base, base + len, bv);
                   std::fill(bk, bk + len, 0);
                   for (int64_t k = 1; k < D; ++k)
                     CNNCORE_ISA_CALL(max_update(base + k * inner, static_cast<int32_t>(k), bv,
                                                 bk, len));
                   std::copy(bk, bk + len, ip + o * inner + c0);
                 }
               });
  return {vals, idx};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_dtype(x, DType::Float32, "argmax", "input");
  return cnncore::max_dim(x, dim, keepdim).second;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  CNNCORE_CHECK_VALUE(!tensors.empty(), "cat: expected a non-empty list of tensors");
  std::vector<Tensor> ts;
  const Tensor* first = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_defined(tensors[i], "cat", "tensors");
    CNNCORE_CHECK_VALUE(tensors[i].dim() > 0, "cat: zero-dimensional tensor (at position ", i,
                        ") cannot be concatenated");
    if (!first && !(tensors[i].dim() == 1 && tensors[i].numel() == 0)) first = &tensors[i];
  }
  if (!first) first = &tensors[0];
  const int64_t nd = first->dim();
  const int64_t d = wrap_dim(dim, nd, "cat");
  Shape out = first->shape();
  out[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.dim() == 1 && t.numel() == 0 && first != &t) continue;  // legacy empty, as in PyTorch
    CNNCORE_CHECK_TYPE(t.dtype() == first->dtype(), "cat: expected all tensors to be ",
                       dtype_name(first->dtype()), ", but tensor ", i, " is ",
                       dtype_name(t.dtype()));
    CNNCORE_CHECK_VALUE(t.dim() == nd, "cat: tensors must have the same number of dimensions: "
                        "got ", nd, " and ", t.dim(), " (tensor ", i, " has shape ",
                        shape_str(t.shape()), ")");
    for (int64_t k = 0; k < nd; ++k)
      CNNCORE_CHECK_VALUE(k == d || t.shape()[k] == first->shape()[k],
                          "cat: sizes of tensors must match except in dimension ", d,
                          ": expected size ", first->shape()[k], " but got size ", t.shape()[k],
                          " for tensor ", i, " in dimension ", k);
    out[d] += t.shape()[d];
    ts.push_back(t.contiguous());
  }
  for (const Tensor& t : tensors)
    if (cuda::any_cuda({&t})) return cuda::cat(ts, d, out);
  Tensor y = Tensor::empty(out, first->dtype());
  if (y.numel() == 0) return y;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < nd; ++k) {
    if (k < d) outer *= out[k];
    if (k > d) inner *= out[k];
  }
  const size_t es = dtype_size(y.dtype());
  char* yp = static_cast<char*>(y.raw_data());
  const int64_t out_row = out[d] * inner;
  std::vector<int64_t> col0(ts.size());
  for (size_t i = 0, c = 0; i < ts.size(); ++i) {
    col0[i] = static_cast<int64_t>(c);
    c += static_cast<size_t>(ts[i].shape()[d] * inner);
  }
  parallel_for(0, outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(out_row, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t o = b; o < e; ++o)
                   for (size_t i = 0; i < ts.size(); ++i) {
                     const int64_t row = ts[i].shape()[d] * inner;
                     if (row == 0) continue;
                     std::memcpy(yp + (o * out_row + col0[i]) * es,
                                 static_cast<const char*>(ts[i].raw_data()) + o * row * es,
                                 static_cast<size_t>(row) * es);
                   }
               });
  return y;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  CNNCORE_CHECK_VALUE(!tensors.empty(), "stack: expected a non-empty list of tensors");
  check_defined(tensors[0], "stack", "tensors");
  const Shape& s0 = tensors[0].shape();
  const int64_t nd = static_cast<int64_t>(s0.size()) + 1;
  const int64_t d = wrap_dim(dim, nd, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_defined(tensors[i], "stack", "tensors");
    CNNCORE_CHECK_VALUE(tensors[i].shape() == s0, "stack: expects each tensor to be equal size, "
                        "but got ", shape_str(s0), " at entry 0 and ",
                        shape_str(tensors[i].shape()), " at entry ", i);
    Shape u = s0;
    u.insert(u.begin() + d, 1);
    Tensor t = tensors[i].block() ? tensors[i].to_strided() : tensors[i];
    parts.push_back(t.reshape(u));
  }
  return cnncore::cat(parts, d);
}

Tensor contiguous(const Tensor& x) {
  check_defined(x, "contiguous", "input");
  return x.contiguous();
}

}  // namespace cnncore
