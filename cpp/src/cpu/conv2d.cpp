// conv2d and conv_transpose2d on the CPU: validation at the entry, then one of the algorithms of
// select_conv_algo. The GEMM paths run one image at a time (columns of one image and group, then
// cnncore::sgemm); with at least as many images as threads the threads split the batch (each
// with its own column buffer, and the GEMM inside runs serial since parallel_for does not nest),
// otherwise images go one after another and the GEMM uses the threads.
#include "cpu/conv2d.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cnncore/ops/activation.hpp"
#include "cnncore/ops/linalg.hpp"
#include "cnncore/ops/tensor_ops.hpp"
#include "cpu/activation_kernels.hpp"
#include "cpu/gemm.hpp"
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

// Small outputs (ResNet's last stages on 32x32 inputs: 16, 4, 1 pixels per image): one GEMM
// per image is then a thin product that reads every weight once per image (512->512 3x3 at 1
// pixel: 9.4 MB of weights for 147 kFLOP). Gathering the columns of the whole batch first makes
// one GEMM per group with N = batch x pixels, which reads the weights once.
constexpr int64_t kBatchColumnsMaxPixels = 64;
constexpr int64_t kBatchColumnsMaxFloats = int64_t{1} << 23;  // 32 MB of columns

// cols (RSC, N*L) for group g: image n's columns start at column n*L.
void batch_im2col(const float* x, const Conv2dParams& p, int64_t g, float* cols) {
  const int64_t Cg = p.C / p.groups, HW = p.H * p.W, L = p.OH * p.OW;
  const int64_t NL = p.N * L;
  parallel_for(0, p.N, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n)
      im2col(x + (n * p.C + g * Cg) * HW, p, Cg, 0, p.OH, cols + n * L, NL);
  });
}

// dy (N, K, L) of group g -> (Kg, N*L).
void batch_grad_rows(const float* dy, const Conv2dParams& p, int64_t g, float* out) {
  const int64_t Kg = p.K / p.groups, L = p.OH * p.OW, NL = p.N * L;
  parallel_for(0, p.N, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n)
      for (int64_t k = 0; k < Kg; ++k)
        std::memcpy(out + k * NL + n * L, dy + (n * p.K + g * Kg + k) * L, sizeof(float) * L);
  });
}

}  // namespace

bool batch_columns(const Conv2dParams& p) {
  if (const char* forced = std::getenv("CNNCORE_CONV_ALGO"))
    if (std::string(forced) == "im2col-per-image") return false;
  const int64_t L = p.OH * p.OW, RSC = p.C / p.groups * p.R * p.S;
  const int64_t NL = p.N * L;
  return p.N > 1 && L <= kBatchColumnsMaxPixels && RSC * NL <= kBatchColumnsMaxFloats &&
         (p.K / p.groups) * NL <= kBatchColumnsMaxFloats;
}

namespace {

Tensor batched_forward(const Tensor& x, const Tensor& w, const float* bias,
                       const Conv2dParams& p) {
  Tensor y = Tensor::empty(p.output_shape());
  const int64_t G = p.groups, Kg = p.K / G, L = p.OH * p.OW;
  const int64_t RSC = p.C / G * p.R * p.S, NL = p.N * L;
  // Scratch from the tensor allocator: not zero-filled, and blocks of 4 MiB or more are reused.
  Tensor cols_t = Tensor::empty({RSC * NL}), out_t = Tensor::empty({Kg * NL});
  float* cols = cols_t.data<float>();
  float* out = out_t.data<float>();
  float* yp = y.data<float>();
  for (int64_t g = 0; g < G; ++g) {
    batch_im2col(x.data<float>(), p, g, cols);
    sgemm(false, false, Kg, NL, RSC, 1.0f, w.data<float>() + g * Kg * RSC, RSC, cols, NL,
          0.0f, out, NL);
    parallel_for(0, p.N, 1, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n)
        for (int64_t k = 0; k < Kg; ++k) {
          const float* src = out + k * NL + n * L;
          float* dst = yp + (n * p.K + g * Kg + k) * L;
          const float add = bias ? bias[g * Kg + k] : 0.0f;
          for (int64_t l = 0; l < L; ++l) dst[l] = src[l] + add;
        }
    });
  }
  return y;
}

