// conv2d and conv_transpose2d on the CPU: validation at the entry, then one of the algorithms of
// select_conv_algo. The GEMM paths run one image at a time (columns of one image and group, then
// cnncore::sgemm); with at least as many images as threads the threads split the batch (each
// with its own column buffer, and the GEMM inside runs serial since parallel_for does not nest),
// otherwise images go one after another and the GEMM uses the threads.
#include "cpu/conv2d.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cnncore/ops/linalg.hpp"
#include "cpu/im2col.hpp"
#include "cpu/winograd.hpp"
#include "cuda_ops.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace conv_impl {

bool split_batch(const Conv2dParams& p) {
  const int64_t threads = get_num_threads();
  return threads > 1 && p.N >= threads && (p.N % threads == 0 || p.N >= 4 * threads);
}

namespace {

// Calls image(n, col, slot) for every image n. slot is 0..slots-1, one per concurrent worker,
// so callers can keep per-worker accumulators; col is that worker's column buffer (col_size
// floats, allocated once per call). Returns the number of slots used.
template <class F>
int64_t for_each_image(const Conv2dParams& p, int64_t col_size, const F& image) {
  if (split_batch(p)) {
    int64_t used = 1;
    parallel_region(p.N, [&](int64_t tid, int64_t nt) {
      if (tid == 0) used = nt;
      const int64_t chunk = (p.N + nt - 1) / nt;
      const int64_t b = tid * chunk, e = std::min(p.N, b + chunk);
      std::vector<float> col(static_cast<size_t>(std::max<int64_t>(col_size, 1)));
      for (int64_t n = b; n < e; ++n) image(n, col.data(), tid);
    });
    return used;
  }
  std::vector<float> col(static_cast<size_t>(std::max<int64_t>(col_size, 1)));
  for (int64_t n = 0; n < p.N; ++n) image(n, col.data(), int64_t{0});
  return 1;
}

// Deterministic mode's batch split for the weight gradient: enough for a few threads, the same
// for every thread count.
constexpr int64_t kFixedWeightSlots = 8;

int64_t slots_for(const Conv2dParams& p) {
  return split_batch(p) ? std::min<int64_t>(get_num_threads(), p.N) : 1;
}

}  // namespace

Tensor forward(const Tensor& x, const Tensor& w, const float* bias, const Conv2dParams& p) {
  const ConvAlgo algo = select_conv_algo(p);
  if (algo == ConvAlgo::DepthwiseDirect) return depthwise_forward(x, w, bias, p);
  if (algo == ConvAlgo::Direct) return direct_forward(x, w, bias, p);
  if (algo == ConvAlgo::Winograd) return winograd_forward(x, w, bias, p);
  Tensor y = Tensor::empty(p.output_shape());
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G;
  const int64_t HW = p.H * p.W, L = p.OH * p.OW, RSC = Cg * p.R * p.S;
  const bool use_col = algo != ConvAlgo::Gemm1x1;
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* yp = y.data<float>();
  const int64_t tile = use_col ? im2col_tile_rows(p, RSC) : p.OH;
  for_each_image(p, use_col ? RSC * tile * p.OW : 0, [&](int64_t n, float* col, int64_t) {
    for (int64_t g = 0; g < G; ++g) {
      const float* xg = xp + (n * p.C + g * Cg) * HW;
      float* yg = yp + (n * p.K + g * Kg) * L;
      // The bias goes in as GEMM's C with beta = 1: no second pass over the output.
      if (bias)
        for (int64_t k = 0; k < Kg; ++k) std::fill(yg + k * L, yg + (k + 1) * L, bias[g * Kg + k]);
      const float beta = bias ? 1.0f : 0.0f;
      if (!use_col) {
        sgemm(false, false, Kg, L, RSC, 1.0f, wp + g * Kg * RSC, RSC, xg, L, beta, yg, L);
        continue;
      }
      for (int64_t oh0 = 0; oh0 < p.OH; oh0 += tile) {
        const int64_t oh1 = std::min(p.OH, oh0 + tile), T = (oh1 - oh0) * p.OW;
        im2col(xg, p, Cg, oh0, oh1, col);
        // y_g[:, tile] (Kg, T) = w_g (Kg, RSC) @ col (RSC, T)
        sgemm(false, false, Kg, T, RSC, 1.0f, wp + g * Kg * RSC, RSC, col, T, beta,
              yg + oh0 * p.OW, L);
      }
    }
  });
  return y;
}

