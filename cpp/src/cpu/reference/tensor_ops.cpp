#include "cpu/reference/tensor_ops.hpp"

#include <cmath>
#include <limits>

namespace cnncore::reference {

namespace {

// Reads element `flat` (row-major over `shape`) of t, which may be any strided view.
float at(const Tensor& t, const Shape& shape, int64_t flat) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    off += (flat % shape[d]) * t.strides()[d];
    flat /= shape[d];
  }
  return t.data<float>()[off];
}

// Element of t (shape ts) at the multi-index of out element `flat`, numpy broadcasting.
float at_broadcast(const Tensor& t, const Shape& out, int64_t flat) {
  const Shape& ts = t.shape();
  const size_t lead = out.size() - ts.size();
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
    const int64_t i = flat % out[d];
    flat /= out[d];
    if (static_cast<size_t>(d) >= lead && ts[d - lead] != 1) off += i * t.strides()[d - lead];
  }
  return t.data<float>()[off];
}

// The op names, kept here too so the oracle links nothing from the fast kernels' file.
const char* name_of(BinaryOp op) {
  static const char* const names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                      "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
  return names[static_cast<int>(op)];
}
const char* name_of(UnaryOp op) {
  static const char* const names[] = {"neg", "exp", "log", "sqrt", "abs", "square", "reciprocal",
                                      "sign"};
  return names[static_cast<int>(op)];
}

Tensor strided(const Tensor& t, const char* op, const char* arg) {
  check_dtype(t, DType::Float32, op, arg);
  return t.block() ? t.to_strided() : t;
}

float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return std::pow(a, b);
    case BinaryOp::Maximum: return std::isnan(a) || std::isnan(b) ? (std::isnan(a) ? a : b)
                                                                  : (a > b ? a : b);
    case BinaryOp::Minimum: return std::isnan(a) || std::isnan(b) ? (std::isnan(a) ? a : b)
                                                                  : (a < b ? a : b);
    case BinaryOp::Eq: return a == b ? 1.0f : 0.0f;
    case BinaryOp::Ne: return a != b ? 1.0f : 0.0f;
    case BinaryOp::Lt: return a < b ? 1.0f : 0.0f;
    case BinaryOp::Le: return a <= b ? 1.0f : 0.0f;
    case BinaryOp::Gt: return a > b ? 1.0f : 0.0f;
    case BinaryOp::Ge: return a >= b ? 1.0f : 0.0f;
  }
  return 0.0f;
}

int64_t wrap(int64_t d, int64_t ndim, const char* op) {
  const int64_t n = ndim > 0 ? ndim : 1;
  if (d < -n || d >= n)
    throw IndexError(detail::concat(op, ": dim must be in [", -n, ", ", n - 1, "], but got ", d));
  return d < 0 ? d + n : d;
}

Tensor reduce(const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim, bool is_mean,
              const char* op) {
  Tensor x = strided(x_in, op, "input");
  const Shape& s = x.shape();
  const int64_t nd = x.dim();
  std::vector<bool> red(static_cast<size_t>(nd > 0 ? nd : 1), dims.empty());
  if (!dims.empty())
    for (int64_t d : dims) {
      const int64_t w = wrap(d, nd, op);
      CNNCORE_CHECK_VALUE(!red[w], op, ": dim ", w, " appears more than once in dims");
      red[w] = true;
    }
  Shape out, out_keep;
  int64_t count = 1;
  for (int64_t d = 0; d < nd; ++d) {
    if (red[d]) count *= s[d];
    out_keep.push_back(red[d] ? 1 : s[d]);
    if (!red[d] || keepdim) out.push_back(red[d] ? 1 : s[d]);
  }
  Tensor y = Tensor::empty(out);
  std::vector<double> acc(static_cast<size_t>(y.numel()), 0.0);
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, o = 0, mul = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      const int64_t k = rem % s[d];
      rem /= s[d];
      if (!red[d]) o += k * mul;
      mul *= out_keep[d];
    }
    acc[o] += at(x, s, i);
  }
  for (int64_t o = 0; o < y.numel(); ++o)
    y.data<float>()[o] = static_cast<float>(
        is_mean ? (count ? acc[o] / count : std::numeric_limits<double>::quiet_NaN()) : acc[o]);
  return y;
}

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i + a.size() < n ? 1 : a[i + a.size() - n];
    const int64_t db = i + b.size() < n ? 1 : b[i + b.size() - n];
    CNNCORE_CHECK_VALUE(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                        shape_str(b), " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = name_of(op);
  Tensor a = strided(a_in, name, "input"), b = strided(b_in, name, "other");
  const Shape out = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = Tensor::empty(out);
  for (int64_t i = 0; i < y.numel(); ++i)
    y.data<float>()[i] = apply(op, at_broadcast(a, out, i), at_broadcast(b, out, i));
  return y;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a_in, double scalar, bool scalar_first) {
  Tensor a = strided(a_in, name_of(op), "input");
  const float s = static_cast<float>(scalar);
  Tensor y = Tensor::empty(a.shape());
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float v = at(a, a.shape(), i);
    y.data<float>()[i] = scalar_first ? apply(op, s, v) : apply(op, v, s);
  }
  return y;
}