Tensor batched_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, L = p.OH * p.OW, HW = p.H * p.W;
  const int64_t RSC = Cg * p.R * p.S, NL = p.N * L;
  Tensor cols_t = Tensor::empty({RSC * NL}), rows_t = Tensor::empty({Kg * NL});
  float* cols = cols_t.data<float>();
  float* rows = rows_t.data<float>();
  float* dxp = dx.data<float>();
  for (int64_t g = 0; g < G; ++g) {
    batch_grad_rows(dy.data<float>(), p, g, rows);
    // cols (RSC, N*L) = w_g^T (RSC, Kg) @ dy_g (Kg, N*L)
    sgemm(true, false, RSC, NL, Kg, 1.0f, w.data<float>() + g * Kg * RSC, RSC, rows, NL,
          0.0f, cols, NL);
    parallel_for(0, p.N, 1, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        float* dxg = dxp + (n * p.C + g * Cg) * HW;
        std::memset(dxg, 0, sizeof(float) * Cg * HW);
        col2im_add(cols + n * L, p, Cg, 0, p.OH, dxg, NL);
      }
    });
  }
  return dx;
}

Tensor batched_backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  Tensor dw = Tensor::empty(p.weight_shape());
  const int64_t G = p.groups, Kg = p.K / G, L = p.OH * p.OW;
  const int64_t RSC = p.C / G * p.R * p.S, NL = p.N * L;
  Tensor cols_t = Tensor::empty({RSC * NL}), rows_t = Tensor::empty({Kg * NL});
  float* cols = cols_t.data<float>();
  float* rows = rows_t.data<float>();
  for (int64_t g = 0; g < G; ++g) {
    batch_im2col(x.data<float>(), p, g, cols);
    batch_grad_rows(dy.data<float>(), p, g, rows);
    // dw_g (Kg, RSC) = dy_g (Kg, N*L) @ cols^T (N*L, RSC)
    sgemm(false, true, Kg, RSC, NL, 1.0f, rows, NL, cols, NL, 0.0f,
          dw.data<float>() + g * Kg * RSC, RSC);
  }
  return dw;
}

}  // namespace

bool crop_taps(const Conv2dParams& p, Conv2dParams* cropped, int64_t* r0_out,
               int64_t* s0_out) {
  // A forced algorithm runs on the shape as given (tests use it to reach each kernel's edges).
  if (const char* forced = std::getenv("CNNCORE_CONV_ALGO"))
    if (*forced) return false;
  auto used = [](int64_t taps, int64_t out, int64_t in, int64_t stride, int64_t pad,
                 int64_t dil, int64_t* lo, int64_t* hi) {
    *lo = taps;
    *hi = 0;
    for (int64_t r = 0; r < taps; ++r)
      for (int64_t o = 0; o < out; ++o) {
        const int64_t i = o * stride - pad + r * dil;
        if (i >= 0 && i < in) {
          *lo = std::min(*lo, r);
          *hi = std::max(*hi, r + 1);
          break;
        }
      }
  };
  int64_t r0, r1, s0, s1;
  used(p.R, p.OH, p.H, p.stride_h, p.pad_t, p.dil_h, &r0, &r1);
  used(p.S, p.OW, p.W, p.stride_w, p.pad_l, p.dil_w, &s0, &s1);
  if (r1 <= r0 || s1 <= s0 || (r1 - r0) * (s1 - s0) == p.R * p.S) return false;
  Conv2dParams q = p;
  q.R = r1 - r0;
  q.S = s1 - s0;
  q.pad_t = p.pad_t - r0 * p.dil_h;
  q.pad_l = p.pad_l - s0 * p.dil_w;
  q.pad_b = (p.OH - 1) * p.stride_h + p.dil_h * (q.R - 1) + 1 - p.H - q.pad_t;
  q.pad_r = (p.OW - 1) * p.stride_w + p.dil_w * (q.S - 1) + 1 - p.W - q.pad_l;
  if (q.pad_t < 0 || q.pad_l < 0 || q.pad_b < 0 || q.pad_r < 0) return false;
  if (q.R == 1) q.dil_h = 1;
  if (q.S == 1) q.dil_w = 1;
  *cropped = q;
  *r0_out = r0;
  *s0_out = s0;
  return true;
}