Tensor backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  const ConvAlgo algo = select_conv_algo(p);
  if (algo == ConvAlgo::DepthwiseDirect) return depthwise_backward_input(dy, w, p);
  if (algo == ConvAlgo::Direct && direct_backward_input_fits(p))
    return direct_backward_input(dy, w, p);
  if (algo == ConvAlgo::Winograd) return winograd_backward_input(dy, w, p);
  Tensor dx = Tensor::empty(p.input_shape());
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G;
  const int64_t HW = p.H * p.W, L = p.OH * p.OW, RSC = Cg * p.R * p.S;
  const bool use_col = algo != ConvAlgo::Gemm1x1;
  const float* dyp = dy.data<float>();
  const float* wp = w.data<float>();
  float* dxp = dx.data<float>();
  const int64_t tile = use_col ? im2col_tile_rows(p, RSC) : p.OH;
  for_each_image(p, use_col ? RSC * tile * p.OW : 0, [&](int64_t n, float* col, int64_t) {
    for (int64_t g = 0; g < G; ++g) {
      const float* dyg = dyp + (n * p.K + g * Kg) * L;
      float* dxg = dxp + (n * p.C + g * Cg) * HW;
      if (!use_col) {  // 1x1: w_g^T @ dy_g already is dx_g
        sgemm(true, false, RSC, L, Kg, 1.0f, wp + g * Kg * RSC, RSC, dyg, L, 0.0f, dxg, L);
        continue;
      }
      std::memset(dxg, 0, sizeof(float) * Cg * HW);
      for (int64_t oh0 = 0; oh0 < p.OH; oh0 += tile) {
        const int64_t oh1 = std::min(p.OH, oh0 + tile), T = (oh1 - oh0) * p.OW;
        // col (RSC, T) = w_g^T (RSC, Kg) @ dy_g[:, tile] (Kg, T)
        sgemm(true, false, RSC, T, Kg, 1.0f, wp + g * Kg * RSC, RSC, dyg + oh0 * p.OW, L, 0.0f,
              col, T);
        col2im_add(col, p, Cg, oh0, oh1, dxg);
      }
    }
  });
  return dx;
}

Tensor backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  const ConvAlgo algo = select_conv_algo(p);
  if (algo == ConvAlgo::DepthwiseDirect) return depthwise_backward_weight(dy, x, p);
  // The direct kernel's partial sums follow the thread count; deterministic mode takes the
  // fixed-slot im2col path below instead.
  if (algo == ConvAlgo::Direct && direct_backward_weight_fits(p) && !deterministic_algorithms())
    return direct_backward_weight(dy, x, p);
  // Winograd shapes take im2col + GEMM here: the weight gradient has no Winograd kernel yet.
  Tensor dw = Tensor::zeros(p.weight_shape());
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G;
  const int64_t HW = p.H * p.W, L = p.OH * p.OW, RSC = Cg * p.R * p.S;
  const int64_t wsize = p.K * RSC;
  const bool use_col = algo != ConvAlgo::Gemm1x1;
  const float* dyp = dy.data<float>();
  const float* xp = x.data<float>();
  float* dwp = dw.data<float>();
  const int64_t tile = use_col ? im2col_tile_rows(p, RSC) : p.OH;
  const int64_t col_size = use_col ? RSC * tile * p.OW : 0;
  auto add_image = [&](int64_t n, float* col, float* acc) {
    for (int64_t g = 0; g < G; ++g) {
      const float* xg = xp + (n * p.C + g * Cg) * HW;
      const float* dyg = dyp + (n * p.K + g * Kg) * L;
      if (!use_col) {
        sgemm(false, true, Kg, RSC, L, 1.0f, dyg, L, xg, L, 1.0f, acc + g * Kg * RSC, RSC);
        continue;
      }
      for (int64_t oh0 = 0; oh0 < p.OH; oh0 += tile) {
        const int64_t oh1 = std::min(p.OH, oh0 + tile), T = (oh1 - oh0) * p.OW;
        im2col(xg, p, Cg, oh0, oh1, col);
        // dw_g (Kg, RSC) += dy_g[:, tile] (Kg, T) @ col^T (T, RSC)
        sgemm(false, true, Kg, RSC, T, 1.0f, dyg + oh0 * p.OW, L, col, T, 1.0f,
              acc + g * Kg * RSC, RSC);
      }
    }
  };
  // Workers over the batch each sum into their own copy of dw (slot 0 into dw itself), so no
  // two threads write the same weights; the copies are added at the end. Deterministic mode fixes
  // the slots (contiguous image ranges, each summed in order) whatever the thread count.
  const int64_t slots = deterministic_algorithms() ? std::min<int64_t>(p.N, kFixedWeightSlots)
                                                   : slots_for(p);
  std::vector<float> extra(static_cast<size_t>((slots - 1) * wsize), 0.0f);
  if (deterministic_algorithms()) {
    parallel_for(0, slots, 1, [&](int64_t b, int64_t e) {
      std::vector<float> col(static_cast<size_t>(std::max<int64_t>(col_size, 1)));
      for (int64_t s = b; s < e; ++s)
        for (int64_t n = s * p.N / slots; n < (s + 1) * p.N / slots; ++n)
          add_image(n, col.data(), s == 0 ? dwp : extra.data() + (s - 1) * wsize);
    });
  } else {
    for_each_image(p, col_size, [&](int64_t n, float* col, int64_t slot) {
      add_image(n, col, slot == 0 ? dwp : extra.data() + (slot - 1) * wsize);
    });
  }
  if (slots > 1)
    parallel_for(0, wsize, 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t s = 1; s < slots; ++s) {
        const float* src = extra.data() + (s - 1) * wsize;
        for (int64_t i = b; i < e; ++i) dwp[i] += src[i];
      }
    });
  return dw;
}

}  // namespace conv_impl

