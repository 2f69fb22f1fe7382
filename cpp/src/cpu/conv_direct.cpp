// The register-blocked direct convolution (conv_direct_kernels.hpp) over a batch: per image and
// group the input planes are packed once (padded, stride-phase-split) and the kernel sweeps the
// output rows. Backward-input at stride 1 is the same forward on dy with the kernel flipped and
// transposed; the weight gradient has its own blocked kernel.
#include <algorithm>
#include <vector>

#include "cpu/activation_kernels.hpp"
#include "cpu/conv2d.hpp"
#include "cpu/conv_direct_kernels.hpp"
#include "parallel.hpp"

namespace cnncore {
namespace conv_impl {

namespace {

int64_t block_channels(int64_t kout, int64_t ow, int64_t oh) {
  CNNCORE_ISA_DISPATCH(direct_block_channels(kout, ow, oh));
}

bool weight_channels_fit(const DwGeom& g, int64_t kout) {
  CNNCORE_ISA_DISPATCH(direct_weight_channels_fit(g, kout));
}

// Output rows per work item: whole images when the batch alone keeps every thread busy,
// otherwise slices, so that batch 1 still splits.
int64_t rows_per_item(int64_t images, int64_t OH) {
  const int64_t threads = get_num_threads();
  if (images >= 2 * threads) return OH;
  const int64_t slices = (4 * threads + images - 1) / images;
  return std::max<int64_t>(1, (OH + slices - 1) / slices);
}

// Per-thread scratch (packed planes; slot 1: the weight gradient's transposed dy; slot 2: the
// images-as-lanes planes, shared by the threads of one call), 16 readable
// floats past the end (full-width loads of short rows). Kept between calls: a fresh 600 KB
// buffer (the RGB first layers) costs a page fault per 4 KB, and zero-filling one per call
// (LeNet2's weight gradient) a pass over it. dw_pack_plane writes every float the kernels store
// results from; what the tail (or dy's padding channels) held before only reaches unstored
// lanes. Above kKeptBufferFloats (16 MB) a buffer of its own, freed on return.
float* plane_buffer(size_t floats, std::vector<float>& own, int slot = 0) {
  constexpr size_t kKeptBufferFloats = size_t{1} << 22;
  thread_local std::vector<float> kept[3];
  std::vector<float>& buf = floats + 16 <= kKeptBufferFloats ? kept[slot] : own;
  if (buf.size() < floats + 16) buf.resize(floats + 16, 0.0f);
  return buf.data();
}

// out (N, groups*kout, g.OH, g.OW) = bias + conv of in (N, groups*cin, g.H, g.W) with weights
// packed per group (wpk + grp * wstride, see direct_forward_rows).
void run_forward(const float* in, int64_t N, int64_t groups, int64_t cin, int64_t kout,
                 const DwGeom& g, const float* wpk, int64_t wstride, const float* bias,
                 float* out, const ConvPost* post = nullptr) {
  const bool after = has_post(post);
  const int64_t bs = g.buf_size(), HW = g.H * g.W, L = g.OH * g.OW;
  const int64_t rows = rows_per_item(N * groups, g.OH), slices = (g.OH + rows - 1) / rows;
  const int64_t work = N * groups * slices;
  const double flops = 2.0 * double(L) * double(kout * cin * g.R * g.S);
  parallel_for(0, work, std::max<int64_t>(1, int64_t(double(1 << 18) / flops * slices)),
               [&](int64_t b, int64_t e) {
                 std::vector<float> own;
                 float* const buf = plane_buffer(static_cast<size_t>(cin * bs), own);
                 int64_t packed = -1;
                 for (int64_t wi = b; wi < e; ++wi) {
                   const int64_t ng = wi / slices, sl = wi % slices;
                   const int64_t n = ng / groups, grp = ng % groups;
                   if (ng != packed) {
                     for (int64_t c = 0; c < cin; ++c)
                       CNNCORE_ISA_CALL(dw_pack_plane(in + (n * groups * cin + grp * cin + c) * HW,
                                                      g, buf + c * bs));
                     packed = ng;
                   }
                   const int64_t oh0 = sl * rows, oh1 = std::min(g.OH, oh0 + rows);
                   float* const y = out + (n * groups * kout + grp * kout) * L;
                   CNNCORE_ISA_CALL(direct_forward_rows(buf, cin, g, wpk + grp * wstride, kout,
                                                        bias ? bias + grp * kout : nullptr, y,
                                                        oh0, oh1));
                   // The epilogue on the rows just written, while they are in cache.
                   for (int64_t k = 0; after && k < kout; ++k) {
                     const int64_t at = (y - out) + k * L + oh0 * g.OW;
                     CNNCORE_ISA_CALL(add_clamp(out + at,
                                                post->residual ? post->residual + at : nullptr,
                                                (oh1 - oh0) * g.OW, post->low(),
                                                post->high()));
                   }
                 }
               });
}

int64_t image_rows_block(int64_t kout, int64_t ow) {
  CNNCORE_ISA_DISPATCH(direct_image_rows_block(kout, ow));
}

int64_t image_rows_images(int64_t kout) { CNNCORE_ISA_DISPATCH(direct_image_rows_images(kout)); }

// The share of (output row, kernel row) pairs that read only padding rows of the input planes.
// (output position, tap) pairs over `out` positions x `taps` taps (stride, dilation d, padding
// pad) that read inside a plane dimension of `size`.
int64_t taps_inside(int64_t out, int64_t taps, int64_t stride, int64_t d, int64_t pad,
                    int64_t size) {
  int64_t n = 0;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t t = 0; t < taps; ++t) n += uint64_t(o * stride + t * d - pad) < uint64_t(size);
  return n;
}

double padding_row_share(const DwGeom& g) {
  const int64_t pairs = g.OH * g.R;
  return double(pairs - taps_inside(g.OH, g.R, g.sh, g.dh, g.pt, g.H)) / double(pairs);
}

// run_forward without bias as blocks of one output row across several images
// (direct_forward_image_rows), for planes with many padding rows: images are packed `chunk` at
// a time (a multiple of the kernel's images per block), and threads split the chunks.
void run_forward_images(const float* in, int64_t N, int64_t groups, int64_t cin, int64_t kout,
                        const DwGeom& g, const float* wpk, int64_t wstride, float* out) {
  const int64_t bs = g.buf_size(), HW = g.H * g.W, L = g.OH * g.OW, img = cin * bs;
  const int64_t pb = image_rows_images(kout), threads = get_num_threads();
  // Chunks of at most kDirectCacheBytes of planes, as many as a multiple of the threads (so
  // that they all get the same number of images), each a multiple of pb images where it can.
  const int64_t cap = std::max<int64_t>(1, kDirectCacheBytes / int64_t(sizeof(float)) / img);
  const int64_t per_thread = (N + threads - 1) / threads;
  const int64_t splits = (per_thread + cap - 1) / cap;  // chunks per thread
  int64_t chunk = (per_thread + splits - 1) / splits;
  const int64_t rounded = (chunk + pb - 1) / pb * pb;
  if ((N + rounded - 1) / rounded == (N + chunk - 1) / chunk) chunk = rounded;
  const int64_t chunks = (N + chunk - 1) / chunk, work = groups * chunks;
  parallel_for(0, work, 1, [&](int64_t b, int64_t e) {
    std::vector<float> own;
    float* buf = plane_buffer(static_cast<size_t>(chunk * img), own);
    for (int64_t wi = b; wi < e; ++wi) {
      const int64_t grp = wi / chunks, n0 = wi % chunks * chunk, nb = std::min(chunk, N - n0);
      for (int64_t i = 0; i < nb; ++i)
        for (int64_t c = 0; c < cin; ++c)
          CNNCORE_ISA_CALL(dw_pack_plane(in + ((n0 + i) * groups * cin + grp * cin + c) * HW, g,
                                         buf + i * img + c * bs));
      CNNCORE_ISA_CALL(direct_forward_image_rows(buf, cin, g, wpk + grp * wstride, kout,
                                                 out + (n0 * groups * kout + grp * kout) * L, nb,
                                                 img, groups * kout * L));
    }
  });
}

int64_t lanes_width() { CNNCORE_ISA_DISPATCH(direct_lanes_width()); }
int64_t lanes_block_channels(int64_t kout) {
  CNNCORE_ISA_DISPATCH(direct_lanes_block_channels(kout));
}

// run_forward with images as the lanes (direct_forward_lanes): blocks of V images transposed
// into one buffer, the output rows computed, the result transposed back, each step split over
// the threads. Weights packed with lanes_block_channels(kout) channels per block.
void run_forward_lanes(const float* in, int64_t N, int64_t groups, int64_t cin, int64_t kout,
                       const DwGeom& g, const float* wpk, int64_t wstride, const float* bias,
                       float* out) {
  const int64_t V = lanes_width(), blocks = (N + V - 1) / V, HW = g.H * g.W, L = g.OH * g.OW;
  const int64_t in_size = cin * HW * V, out_size = kout * L * V, units = blocks * groups;
  std::vector<float> own;
  float* const ibuf = plane_buffer(static_cast<size_t>(units * (in_size + out_size)), own, 2);
  float* const obuf = ibuf + units * in_size;
  const int64_t grain_in = std::max<int64_t>(1, 8192 / std::max<int64_t>(HW * V, 1));
  parallel_for(0, units * cin, grain_in, [&](int64_t b, int64_t e) {
    for (int64_t wi = b; wi < e; ++wi) {
      const int64_t u = wi / cin, c = wi % cin, blk = u / groups, grp = u % groups;
      const int64_t n0 = blk * V, nb = std::min(V, N - n0);
      CNNCORE_ISA_CALL(direct_to_lanes(in + ((n0 * groups + grp) * cin + c) * HW, nb,
                                       groups * cin * HW, HW, ibuf + u * in_size + c * HW * V));
    }
  });
  const int64_t kb = lanes_block_channels(kout), items = (kout + kb - 1) / kb * g.OH;
  const double flops = 2.0 * double(g.OW * V) * double(kb * cin * g.R * g.S);
  parallel_for(0, units * items, std::max<int64_t>(1, int64_t(double(1 << 18) / flops)),
               [&](int64_t b, int64_t e) {
                 while (b < e) {
                   const int64_t u = b / items, i0 = b % items;
                   const int64_t i1 = std::min(items, i0 + (e - b)), grp = u % groups;
                   CNNCORE_ISA_CALL(direct_forward_lanes(
                       ibuf + u * in_size, cin, g, wpk + grp * wstride, kout,
                       bias ? bias + grp * kout : nullptr, obuf + u * out_size, i0, i1));
                   b += i1 - i0;
                 }
               });
  const int64_t grain_out = std::max<int64_t>(1, 8192 / std::max<int64_t>(L * V, 1));
  parallel_for(0, units * kout, grain_out, [&](int64_t b, int64_t e) {
    for (int64_t wi = b; wi < e; ++wi) {
      const int64_t u = wi / kout, k = wi % kout, blk = u / groups, grp = u % groups;
      const int64_t n0 = blk * V, nb = std::min(V, N - n0);
      CNNCORE_ISA_CALL(direct_from_lanes(obuf + u * out_size + k * L * V, nb, L,
                                         out + ((n0 * groups + grp) * kout + k) * L,
                                         groups * kout * L));
    }
  });
}

// Weights as direct_forward_rows reads them for output planes of oh x ow: per group `stride`
// floats, [kout / kb][taps][kb] with zeros past kout; weight(group, output channel, tap) gives
// each value.
struct PackedWeights {
  std::vector<float> w;
  int64_t stride;
};
template <class Weight>
PackedWeights pack_weights(int64_t groups, int64_t kout, int64_t taps, int64_t kb,
                           const Weight& weight) {
  const int64_t ws = (kout + kb - 1) / kb * kb * taps;
  PackedWeights pk{std::vector<float>(static_cast<size_t>(groups * ws), 0.0f), ws};
  // Written in order, read kb rows at a time (kb rows of a few taps stay in L1): the other way
  // round each write of a 1152-tap block lands on a new cache line (256 -> 256 3x3 at batch 1:
  // a fifth of the conv).
  // Blocks split over the threads when there is enough to copy (128 -> 256 3x3: 1.2 MB, which
  // one thread packed while the other waited).
  const int64_t blocks = (kout + kb - 1) / kb;
  parallel_for(0, groups * blocks, std::max<int64_t>(1, (int64_t{1} << 15) / (kb * taps)),
               [&](int64_t b, int64_t e) {
                 for (int64_t i = b; i < e; ++i) {
                   const int64_t grp = i / blocks, k0 = i % blocks * kb;
                   const int64_t kn = std::min(kb, kout - k0);
                   float* dst = pk.w.data() + grp * ws + k0 * taps;
                   for (int64_t t = 0; t < taps; ++t)
                     for (int64_t k = 0; k < kn; ++k) dst[t * kb + k] = weight(grp, k0 + k, t);
                 }
               });
  return pk;
}

}  // namespace

// Measured (Zen 4, AVX-512 and AVX2 paths): the direct backward passes win while what they
// sweep stays in L2 (LeNet: 2-3x im2col's backward-weight); on the 224-pixel RGB layers
// im2col + GEMM is faster (the direct weight gradient rereads 2048-pixel slices from L2 once
// per 4 x 5 block of weights, the backward-input sweeps 64 packed dy planes of 200 KB each).
bool direct_backward_input_fits(const Conv2dParams& p) {
  if (p.is_strided()) return false;
  const DwGeom g = DwGeom::make(p.OH, p.OW, p.H, p.W, p.R, p.S, 1, 1, p.dil_h, p.dil_w,
                                p.dil_h * (p.R - 1) - p.pad_t, p.dil_w * (p.S - 1) - p.pad_l);
  return p.K / p.groups * g.buf_size() * int64_t(sizeof(float)) <= kDirectCacheBytes;
}

// The direct weight-gradient kernel is built for few input channels (its passes over the pixels
// grow with cin x taps); many-channel layers that run the direct forward keep im2col + GEMM.
bool direct_backward_weight_fits(const Conv2dParams& p) {
  return p.OH * p.OW <= 1024 && p.C / p.groups <= kDirectMaxChannels;
}

// Measured (Zen 4, AVX-512, 128 -> 256 3x3/2 on 28x28, batch 8): the channel-vector direct
// forward 1.1-1.25x im2col + GEMM on 1 and 2 threads with other jobs on the cores, equal on a
// quiet machine (no column matrix, no 196-column GEMM padded to 224); at one image per thread (batch 1) about equal or slower (the weights are
// repacked per call for one image), so the batch must give each thread two images. Small maps
// (<= 64 pixels) keep the batched-columns GEMM.
bool direct_many_channels_fits(const Conv2dParams& p) {
  if (!p.is_strided() || p.is_1x1() || p.OH * p.OW <= 64) return false;
  if (p.N < 2 * get_num_threads()) return false;
  return block_channels(p.K / p.groups, p.OW, p.OH) >= 32;
}

// dy padded by dil*(k-1) - pad: deep padding (LeNet2's 4 rows each side of 10) leaves many
// (row, kernel row) pairs reading only zeros. Measured (Zen 4, AVX-512, LeNet2 at batch 32):
// 0.16 against 0.21 ms on 2 threads, 0.29 against 0.41 on 1. Taken where a fifth or more of the
// pairs are padding and the batch gives every thread a full block of images.
bool direct_backward_input_by_rows(const Conv2dParams& p) {
  if (p.is_strided() || conv_variant_forced("direct-rows")) return false;
  const int64_t Cg = p.C / p.groups;
  if (image_rows_block(Cg, p.W) == 0 || p.N < get_num_threads() * image_rows_images(Cg))
    return false;
  const DwGeom g = DwGeom::make(p.OH, p.OW, p.H, p.W, p.R, p.S, 1, 1, p.dil_h, p.dil_w,
                                p.dil_h * (p.R - 1) - p.pad_t, p.dil_w * (p.S - 1) - p.pad_l);
  return padding_row_share(g) >= 0.2;
}

bool direct_weight_by_channels(const Conv2dParams& p) {
  // Whole images per kernel call (direct_backward_weight's row slices are whole images).
  const bool whole_images = 2048 / std::max<int64_t>(p.OW, 1) >= p.OH;
  return whole_images && weight_channels_fit(DwGeom::from(p), p.K / p.groups) &&
         !conv_variant_forced("direct-pixel-lanes");
}

// Images as the lanes: dy and dx transposed through one buffer (per block of V images at most
// 1 MB), FMAs only where a tap reads inside dy, every lane a real image. Cost model in vector
// FMAs per image: the pixel-vector layout's rows of W padded to whole vectors for every kernel
// row (every tap, or the rows that read inside the plane by rows), against the real taps over
// the share of lanes the batch fills plus 0.75 per float transposed (3 on the 4-lane baseline
// path); taken where it comes to at most 0.9 of that. Measured (Zen 4, AVX-512, 1 thread,
// batch 32): LeNet2's backward-input 0.18-0.20 against 0.30-0.31 ms; LeNet1's (1 output
// channel, 28 of 32 lanes real) 0.34 against 0.27, which the model keeps on pixel vectors.
bool direct_backward_input_by_lanes(const Conv2dParams& p) {
  if (p.is_strided() || conv_variant_forced("direct-rows") ||
      conv_variant_forced("direct-image-rows"))
    return false;
  const int64_t V = lanes_width(), blocks = (p.N + V - 1) / V;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int64_t transposed = Kg * p.OH * p.OW + Cg * p.H * p.W;
  if (transposed * V * int64_t(sizeof(float)) > (int64_t{1} << 20)) return false;
  const DwGeom g = DwGeom::make(p.OH, p.OW, p.H, p.W, p.R, p.S, 1, 1, p.dil_h, p.dil_w,
                                p.dil_h * (p.R - 1) - p.pad_t, p.dil_w * (p.S - 1) - p.pad_l);
  // Kernel rows (columns) that read inside dy, summed over the output rows (columns).
  const double rows_in = double(taps_inside(g.OH, g.R, 1, g.dh, g.pt, g.H));
  const double cols_in = double(taps_inside(g.OW, g.S, 1, g.dw, g.pl, g.W));
  const double pairs = double(Cg * Kg);
  const double pixel_rows = direct_backward_input_by_rows(p) ? rows_in : double(g.OH * g.R);
  const double pixel_cost = pixel_rows * double((g.OW + V - 1) / V * g.S) * pairs;
  const double lane_use = double(p.N) / double(blocks * V);
  // The baseline path (4 lanes) transposes through memory, a few times slower per float.
  const double per_float = V >= 8 ? 0.75 : 3.0;
  const double lanes_cost = rows_in * cols_in * pairs / (double(V) * lane_use) +
                            per_float * double(transposed);
  return lanes_cost <= 0.9 * pixel_cost;
}

int64_t direct_forward_block_channels(const Conv2dParams& p) {
  return block_channels(p.K / p.groups, p.OW, p.OH);
}

Tensor direct_forward(const Tensor& x, const Tensor& w, const float* bias, const Conv2dParams& p,
                      const ConvPost* post) {
  Tensor y = Tensor::empty(p.output_shape());
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, taps = Cg * RS;
  const float* wp = w.data<float>();
  const PackedWeights pk = pack_weights(G, Kg, Cg * RS, block_channels(Kg, p.OW, p.OH),
                                        [&](int64_t grp, int64_t k, int64_t t) {
                                          return wp[(grp * Kg + k) * taps + t];
                                        });
  run_forward(x.data<float>(), p.N, G, Cg, Kg, DwGeom::from(p), pk.w.data(), pk.stride, bias,
              y.data<float>(), post);
  return y;
}

Tensor direct_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, taps = Kg * RS;
  const float* wp = w.data<float>();
  // dx is the stride-1 conv of dy (Kg channels in, Cg out) with w[k][c] flipped in both axes,
  // padded by dil*(k-1) - pad (negative: a crop).
  const DwGeom g = DwGeom::make(p.OH, p.OW, p.H, p.W, p.R, p.S, 1, 1, p.dil_h, p.dil_w,
                                p.dil_h * (p.R - 1) - p.pad_t, p.dil_w * (p.S - 1) - p.pad_l);
  auto flipped = [&](int64_t grp, int64_t c, int64_t t) {
    return wp[((grp * Kg + t / RS) * Cg + c) * RS + (RS - 1 - t % RS)];
  };
  if (direct_backward_input_by_lanes(p)) {
    const PackedWeights pk = pack_weights(G, Cg, taps, lanes_block_channels(Cg), flipped);
    run_forward_lanes(dy.data<float>(), p.N, G, Kg, Cg, g, pk.w.data(), pk.stride, nullptr,
                      dx.data<float>());
    return dx;
  }
  if (direct_backward_input_by_rows(p)) {
    const PackedWeights pk = pack_weights(G, Cg, taps, image_rows_block(Cg, p.W), flipped);
    run_forward_images(dy.data<float>(), p.N, G, Kg, Cg, g, pk.w.data(), pk.stride,
                       dx.data<float>());
    return dx;
  }
  const PackedWeights pk = pack_weights(G, Cg, taps, block_channels(Cg, p.W, p.H), flipped);
  run_forward(dy.data<float>(), p.N, G, Kg, Cg, g, pk.w.data(), pk.stride, nullptr,
              dx.data<float>());
  return dx;
}