namespace {

// Copies the tap window [r0, r0 + q.R) x [s0, s0 + q.S) between a full (K, Cg, R, S) weight
// tensor and a cropped (K, Cg, q.R, q.S) one: out of the full one (crop) or into it (uncrop).
void copy_tap_window(float* full, float* cropped, const Conv2dParams& p, const Conv2dParams& q,
                     int64_t r0, int64_t s0, bool crop) {
  const int64_t planes = p.K * (p.C / p.groups);
  // Threads over the planes, element copies: segments are a few floats (a memcpy call each was
  // most of 256 -> 512 3x3/2 on 2x2, run serially while the other thread waited).
  parallel_for(0, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(q.R * q.S, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t kc = b; kc < e; ++kc)
                   for (int64_t r = 0; r < q.R; ++r) {
                     float* f = full + (kc * p.R + r0 + r) * p.S + s0;
                     float* c = cropped + (kc * q.R + r) * q.S;
                     float* dst = crop ? c : f;
                     const float* src = crop ? f : c;
                     for (int64_t s = 0; s < q.S; ++s) dst[s] = src[s];
                   }
               });
}

Tensor crop_weight(const Tensor& w, const Conv2dParams& p, const Conv2dParams& q, int64_t r0,
                   int64_t s0) {
  Tensor out = Tensor::empty(q.weight_shape());
  copy_tap_window(w.data<float>(), out.data<float>(), p, q, r0, s0, true);
  return out;
}

}  // namespace

namespace {
void apply_post(Tensor& y, const ConvPost* post) {
  if (!has_post(post)) return;
  float* yp = y.data<float>();
  const float lo = post->low(), hi = post->high();
  parallel_for(0, y.numel(), int64_t{1} << 15, [&](int64_t i0, int64_t i1) {
    CNNCORE_ISA_CALL(
        add_clamp(yp + i0, post->residual ? post->residual + i0 : nullptr, i1 - i0, lo, hi));
  });
}
}  // namespace

Tensor forward(const Tensor& x, const Tensor& w, const float* bias, const Conv2dParams& p,
               const ConvPost* post) {
  {
    Conv2dParams q;
    int64_t r0, s0;
    if (crop_taps(p, &q, &r0, &s0))
      return forward(x, crop_weight(w, p, q, r0, s0), bias, q, post);
  }
  const ConvAlgo algo = select_conv_algo(p);
  if (algo == ConvAlgo::DepthwiseDirect) return depthwise_forward(x, w, bias, p, post);
  if (algo == ConvAlgo::Winograd) return winograd_forward(x, w, bias, p, post);
  if (algo == ConvAlgo::Direct) return direct_forward(x, w, bias, p, post);
  if (batch_columns(p)) {
    Tensor y = batched_forward(x, w, bias, p);
    apply_post(y, post);
    return y;
  }
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
      // The bias, residual and clamp go in with GEMM's epilogue: the output is written once
      // and never read.
      auto product = [&](int64_t T, const float* b, float* c) {
        GemmEpilogue e;
        e.bias = bias ? bias + g * Kg : nullptr;
        if (post) {
          e.residual = post->residual ? post->residual + (c - yp) : nullptr;
          e.ldr = L;
          e.clamp = post->clamp, e.lo = post->lo, e.hi = post->hi;
        }
        if (e.bias || e.any_after())
          sgemm_epilogue(false, false, Kg, T, RSC, wp + g * Kg * RSC, RSC, b, T, e, c, L);
        else
          sgemm(false, false, Kg, T, RSC, 1.0f, wp + g * Kg * RSC, RSC, b, T, 0.0f, c, L);
      };
      if (!use_col) {
        product(L, xg, yg);
        continue;
      }
      for (int64_t oh0 = 0; oh0 < p.OH; oh0 += tile) {
        const int64_t oh1 = std::min(p.OH, oh0 + tile), T = (oh1 - oh0) * p.OW;
        im2col(xg, p, Cg, oh0, oh1, col);
        // y_g[:, tile] (Kg, T) = w_g (Kg, RSC) @ col (RSC, T)
        product(T, col, yg + oh0 * p.OW);
      }
    }
  });
  return y;
}

Tensor backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  {
    Conv2dParams q;
    int64_t r0, s0;
    if (crop_taps(p, &q, &r0, &s0)) return backward_input(dy, crop_weight(w, p, q, r0, s0), q);
  }
  const ConvAlgo algo = select_conv_algo(p);
  if (algo == ConvAlgo::DepthwiseDirect) return depthwise_backward_input(dy, w, p);
  if (algo == ConvAlgo::Direct && direct_backward_input_fits(p))
    return direct_backward_input(dy, w, p);
  if (algo == ConvAlgo::Winograd) return winograd_backward_input(dy, w, p);
  if (batch_columns(p)) return batched_backward_input(dy, w, p);
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