// ---- public entry points --------------------------------------------------------------------

namespace {

Tensor float_nchw(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  check_dtype(t, DType::Float32, op, arg);
  return as_nchw(t);
}

void check_shape(const Tensor& t, const Shape& expected, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(t.shape() == expected, op, ": ", arg, " must have shape ",
                      shape_str(expected), ", but got ", shape_str(t.shape()));
}

// b (K) float32 or none -> a contiguous copy to read from (empty when none).
Tensor bias_of(const std::optional<Tensor>& b, int64_t K, const char* op) {
  if (!b || !b->defined()) return Tensor();
  Tensor t = float_nchw(*b, op, "bias");
  CNNCORE_CHECK_VALUE(t.dim() == 1 && t.size(0) == K, op, ": bias must have shape (", K,
                      ",), one value per output channel, but got ", shape_str(t.shape()));
  return t;
}

void add_bias(Tensor& y, const Tensor& bias) {
  if (!bias.defined()) return;
  const int64_t N = y.size(0), K = y.size(1), L = y.size(2) * y.size(3);
  float* yp = y.data<float>();
  const float* bp = bias.data<float>();
  parallel_for(0, N * K, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(L, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t nk = b; nk < e; ++nk) {
                   const float v = bp[nk % K];
                   float* row = yp + nk * L;
                   for (int64_t i = 0; i < L; ++i) row[i] += v;
                 }
               });
}

Shape checked_shape(const Shape& s, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(s.size() == 4, op, ": ", arg, " must have 4 sizes (N, C, H, W), but got ",
                      shape_str(s));
  return s;
}

}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w_in, const std::optional<Tensor>& b,
                      const Conv2dOptions& opt) {
  if (cuda::any_cuda({&x_in, &w_in, cuda::opt_ptr(b)}))
    return cuda::conv2d_forward(x_in, w_in, b, opt);
  const char* op = "conv2d";
  Tensor x = float_nchw(x_in, op, "input"), w = float_nchw(w_in, op, "weight");
  const Conv2dParams p = conv2d_params(x.shape(), w.shape(), opt, op);
  Tensor bias = bias_of(b, p.K, op);
  return conv_impl::forward(x, w, bias.defined() ? bias.data<float>() : nullptr, p);
}

Tensor conv2d_backward_input(const Tensor& dy_in, const Tensor& w_in, const Shape& x_shape,
                             const Conv2dOptions& opt) {
  if (cuda::any_cuda({&dy_in, &w_in}))
    return cuda::conv2d_backward_input(dy_in, w_in, x_shape, opt);
  const char* op = "conv2d_backward_input";
  Tensor dy = float_nchw(dy_in, op, "grad_output"), w = float_nchw(w_in, op, "weight");
  const Conv2dParams p =
      conv2d_params(checked_shape(x_shape, op, "input_shape"), w.shape(), opt, op);
  check_shape(dy, p.output_shape(), op, "grad_output");
  return conv_impl::backward_input(dy, w, p);
}

