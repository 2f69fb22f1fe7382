// Pooling: parameter validation and output size (shared by every backend and by Python shape
// inference), then the threaded drivers over N*C planes that call the per-ISA plane kernels.
#include "cnncore/ops/pool.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "cpu/pool_kernels.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {
// Below this much work (window elements) a chunk of planes is not worth a thread.
constexpr int64_t kGrainWork = 1 << 15;

int64_t plane_grain(int64_t work_per_plane) {
  return std::max<int64_t>(1, kGrainWork / std::max<int64_t>(work_per_plane, 1));
}

void check_pool_input(const Tensor& x, const char* op, const char* arg) {
  check_defined(x, op, arg);
  check_dtype(x, DType::Float32, op, arg);
  CNNCORE_CHECK_VALUE(x.dim() == 3 || x.dim() == 4, op, ": ", arg,
                      " must be 3-D (C, H, W) or 4-D (N, C, H, W), but got ", x.dim(),
                      "-D with shape ", shape_str(x.shape()));
  check_nonempty(x, op, arg);
}

void check_x_shape(const Shape& s, const char* op) {
  CNNCORE_CHECK_VALUE(s.size() == 3 || s.size() == 4, op,
                      ": input_shape must be 3-D (C, H, W) or 4-D (N, C, H, W), but got ",
                      shape_str(s));
  for (int64_t d : s)
    CNNCORE_CHECK_VALUE(d > 0, op, ": input_shape must have positive sizes, but got ", shape_str(s));
}

// (N, C, H, W) of a 3-D or 4-D shape.
void nchw(const Shape& s, int64_t& N, int64_t& C, int64_t& H, int64_t& W) {
  const bool b = s.size() == 4;
  N = b ? s[0] : 1;
  C = s[b ? 1 : 0];
  H = s[b ? 2 : 1];
  W = s[b ? 3 : 2];
}

Shape with_spatial(const Shape& x_shape, int64_t oh, int64_t ow) {
  Shape s = x_shape;
  s[s.size() - 2] = oh;
  s[s.size() - 1] = ow;
  return s;
}

void check_grad_shape(const Tensor& dy, const Shape& expected, const char* op) {
  check_defined(dy, op, "grad_output");
  check_dtype(dy, DType::Float32, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy.shape() == expected, op, ": grad_output must have shape ",
                      shape_str(expected), ", but got ", shape_str(dy.shape()));
}

// dx[plane][idx] += dy[plane][o] for every output; indices outside the plane are an error
// (reported after the loop: parallel_for bodies must not throw); -1 marks an empty window.
Tensor scatter_indices(const Tensor& dy_in, const Tensor& idx_in, const Shape& x_shape,
                       const char* op) {
  check_defined(idx_in, op, "indices");
  check_dtype(idx_in, DType::Int64, op, "indices");
  CNNCORE_CHECK_VALUE(idx_in.shape() == dy_in.shape(), op, ": indices must have the shape of grad_output ",
                      shape_str(dy_in.shape()), ", but got ", shape_str(idx_in.shape()));
  int64_t N, C, H, W;
  nchw(x_shape, N, C, H, W);
  Tensor dy = dy_in.contiguous(), idx = idx_in.contiguous();
  const int64_t out_plane = dy.shape()[dy.dim() - 1] * dy.shape()[dy.dim() - 2];
  const int64_t in_plane = H * W;
  // Each plane is zeroed by the thread that scatters into it, while it is in cache.
  Tensor dx = Tensor::empty(x_shape);
  const float* g = dy.data<float>();
  const int64_t* ip = idx.data<int64_t>();
  float* d = dx.data<float>();
  std::atomic<bool> bad{false};
  parallel_for(0, N * C, plane_grain(out_plane), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const float* gp = g + pl * out_plane;
      const int64_t* ii = ip + pl * out_plane;
      float* dp = d + pl * in_plane;
      std::fill(dp, dp + in_plane, 0.0f);
      for (int64_t o = 0; o < out_plane; ++o) {
        const int64_t k = ii[o];
        if (k >= 0 && k < in_plane) {
          dp[k] += gp[o];
        } else if (k != -1) {
          bad.store(true, std::memory_order_relaxed);
        }
      }
    }
  });
  CNNCORE_CHECK_VALUE(!bad.load(), op, ": indices must lie in [0, ", in_plane,
                      ") (an index into an input plane of ", H, "x", W,
                      "), but some are outside");
  return dx;
}
}  // namespace

int64_t pool_output_size(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = n + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  // floor division (num may be negative)
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= n + p) --out;
  return out;
}