// Weight gradient of a stride-1 convolution as one GEMM per tap, with no im2col: over a
// zero-padded copy of the input (rows Wp = W + pad_l + pad_r wide) the pixels tap (r, s) reads
// for the output pixels (oh, 0 .. Wp-1) are one contiguous run starting at (oh + r*dh) * Wp +
// s*dw. So with dy padded the same way (zeros in the Wp - OW columns past each output row),
//   dw[:, :, r, s] (Kg x Cg) += dyp (Kg x OH*Wp) @ xp[:, run(r, s)]^T (OH*Wp x Cg)
// reads each input once per tap from cache instead of writing and packing a column matrix R*S
// times the input's size. The padding columns cost (Wp - OW) / Wp more multiply-adds.
bool tap_gemm_weight_fits(const Conv2dParams& p) {
  if (conv_variant_forced("backward-weight-im2col") || deterministic_algorithms()) return false;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, Wp = p.W + p.pad_l + p.pad_r;
  // Deep enough products (>= 512 padded pixels per image; below, the nine passes over C cost
  // more than im2col saves: 256@14 even, 512@7 1.4x slower, 64@56 and 128@28 10-18% faster,
  // Zen 4, 1 thread, batch 8) and at most a quarter of the products on padding columns.
  return !p.is_strided() && !p.is_1x1() && Cg >= 32 && Kg >= 32 && p.OH * Wp >= 512 &&
         4 * (Wp - p.OW) <= Wp;
}

namespace {
Tensor tap_gemm_backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S;
  const int64_t Wp = p.W + p.pad_l + p.pad_r, Hp = p.H + p.pad_t + p.pad_b;
  const int64_t Lp = p.OH * Wp;
  // The last tap's run ends (S-1)*dw floats past the padded plane: zeros there too.
  const int64_t plane = Hp * Wp + (p.S - 1) * p.dil_w;
  const int64_t xsize = p.C * plane, dysize = p.K * Lp, wsize = p.K * Cg * RS;
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  // Per worker: the padded image and dy, then its accumulator, laid out [tap][k][c].
  const int64_t slots = slots_for(p);
  std::vector<float> acc(static_cast<size_t>(slots * wsize), 0.0f);
  for_each_image(p, xsize + dysize, [&](int64_t n, float* buf, int64_t slot) {
    float* xq = buf;
    float* dq = buf + xsize;
    std::fill(xq, xq + xsize, 0.0f);
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t h = 0; h < p.H; ++h)
        std::memcpy(xq + c * plane + (h + p.pad_t) * Wp + p.pad_l,
                    xp + ((n * p.C + c) * p.H + h) * p.W, sizeof(float) * p.W);
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        float* row = dq + k * Lp + oh * Wp;
        std::memcpy(row, dyp + ((n * p.K + k) * p.OH + oh) * p.OW, sizeof(float) * p.OW);
        std::fill(row + p.OW, row + Wp, 0.0f);
      }
    float* a = acc.data() + slot * wsize;
    for (int64_t g = 0; g < G; ++g)
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t off = r * p.dil_h * Wp + s * p.dil_w;
          sgemm(false, true, Kg, Cg, Lp, 1.0f, dq + g * Kg * Lp, Lp, xq + g * Cg * plane + off,
                plane, 1.0f, a + ((r * p.S + s) * p.K + g * Kg) * Cg, Cg);
        }
  });
  Tensor dw = Tensor::empty(p.weight_shape());
  float* dwp = dw.data<float>();
  parallel_for(0, p.K, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t t = 0; t < RS; ++t) {
          float v = 0.0f;
          for (int64_t sl = 0; sl < slots; ++sl) v += acc[sl * wsize + (t * p.K + k) * Cg + c];
          dwp[(k * Cg + c) * RS + t] = v;
        }
  });
  return dw;
}
}  // namespace

