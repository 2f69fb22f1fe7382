// conv2d on CUDA as implicit GEMM (gemm_tile.cuh), with the CPU reference's index conventions:
// output pixel (oh, ow) reads input row oh * stride_h - pad_t + r * dil_h (and the same for
// columns); weight (K, C/g, R, S); group g owns input channels [g C/g, (g+1) C/g) and output
// channels [g K/g, (g+1) K/g). Shapes are validated by the same conv2d_params as on the CPU.
//   forward:         per group, M = K/g, N = batch x OH x OW, depth = C/g x R x S
//   backward-input:  per group, M = C/g, N = batch x H x W,   depth = K/g x R x S (a gather)
//   backward-weight: per group, M = K/g, N = C/g x R x S,     depth = batch x OH x OW
#include "cuda_ops.hpp"
#include "gemm_tile.cuh"

namespace cnncore::cuda {
namespace {

struct ConvDims {  // Conv2dParams in device-friendly form
  int64_t N, C, H, W, K, R, S, OH, OW, sh, sw, pt, pl, dh, dw, Cg, Kg;
};
ConvDims dims_of(const Conv2dParams& p) {
  return {p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.OH, p.OW, p.stride_h, p.stride_w, p.pad_t,
          p.pad_l, p.dil_h, p.dil_w, p.C_per_group(), p.K_per_group()};
}

Tensor cuda_f32(const Tensor& t) { return t.contiguous(); }

// The implicit im2col element x[img, g Cg + c, oh sh - pt + r dh, ow sw - pl + s dw] (zero in the
// padding) as a pixel part (img, oh, ow) and a tap part (c, r, s), each decomposed once: the GEMM
// keeps the per-row part for the whole kernel and recomputes the per-k part once per k tile.
struct Pix {  // output pixel: the image's (and group's) base offset and the top-left input tap
  int64_t base, ih0, iw0;
};
struct Tap {  // kernel tap: the channel's offset and the dilated tap position
  int64_t coff, rdh, sdw;
};
__device__ __forceinline__ Pix pix_of(const ConvDims& d, int64_t pix, int64_t chan0) {
  const int64_t q = udiv(pix, d.OW), ow = pix - q * d.OW;
  const int64_t img = udiv(q, d.OH), oh = q - img * d.OH;
  return {(img * d.C + chan0) * d.H * d.W, oh * d.sh - d.pt, ow * d.sw - d.pl};
}
__device__ __forceinline__ Tap tap_of(const ConvDims& d, int64_t crs, int64_t chan0) {
  const int64_t q = udiv(crs, d.S), s = crs - q * d.S;
  const int64_t c = udiv(q, d.R), r = q - c * d.R;
  return {(chan0 + c) * d.H * d.W, r * d.dh, s * d.dw};
}
__device__ __forceinline__ float im2col_at(const float* x, const ConvDims& d, const Pix& p,
                                           const Tap& t) {
  const int64_t ih = p.ih0 + t.rdh, iw = p.iw0 + t.sdw;
  if (static_cast<uint64_t>(ih) >= static_cast<uint64_t>(d.H) ||
      static_cast<uint64_t>(iw) >= static_cast<uint64_t>(d.W))
    return 0.0f;
  return x[p.base + t.coff + ih * d.W + iw];
}

// ---- forward ----
// A(m = output channel in group, k = (c, r, s)) = w[g Kg + m, c, r, s]: KContig(w, CRS, Kg).
struct FwdInput {  // B(k = (c, r, s), n = (img, oh, ow)): implicit im2col, runs along pixels
  static constexpr bool kFastK = false, kVec = false;
  const float* x;
  ConvDims d;
  using Row = Pix;
  using Kx = Tap;
  __device__ Row row(int g, int64_t n) const { return pix_of(d, n, g * d.Cg); }
  __device__ Kx kx(int, int64_t k) const { return tap_of(d, k, 0); }
  __device__ float at(const Row& p, const Kx& t) const { return im2col_at(x, d, p, t); }
};
struct FwdStore {
  float* y;
  const float* bias;
  ConvDims d;
  __device__ void operator()(int g, int64_t m, int64_t n, float v) const {
    const int64_t L = d.OH * d.OW, k = g * d.Kg + m, img = udiv(n, L), pix = n - img * L;
    y[(img * d.K + k) * L + pix] = v + (bias ? bias[k] : 0.0f);
  }
};

// ---- backward input ----
struct BwdInWeight {  // A(m = input channel in group, k = (kk, r, s)) = w[g Kg + kk, m, r, s]
  static constexpr bool kFastK = true, kVec = false;
  const float* w;
  ConvDims d;
  struct Row { int64_t off; };
  struct Kx { int64_t off; };
  __device__ Row row(int g, int64_t m) const { return {(g * d.Kg * d.Cg + m) * d.R * d.S}; }
  __device__ Kx kx(int, int64_t k) const {
    const int64_t RS = d.R * d.S, kk = udiv(k, RS), rs = k - kk * RS;
    return {kk * d.Cg * RS + rs};
  }
  __device__ float at(const Row& r, const Kx& x) const { return w[r.off + x.off]; }
};
struct BwdInGrad {  // B(k = (kk, r, s), n = (img, ih, iw)): the dy pixel that read (ih, iw)
  static constexpr bool kFastK = false, kVec = false;
  const float* dy;
  ConvDims d;
  struct Row { int64_t base, th0, tw0; };  // dy's (img, group) plane base, ih + pt, iw + pl
  struct Kx { int64_t koff, rdh, sdw; };
  __device__ Row row(int g, int64_t n) const {
    const int64_t q = udiv(n, d.W), iw = n - q * d.W;
    const int64_t img = udiv(q, d.H), ih = q - img * d.H;
    return {(img * d.K + g * d.Kg) * d.OH * d.OW, ih + d.pt, iw + d.pl};
  }
  __device__ Kx kx(int, int64_t k) const {
    const int64_t q = udiv(k, d.S), s = k - q * d.S;
    const int64_t kk = udiv(q, d.R), r = q - kk * d.R;
    return {kk * d.OH * d.OW, r * d.dh, s * d.dw};
  }
  __device__ float at(const Row& p, const Kx& t) const {
    int64_t oh = p.th0 - t.rdh, ow = p.tw0 - t.sdw;
    if (oh < 0 || ow < 0) return 0.0f;
    if (d.sh != 1) {
      const int64_t q = udiv(oh, d.sh);
      if (q * d.sh != oh) return 0.0f;
      oh = q;
    }
    if (d.sw != 1) {
      const int64_t q = udiv(ow, d.sw);
      if (q * d.sw != ow) return 0.0f;
      ow = q;
    }
    if (oh >= d.OH || ow >= d.OW) return 0.0f;
    return dy[p.base + t.koff + oh * d.OW + ow];
  }
};
struct BwdInStore {
  float* dx;
  ConvDims d;
  __device__ void operator()(int g, int64_t m, int64_t n, float v) const {
    const int64_t L = d.H * d.W, img = udiv(n, L), pix = n - img * L;
    dx[(img * d.C + g * d.Cg + m) * L + pix] = v;
  }
};

// ---- backward weight ----
struct BwdWGrad {  // A(m = output channel in group, k = (img, oh, ow)) = dy[img, g Kg + m, oh, ow]
  static constexpr bool kFastK = true, kVec = true;
  const float* dy;
  ConvDims d;
  bool vec4;  // 4 consecutive k (k % 4 == 0) stay in one image when OH OW % 4 == 0
  struct Row { int64_t off; };
  struct Kx { int64_t off; };
  __device__ Row row(int g, int64_t m) const { return {(g * d.Kg + m) * d.OH * d.OW}; }
  __device__ Kx kx(int, int64_t k) const {
    const int64_t L = d.OH * d.OW, img = udiv(k, L), pix = k - img * L;
    return {img * d.K * L + pix};
  }
  __device__ float at(const Row& r, const Kx& x) const { return dy[r.off + x.off]; }
  __device__ float4 at4(const Row& r, const Kx& x) const {
    return *reinterpret_cast<const float4*>(dy + r.off + x.off);
  }
};
struct BwdWInput {  // B(k = (img, oh, ow), n = (c, r, s)): implicit im2col, runs along pixels
  static constexpr bool kFastK = true, kVec = false;
  const float* x;
  ConvDims d;
  using Row = Tap;
  using Kx = Pix;
  __device__ Row row(int g, int64_t n) const { return tap_of(d, n, g * d.Cg); }
  __device__ Kx kx(int, int64_t k) const { return pix_of(d, k, 0); }
  __device__ float at(const Row& t, const Kx& p) const { return im2col_at(x, d, p, t); }
};
struct BwdWStore {
  float* dw;
  ConvDims d;
  __device__ void operator()(int g, int64_t m, int64_t n, float v) const {
    dw[(g * d.Kg + m) * d.Cg * d.R * d.S + n] = v;
  }
};

// One block per channel: the sum over batch and pixels of dy[:, k].
__global__ void channel_sum_kernel(const float* dy, float* db, int64_t N, int64_t K, int64_t L) {
  __shared__ float part[kThreads];
  const int64_t k = blockIdx.x;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < N * L; i += blockDim.x) {
    const int64_t img = i / L, pix = i % L;
    s += dy[(img * K + k) * L + pix];
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int h = blockDim.x / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[k] = part[0];
}

Shape checked(const Shape& s, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(s.size() == 4, op, ": ", arg, " must have 4 entries, but got ", shape_str(s));
  return s;
}
}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w_in, const std::optional<Tensor>& b,
                      const Conv2dOptions& opt) {
  const char* op = "conv2d";
  const int dev =
      check_cuda_inputs(op, {{"input", &x_in}, {"weight", &w_in}, {"bias", opt_ptr(b)}});
  const Conv2dParams p = conv2d_params(x_in.shape(), w_in.shape(), opt, op);
  Tensor bias;
  if (b && b->defined()) {
    CNNCORE_CHECK_VALUE(b->dim() == 1 && b->size(0) == p.K, op, ": bias must have shape (", p.K,
                        ",), one value per output channel, but got ", shape_str(b->shape()));
    bias = cuda_f32(*b);
  }
  DeviceGuard guard(dev, op);
  Tensor x = cuda_f32(x_in), w = cuda_f32(w_in);
  Tensor y = Tensor::empty(p.output_shape(), DType::Float32, x.device());
  const ConvDims d = dims_of(p);
  gemm_tiles(p.groups, d.Kg, d.N * d.OH * d.OW, d.Cg * d.R * d.S,
             KContig(w.device_data<float>(), d.Cg * d.R * d.S, d.Kg),
             FwdInput{x.device_data<float>(), d},
             FwdStore{y.device_data<float>(), bias.defined() ? bias.device_data<float>() : nullptr,
                      d}, op, conv_allow_tf32());
  return y;
}