Tensor conv2d_backward_weight(const Tensor& dy_in, const Tensor& x_in, const Shape& w_shape,
                              const Conv2dOptions& opt) {
  if (cuda::any_cuda({&dy_in, &x_in}))
    return cuda::conv2d_backward_weight(dy_in, x_in, w_shape, opt);
  const char* op = "conv2d_backward_weight";
  Tensor dy = float_nchw(dy_in, op, "grad_output"), x = float_nchw(x_in, op, "input");
  const Conv2dParams p =
      conv2d_params(x.shape(), checked_shape(w_shape, op, "weight_shape"), opt, op);
  check_shape(dy, p.output_shape(), op, "grad_output");
  return conv_impl::backward_weight(dy, x, p);
}

Tensor conv2d_backward_bias(const Tensor& dy_in) {
  if (cuda::any_cuda({&dy_in})) return cuda::conv2d_backward_bias(dy_in);
  const char* op = "conv2d_backward_bias";
  Tensor dy = float_nchw(dy_in, op, "grad_output");
  check_dim(dy, 4, op, "grad_output");
  const int64_t N = dy.size(0), K = dy.size(1), L = dy.size(2) * dy.size(3);
  Tensor db = Tensor::empty({K});
  const float* dyp = dy.data<float>();
  float* dbp = db.data<float>();
  parallel_for(0, K, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(N * L, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t k = b; k < e; ++k) {
                   // Float partial sums per row (vectorisable), rows added in double: the sum
                   // over a large batch stays accurate.
                   double total = 0.0;
                   for (int64_t n = 0; n < N; ++n) {
                     const float* row = dyp + (n * K + k) * L;
                     float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                     int64_t i = 0;
                     for (; i + 8 <= L; i += 8)
                       for (int j = 0; j < 8; ++j) part[j] += row[i + j];
                     double s = 0.0;
                     for (; i < L; ++i) s += row[i];
                     for (int j = 0; j < 8; ++j) s += part[j];
                     total += s;
                   }
                   dbp[k] = static_cast<float>(total);
                 }
               });
  return db;
}

Tensor conv_transpose2d_forward(const Tensor& x_in, const Tensor& w_in,
                                const std::optional<Tensor>& b, const Conv2dOptions& opt,
                                int64_t output_padding_h, int64_t output_padding_w) {
  const char* op = "conv_transpose2d";
  Tensor x = float_nchw(x_in, op, "input"), w = float_nchw(w_in, op, "weight");
  const Conv2dParams p =
      conv_transpose2d_params(x.shape(), w.shape(), opt, output_padding_h, output_padding_w, op);
  Tensor bias = bias_of(b, p.C, op);
  Tensor y = conv_impl::backward_input(x, w, p);
  add_bias(y, bias);
  return y;
}

Tensor conv_transpose2d_backward_input(const Tensor& dy_in, const Tensor& w_in,
                                       const Shape& x_shape, const Conv2dOptions& opt,
                                       int64_t output_padding_h, int64_t output_padding_w) {
  const char* op = "conv_transpose2d_backward_input";
  Tensor dy = float_nchw(dy_in, op, "grad_output"), w = float_nchw(w_in, op, "weight");
  const Conv2dParams p = conv_transpose2d_params(checked_shape(x_shape, op, "input_shape"),
                                                 w.shape(), opt, output_padding_h,
                                                 output_padding_w, op);
  check_shape(dy, p.input_shape(), op, "grad_output");
  return conv_impl::forward(dy, w, nullptr, p);
}

Tensor conv_transpose2d_backward_weight(const Tensor& dy_in, const Tensor& x_in,
                                        const Shape& w_shape, const Conv2dOptions& opt,
                                        int64_t output_padding_h, int64_t output_padding_w) {
  const char* op = "conv_transpose2d_backward_weight";
  Tensor dy = float_nchw(dy_in, op, "grad_output"), x = float_nchw(x_in, op, "input");
  const Conv2dParams p =
      conv_transpose2d_params(x.shape(), checked_shape(w_shape, op, "weight_shape"), opt,
                              output_padding_h, output_padding_w, op);
  check_shape(dy, p.input_shape(), op, "grad_output");
  // The equivalent conv reads dy as its input and x as its output gradient.
  return conv_impl::backward_weight(x, dy, p);
}

}  // namespace cnncore