namespace {
// backward_weight, db filled only where the kernel sums it on the way.
Tensor weight_grad(const Tensor& dy, const Tensor& x, const Conv2dParams& p, Tensor* db) {
  {
    Conv2dParams q;
    int64_t r0, s0;
    if (crop_taps(p, &q, &r0, &s0)) {  // the dropped taps' gradient is zero
      const Tensor part = weight_grad(dy, x, q, db);
      Tensor dw = Tensor::zeros(p.weight_shape());
      copy_tap_window(dw.data<float>(), part.data<float>(), p, q, r0, s0, false);
      return dw;
    }
  }
  const ConvAlgo algo = select_conv_algo(p);
  if (algo == ConvAlgo::DepthwiseDirect) return depthwise_backward_weight(dy, x, p);
  // The direct kernel's partial sums follow the thread count; deterministic mode takes the
  // fixed-slot im2col path below instead.
  if (algo == ConvAlgo::Direct && direct_backward_weight_fits(p) && !deterministic_algorithms())
    return direct_backward_weight(dy, x, p, db);
  // Winograd shapes take im2col + GEMM here: the weight gradient has no Winograd kernel yet.
  // Deterministic mode keeps the fixed-slot path (its sums do not follow the GEMM's blocking).
  // Only at a few pixels per image: from 16 up, the per-image GEMMs split over the batch, each
  // thread into its own copy of dw, measured faster (Zen 4, 2 threads, batch 32: 64@8 3x3 1.7
  // against 3.5 ms batched; 256@2 3.9 against 1.8 ms).
  if (batch_columns(p) && p.OH * p.OW < 16 && !deterministic_algorithms())
    return batched_backward_weight(dy, x, p);
  if (tap_gemm_weight_fits(p)) return tap_gemm_backward_weight(dy, x, p);
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
}  // namespace

Tensor backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p, Tensor* db) {
  Tensor dw = weight_grad(dy, x, p, db);
  if (db && !db->defined()) *db = backward_bias(dy);
  return dw;
}

double sum_floats(const float* v, int64_t n) {
  float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += v[i + j];
  double s = 0.0;
  for (; i < n; ++i) s += v[i];
  for (int j = 0; j < 8; ++j) s += part[j];
  return s;
}

Tensor backward_bias(const Tensor& dy) {
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
                   for (int64_t n = 0; n < N; ++n) total += sum_floats(dyp + (n * K + k) * L, L);
                   dbp[k] = static_cast<float>(total);
                 }
               });
  return db;
}