Pool2dParams pool2d_params(const Shape& input, const Pool2dOptions& opt, const char* op) {
  CNNCORE_CHECK_VALUE(input.size() == 3 || input.size() == 4, op,
                      ": input must be 3-D (C, H, W) or 4-D (N, C, H, W), but got ",
                      input.size(), "-D with shape ", shape_str(input));
  Pool2dParams p;
  p.batched = input.size() == 4;
  nchw(input, p.N, p.C, p.H, p.W);
  CNNCORE_CHECK_VALUE(p.N > 0 && p.C > 0 && p.H > 0 && p.W > 0, op,
                      ": input must not be empty, but got shape ", shape_str(input));
  CNNCORE_CHECK_VALUE(opt.kernel_h > 0 && opt.kernel_w > 0, op,
                      ": kernel_size must be greater than zero, but got (", opt.kernel_h, ", ",
                      opt.kernel_w, ")");
  p.KH = opt.kernel_h;
  p.KW = opt.kernel_w;
  p.SH = opt.stride_h == 0 ? p.KH : opt.stride_h;
  p.SW = opt.stride_w == 0 ? p.KW : opt.stride_w;
  CNNCORE_CHECK_VALUE(p.SH > 0 && p.SW > 0, op, ": stride must be greater than zero, but got (",
                      opt.stride_h, ", ", opt.stride_w, ")");
  CNNCORE_CHECK_VALUE(opt.dilation_h > 0 && opt.dilation_w > 0, op,
                      ": dilation must be greater than zero, but got (", opt.dilation_h, ", ",
                      opt.dilation_w, ")");
  CNNCORE_CHECK_VALUE(opt.pad_h >= 0 && opt.pad_w >= 0, op,
                      ": padding must be non-negative, but got (", opt.pad_h, ", ", opt.pad_w, ")");
  CNNCORE_CHECK_VALUE(opt.pad_h <= p.KH / 2 && opt.pad_w <= p.KW / 2, op,
                      ": pad should be at most half of effective kernel size, but got padding (",
                      opt.pad_h, ", ", opt.pad_w, ") for kernel_size (", p.KH, ", ", p.KW, ")");
  // Keeps every index product below int64 overflow; no real image comes near it.
  constexpr int64_t kMax = int64_t{1} << 30;
  CNNCORE_CHECK_VALUE(p.KH < kMax && p.KW < kMax && p.SH < kMax && p.SW < kMax &&
                          opt.dilation_h < kMax && opt.dilation_w < kMax,
                      op, ": kernel_size, stride and dilation must be below 2^30, but got kernel (",
                      p.KH, ", ", p.KW, "), stride (", p.SH, ", ", p.SW, "), dilation (",
                      opt.dilation_h, ", ", opt.dilation_w, ")");
  p.PH = opt.pad_h;
  p.PW = opt.pad_w;
  p.DH = opt.dilation_h;
  p.DW = opt.dilation_w;
  p.ceil_mode = opt.ceil_mode;
  p.count_include_pad = opt.count_include_pad;
  p.divisor_override = opt.divisor_override;
  p.OH = pool_output_size(p.H, p.KH, p.SH, p.PH, p.DH, p.ceil_mode);
  p.OW = pool_output_size(p.W, p.KW, p.SW, p.PW, p.DW, p.ceil_mode);
  CNNCORE_CHECK_VALUE(p.OH >= 1 && p.OW >= 1, op, ": output size is too small: input ",
                      shape_str(input), " with kernel_size (", p.KH, ", ", p.KW, "), stride (",
                      p.SH, ", ", p.SW, "), padding (", p.PH, ", ", p.PW, "), dilation (", p.DH,
                      ", ", p.DW, ") gives (", p.OH, ", ", p.OW, "); expected at least (1, 1)");
  return p;
}

// ---- max ---------------------------------------------------------------------------------------
std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor& x_in, const Pool2dOptions& opt) {
  if (cuda::any_cuda({&x_in}))
    return cuda::max_pool2d_forward(x_in, opt);
  check_pool_input(x_in, "max_pool2d", "input");
  const Pool2dParams p = pool2d_params(x_in.shape(), opt, "max_pool2d");
  Tensor x = as_nchw(x_in);
  Tensor y = Tensor::empty(p.output_shape());
  Tensor idx = Tensor::empty(p.output_shape(), DType::Int64);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  int64_t* ip = idx.data<int64_t>();
  const int64_t ip_plane = p.H * p.W, op_plane = p.OH * p.OW;
  parallel_for(0, p.planes(), plane_grain(op_plane * p.KH * p.KW), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl)
      CNNCORE_ISA_CALL(max_pool2d_plane(xp + pl * ip_plane, yp + pl * op_plane, ip + pl * op_plane, p));
  });
  return {y, idx};
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape) {
  if (cuda::any_cuda({&dy, &indices}))
    return cuda::max_pool2d_backward(dy, indices, x_shape);
  const char* op = "max_pool2d_backward";
  check_x_shape(x_shape, op);
  check_defined(dy, op, "grad_output");
  check_dtype(dy, DType::Float32, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy.dim() == static_cast<int64_t>(x_shape.size()) &&
                          std::equal(x_shape.begin(), x_shape.end() - 2, dy.shape().begin()),
                      op, ": grad_output must have the leading dims of input_shape ",
                      shape_str(x_shape), ", but got ", shape_str(dy.shape()));
  return scatter_indices(dy, indices, x_shape, op);
}