Tensor unary(UnaryOp op, const Tensor& a_in) {
  Tensor a = strided(a_in, name_of(op), "input");
  Tensor y = Tensor::empty(a.shape());
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float x = at(a, a.shape(), i);
    float r = 0.0f;
    switch (op) {
      case UnaryOp::Neg: r = -x; break;
      case UnaryOp::Exp: r = std::exp(x); break;
      case UnaryOp::Log: r = std::log(x); break;
      case UnaryOp::Sqrt: r = std::sqrt(x); break;
      case UnaryOp::Abs: r = std::fabs(x); break;
      case UnaryOp::Square: r = x * x; break;
      case UnaryOp::Reciprocal: r = 1.0f / x; break;
      case UnaryOp::Sign: r = std::isnan(x) ? x : (x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x)); break;
    }
    y.data<float>()[i] = r;
  }
  return y;
}

void add_(Tensor& a, const Tensor& b_in, double alpha) {
  check_dtype(a, DType::Float32, "add_", "self");
  CNNCORE_CHECK_VALUE(a.is_contiguous(), "add_: self must be contiguous, but got shape ",
                      shape_str(a.shape()), " with strides ", shape_str(a.strides()));
  Tensor b = strided(b_in, "add_", "other");
  bool ok = b.dim() <= a.dim();
  for (int64_t i = 0; ok && i < b.dim(); ++i) {
    const int64_t s = b.shape()[i];
    ok = s == 1 || s == a.shape()[a.dim() - b.dim() + i];
  }
  CNNCORE_CHECK_VALUE(ok,
                      "add_: other shape ", shape_str(b.shape()),
                      " cannot be broadcast to self shape ", shape_str(a.shape()));
  const float al = static_cast<float>(alpha);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float v = at_broadcast(b, a.shape(), i);
    a.data<float>()[i] += alpha == 1.0 ? v : al * v;
  }
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(x, dims, keepdim, false, "sum");
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(x, dims, keepdim, true, "mean");
}

Tensor sum_to_shape(const Tensor& g_in, const Shape& shape) {
  Tensor g = strided(g_in, "sum_to_shape", "grad");
  const Shape& gs = g.shape();
  bool ok = shape.size() <= gs.size();
  for (size_t i = 0; ok && i < shape.size(); ++i)
    ok = shape[i] == 1 || shape[i] == gs[gs.size() - shape.size() + i];
  CNNCORE_CHECK_VALUE(ok, "sum_to_shape: gradient of shape ", shape_str(gs),
                      " cannot be summed to shape ", shape_str(shape));
  Tensor y = Tensor::zeros(shape);
  std::vector<double> acc(static_cast<size_t>(y.numel()), 0.0);
  const size_t lead = gs.size() - shape.size();
  for (int64_t i = 0; i < g.numel(); ++i) {
    int64_t rem = i, o = 0, mul = 1;
    for (int64_t d = static_cast<int64_t>(gs.size()) - 1; d >= static_cast<int64_t>(lead); --d) {
      const int64_t k = rem % gs[d];
      rem /= gs[d];
      const int64_t sd = shape[d - lead];
      if (sd != 1) o += k * mul;
      mul *= sd;
    }
    acc[o] += at(g, gs, i);
  }
  for (int64_t o = 0; o < y.numel(); ++o) y.data<float>()[o] = static_cast<float>(acc[o]);
  return y;
}