Tensor direct_backward_weight(const Tensor& dy, const Tensor& x, const Conv2dParams& p,
                              Tensor* db) {
  Tensor dw = Tensor::zeros(p.weight_shape());
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, HW = p.H * p.W, L = p.OH * p.OW;
  const int64_t wsize = p.K * Cg * p.R * p.S;
  const DwGeom g = DwGeom::from(p);
  const int64_t bs = g.buf_size();
  // Pixels per call: enough to amortise the kernel's final reductions (several small images
  // at once), few enough that the packed rows stay in cache across its passes.
  const int64_t rows =
      std::max<int64_t>(1, std::min<int64_t>(p.OH, 2048 / std::max<int64_t>(p.OW, 1)));
  const int64_t batch = rows < p.OH ? 1 : std::max<int64_t>(1, 4096 / std::max<int64_t>(L, 1));
  const float* dyp = dy.data<float>();
  const float* xp = x.data<float>();
  float* dwp = dw.data<float>();
  // Output channels as the lanes where they fill them better than the short rows do (LeNet2:
  // 16 channels, 10-pixel rows): dy transposed per batch of images, then one pass per block of
  // weights over every pixel.
  const bool by_channels = direct_weight_by_channels(p);
  const int64_t kpad = (Kg + 15) / 16 * 16;
  // Threads split the batch, each summing into its own copy of dw (thread 0 into dw itself).
  const int64_t slots = std::min<int64_t>(get_num_threads(), p.N);
  std::vector<float> extra(static_cast<size_t>((slots - 1) * wsize), 0.0f);
  // The bias gradient, when asked for, from the same images of dy while they are in cache:
  // per thread and channel a double sum of float partial sums (one per batch of images).
  std::vector<double> bias_acc(static_cast<size_t>(db ? slots * p.K : 0), 0.0);
  parallel_region(slots, [&](int64_t tid, int64_t nt) {
    float* acc = tid == 0 ? dwp : extra.data() + (tid - 1) * wsize;
    double* bacc = db ? bias_acc.data() + tid * p.K : nullptr;
    std::vector<float> own_buf, own_dyt;
    float* const buf = plane_buffer(static_cast<size_t>(batch * Cg * bs), own_buf);
    float* const dyt =
        by_channels ? plane_buffer(static_cast<size_t>(batch * L * kpad), own_dyt, 1) : nullptr;
    const int64_t chunk = (p.N + nt - 1) / nt;
    const int64_t n_end = std::min(p.N, (tid + 1) * chunk);
    for (int64_t n0 = tid * chunk; n0 < n_end; n0 += batch) {
      const int64_t nb = std::min(batch, n_end - n0);
      for (int64_t grp = 0; grp < G; ++grp) {
        for (int64_t i = 0; i < nb; ++i)
          for (int64_t c = 0; c < Cg; ++c)
            CNNCORE_ISA_CALL(dw_pack_plane(xp + ((n0 + i) * p.C + grp * Cg + c) * HW, g,
                                           buf + (i * Cg + c) * bs));
        if (bacc)
          for (int64_t k = 0; k < Kg; ++k) {
            double part = 0.0;
            for (int64_t i = 0; i < nb; ++i)
              part += sum_floats(dyp + ((n0 + i) * p.K + grp * Kg + k) * L, L);
            bacc[grp * Kg + k] += part;
          }
        if (by_channels) {
          for (int64_t i = 0; i < nb; ++i)
            CNNCORE_ISA_CALL(direct_transpose_planes(dyp + ((n0 + i) * p.K + grp * Kg) * L, Kg,
                                                     L, L, dyt + i * L * kpad, kpad));
          CNNCORE_ISA_CALL(direct_backward_weight_channels(
              buf, Cg, g, dyt, Kg, acc + grp * Kg * Cg * p.R * p.S, nb));
          continue;
        }
        for (int64_t oh0 = 0; oh0 < p.OH; oh0 += rows)
          CNNCORE_ISA_CALL(direct_backward_weight_rows(
              buf, Cg, g, dyp + (n0 * p.K + grp * Kg) * L, Kg,
              acc + grp * Kg * Cg * p.R * p.S, oh0, std::min(p.OH, oh0 + rows), nb, p.K * L));
      }
    }
  });
  for (int64_t s = 1; s < slots; ++s) {
    const float* src = extra.data() + (s - 1) * wsize;
    for (int64_t i = 0; i < wsize; ++i) dwp[i] += src[i];
  }
  if (db) {
    *db = Tensor::empty({p.K});
    float* dbp = db->data<float>();
    for (int64_t k = 0; k < p.K; ++k) {
      double total = 0.0;
      for (int64_t s = 0; s < slots; ++s) total += bias_acc[s * p.K + k];
      dbp[k] = static_cast<float>(total);
    }
  }
  return dw;
}

}  // namespace conv_impl
}  // namespace cnncore