// ---- average -----------------------------------------------------------------------------------
namespace {
Pool2dOptions avg_options(const Pool2dOptions& opt) {
  Pool2dOptions o = opt;
  o.dilation_h = o.dilation_w = 1;
  return o;
}
}  // namespace

namespace {
// Windows that tile whole rows (no padding, stride rows == kernel rows, H == OH * KH) make
// the N*C planes one tall plane of N*C*OH output rows: row ranges split over the threads, one
// kernel call per range, not per plane (LeNet's 10x10 planes are 5 output rows each).
bool rows_tile(const Pool2dParams& p) {
  return p.PH == 0 && p.PW == 0 && p.KH == p.SH && p.H == p.OH * p.KH;
}

// fn(q, first output row) over ranges of the tall plane, q describing rows of it.
template <class F>
void for_row_ranges(const Pool2dParams& p, const F& fn) {
  const int64_t rows = p.planes() * p.OH;
  parallel_for(0, rows, std::max<int64_t>(1, kGrainWork / std::max<int64_t>(p.OW * p.KH * p.KW, 1)),
               [&](int64_t b, int64_t e) {
                 Pool2dParams q = p;
                 q.OH = e - b;
                 q.H = q.OH * p.KH;
                 fn(q, b);
               });
}
}  // namespace

Tensor avg_pool2d_forward(const Tensor& x_in, const Pool2dOptions& opt) {
  if (cuda::any_cuda({&x_in}))
    return cuda::avg_pool2d_forward(x_in, opt);
  check_pool_input(x_in, "avg_pool2d", "input");
  const Pool2dParams p = pool2d_params(x_in.shape(), avg_options(opt), "avg_pool2d");
  Tensor x = as_nchw(x_in);
  Tensor y = Tensor::empty(p.output_shape());
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  if (rows_tile(p)) {
    for_row_ranges(p, [&](const Pool2dParams& q, int64_t r0) {
      CNNCORE_ISA_CALL(avg_pool2d_plane(xp + r0 * p.KH * p.W, yp + r0 * p.OW, q));
    });
    return y;
  }
  const int64_t ip_plane = p.H * p.W, op_plane = p.OH * p.OW;
  parallel_for(0, p.planes(), plane_grain(op_plane * p.KH * p.KW), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl)
      CNNCORE_ISA_CALL(avg_pool2d_plane(xp + pl * ip_plane, yp + pl * op_plane, p));
  });
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy_in, const Shape& x_shape, const Pool2dOptions& opt) {
  if (cuda::any_cuda({&dy_in}))
    return cuda::avg_pool2d_backward(dy_in, x_shape, opt);
  const char* op = "avg_pool2d_backward";
  check_x_shape(x_shape, op);
  const Pool2dParams p = pool2d_params(x_shape, avg_options(opt), op);
  check_grad_shape(dy_in, p.output_shape(), op);
  Tensor dy = dy_in.contiguous();
  Tensor dx = Tensor::empty(x_shape);  // each plane overwritten by the kernel, in cache
  const float* gp = dy.data<float>();
  float* dp = dx.data<float>();
  if (rows_tile(p)) {
    for_row_ranges(p, [&](const Pool2dParams& q, int64_t r0) {
      CNNCORE_ISA_CALL(avg_pool2d_backward_plane(gp + r0 * p.OW, dp + r0 * p.KH * p.W, q));
    });
    return dx;
  }
  const int64_t ip_plane = p.H * p.W, op_plane = p.OH * p.OW;
  parallel_for(0, p.planes(), plane_grain(op_plane * p.KH * p.KW), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl)
      CNNCORE_ISA_CALL(avg_pool2d_backward_plane(gp + pl * op_plane, dp + pl * ip_plane, p));
  });
  return dx;
}