std::pair<Tensor, Tensor> max_dim(const Tensor& x_in, int64_t dim, bool keepdim) {
  Tensor x = strided(x_in, "max", "input");
  const Shape& s = x.shape();
  const int64_t nd = x.dim(), d = wrap(dim, nd, "max");
  const int64_t D = nd ? s[d] : 1;
  CNNCORE_CHECK_VALUE(D > 0, "max: cannot reduce over dim ", d, " of size 0 (input shape ",
                      shape_str(s), ")");
  Shape out;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < nd; ++k) {
    if (k != d || keepdim) out.push_back(k == d ? 1 : s[k]);
    if (k < d) outer *= s[k];
    if (k > d) inner *= s[k];
  }
  Tensor v = Tensor::empty(out), ix = Tensor::empty(out, DType::Int64);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      float best = at(x, s, o * D * inner + j);
      int64_t bi = 0;
      for (int64_t k = 1; k < D && !std::isnan(best); ++k) {
        const float c = at(x, s, (o * D + k) * inner + j);
        if (std::isnan(c) || c > best) {
          best = c;
          bi = k;
        }
      }
      v.data<float>()[o * inner + j] = best;
      ix.data<int64_t>()[o * inner + j] = bi;
    }
  return {v, ix};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_dtype(x, DType::Float32, "argmax", "input");
  return reference::max_dim(x, dim, keepdim).second;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  CNNCORE_CHECK_VALUE(!tensors.empty(), "cat: expected a non-empty list of tensors");
  std::vector<Tensor> ts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_defined(tensors[i], "cat", "tensors");
    CNNCORE_CHECK_VALUE(tensors[i].dim() > 0, "cat: zero-dimensional tensor (at position ", i,
                        ") cannot be concatenated");
    if (!(tensors[i].dim() == 1 && tensors[i].numel() == 0)) ts.push_back(tensors[i]);
  }
  if (ts.empty()) ts.push_back(tensors[0]);
  const int64_t nd = ts[0].dim(), d = wrap(dim, nd, "cat");
  Shape out = ts[0].shape();
  out[d] = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    CNNCORE_CHECK_TYPE(ts[i].dtype() == ts[0].dtype(), "cat: expected all tensors to be ",
                       dtype_name(ts[0].dtype()), ", but tensor ", i, " is ",
                       dtype_name(ts[i].dtype()));
    CNNCORE_CHECK_VALUE(ts[i].dim() == nd, "cat: tensors must have the same number of "
                        "dimensions: got ", nd, " and ", ts[i].dim());
    for (int64_t k = 0; k < nd; ++k)
      CNNCORE_CHECK_VALUE(k == d || ts[i].shape()[k] == ts[0].shape()[k],
                          "cat: sizes of tensors must match except in dimension ", d,
                          ": expected size ", ts[0].shape()[k], " but got size ",
                          ts[i].shape()[k], " for tensor ", i, " in dimension ", k);
    out[d] += ts[i].shape()[d];
  }
  Tensor y = Tensor::empty(out, ts[0].dtype());
  const size_t es = dtype_size(y.dtype());
  int64_t start = 0;
  for (const Tensor& t0 : ts) {
    Tensor t = t0.block() ? t0.to_strided() : t0;
    const Shape& s = t.shape();
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t rem = i, src = 0, dst = 0, mul = 1;
      for (int64_t k = nd - 1; k >= 0; --k) {
        const int64_t idx = rem % s[k];
        rem /= s[k];
        src += idx * t.strides()[k];
        dst += (k == d ? idx + start : idx) * mul;
        mul *= out[k];
      }
      const char* from = static_cast<const char*>(t.raw_data()) + src * static_cast<int64_t>(es);
      char* to = static_cast<char*>(y.raw_data()) + dst * static_cast<int64_t>(es);
      for (size_t b = 0; b < es; ++b) to[b] = from[b];
    }
    start += s[d];
  }
  return y;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  CNNCORE_CHECK_VALUE(!tensors.empty(), "stack: expected a non-empty list of tensors");
  check_defined(tensors[0], "stack", "tensors");
  const Shape s0 = tensors[0].shape();
  const int64_t d = wrap(dim, static_cast<int64_t>(s0.size()) + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_defined(tensors[i], "stack", "tensors");
    CNNCORE_CHECK_VALUE(tensors[i].shape() == s0, "stack: expects each tensor to be equal size, "
                        "but got ", shape_str(s0), " at entry 0 and ",
                        shape_str(tensors[i].shape()), " at entry ", i);
    Shape u = s0;
    u.insert(u.begin() + d, 1);
    Tensor t = tensors[i].block() ? tensors[i].to_strided() : tensors[i];
    Shape st = t.strides();
    st.insert(st.begin() + d, 1);  // any stride works for a size-1 dim
    parts.push_back(Tensor::from_blob(t.raw_data(), u, st, t.dtype(),
                                      [keep = t.storage()](void*) {}));
  }
  return reference::cat(parts, d);
}

Tensor contiguous(const Tensor& x_in) {
  check_defined(x_in, "contiguous", "input");
  Tensor x = x_in.block() ? x_in.to_strided() : x_in;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const size_t es = dtype_size(x.dtype());
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (int64_t d = x.dim() - 1; d >= 0; --d) {
      off += (rem % x.shape()[d]) * x.strides()[d];
      rem /= x.shape()[d];
    }
    const char* from = static_cast<const char*>(x.raw_data()) + off * static_cast<int64_t>(es);
    char* to = static_cast<char*>(y.raw_data()) + i * static_cast<int64_t>(es);
    for (size_t b = 0; b < es; ++b) to[b] = from[b];
  }
  return y;
}

}  // namespace cnncore::reference