std::pair<Tensor, Tensor> backward_input_weight(const Tensor& dy, const Tensor& x, const Tensor& w,
                                                const Conv2dParams& p, Tensor* db) {
  // The fused depthwise pass sums dw per thread range; deterministic mode keeps the separate
  // kernels (dw by output channel, the same sums at any thread count).
  Conv2dParams q;
  int64_t r0 = 0, s0 = 0;
  if (select_conv_algo(p) == ConvAlgo::DepthwiseDirect && !crop_taps(p, &q, &r0, &s0) &&
      !deterministic_algorithms())
    return depthwise_backward_input_weight(dy, x, w, p);
  return {backward_input(dy, w, p), backward_weight(dy, x, p, db)};
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

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
                      const Conv2dOptions& opt, const Conv2dEpilogue& epilogue) {
  const char* op = "conv2d";
  const double lo = epilogue.min_value, hi = epilogue.max_value;
  CNNCORE_CHECK_VALUE(!std::isnan(lo) && !std::isnan(hi) && lo <= hi, op,
                      ": the epilogue's min_value must be <= max_value (neither NaN), but got ",
                      lo, " and ", hi);
  check_defined(x, op, "input");
  check_defined(w, op, "weight");
  const bool has_res = epilogue.residual && epilogue.residual->defined();
  if (has_res) {
    check_dtype(*epilogue.residual, DType::Float32, op, "residual");
    CNNCORE_CHECK_VALUE(epilogue.residual->is_cuda() == x.is_cuda(), op,
                        ": residual must be on the input's device (", x.is_cuda() ? "cuda" : "cpu",
                        "), but is on ", epilogue.residual->is_cuda() ? "cuda" : "cpu");
    // Before the conv runs: a wrong residual costs nothing.
    const Conv2dParams p = conv2d_params(x.shape(), w.shape(), opt, op);
    check_shape(*epilogue.residual, p.output_shape(), op, "residual");
  }
  const bool clamps = lo > -std::numeric_limits<double>::infinity() ||
                      hi < std::numeric_limits<double>::infinity();
  if (!has_res && !clamps) return conv2d_forward(x, w, b, opt);
  if (cuda::any_cuda({&x, &w, cuda::opt_ptr(b)})) {  // composed of the device's ops
    Tensor y = conv2d_forward(x, w, b, opt);
    if (has_res) y = binary(BinaryOp::Add, y, *epilogue.residual);
    if (!clamps) return y;
    if (lo == 0.0 && std::isinf(hi)) return relu_forward(y);
    // hardtanh takes finite bounds: an open side becomes the float range's end.
    const double big = std::numeric_limits<float>::max();
    return hardtanh_forward(y, std::max(lo, -big), std::min(hi, big));
  }
  Tensor xc = float_nchw(x, op, "input"), wc = float_nchw(w, op, "weight");
  const Conv2dParams p = conv2d_params(xc.shape(), wc.shape(), opt, op);
  Tensor bias = bias_of(b, p.K, op);
  Tensor r = has_res ? as_nchw(*epilogue.residual) : Tensor();
  ConvPost post;
  post.residual = has_res ? r.data<float>() : nullptr;
  post.clamp = clamps;
  post.lo = static_cast<float>(lo), post.hi = static_cast<float>(hi);
  return conv_impl::forward(xc, wc, bias.defined() ? bias.data<float>() : nullptr, p, &post);
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

std::pair<Tensor, Tensor> conv2d_backward_input_weight(const Tensor& dy_in, const Tensor& x_in,
                                                       const Tensor& w_in,
                                                       const Conv2dOptions& opt) {
  if (cuda::any_cuda({&dy_in, &x_in, &w_in}))
    return {cuda::conv2d_backward_input(dy_in, w_in, x_in.shape(), opt),
            cuda::conv2d_backward_weight(dy_in, x_in, w_in.shape(), opt)};
  const char* op = "conv2d_backward_input_weight";
  Tensor dy = float_nchw(dy_in, op, "grad_output"), x = float_nchw(x_in, op, "input"),
         w = float_nchw(w_in, op, "weight");
  const Conv2dParams p = conv2d_params(x.shape(), w.shape(), opt, op);
  check_shape(dy, p.output_shape(), op, "grad_output");
  return conv_impl::backward_input_weight(dy, x, w, p);
}

Tensor conv2d_backward_bias(const Tensor& dy_in) {
  if (cuda::any_cuda({&dy_in})) return cuda::conv2d_backward_bias(dy_in);
  const char* op = "conv2d_backward_bias";
  Tensor dy = float_nchw(dy_in, op, "grad_output");
  check_dim(dy, 4, op, "grad_output");
  return conv_impl::backward_bias(dy);
}

Conv2dGrads conv2d_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in,
                            const Conv2dOptions& opt, const std::array<bool, 3>& output_mask) {
  const auto [need_dx, need_dw, need_db] = output_mask;
  Conv2dGrads out;
  if (cuda::any_cuda({&dy_in, &x_in, &w_in})) {
    if (need_dx) out.input = cuda::conv2d_backward_input(dy_in, w_in, x_in.shape(), opt);
    if (need_dw) out.weight = cuda::conv2d_backward_weight(dy_in, x_in, w_in.shape(), opt);
    if (need_db) out.bias = cuda::conv2d_backward_bias(dy_in);
    return out;
  }
  const char* op = "conv2d_backward";
  Tensor dy = float_nchw(dy_in, op, "grad_output"), x = float_nchw(x_in, op, "input"),
         w = float_nchw(w_in, op, "weight");
  const Conv2dParams p = conv2d_params(x.shape(), w.shape(), opt, op);
  check_shape(dy, p.output_shape(), op, "grad_output");
  Tensor* db = need_db ? &out.bias : nullptr;
  if (need_dx && need_dw) {
    std::tie(out.input, out.weight) = conv_impl::backward_input_weight(dy, x, w, p, db);
  } else {
    if (need_dx) out.input = conv_impl::backward_input(dy, w, p);
    if (need_dw) out.weight = conv_impl::backward_weight(dy, x, p, db);
  }
  if (need_db && !out.bias.defined()) out.bias = conv_impl::backward_bias(dy);
  return out;
}

Tensor conv_transpose2d_forward(const Tensor& x_in, const Tensor& w_in,
                                const std::optional<Tensor>& b, const Conv2dOptions& opt,
                                int64_t output_padding_h, int64_t output_padding_w) {
  if (cuda::any_cuda({&x_in, &w_in, cuda::opt_ptr(b)}))
    return cuda::conv_transpose2d_forward(x_in, w_in, b, opt, output_padding_h, output_padding_w);
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
  if (cuda::any_cuda({&dy_in, &w_in}))
    return cuda::conv_transpose2d_backward_input(dy_in, w_in, x_shape, opt, output_padding_h,
                                                 output_padding_w);
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
  if (cuda::any_cuda({&dy_in, &x_in}))
    return cuda::conv_transpose2d_backward_weight(dy_in, x_in, w_shape, opt, output_padding_h,
                                                  output_padding_w);
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