Tensor conv2d_backward_input(const Tensor& dy_in, const Tensor& w_in, const Shape& x_shape,
                             const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_input";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"weight", &w_in}});
  const Conv2dParams p = conv2d_params(checked(x_shape, op, "input_shape"), w_in.shape(), opt, op);
  CNNCORE_CHECK_VALUE(dy_in.shape() == p.output_shape(), op, ": grad_output must have shape ",
                      shape_str(p.output_shape()), ", but got ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = cuda_f32(dy_in), w = cuda_f32(w_in);
  Tensor dx = Tensor::zeros(p.input_shape(), DType::Float32, dy.device());
  const ConvDims d = dims_of(p);
  gemm_tiles(p.groups, d.Cg, d.N * d.H * d.W, d.Kg * d.R * d.S,
             BwdInWeight{w.device_data<float>(), d}, BwdInGrad{dy.device_data<float>(), d},
             BwdInStore{dx.device_data<float>(), d}, op, conv_allow_tf32());
  return dx;
}

Tensor conv2d_backward_weight(const Tensor& dy_in, const Tensor& x_in, const Shape& w_shape,
                              const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_weight";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"input", &x_in}});
  const Conv2dParams p = conv2d_params(x_in.shape(), checked(w_shape, op, "weight_shape"), opt, op);
  CNNCORE_CHECK_VALUE(dy_in.shape() == p.output_shape(), op, ": grad_output must have shape ",
                      shape_str(p.output_shape()), ", but got ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = cuda_f32(dy_in), x = cuda_f32(x_in);
  Tensor dw = Tensor::zeros(p.weight_shape(), DType::Float32, dy.device());
  const ConvDims d = dims_of(p);
  gemm_tiles(p.groups, d.Kg, d.Cg * d.R * d.S, d.N * d.OH * d.OW,
             BwdWGrad{dy.device_data<float>(), d,
                      (d.OH * d.OW) % 4 == 0 && aligned16(dy.device_data<float>())},
             BwdWInput{x.device_data<float>(), d}, BwdWStore{dw.device_data<float>(), d}, op,
             conv_allow_tf32());
  return dw;
}

Tensor conv2d_backward_bias(const Tensor& dy_in) {
  const char* op = "conv2d_backward_bias";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  CNNCORE_CHECK_VALUE(dy_in.dim() == 4, op, ": grad_output must be 4-D, but got ", dy_in.dim(),
                      "-D with shape ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = cuda_f32(dy_in);
  const int64_t N = dy.size(0), K = dy.size(1), L = dy.size(2) * dy.size(3);
  Tensor db = Tensor::zeros({K}, DType::Float32, dy.device());
  if (K == 0) return db;
  channel_sum_kernel<<<static_cast<unsigned>(K), kThreads>>>(dy.device_data<float>(),
                                                             db.device_data<float>(), N, K, L);
  check_launch(op);
  return db;
}

}  // namespace cnncore::cuda