// ---- adaptive ----------------------------------------------------------------------------------
namespace {
void check_adaptive(const Tensor& x, int64_t out_h, int64_t out_w, const char* op) {
  check_pool_input(x, op, "input");
  CNNCORE_CHECK_VALUE(out_h >= 1 && out_w >= 1, op, ": output_size must be at least (1, 1), but got (",
                      out_h, ", ", out_w, ")");
  // window bounds compute i * H: keep both factors below 2^31
  constexpr int64_t kMax = int64_t{1} << 31;
  CNNCORE_CHECK_VALUE(out_h < kMax && out_w < kMax && x.size(-1) < kMax && x.size(-2) < kMax, op,
                      ": output_size and input height/width must be below 2^31, but got output (",
                      out_h, ", ", out_w, ") for input ", shape_str(x.shape()));
}
}  // namespace

Tensor adaptive_avg_pool2d_forward(const Tensor& x_in, int64_t OH, int64_t OW) {
  if (cuda::any_cuda({&x_in}))
    return cuda::adaptive_avg_pool2d_forward(x_in, OH, OW);
  check_adaptive(x_in, OH, OW, "adaptive_avg_pool2d");
  Tensor x = as_nchw(x_in);
  int64_t N, C, H, W;
  nchw(x.shape(), N, C, H, W);
  Tensor y = Tensor::empty(with_spatial(x.shape(), OH, OW));
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(0, N * C, plane_grain(H * W + OH * OW), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl)
      CNNCORE_ISA_CALL(adaptive_avg_pool2d_plane(xp + pl * H * W, yp + pl * OH * OW, H, W, OH, OW));
  });
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dy_in, const Shape& x_shape) {
  if (cuda::any_cuda({&dy_in}))
    return cuda::adaptive_avg_pool2d_backward(dy_in, x_shape);
  const char* op = "adaptive_avg_pool2d_backward";
  check_x_shape(x_shape, op);
  check_defined(dy_in, op, "grad_output");
  check_dtype(dy_in, DType::Float32, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy_in.dim() == static_cast<int64_t>(x_shape.size()) &&
                          std::equal(x_shape.begin(), x_shape.end() - 2, dy_in.shape().begin()) &&
                          dy_in.size(-1) >= 1 && dy_in.size(-2) >= 1,
                      op, ": grad_output must have the leading dims of input_shape ",
                      shape_str(x_shape), ", but got ", shape_str(dy_in.shape()));
  Tensor dy = dy_in.contiguous();
  int64_t N, C, H, W;
  nchw(x_shape, N, C, H, W);
  const int64_t OH = dy.size(-2), OW = dy.size(-1);
  Tensor dx = Tensor::empty(x_shape);  // zeroed plane by plane below, in cache
  const float* gp = dy.data<float>();
  float* dp = dx.data<float>();
  parallel_for(0, N * C, plane_grain(H * W + OH * OW), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      std::fill(dp + pl * H * W, dp + (pl + 1) * H * W, 0.0f);
      CNNCORE_ISA_CALL(
          adaptive_avg_pool2d_backward_plane(gp + pl * OH * OW, dp + pl * H * W, H, W, OH, OW));
    }
  });
  return dx;
}

std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor& x_in, int64_t OH, int64_t OW) {
  if (cuda::any_cuda({&x_in})) return cuda::adaptive_max_pool2d_forward(x_in, OH, OW);
  check_adaptive(x_in, OH, OW, "adaptive_max_pool2d");
  Tensor x = as_nchw(x_in);
  int64_t N, C, H, W;
  nchw(x.shape(), N, C, H, W);
  Tensor y = Tensor::empty(with_spatial(x.shape(), OH, OW));
  Tensor idx = Tensor::empty(with_spatial(x.shape(), OH, OW), DType::Int64);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  int64_t* ip = idx.data<int64_t>();
  parallel_for(0, N * C, plane_grain(H * W + OH * OW), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const float* xs = xp + pl * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
          float best = -std::numeric_limits<float>::infinity();
          int64_t besti = h0 * W + w0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const float v = xs[ih * W + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                besti = ih * W + iw;
              }
            }
          yp[pl * OH * OW + oh * OW + ow] = best;
          ip[pl * OH * OW + oh * OW + ow] = besti;
        }
      }
    }
  });
  return {y, idx};
}

Tensor adaptive_max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape) {
  if (cuda::any_cuda({&dy, &indices}))
    return cuda::adaptive_max_pool2d_backward(dy, indices, x_shape);
  const char* op = "adaptive_max_pool2d_backward";
  check_x_shape(x_shape, op);
  check_defined(dy, op, "grad_output");
  check_dtype(dy, DType::Float32, op, "grad_output");
  CNNCORE_CHECK_VALUE(dy.dim() == static_cast<int64_t>(x_shape.size()) &&
                          std::equal(x_shape.begin(), x_shape.end() - 2, dy.shape().begin()),
                      op, ": grad_output must have the leading dims of input_shape ",
                      shape_str(x_shape), ", but got ", shape_str(dy.shape()));
  return scatter_indices(dy, indices, x_shape, op);
}

}  // namespace cnncore
